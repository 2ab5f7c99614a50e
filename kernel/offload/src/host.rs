//! A host adapter (feature `std`): runs a [`Server`] over real TCP and UDP sockets with
//! non-blocking I/O in one thread, the way the kernel drives it over smoltcp, and a
//! [`HostPlatform`] to run it with. Used by the host tests (real snow initiators over loopback)
//! and usable as a device simulator.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use std::vec::Vec;

use jos_runtime::StdHost;

use crate::server::{Platform, Server, SessionId};

/// A host stand-in for the board: wasm jobs get a [`StdHost`] with their input, the clock is
/// [`Instant`], and free memory is a fixed figure. Native blobs are not run (no ARM CPU here);
/// with [`HostPlatform::accepting_native`] they are still accepted at push, so signer rights and
/// the blob checks can be exercised.
#[derive(Clone, Copy, Debug)]
pub struct HostPlatform {
    epoch: Instant,
    native: bool,
}

impl HostPlatform {
    /// Free memory every [`HostPlatform`] reports.
    pub const FREE_MEMORY: u32 = 8 * 1024 * 1024;

    /// A platform that runs wasm only (adverts list `wasm`).
    pub fn new() -> Self {
        HostPlatform { epoch: Instant::now(), native: false }
    }

    /// A platform that also accepts native blobs at push (adverts list both formats); running
    /// one reports it rejected.
    pub fn accepting_native() -> Self {
        HostPlatform { epoch: Instant::now(), native: true }
    }
}

impl Default for HostPlatform {
    fn default() -> Self {
        HostPlatform::new()
    }
}

impl Platform for HostPlatform {
    type Host = StdHost;

    fn host(&mut self, input: Vec<u8>) -> StdHost {
        StdHost::new(input)
    }

    fn runs_native(&self) -> bool {
        self.native
    }

    fn free_memory(&self) -> u32 {
        Self::FREE_MEMORY
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// Serves `listener` (TCP sessions) and optionally `udp` (discovery) until `stop` is set.
/// One [`Server::poll`] per loop turn, like one per executive frame on the device.
pub fn serve<P: Platform>(server: &mut Server<P>, listener: &TcpListener, udp: Option<&UdpSocket>, stop: &AtomicBool) {
    // Setting non-blocking mode on a freshly bound socket does not fail on supported hosts.
    let _ = listener.set_nonblocking(true);
    if let Some(udp) = udp {
        let _ = udp.set_nonblocking(true);
    }
    let epoch = Instant::now();
    let mut connections: Vec<(TcpStream, SessionId)> = Vec::new();
    let mut buffer = std::vec![0u8; 16 * 1024];
    let mut datagram = [0u8; 1500];
    let mut advert = std::vec![0u8; Server::<P>::MAX_ADVERT_LEN];
    while !stop.load(Ordering::Relaxed) {
        let mut busy = false;
        while let Ok((stream, _)) = listener.accept() {
            busy = true;
            let _ = stream.set_nonblocking(true);
            let _ = stream.set_nodelay(true);
            match server.connect() {
                Some(id) => connections.push((stream, id)),
                None => drop(stream),
            }
        }
        if let Some(udp) = udp {
            while let Ok((len, from)) = udp.recv_from(&mut datagram) {
                busy = true;
                if let Some(reply) = server.discovery(&datagram[..len], &mut advert) {
                    let _ = udp.send_to(&advert[..reply], from);
                }
            }
        }
        connections.retain_mut(|(stream, id)| {
            let mut open = true;
            loop {
                match stream.read(&mut buffer) {
                    Ok(0) => {
                        open = false;
                        break;
                    }
                    Ok(len) => {
                        busy = true;
                        server.receive(*id, &buffer[..len]);
                    }
                    Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                    Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => {
                        open = false;
                        break;
                    }
                }
            }
            while open && !server.pending(*id).is_empty() {
                match stream.write(server.pending(*id)) {
                    Ok(0) => open = false,
                    Ok(written) => {
                        busy = true;
                        server.consume(*id, written);
                    }
                    Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                    Err(error) if error.kind() == ErrorKind::Interrupted => {}
                    Err(_) => open = false,
                }
            }
            if open && server.wants_close(*id) && server.pending(*id).is_empty() {
                open = false;
            }
            if !open {
                let _ = stream.shutdown(std::net::Shutdown::Both);
                server.disconnect(*id);
            }
            open
        });
        let now = u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        let had_job = server.status().current.is_some() || server.status().queued > 0;
        server.poll(now);
        if !busy && !had_job {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    for (_, id) in connections {
        server.disconnect(id);
    }
}
