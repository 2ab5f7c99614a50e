//! A network-serving job, like the seed's echo payload: binds a UDP port the device grants and
//! sends every datagram back to its sender.
//!
//! Input: `PORT [COUNT]` as decimal text (default port 7; COUNT 0 means no limit). Stops after
//! COUNT datagrams, or when a datagram reads `quit` (answered `bye`).
//! Output: `echoed K` and a newline.

#![no_std]

use core::fmt::Write;

use jos_guest::net::UdpSocket;
use jos_guest::{ErrorCode, Output};

jos_guest::entry!(main, input_max = 32);

fn parse(input: &[u8]) -> Option<(u16, u32)> {
    let text = core::str::from_utf8(input).ok()?;
    let mut words = text.split_ascii_whitespace();
    let port = words.next().map_or(Some(7), |word| word.parse().ok())?;
    let count = words.next().map_or(Some(0), |word| word.parse().ok())?;
    (port != 0 && words.next().is_none()).then_some((port, count))
}

fn main(input: &[u8], out: &mut Output) -> i32 {
    let Some((port, limit)) = parse(input) else {
        jos_guest::error!("echo: expected \"PORT [COUNT]\"");
        return ErrorCode::InvalidArgument.to_return();
    };
    let socket = match UdpSocket::bind(port) {
        Ok(socket) => socket,
        Err(error) => {
            jos_guest::error!("echo: cannot bind port {port}: {error} (is it granted to this job?)");
            return error.to_return();
        }
    };
    jos_guest::info!("echo: serving on port {port}");
    let mut datagram = [0u8; 1500];
    let mut echoed: u32 = 0;
    loop {
        let (length, sender) = match socket.recv_from_blocking(&mut datagram) {
            Ok(received) => received,
            Err(error) => {
                jos_guest::error!("echo: receive failed: {error}");
                return error.to_return();
            }
        };
        let payload = &datagram[..length.min(datagram.len())];
        if payload == b"quit" {
            let _ = socket.send_to(b"bye", sender);
            break;
        }
        if socket.send_to(payload, sender).is_ok() {
            echoed += 1;
        }
        if limit != 0 && echoed >= limit {
            break;
        }
    }
    match writeln!(out, "echoed {echoed}") {
        Ok(()) => 0,
        Err(_) => ErrorCode::LimitExceeded.to_return(),
    }
}
