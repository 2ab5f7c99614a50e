//! The device for the CLI's process tests: the real device side of the protocol
//! (`jos_offload::Server`) behind its host TCP/UDP adapter (`jos_offload::host::serve`) on
//! loopback sockets, configured from a file `jos-cli provision` wrote. Included with `#[path]`.

// Each test file uses the parts it needs.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use jos_offload::host::HostPlatform;
use jos_offload::{Counters, DeviceConfig, OsEntropy, Server, ServerOptions};

static ENTROPY: OsEntropy = OsEntropy;

/// A running device: a server thread; stops when dropped (or with [`Device::stop`]).
pub struct Device {
    /// Its discovery address (UDP).
    pub discovery: SocketAddr,
    /// Its session address (TCP).
    pub session: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Counters>>,
}

impl Device {
    /// Starts a wasm device from a boot configuration image (adverts list `wasm` only).
    pub fn start(config: &[u8]) -> Device {
        Device::start_with(config, ServerOptions::default())
    }

    /// [`Device::start`] with these options (its port is the listener's).
    pub fn start_with(config: &[u8], options: ServerOptions) -> Device {
        let config = DeviceConfig::from_bytes(config).expect("a valid configuration");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let discovery = udp.local_addr().unwrap();
        let session = listener.local_addr().unwrap();
        let options = ServerOptions { port: session.port(), ..options };
        let mut server = Server::new(config, options, HostPlatform::new(), &ENTROPY);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            jos_offload::host::serve(&mut server, &listener, Some(&udp), &flag);
            server.counters()
        });
        Device { discovery, session, stop, thread: Some(thread) }
    }

    /// The discovery address as text (for `--device` and `--address`).
    pub fn address(&self) -> String {
        self.discovery.to_string()
    }

    /// Stops the device; returns its event counters.
    pub fn stop(mut self) -> Counters {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().expect("running").join().expect("the server thread ends cleanly")
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
