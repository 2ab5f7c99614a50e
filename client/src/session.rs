//! One offload session: TCP, the Noise IK handshake (initiator), then encrypted messages.
//!
//! Frames are `u16` length + payload (`jos_abi::wire`). The first frame each way is a clear
//! `Hello` carrying a Noise handshake message (`-> e, es, s, ss`, `<- e, ee, se`, empty
//! payloads); every later frame is one Noise transport message holding one encoded message.
//!
//! A device that gives the connection no session says why in clear instead of its Hello: an
//! `Error` with `PermissionDenied` (this client's key is not trusted: [`ClientError::NotAuthorized`])
//! or `Busy` (no session free: [`ClientError::Busy`]). A connection closed or left unanswered
//! without such an answer is [`ClientError::NoSession`]: the device is overloaded, restarting or
//! not a jos device, never "not authorised".

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use jos_abi::job::Value;
use jos_abi::wire::{self, Call, Format, JobStatus, Limits, Message, Stats, MAX_CHUNK_LEN, MAX_FRAME_LEN};

use super::ClientError;
use crate::store::Key;

/// The Noise protocol name both sides use.
pub const NOISE_PARAMS: &str = "Noise_IK_25519_ChaChaPoly_SHA256";
/// The Noise prologue both sides mix in.
pub const PROLOGUE: &[u8] = b"jos offload v1";
/// The longest the client waits for the answer to its Hello (or less, if its own timeout is
/// shorter). A jos device answers or closes the connection within its handshake deadline (5 s);
/// a device silent past this is not serving sessions.
pub const HANDSHAKE_WAIT: Duration = Duration::from_secs(10);

/// One log line of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobLog {
    /// `error`, `warn`, `info` or `debug`.
    pub level: &'static str,
    /// The text.
    pub text: String,
}

/// A finished job as the device reported it.
#[derive(Clone, Debug, PartialEq)]
pub struct JobOutcome {
    /// How it ended.
    pub status: JobStatus,
    /// Its exit value.
    pub exit_value: i32,
    /// What it used.
    pub stats: Stats,
    /// Its output bytes.
    pub output: Vec<u8>,
    /// The results of an exported-function call (`--call`), typed; empty for the entry point.
    pub results: Vec<Value>,
    /// Its log lines.
    pub logs: Vec<JobLog>,
}

/// What a transfer or a running job reports, for progress bars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Bytes of the module sent so far, of `total`.
    Sent {
        /// Sent so far.
        sent: u64,
        /// Module size.
        total: u64,
    },
    /// All sent; the device is verifying.
    Verifying,
    /// The job runs (from a device `Progress` message).
    Running {
        /// Fuel used so far.
        fuel_used: u64,
        /// Microseconds since the job started.
        elapsed_us: u64,
        /// Output bytes so far.
        output_len: u32,
    },
}

/// Counters of one session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes written to the socket (frames, headers included).
    pub bytes_sent: u64,
    /// Bytes read from the socket.
    pub bytes_received: u64,
}

/// An open, authenticated session with a device.
pub struct Session {
    stream: TcpStream,
    transport: snow::TransportState,
    /// How long to wait for any message before giving up.
    idle_timeout: Duration,
    traffic: Traffic,
}

/// Why the answer to the Hello did not come: the device closed or reset the connection, or said
/// nothing within `wait`. A jos device that refuses a client's key says so in clear instead
/// (`Error(PermissionDenied)`), so neither case is about the key.
fn handshake_error(error: std::io::Error, wait: Duration) -> ClientError {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::UnexpectedEof
        | ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe => {
            ClientError::NoSession("the device closed the connection without answering the handshake".into())
        }
        ErrorKind::WouldBlock | ErrorKind::TimedOut => ClientError::NoSession(format!(
            "the device accepted the connection but did not answer the handshake within {} s",
            wait.as_secs_f32()
        )),
        _ => io_error("waiting for the handshake answer", error),
    }
}

fn io_error(what: &str, error: std::io::Error) -> ClientError {
    match error.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            ClientError::Timeout(format!("{what}: the device did not answer in time"))
        }
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => {
            ClientError::Unreachable(format!("{what}: the device closed the connection"))
        }
        _ => ClientError::Unreachable(format!("{what}: {error}")),
    }
}

