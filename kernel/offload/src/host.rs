//! A host adapter (feature `std`): runs a [`Server`] over real TCP and UDP sockets with
//! non-blocking I/O in one thread, the way the kernel drives it over smoltcp, and a
//! [`HostPlatform`] to run it with; and [`Client`], a blocking snow initiator that talks to a
//! device message by message. Used by the host tests and the QEMU tests, and usable as a device
//! simulator.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use std::vec::Vec;

use jos_abi::wire::{self, Message, MAX_FRAME_LEN};
use jos_runtime::StdHost;

use crate::noise::Resolver;
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
/// One [`Server::expire`] and one [`Server::poll`] per loop turn, like once per executive frame
/// on the device; a session the server aborts is shut down at once.
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
        while let Ok((stream, peer)) = listener.accept() {
            busy = true;
            let _ = stream.set_nonblocking(true);
            let _ = stream.set_nodelay(true);
            match server.connect_from(peer.ip()) {
                Some(id) => connections.push((stream, id)),
                None => drop(stream),
            }
        }
        if let Some(udp) = udp {
            while let Ok((len, from)) = udp.recv_from(&mut datagram) {
                busy = true;
                if let Some(reply) = server.discovery_from(from.ip(), &datagram[..len], &mut advert) {
                    let _ = udp.send_to(&advert[..reply], from);
                }
            }
        }
        server.expire();
        connections.retain_mut(|(stream, id)| {
            let mut open = true;
            while !server.wants_abort(*id) {
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
            if server.wants_abort(*id) {
                open = false;
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

/// A message encoded into a new buffer.
pub fn encode(message: &Message<'_>) -> Vec<u8> {
    let mut buffer = std::vec![0u8; message.buffer_len()];
    // A message past a cap encodes to nothing; the other side then reports it truncated.
    let len = message.emit(&mut buffer).unwrap_or(0);
    buffer.truncate(len);
    buffer
}

/// `payload` in a frame (its 2-byte length first); a payload over [`MAX_FRAME_LEN`] is cut there.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let payload = &payload[..payload.len().min(MAX_FRAME_LEN)];
    let mut out = (payload.len() as u16).to_le_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// Why [`Client::connect`] has no session.
#[derive(Debug)]
pub enum ConnectError {
    /// The connection could not be made, or broke.
    Io(std::io::Error),
    /// The device closed the connection without a handshake answer (a replayed or
    /// undecryptable handshake, a stalled one): `hello` is the frame that was sent.
    Refused {
        /// The Hello frame this client sent.
        hello: Vec<u8>,
    },
    /// The device answered the Hello with an `Error` in clear and closed the connection:
    /// `PermissionDenied` for a client key it does not trust, `Busy` when it had no session
    /// for this connection.
    Denied {
        /// The device's error code.
        code: jos_abi::ErrorCode,
        /// Its message.
        message: std::string::String,
        /// The Hello frame this client sent.
        hello: Vec<u8>,
    },
    /// The device answered with something other than a valid Hello or Error.
    BadAnswer,
}

/// A blocking offload client over TCP: a snow Noise IK initiator, for tests and tools that talk
/// to a device (this module's [`serve`], or the kernel under QEMU) message by message.
pub struct Client {
    stream: TcpStream,
    transport: snow::TransportState,
    inbox: Vec<u8>,
    /// Bytes written so far, the Hello included.
    pub sent: usize,
    /// The first frame this client sent (its Hello with the handshake's first message).
    pub hello: Vec<u8>,
}

impl Client {
    /// Connects to `address` and runs the handshake as the client `client_secret` against the
    /// device key `device_key`; reads wait at most `timeout`.
    pub fn connect(
        address: impl ToSocketAddrs,
        client_secret: &[u8; 32],
        device_key: &[u8; 32],
        timeout: Duration,
    ) -> Result<Client, ConnectError> {
        static ENTROPY: crate::noise::OsEntropy = crate::noise::OsEntropy;
        let mut stream = TcpStream::connect(address).map_err(ConnectError::Io)?;
        stream.set_read_timeout(Some(timeout)).map_err(ConnectError::Io)?;
        let _ = stream.set_nodelay(true);
        let built = snow::Builder::with_resolver(crate::noise::params(), std::boxed::Box::new(Resolver::new(&ENTROPY)))
            .local_private_key(client_secret)
            .and_then(|builder| builder.remote_public_key(device_key))
            .and_then(|builder| builder.prologue(crate::noise::PROLOGUE))
            .and_then(|builder| builder.build_initiator());
        let mut state = built.map_err(|_| ConnectError::BadAnswer)?;
        let mut message = [0u8; 256];
        let len = state.write_message(&[], &mut message).map_err(|_| ConnectError::BadAnswer)?;
        let hello = frame(&encode(&Message::Hello { version: wire::PROTOCOL_VERSION, handshake: &message[..len] }));
        stream.write_all(&hello).map_err(ConnectError::Io)?;
        let mut inbox = Vec::new();
        let Some(answer) = read_frame(&mut stream, &mut inbox) else { return Err(ConnectError::Refused { hello }) };
        let handshake = match Message::parse(&answer) {
            Ok(Message::Hello { handshake, .. }) => handshake,
            Ok(Message::Error { code, message }) => {
                return Err(ConnectError::Denied { code, message: message.into(), hello });
            }
            _ => return Err(ConnectError::BadAnswer),
        };
        let mut payload = [0u8; 64];
        state.read_message(handshake, &mut payload).map_err(|_| ConnectError::BadAnswer)?;
        let transport = state.into_transport_mode().map_err(|_| ConnectError::BadAnswer)?;
        let sent = hello.len();
        Ok(Client { stream, transport, inbox, sent, hello })
    }

    /// The session's Noise transport (to seal frames ahead, e.g. a whole push in one write).
    pub fn transport(&mut self) -> &mut snow::TransportState {
        &mut self.transport
    }

    /// The TCP stream.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// `message` encrypted into a frame (advances the session's nonce).
    pub fn seal(&mut self, message: &Message<'_>) -> Vec<u8> {
        let plain = encode(message);
        let mut cipher = std::vec![0u8; plain.len() + wire::NOISE_TAG_LEN];
        let len = self.transport.write_message(&plain, &mut cipher).unwrap_or(0);
        frame(&cipher[..len])
    }

    /// Writes bytes as they are.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.sent += bytes.len();
        self.stream.write_all(bytes)
    }

    /// Sends one message.
    pub fn send(&mut self, message: &Message<'_>) -> std::io::Result<()> {
        let frame = self.seal(message);
        self.send_bytes(&frame)
    }

    /// Sends `message` with one bit of its ciphertext flipped (the frame stays well formed).
    pub fn send_altered(&mut self, message: &Message<'_>) -> std::io::Result<()> {
        let mut frame = self.seal(message);
        let middle = wire::FRAME_HEADER_LEN + (frame.len() - wire::FRAME_HEADER_LEN) / 2;
        frame[middle] ^= 0x10;
        self.send_bytes(&frame)
    }

    /// The next frame's payload as it came (`None` once the connection closed or timed out).
    pub fn next_frame(&mut self) -> Option<Vec<u8>> {
        read_frame(&mut self.stream, &mut self.inbox)
    }

    /// The next message, decrypted and still encoded (parse it with `Message::parse`); `None`
    /// once the connection closed or timed out, or a frame failed to decrypt.
    pub fn next_plain(&mut self) -> Option<Vec<u8>> {
        let payload = self.next_frame()?;
        let mut plain = std::vec![0u8; payload.len()];
        let len = self.transport.read_message(&payload, &mut plain).ok()?;
        plain.truncate(len);
        Some(plain)
    }
}

/// Splits the next whole frame off `inbox`, reading from `stream` as needed.
fn read_frame(stream: &mut TcpStream, inbox: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if let Ok(Some(len)) = wire::frame_len(inbox) {
            let payload = inbox[wire::FRAME_HEADER_LEN..len].to_vec();
            inbox.drain(..len);
            return Some(payload);
        }
        let mut buffer = [0u8; 8192];
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return None,
            Ok(len) => inbox.extend_from_slice(&buffer[..len]),
        }
    }
}
