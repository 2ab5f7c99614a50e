//! One TCP connection: its receive buffer, Noise state, push in progress and send buffer, where
//! it comes from and the times its deadlines run from.

use alloc::vec::Vec;
use core::net::IpAddr;

use jos_abi::wire::{self, Format, Limits, Message, FRAME_HEADER_LEN, MAX_FRAME_LEN};

/// Where a session's handshake is.
pub(crate) enum Phase {
    /// Waiting for the client's Hello (in clear).
    AwaitHello,
    /// Handshake done: every frame is a Noise transport message.
    Open(snow::TransportState),
    /// Ended by the device: nothing more is read; the transport flushes and closes (or, with
    /// [`Session::abort`], drops what is unsent and resets the connection).
    Closed,
}

/// A module arriving in chunks.
pub(crate) struct Push {
    pub format: Format,
    pub total_len: usize,
    pub sha256: [u8; 32],
    pub limits: Limits,
    pub bytes: Vec<u8>,
    /// When PushBegin arrived (platform clock, for the timing report).
    pub begun_us: u64,
}

/// One connection's state.
pub(crate) struct Session {
    pub phase: Phase,
    /// Received bytes not yet making a whole frame.
    pub inbox: Vec<u8>,
    /// Bytes to send; `sent` of them are gone.
    pub outbox: Vec<u8>,
    pub sent: usize,
    pub push: Option<Push>,
    /// The authenticated client's static key (after the handshake).
    pub client_key: [u8; 32],
    /// When the client's Hello arrived (platform clock).
    pub hello_us: u64,
    /// Time the device spent on the handshake (Hello in to Hello answer queued).
    pub handshake_us: u64,
    /// The peer's address (rate limits are kept per address).
    pub peer: IpAddr,
    /// When the connection arrived (the handshake deadline runs from here).
    pub opened_us: u64,
    /// When the client last sent a byte, or last had a job queued or running (the idle timeout
    /// runs from here).
    pub active_us: u64,
    /// Closed without flushing: the transport resets the connection.
    pub abort: bool,
    /// When [`crate::Server::expire`] first saw the session closed (its flush deadline runs
    /// from here).
    pub closed_us: Option<u64>,
}

impl Session {
    pub fn new(peer: IpAddr, now_us: u64) -> Self {
        Session {
            phase: Phase::AwaitHello,
            inbox: Vec::new(),
            outbox: Vec::new(),
            sent: 0,
            push: None,
            client_key: [0; 32],
            hello_us: 0,
            handshake_us: 0,
            peer,
            opened_us: now_us,
            active_us: now_us,
            abort: false,
            closed_us: None,
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Whether the session is still waiting for its handshake.
    pub fn is_unauthenticated(&self) -> bool {
        matches!(self.phase, Phase::AwaitHello)
    }

    /// Ends the session and frees what it held (the transport still flushes `outbox`).
    pub fn close(&mut self) {
        self.phase = Phase::Closed;
        self.inbox = Vec::new();
        self.push = None;
    }

    /// Ends the session and drops its unsent bytes too: the transport resets the connection.
    pub fn abort(&mut self) {
        self.close();
        self.outbox = Vec::new();
        self.sent = 0;
        self.abort = true;
    }

    /// Appends one frame carrying `payload` in clear.
    pub fn send_clear(&mut self, payload: &[u8]) {
        let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
        self.outbox.extend_from_slice(&len.to_le_bytes());
        self.outbox.extend_from_slice(&payload[..usize::from(len)]);
    }

    /// Encrypts `message` (through the scratch buffers) and appends the frame. Returns `false`
    /// if the message could not be sent (it does not fit or the session is not open).
    pub fn send(&mut self, message: &Message<'_>, scratch: &mut Scratch) -> bool {
        let Phase::Open(transport) = &mut self.phase else { return false };
        let Ok(len) = message.emit(&mut scratch.plain) else { return false };
        let cipher = &mut scratch.cipher;
        match transport.write_message(&scratch.plain[..len], &mut cipher[FRAME_HEADER_LEN..]) {
            Ok(written) => {
                let header = u16::try_from(written).unwrap_or(u16::MAX).to_le_bytes();
                cipher[..FRAME_HEADER_LEN].copy_from_slice(&header);
                self.outbox.extend_from_slice(&cipher[..FRAME_HEADER_LEN + written]);
                true
            }
            Err(_) => false,
        }
    }

    /// How many bytes wait to be sent.
    pub fn pending_len(&self) -> usize {
        self.outbox.len() - self.sent
    }

    /// Bytes waiting to be sent.
    pub fn pending(&self) -> &[u8] {
        &self.outbox[self.sent..]
    }

    /// Marks `count` pending bytes as sent.
    pub fn consume(&mut self, count: usize) {
        self.sent = (self.sent + count).min(self.outbox.len());
        if self.sent == self.outbox.len() {
            self.outbox.clear();
            if self.outbox.capacity() > 2 * MAX_FRAME_LEN {
                self.outbox.shrink_to(MAX_FRAME_LEN);
            }
            self.sent = 0;
        }
    }

    /// The length of the first whole frame in `inbox`, if one is there (`Err` if its header is
    /// impossible).
    pub fn next_frame(&self) -> Result<Option<usize>, wire::WireError> {
        wire::frame_len(&self.inbox)
    }
}

/// Buffers shared by all sessions (one message is handled at a time).
pub(crate) struct Scratch {
    /// Plaintext of the message being sent.
    pub plain: Vec<u8>,
    /// Ciphertext frame being built.
    pub cipher: Vec<u8>,
    /// Plaintext of the message received.
    pub received: Vec<u8>,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            plain: alloc::vec![0; MAX_FRAME_LEN],
            cipher: alloc::vec![0; FRAME_HEADER_LEN + MAX_FRAME_LEN],
            received: alloc::vec![0; MAX_FRAME_LEN],
        }
    }
}
