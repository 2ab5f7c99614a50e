//! Turns a binary PPM picture (P6, maxval 255, `#` comments allowed, at most 128 x 128 pixels)
//! into its grayscale version (luma 0.299 R + 0.587 G + 0.114 B in 8.8 fixed point), also P6.
//! A larger picture ends the job with `-LimitExceeded`, a malformed one with `-Malformed`.

#![no_std]

use core::fmt::Write;

use jos_guest::{ErrorCode, Output};

/// The largest picture: 128 x 128 pixels.
const PIXELS_MAX: usize = 128 * 128;

jos_guest::entry!(main, input_max = 64 + 3 * PIXELS_MAX);

/// Skips whitespace and comments, then reads a decimal number.
fn number(bytes: &[u8], position: &mut usize) -> Option<usize> {
    loop {
        while bytes.get(*position).is_some_and(|byte| byte.is_ascii_whitespace()) {
            *position += 1;
        }
        if bytes.get(*position) == Some(&b'#') {
            while bytes.get(*position).is_some_and(|byte| *byte != b'\n') {
                *position += 1;
            }
            continue;
        }
        break;
    }
    let start = *position;
    while bytes.get(*position).is_some_and(u8::is_ascii_digit) && *position - start < 6 {
        *position += 1;
    }
    core::str::from_utf8(&bytes[start..*position]).ok()?.parse().ok()
}

fn header(input: &[u8]) -> Result<(usize, usize, usize), (ErrorCode, &'static str)> {
    let malformed = |why| (ErrorCode::Malformed, why);
    if !input.starts_with(b"P6") {
        return Err(malformed("not a binary PPM (P6)"));
    }
    let mut position = 2;
    let width = number(input, &mut position).ok_or(malformed("no width"))?;
    let height = number(input, &mut position).ok_or(malformed("no height"))?;
    let maxval = number(input, &mut position).ok_or(malformed("no maxval"))?;
    if width == 0 || height == 0 || maxval != 255 {
        return Err(malformed("the header needs a width, a height and maxval 255"));
    }
    if width * height > PIXELS_MAX {
        return Err((ErrorCode::LimitExceeded, "more than 128 x 128 pixels"));
    }
    // One whitespace byte separates the header from the pixels.
    Ok((width, height, position + 1))
}

fn main(input: &[u8], out: &mut Output) -> i32 {
    let (width, height, start) = match header(input) {
        Ok(parsed) => parsed,
        Err((code, why)) => {
            jos_guest::error!("imagefilter: {why}");
            return code.to_return();
        }
    };
    let Some(pixels) = input.get(start..start + 3 * width * height) else {
        jos_guest::error!("imagefilter: pixel data is shorter than the header says");
        return ErrorCode::Malformed.to_return();
    };
    let written = write!(out, "P6\n{width} {height}\n255\n").is_ok()
        && pixels.chunks(3 * 512).all(|run| {
            let mut gray = [0u8; 3 * 512];
            for (to, from) in gray.chunks_exact_mut(3).zip(run.chunks_exact(3)) {
                let luma = (77 * u32::from(from[0]) + 150 * u32::from(from[1]) + 29 * u32::from(from[2])) >> 8;
                to.fill(luma as u8);
            }
            out.write(&gray[..run.len()]).is_ok()
        });
    if written {
        0
    } else {
        ErrorCode::LimitExceeded.to_return()
    }
}
