//! MD5 (RFC 1321) of a string, computed N times: the seed's compute benchmark.
//!
//! Input: `N` or `N STRING` as decimal text (a leading ASCII digit), or N as a u32 little-endian
//! followed by the string. Empty input, or no string, means the string `jon`; no N means 1.
//! Output: the digest as 32 lower-case hex digits and a newline.

#![no_std]

use jos_guest::{ErrorCode, Output};

jos_guest::entry!(main, input_max = 4096);

/// `floor(abs(sin(i + 1)) * 2^32)`, RFC 1321 section 3.4.
const SINES: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

/// Per-round left rotations.
const SHIFTS: [u32; 16] = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];

fn block(state: &mut [u32; 4], block: &[u8]) {
    let mut words = [0u32; 16];
    for (word, bytes) in words.iter_mut().zip(block.chunks_exact(4)) {
        *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    let [mut a, mut b, mut c, mut d] = *state;
    for i in 0..64 {
        let (f, g) = match i / 16 {
            0 => ((b & c) | (!b & d), i),
            1 => ((b & d) | (c & !d), (5 * i + 1) % 16),
            2 => (b ^ c ^ d, (3 * i + 5) % 16),
            _ => (c ^ (b | !d), (7 * i) % 16),
        };
        let rotated = a.wrapping_add(f).wrapping_add(SINES[i]).wrapping_add(words[g]).rotate_left(SHIFTS[(i / 16) * 4 + i % 4]);
        a = d;
        d = c;
        c = b;
        b = b.wrapping_add(rotated);
    }
    for (word, value) in state.iter_mut().zip([a, b, c, d]) {
        *word = word.wrapping_add(value);
    }
}

/// The MD5 digest of `message`.
fn md5(message: &[u8]) -> [u8; 16] {
    let mut state = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
    let mut chunks = message.chunks_exact(64);
    for chunk in &mut chunks {
        block(&mut state, chunk);
    }
    let rest = chunks.remainder();
    let mut tail = [0u8; 128];
    tail[..rest.len()].copy_from_slice(rest);
    tail[rest.len()] = 0x80;
    let tail_length = if rest.len() < 56 { 64 } else { 128 };
    let bits = (message.len() as u64).wrapping_mul(8);
    tail[tail_length - 8..tail_length].copy_from_slice(&bits.to_le_bytes());
    for chunk in tail[..tail_length].chunks_exact(64) {
        block(&mut state, chunk);
    }
    let mut digest = [0u8; 16];
    for (bytes, word) in digest.chunks_exact_mut(4).zip(state) {
        bytes.copy_from_slice(&word.to_le_bytes());
    }
    digest
}

/// Splits the input into the repeat count and the string.
fn parse(input: &[u8]) -> Result<(u32, &[u8]), &'static str> {
    const DEFAULT: &[u8] = b"jon";
    match input.first() {
        None => Ok((1, DEFAULT)),
        Some(b'0'..=b'9') => {
            let digits = input.iter().take_while(|byte| byte.is_ascii_digit()).count();
            let mut count: u32 = 0;
            for digit in &input[..digits] {
                count = count
                    .checked_mul(10)
                    .and_then(|value| value.checked_add(u32::from(digit - b'0')))
                    .ok_or("N does not fit in 32 bits")?;
            }
            match &input[digits..] {
                [] => Ok((count, DEFAULT)),
                [b' ', message @ ..] => Ok((count, message)),
                _ => Err("expected \"N\" or \"N STRING\""),
            }
        }
        Some(_) if input.len() >= 4 => {
            let count = u32::from_le_bytes([input[0], input[1], input[2], input[3]]);
            Ok((count, if input.len() > 4 { &input[4..] } else { DEFAULT }))
        }
        Some(_) => Err("expected decimal text or a u32 little-endian count"),
    }
}

fn main(input: &[u8], out: &mut Output) -> i32 {
    let (count, message) = match parse(input) {
        Ok(parsed) => parsed,
        Err(why) => {
            jos_guest::error!("md5: {why}");
            return ErrorCode::InvalidArgument.to_return();
        }
    };
    let mut digest = [0u8; 16];
    for _ in 0..count {
        // black_box keeps the repeated work from being folded into one hash.
        digest = md5(core::hint::black_box(message));
    }
    let mut text = [b'\n'; 33];
    for (pair, byte) in text.chunks_exact_mut(2).zip(digest) {
        pair[0] = b"0123456789abcdef"[usize::from(byte >> 4)];
        pair[1] = b"0123456789abcdef"[usize::from(byte & 15)];
    }
    match out.write(&text) {
        Ok(()) => 0,
        Err(error) => error.to_return(),
    }
}
