//! Sessions: connections, the Noise IK handshake, the idle and handshake deadlines, framing
//! and the dispatch of each decrypted message.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::net::{IpAddr, Ipv4Addr};

use jos_abi::job::{clip, JobStatus, Value};
use jos_abi::wire::{self, Message};
use jos_abi::ErrorCode;
use jos_runtime::Entry;

use super::{Platform, Running, RunningJob, Server, SessionId};
use crate::noise;
use crate::session::{Phase, Session};

impl<P: Platform> Server<P> {
    /// A new connection whose peer address is not known ([`Server::connect_from`] with
    /// 0.0.0.0: such connections share one per-source rate limit).
    pub fn connect(&mut self) -> Option<SessionId> {
        self.connect_from(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    /// A new connection from `peer`. When all [`ServerOptions::max_sessions`](super::ServerOptions::max_sessions) slots are taken,
    /// the unauthenticated connection that has waited longest is answered `Error(Busy)` in
    /// clear and closed to make room ([`Counters::evicted`](super::Counters::evicted)); when every slot holds an
    /// authenticated session, this connection gets that answer instead
    /// ([`Counters::refused_busy`](super::Counters::refused_busy): send its pending bytes, then close it, as
    /// [`Server::wants_close`] says). `None` (close it at once, no answer) only when as many
    /// connections again as there are slots are still closing.
    pub fn connect_from(&mut self, peer: IpAddr) -> Option<SessionId> {
        if self.sessions.len() >= 2 * self.options.max_sessions.max(1) {
            self.counters.dropped_unauthenticated += 1;
            return None;
        }
        let mut session = Session::new(peer, self.platform.now_us());
        let open = self.sessions.values().filter(|session| !session.is_closed()).count();
        if open >= self.options.max_sessions {
            let oldest = self
                .sessions
                .iter()
                .filter(|(_, session)| session.is_unauthenticated())
                .min_by_key(|(id, session)| (session.opened_us, **id))
                .map(|(id, _)| *id);
            match oldest.and_then(|id| self.sessions.remove(&id).map(|session| (id, session))) {
                Some((id, mut oldest)) => {
                    self.counters.evicted += 1;
                    self.refuse(
                        &mut oldest,
                        ErrorCode::Busy,
                        "too many connections wait for a handshake and this one waited longest: retry",
                    );
                    self.sessions.insert(id, oldest);
                }
                None => {
                    self.counters.refused_busy += 1;
                    let mut text = String::new();
                    let _ = write!(text, "all {} sessions are in use: retry in a moment", self.options.max_sessions);
                    self.refuse(&mut session, ErrorCode::Busy, &text);
                }
            }
        }
        let id = self.next_session;
        self.next_session = self.next_session.wrapping_add(1);
        self.sessions.insert(id, session);
        Some(SessionId(id))
    }

    /// Answers an unauthenticated connection with an `Error` in clear (the only thing that can be
    /// said before a handshake) and closes it.
    pub(super) fn refuse(&mut self, session: &mut Session, code: ErrorCode, message: &str) {
        let mut buffer = [0u8; 8 + wire::MAX_ERROR_MESSAGE_LEN];
        let message = Message::Error { code, message: clip(message, wire::MAX_ERROR_MESSAGE_LEN) };
        if let Ok(len) = message.emit(&mut buffer) {
            session.send_clear(&buffer[..len]);
            self.counters.errors_sent += 1;
        }
        session.close();
    }

    /// Applies the deadlines; call it often (the kernel calls it every executive frame). A
    /// connection whose handshake is not done [`ServerOptions::handshake_timeout_us`](super::ServerOptions::handshake_timeout_us) after it
    /// arrived is reset ([`Server::wants_abort`]); an authenticated session that sent nothing
    /// and had no job queued or running for [`ServerOptions::idle_timeout_us`](super::ServerOptions::idle_timeout_us) is closed
    /// ([`Server::wants_close`]); a closed session whose transport has not finished sending
    /// within [`ServerOptions::flush_timeout_us`](super::ServerOptions::flush_timeout_us) is reset.
    pub fn expire(&mut self) {
        let now = self.platform.now_us();
        let (queue, running, counters) = (&self.queue, &self.running, &mut self.counters);
        for (id, session) in self.sessions.iter_mut() {
            match session.phase {
                Phase::AwaitHello => {
                    if now.saturating_sub(session.opened_us) >= self.options.handshake_timeout_us {
                        counters.handshake_timeouts += 1;
                        session.abort();
                    }
                }
                Phase::Open(_) => {
                    let id = SessionId(*id);
                    let busy = running.as_ref().is_some_and(|running| running.session == id)
                        || queue.iter().any(|request| request.session == id);
                    if busy {
                        session.active_us = now;
                    } else if now.saturating_sub(session.active_us) >= self.options.idle_timeout_us {
                        counters.idle_timeouts += 1;
                        session.close();
                    }
                }
                Phase::Closed => {
                    if !session.abort {
                        let since = *session.closed_us.get_or_insert(now);
                        if now.saturating_sub(since) >= self.options.flush_timeout_us {
                            counters.flush_timeouts += 1;
                            session.abort();
                        }
                    }
                }
            }
        }
    }

    /// The connection is gone: frees the session and aborts its jobs.
    pub fn disconnect(&mut self, id: SessionId) {
        if self.sessions.remove(&id.0).is_none() {
            return;
        }
        let before = self.queue.len();
        self.queue.retain(|request| request.session != id);
        let mut aborted = (before - self.queue.len()) as u64;
        if self.running.as_ref().is_some_and(|running| running.session == id) {
            if let Some(Running { job: RunningJob::Native, .. }) = self.running.take() {
                self.platform.abort_native();
            }
            aborted += 1;
            self.last = Some((JobStatus::Aborted, 0));
        }
        self.counters.jobs_aborted += aborted;
        self.counters.jobs_failed += aborted;
    }

    /// Whether the device ended this session: send what is pending, then close the connection
    /// and call [`Server::disconnect`] (or reset it at once if [`Server::wants_abort`]).
    pub fn wants_close(&self, id: SessionId) -> bool {
        self.sessions.get(&id.0).is_none_or(Session::is_closed)
    }

    /// Whether the device ended this session without anything left to send (a stalled
    /// handshake, a client that does not read): reset the connection now and call
    /// [`Server::disconnect`].
    pub fn wants_abort(&self, id: SessionId) -> bool {
        self.sessions.get(&id.0).is_some_and(|session| session.abort)
    }

    /// Bytes waiting to be sent on this connection.
    pub fn pending(&self, id: SessionId) -> &[u8] {
        self.sessions.get(&id.0).map_or(&[], Session::pending)
    }

    /// `count` pending bytes were sent.
    pub fn consume(&mut self, id: SessionId, count: usize) {
        if let Some(session) = self.sessions.get_mut(&id.0) {
            session.consume(count);
        }
    }

    /// Bytes received on a connection: handles every whole frame. Before the handshake, a
    /// first frame announced longer than the largest Hello ([`wire::MAX_HELLO_LEN`]) ends the
    /// connection at once, so a stranger never makes a session buffer more than that.
    pub fn receive(&mut self, id: SessionId, bytes: &[u8]) {
        let Some(mut session) = self.sessions.remove(&id.0) else { return };
        if !session.is_closed() {
            session.active_us = self.platform.now_us();
            session.inbox.extend_from_slice(bytes);
            loop {
                if session.is_unauthenticated() {
                    let announced = session
                        .inbox
                        .get(..wire::FRAME_HEADER_LEN)
                        .map(|header| u16::from_le_bytes([header[0], header[1]]));
                    if announced.is_some_and(|len| usize::from(len) > wire::MAX_HELLO_LEN) {
                        self.kill(&mut session);
                        session.abort();
                        break;
                    }
                }
                match session.next_frame() {
                    Ok(Some(len)) => {
                        let frame: Vec<u8> = session.inbox.drain(..len).collect();
                        self.frame(id, &mut session, &frame[wire::FRAME_HEADER_LEN..]);
                        self.check_outbox(&mut session);
                        if session.is_closed() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(_) => {
                        self.kill(&mut session);
                        break;
                    }
                }
            }
        }
        self.sessions.insert(id.0, session);
    }

    /// Resets a session whose unsent bytes went past [`ServerOptions::max_outbox`](super::ServerOptions::max_outbox): its client
    /// is not reading.
    pub(super) fn check_outbox(&mut self, session: &mut Session) {
        if !session.abort && session.pending_len() > self.options.max_outbox {
            self.counters.outbox_overflows += 1;
            session.abort();
        }
    }

    pub(super) fn kill(&mut self, session: &mut Session) {
        match session.phase {
            Phase::Open(_) => self.counters.sessions_killed += 1,
            _ => self.counters.dropped_unauthenticated += 1,
        }
        session.close();
    }

    pub(super) fn frame(&mut self, id: SessionId, session: &mut Session, payload: &[u8]) {
        match &mut session.phase {
            Phase::AwaitHello => self.handshake(session, payload),
            Phase::Open(transport) => {
                let mut received = core::mem::take(&mut self.scratch.received);
                match transport.read_message(payload, &mut received) {
                    Ok(len) => self.message(id, session, &received[..len]),
                    Err(_) => {
                        // Altered, replayed or reordered: Noise's nonce no longer matches.
                        self.counters.sessions_killed += 1;
                        session.close();
                    }
                }
                self.scratch.received = received;
            }
            Phase::Closed => {}
        }
    }

    pub(super) fn handshake(&mut self, session: &mut Session, payload: &[u8]) {
        let hello_us = self.platform.now_us();
        let drop = |server: &mut Self, session: &mut Session| {
            server.counters.dropped_unauthenticated += 1;
            session.close();
        };
        let Ok(Message::Hello { version, handshake }) = Message::parse(payload) else {
            return drop(self, session);
        };
        if version != wire::PROTOCOL_VERSION || handshake.len() < 32 {
            return drop(self, session);
        }
        let mut ephemeral = [0u8; 32];
        ephemeral.copy_from_slice(&handshake[..32]);
        if self.replay.contains(&ephemeral) {
            self.counters.replays_refused += 1;
            return drop(self, session);
        }
        // Everything above was cheap; what follows costs an X25519. A token per Hello, given back
        // when the client turns out to be trusted: only failing handshakes spend the budget.
        if !self.hello_limiter.allow(session.peer, hello_us) {
            self.counters.hellos_rate_limited += 1;
            return self.refuse(session, ErrorCode::Busy, "too many handshakes at once: retry in a moment");
        }
        let Ok(mut state) = noise::responder(&self.config.noise_secret, self.entropy, &self.static_shared) else {
            return drop(self, session);
        };
        let mut client_payload = [0u8; wire::MAX_HANDSHAKE_LEN];
        let read = state.read_message(handshake, &mut client_payload);
        let remote: Option<[u8; 32]> = state.get_remote_static().and_then(|key| key.try_into().ok());
        let Some(remote) = remote else {
            // Not even the client's static key decrypted: not a handshake with this device's key.
            return drop(self, session);
        };
        if read.is_err() || !self.config.clients.contains(&remote) {
            // The key is not a trusted client's (the strict resolver refused its `ss`), or the
            // client does not hold its secret: either way the same answer, so that it tells no
            // one which keys are trusted.
            self.counters.hellos_refused += 1;
            return self.refuse(
                session,
                ErrorCode::PermissionDenied,
                "this client's key is not in the device's configuration",
            );
        }
        self.hello_limiter.refund(session.peer);
        // Only a message that decrypted under a trusted key is remembered, so strangers cannot
        // flush the replay memory.
        self.replay[self.replay_next] = ephemeral;
        self.replay_next = (self.replay_next + 1) % self.replay.len();
        let mut answer = [0u8; 128];
        let Ok(len) = state.write_message(&[], &mut answer) else { return drop(self, session) };
        let Ok(transport) = state.into_transport_mode() else { return drop(self, session) };
        let hello = Message::Hello { version: wire::PROTOCOL_VERSION, handshake: &answer[..len] };
        let mut buffer = [0u8; 256];
        let Ok(hello_len) = hello.emit(&mut buffer) else { return drop(self, session) };
        session.send_clear(&buffer[..hello_len]);
        session.client_key = remote;
        session.phase = Phase::Open(transport);
        session.hello_us = hello_us;
        session.handshake_us = self.platform.now_us().saturating_sub(hello_us);
        self.counters.sessions_opened += 1;
    }

    pub(super) fn error(&mut self, session: &mut Session, code: ErrorCode, message: &str) {
        self.counters.errors_sent += 1;
        let message = clip(message, wire::MAX_ERROR_MESSAGE_LEN);
        session.send(&Message::Error { code, message }, &mut self.scratch);
    }

    pub(super) fn message(&mut self, id: SessionId, session: &mut Session, bytes: &[u8]) {
        let message = match Message::parse(bytes) {
            Ok(message) => message,
            Err(error) => {
                let mut text = String::new();
                let _ = write!(text, "message: {error}");
                return self.error(session, error.code(), &text);
            }
        };
        match message {
            Message::Hello { .. } => {
                self.error(session, ErrorCode::Unsupported, "Hello after the handshake");
                session.close();
            }
            Message::Ping { nonce } => {
                session.send(&Message::Pong { nonce }, &mut self.scratch);
            }
            Message::Pong { .. } | Message::Error { .. } => {}
            Message::PushBegin { format, total_len, sha256, limits } => {
                self.push_begin(session, format, total_len, sha256, limits)
            }
            Message::PushChunk { offset, bytes } => self.push_chunk(session, offset, bytes),
            Message::PushEnd => self.push_end(session),
            Message::Invoke { hash, limits, input, call } => {
                let entry = match call {
                    None => Entry::Default,
                    Some(call) => Entry::Call {
                        name: call.name.to_string(),
                        args: call.args().iter().map(|arg| Value::I64(*arg)).collect(),
                    },
                };
                self.invoke(id, session, hash, limits, input, entry)
            }
            Message::PushOk { .. } | Message::Progress { .. } | Message::JobResult { .. } => {
                self.error(session, ErrorCode::Unsupported, "message only the device sends")
            }
        }
    }
}