impl Session {
    /// Connects to `address` and runs the handshake: the device must hold the secret of
    /// `device_noise_key`, and must accept `client_secret`'s public key.
    pub fn connect(
        address: SocketAddr,
        client_secret: &Key,
        device_noise_key: &Key,
        timeout: Duration,
    ) -> Result<Session, ClientError> {
        let stream = TcpStream::connect_timeout(&address, timeout)
            .map_err(|error| ClientError::Unreachable(format!("cannot connect to {address}: {error}")))?;
        stream.set_nodelay(true).ok();
        Self::handshake(stream, client_secret, device_noise_key, timeout)
    }

    /// Runs the handshake over an already connected stream.
    pub fn handshake(
        stream: TcpStream,
        client_secret: &Key,
        device_noise_key: &Key,
        timeout: Duration,
    ) -> Result<Session, ClientError> {
        let noise_error = |error: snow::Error| ClientError::Protocol(format!("Noise: {error}"));
        let params = NOISE_PARAMS.parse().map_err(noise_error)?;
        let mut handshake = snow::Builder::new(params)
            .local_private_key(client_secret)
            .and_then(|builder| builder.remote_public_key(device_noise_key))
            .and_then(|builder| builder.prologue(PROLOGUE))
            .and_then(|builder| builder.build_initiator())
            .map_err(noise_error)?;
        let mut session_stream = stream;
        let wait = timeout.min(HANDSHAKE_WAIT);
        let mut traffic = Traffic::default();

        let mut noise_message = [0u8; wire::MAX_HANDSHAKE_LEN];
        let len = handshake.write_message(&[], &mut noise_message).map_err(noise_error)?;
        let hello = Message::Hello { version: wire::PROTOCOL_VERSION, handshake: &noise_message[..len] };
        let mut plain = vec![0u8; hello.buffer_len()];
        hello.emit(&mut plain).map_err(|error| ClientError::Protocol(error.to_string()))?;
        write_frame(&mut session_stream, &plain, &mut traffic, timeout)
            .map_err(|error| io_error("sending the handshake", error))?;

        let reply = match read_frame(&mut session_stream, &mut traffic, wait) {
            Ok(reply) => reply,
            Err(error) => return Err(handshake_error(error, wait)),
        };
        let message =
            Message::parse(&reply).map_err(|error| ClientError::Protocol(format!("handshake answer: {error}")))?;
        let answer = match message {
            Message::Hello { version, handshake } if version == wire::PROTOCOL_VERSION => handshake,
            Message::Hello { version, .. } => {
                return Err(ClientError::Protocol(format!(
                    "the device speaks protocol version {version}, this client 1"
                )))
            }
            Message::Error { code, message } => return Err(ClientError::from_device(code, message)),
            other => return Err(ClientError::Protocol(format!("expected a Hello, got message kind {}", other.kind()))),
        };
        let mut payload = [0u8; wire::MAX_HANDSHAKE_LEN];
        handshake.read_message(answer, &mut payload).map_err(|_| {
            ClientError::Untrusted(
                "the device's handshake answer does not verify: it does not hold the pinned key".into(),
            )
        })?;
        let transport = handshake.into_transport_mode().map_err(noise_error)?;
        Ok(Session { stream: session_stream, transport, idle_timeout: timeout, traffic })
    }

    /// Sets how long to wait for each message from the device (and to hand it each message).
    pub fn set_idle_timeout(&mut self, timeout: Duration) {
        self.idle_timeout = timeout;
    }

    /// Bytes sent and received so far.
    pub fn traffic(&self) -> Traffic {
        self.traffic
    }

    /// Encrypts and sends one message.
    pub fn send(&mut self, message: &Message<'_>) -> Result<(), ClientError> {
        let mut plain = vec![0u8; message.buffer_len()];
        message.emit(&mut plain).map_err(|error| ClientError::Protocol(format!("cannot encode: {error}")))?;
        let mut cipher = vec![0u8; plain.len() + wire::NOISE_TAG_LEN];
        let len = self
            .transport
            .write_message(&plain, &mut cipher)
            .map_err(|error| ClientError::Protocol(format!("Noise: {error}")))?;
        write_frame(&mut self.stream, &cipher[..len], &mut self.traffic, self.idle_timeout)
            .map_err(|error| io_error("sending", error))
    }

