//! Sends UDP datagrams to a jos kernel and checks the echoes; used by the network tests inside
//! their own network namespace (`ip netns exec NS jos-net-probe ...`).
//!
//! ```text
//! jos-net-probe echo ADDRESS:PORT COUNT [--broadcast]
//! ```
//! Sends COUNT datagrams one at a time (with SO_BROADCAST when asked) and waits up to 3 s for
//! each echo. Prints `probe: N/COUNT echoed from ADDRESS` and exits 0 only when all came back.

use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// Sends UDP datagrams to a jos kernel and checks the echoes.
#[derive(Debug, Parser)]
#[command(name = "jos-net-probe")]
enum Probe {
    /// Send COUNT datagrams one at a time to ADDRESS:PORT; exit 0 only when all came back.
    Echo {
        /// Where to send them.
        #[arg(value_name = "ADDRESS:PORT")]
        target: SocketAddr,
        /// How many.
        count: usize,
        /// Set SO_BROADCAST (for a broadcast address).
        #[arg(long)]
        broadcast: bool,
    },
}

fn main() -> ExitCode {
    let Probe::Echo { target, count, broadcast } = Probe::parse();
    let socket = match UdpSocket::bind("0.0.0.0:0") {
        Ok(socket) => socket,
        Err(e) => {
            eprintln!("jos-net-probe: bind: {e}");
            return ExitCode::FAILURE;
        }
    };
    if socket.set_broadcast(broadcast).is_err() || socket.set_read_timeout(Some(Duration::from_secs(3))).is_err() {
        eprintln!("jos-net-probe: socket options refused");
        return ExitCode::FAILURE;
    }
    let mut good = 0;
    let mut from = None;
    let mut reply = [0u8; 2048];
    for index in 0..count {
        let request = format!("jos probe {index}");
        if let Err(e) = socket.send_to(request.as_bytes(), target) {
            eprintln!("jos-net-probe: send: {e}");
            continue;
        }
        match socket.recv_from(&mut reply) {
            Ok((length, source)) if &reply[..length] == request.as_bytes() => {
                good += 1;
                from = Some(source);
            }
            Ok((length, source)) => eprintln!("jos-net-probe: {length} bytes from {source} differ"),
            Err(e) => eprintln!("jos-net-probe: no echo for {index}: {e}"),
        }
    }
    match from {
        Some(source) => println!("probe: {good}/{count} echoed from {source}"),
        None => println!("probe: {good}/{count} echoed"),
    }
    if good == count {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
