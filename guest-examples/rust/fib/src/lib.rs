//! The N-th Fibonacci number (fib(0) = 0, fib(1) = 1), computed iteratively.
//! Input: N as decimal text (default 50, at most 93). Output: fib(N) in decimal and a newline.

#![no_std]

use core::fmt::Write;

use jos_guest::{ErrorCode, Output};

jos_guest::entry!(main, input_max = 16);

fn parse(input: &[u8]) -> Option<u32> {
    let text = input.strip_suffix(b"\n").unwrap_or(input);
    if text.is_empty() {
        return Some(50);
    }
    let mut n: u32 = 0;
    for byte in text {
        if !byte.is_ascii_digit() || n > 93 {
            return None;
        }
        n = n * 10 + u32::from(byte - b'0');
    }
    (n <= 93).then_some(n)
}

fn main(input: &[u8], out: &mut Output) -> i32 {
    let Some(n) = parse(input) else {
        jos_guest::error!("fib: expected N as decimal text, 0 to 93");
        return ErrorCode::InvalidArgument.to_return();
    };
    let (mut current, mut next) = (0u64, 1u64);
    for _ in 0..n {
        (current, next) = (next, current.wrapping_add(next));
    }
    match writeln!(out, "{current}") {
        Ok(()) => 0,
        Err(_) => ErrorCode::LimitExceeded.to_return(),
    }
}