    /// Receives and decrypts one message; returns its plaintext (parse with `Message::parse`).
    pub fn receive(&mut self) -> Result<Vec<u8>, ClientError> {
        let frame = read_frame(&mut self.stream, &mut self.traffic, self.idle_timeout)
            .map_err(|error| io_error("waiting for the device", error))?;
        let mut plain = vec![0u8; frame.len()];
        let len = self.transport.read_message(&frame, &mut plain).map_err(|_| {
            ClientError::Protocol("a message from the device failed to decrypt (tampered or out of order)".into())
        })?;
        plain.truncate(len);
        Ok(plain)
    }

    /// Sends a Ping and waits for its Pong.
    pub fn ping(&mut self, nonce: u64) -> Result<(), ClientError> {
        self.send(&Message::Ping { nonce })?;
        let reply = self.receive()?;
        match Message::parse(&reply).map_err(|error| ClientError::Protocol(error.to_string()))? {
            Message::Pong { nonce: echoed } if echoed == nonce => Ok(()),
            Message::Error { code, message } => Err(ClientError::from_device(code, message)),
            other => Err(ClientError::Protocol(format!("expected a Pong, got message kind {}", other.kind()))),
        }
    }

    /// Sends a module in chunks and waits for `PushOk`; returns its hash.
    pub fn push(
        &mut self,
        format: Format,
        module: &[u8],
        limits: Limits,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<[u8; 32], ClientError> {
        let total_len = u32::try_from(module.len()).map_err(|_| {
            ClientError::Limit(format!("the module is {} bytes; the protocol's limit is 4 GiB", module.len()))
        })?;
        let sha256 = jos_abi::signature::sha256(module);
        self.send(&Message::PushBegin { format, total_len, sha256, limits })?;
        let mut offset = 0usize;
        progress(Progress::Sent { sent: 0, total: module.len() as u64 });
        for chunk in module.chunks(MAX_CHUNK_LEN) {
            self.send(&Message::PushChunk { offset: offset as u32, bytes: chunk })?;
            offset += chunk.len();
            progress(Progress::Sent { sent: offset as u64, total: module.len() as u64 });
        }
        self.send(&Message::PushEnd)?;
        progress(Progress::Verifying);
        let reply = self.receive()?;
        match Message::parse(&reply).map_err(|error| ClientError::Protocol(error.to_string()))? {
            Message::PushOk { sha256: hash } if hash == sha256 => Ok(hash),
            Message::PushOk { .. } => {
                Err(ClientError::Protocol("the device cached the module under another hash".into()))
            }
            Message::Error { code, message } => Err(ClientError::from_device(code, message)),
            other => Err(ClientError::Protocol(format!("expected PushOk, got message kind {}", other.kind()))),
        }
    }

    /// Runs a cached module and waits for its result, reporting progress messages.
    pub fn invoke(
        &mut self,
        hash: [u8; 32],
        limits: Limits,
        input: &[u8],
        call: Option<Call<'_>>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<JobOutcome, ClientError> {
        if input.len() > wire::MAX_INPUT_LEN {
            return Err(ClientError::Limit(format!(
                "the input is {} bytes; the protocol carries at most {} bytes",
                input.len(),
                wire::MAX_INPUT_LEN
            )));
        }
        self.send(&Message::Invoke { hash, limits, input, call })?;
        let started = Instant::now();
        loop {
            let reply = self.receive()?;
            match Message::parse(&reply).map_err(|error| ClientError::Protocol(error.to_string()))? {
                Message::Progress { fuel_used, elapsed_us, output_len } => {
                    progress(Progress::Running { fuel_used, elapsed_us, output_len })
                }
                Message::JobResult { status, exit_value, stats, output, results, logs } => {
                    let logs = logs
                        .iter()
                        .map(|line| JobLog { level: level_name(line.level as u32), text: line.text.into() })
                        .collect();
                    let results = results.iter().collect();
                    return Ok(JobOutcome { status, exit_value, stats, output: output.to_vec(), results, logs });
                }
                Message::Error { code, message } => return Err(ClientError::from_device(code, message)),
                Message::Pong { .. } => {}
                other => {
                    return Err(ClientError::Protocol(format!(
                        "expected Progress or JobResult, got message kind {} after {:?}",
                        other.kind(),
                        started.elapsed()
                    )))
                }
            }
        }
    }
}

/// The name of a log level number (1 error .. 4 debug).
pub fn level_name(level: u32) -> &'static str {
    match level {
        1 => "error",
        2 => "warn",
        3 => "info",
        _ => "debug",
    }
}

