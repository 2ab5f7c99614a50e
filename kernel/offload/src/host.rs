//! A host adapter (feature `std`): runs a [`Server`] over real TCP and UDP sockets with
//! non-blocking I/O in one thread, the way the kernel drives it over smoltcp. Used by the host
//! tests (real snow initiators over loopback) and usable as a device simulator.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use std::vec::Vec;

use crate::server::{Platform, Server, SessionId};

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