/// Writes one frame, all of it within `timeout`. Socket timeouts count per system call: a
/// `write_all` whose first call queued part of a frame and then waited out the timeout starts a
/// second full wait, so a dead link used to hold a push for two or three times the wait.
fn write_frame(
    stream: &mut TcpStream,
    payload: &[u8],
    traffic: &mut Traffic,
    timeout: Duration,
) -> std::io::Result<()> {
    let mut frame = vec![0u8; payload.len() + wire::FRAME_HEADER_LEN];
    let len = wire::emit_frame(payload, &mut frame).map_err(|error| std::io::Error::other(error.to_string()))?;
    let deadline = Instant::now() + timeout;
    let mut rest = &frame[..len];
    while !rest.is_empty() {
        stream.set_write_timeout(Some(time_left(deadline)?))?;
        match stream.write(rest) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(written) => rest = &rest[written..],
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    traffic.bytes_sent += len as u64;
    Ok(())
}

/// Reads one frame, all of it within `timeout` (see [`write_frame`]).
fn read_frame(stream: &mut TcpStream, traffic: &mut Traffic, timeout: Duration) -> std::io::Result<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut header = [0u8; wire::FRAME_HEADER_LEN];
    read_exact_by(stream, &mut header, deadline)?;
    let len = usize::from(u16::from_le_bytes(header));
    debug_assert!(len <= MAX_FRAME_LEN);
    let mut payload = vec![0u8; len];
    read_exact_by(stream, &mut payload, deadline)?;
    traffic.bytes_received += (len + header.len()) as u64;
    Ok(payload)
}

/// Fills `buffer` from `stream` by `deadline` (`TimedOut` past it, `UnexpectedEof` if the
/// connection ends first).
fn read_exact_by(stream: &mut TcpStream, buffer: &mut [u8], deadline: Instant) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buffer.len() {
        stream.set_read_timeout(Some(time_left(deadline)?))?;
        match stream.read(&mut buffer[filled..]) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(count) => filled += count,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// The time until `deadline`, or `TimedOut` when it has passed (a zero socket timeout would
/// mean "wait for ever").
fn time_left(deadline: Instant) -> std::io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(std::io::ErrorKind::TimedOut.into())
    } else {
        Ok(left)
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    /// A peer that stops reading: the frame that no longer fits fails after one timeout, not
    /// after one timeout per `write` call.
    #[test]
    fn a_frame_write_gives_up_after_one_timeout() {
        let (mut client, _silent) = pair();
        let payload = vec![0x5a; 60_000];
        let timeout = Duration::from_millis(400);
        let mut traffic = Traffic::default();
        for _ in 0..100_000 {
            let started = Instant::now();
            if let Err(error) = write_frame(&mut client, &payload, &mut traffic, timeout) {
                assert!(
                    matches!(error.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock),
                    "{error}"
                );
                let took = started.elapsed();
                assert!(took >= timeout && took < timeout + Duration::from_millis(300), "gave up after {took:?}");
                return;
            }
        }
        panic!("the socket never filled");
    }

    /// A peer that sends a frame a byte at a time, slower than the timeout allows for the whole
    /// frame: the read fails after the timeout even though every byte came within it.
    #[test]
    fn a_trickling_frame_fails_after_the_timeout() {
        let (mut client, mut server) = pair();
        let trickle = std::thread::spawn(move || {
            for byte in [10u8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9] {
                if server.write_all(&[byte]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let started = Instant::now();
        let error = read_frame(&mut client, &mut Traffic::default(), Duration::from_millis(450)).expect_err("too slow");
        assert!(matches!(error.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock), "{error}");
        assert!(started.elapsed() < Duration::from_millis(700), "gave up after {:?}", started.elapsed());
        trickle.join().unwrap();
    }

    /// A frame that arrives in time is read whole.
    #[test]
    fn frames_cross_within_the_timeout() {
        let (mut client, mut server) = pair();
        let mut traffic = Traffic::default();
        write_frame(&mut client, b"hello", &mut traffic, Duration::from_secs(5)).unwrap();
        assert_eq!(read_frame(&mut server, &mut traffic, Duration::from_secs(5)).unwrap(), b"hello");
        assert_eq!((traffic.bytes_sent, traffic.bytes_received), (7, 7));
    }
}
