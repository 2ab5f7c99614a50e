//! The fleet service: when the boot configuration names an MQTT 5 broker
//! (`jos_abi::config::Sections::broker`), the device connects out to it, announces itself with a
//! retained status and a last will, keeps the connection alive and takes the fleet's jobs through
//! a shared subscription (topic tree and formats: `jos_abi::fleet`, docs/fleet.md).
//!
//! The MQTT client is `rust-mqtt` (async, no_std). Its transport is one outgoing smoltcp TCP
//! socket of the network manager ([`net::add_client_socket`]); the whole client is one boxed
//! future that [`poll`] (an executive task, every frame) polls once with a no-op waker, so no
//! executor is needed: a read with no bytes queued, a write with a full buffer and every wait
//! return `Pending` and are tried again next frame. Every wait has a deadline.
//!
//! Job messages (QoS 1) go to the offload server (`jos_offload::Server::fleet_job`), which
//! verifies, queues and runs them beside direct sessions and seals their results; this service
//! publishes each sealed result (QoS 1) to the job's response topic with its correlation data and
//! only then sends the job's PUBACK (rust-mqtt's manual acknowledgement), so a device that dies
//! mid-job leaves the job unacknowledged and the broker hands it to another device. A refused
//! message is acknowledged at once (dropped, counted by the server).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::future::{poll_fn, Future};
use core::num::NonZero;
use core::pin::{pin, Pin};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use core::task::{Context, Poll, Waker};

use embedded_io_async::{ErrorKind, ErrorType, Read, Write};
use jos_abi::config::{Config, ConfigRepr, Sections};
use jos_abi::fleet::{self, BrokerSettings, DeviceState, Name, StatusRepr};
use rust_mqtt::buffer::AllocBuffer;
use rust_mqtt::client::event::Event;
use rust_mqtt::client::options::{
    AckOptions, ConnectOptions, PublicationOptions, SubscriptionOptions, TopicReference, WillOptions,
};
use rust_mqtt::client::Client;
use rust_mqtt::config::KeepAlive;
use rust_mqtt::types::{
    IdentifiedQoS, MqttBinary, MqttString, PacketIdentifier, QoS, ReasonCode, TopicFilter, TopicName,
};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::wire::{IpAddress, Ipv4Address};

use crate::board::bcm2835::{RNG, TIMER};
use crate::services::net;
use crate::{error, info, warn};

/// The MQTT keep-alive the device asks for, in seconds; it sends a PINGREQ after half of it
/// without other traffic.
pub const KEEP_ALIVE_S: u16 = 30;
/// A broker that sends nothing (not even a PINGRESP) for this long is taken for gone.
pub const SILENCE_US: u64 = KEEP_ALIVE_S as u64 * 1_500_000;
/// Most time for the TCP handshake plus CONNECT/CONNACK.
pub const CONNECT_TIMEOUT_US: u64 = 10_000_000;
/// Most time for the rest of a packet once its first byte arrived, and for one send.
pub const PACKET_TIMEOUT_US: u64 = 10_000_000;
/// The first wait before reconnecting; it doubles after each failed attempt...
pub const MIN_BACKOFF_US: u64 = 1_000_000;
/// ...up to this (plus up to a quarter more, at random, so boards restarted together spread out).
pub const MAX_BACKOFF_US: u64 = 32_000_000;
/// The status is published again at least this often (free heap, uptime)...
pub const STATUS_PERIOD_US: u64 = 60_000_000;
/// ...and on a change of state or counters, but not more often than this.
pub const STATUS_MIN_GAP_US: u64 = 1_000_000;
/// The broker connection's TCP receive and transmit buffers.
pub const TCP_BUFFER: usize = 8 * 1024;
/// smoltcp's timeout on the broker connection: a broker that acknowledges nothing for this long
/// is dropped (the MQTT keep-alive normally notices first).
pub const TCP_TIMEOUT: smoltcp::time::Duration = smoltcp::time::Duration::from_secs(60);
/// The largest MQTT packet the device accepts (CONNECT's maximum packet size), on top of the
/// policy's module cap: a job message carries a module and its input.
pub const PACKET_OVERHEAD: u32 = 128 * 1024;
/// Accepted jobs waiting for their results at most: the server accepts no more ids than its
/// replay table holds, so this is reached only if results went missing; the oldest is then
/// forgotten (its client publishes it again after its deadline) rather than the list growing.
pub const MAX_PENDING: usize = jos_offload::FLEET_REPLAY_SLOTS;

/// Job messages received on the fleet's job topic.
static FLEET_MESSAGES: AtomicU32 = AtomicU32::new(0);
/// Connections to the broker that got a CONNACK.
static CONNECTS: AtomicU32 = AtomicU32::new(0);

/// The running client (one boxed future) and its re-entry guard.
struct Agent {
    future: UnsafeCell<Option<Pin<Box<dyn Future<Output = ()>>>>>,
    busy: AtomicBool,
}

// SAFETY: the future is only touched by `poll` and `init` under the `busy` flag; the kernel is
// single-core and both run from the main loop, never from an interrupt handler.
unsafe impl Sync for Agent {}

static AGENT: Agent = Agent { future: UnsafeCell::new(None), busy: AtomicBool::new(false) };

/// What the client needs from the boot configuration (the offload service's copy, kept for good).
struct Settings {
    broker: BrokerSettings<'static>,
    name: &'static str,
    client_id: Name,
    max_packet: u32,
    socket: SocketHandle,
}

/// Reads the broker settings; when there are some, opens the broker socket and starts the
/// client. Returns whether the fleet service runs (the caller then registers [`poll`]).
pub fn init() -> bool {
    // The offload service read the window (and wiped it) first, keeping a copy; it reports a
    // missing or bad configuration.
    let Some(bytes) = crate::services::offload::boot_configuration() else { return false };
    let Ok(config) = Config::new_checked(bytes) else { return false };
    let config: &'static Config<&'static [u8]> = Box::leak(Box::new(config));
    let (Ok(repr), Ok(sections)) = (ConfigRepr::parse(config), Sections::parse(config)) else { return false };
    let Some(broker) = sections.broker else {
        info!("fleet: no broker configured");
        return false;
    };
    crate::services::offload::set_fleet_key(sections.fleet_key.map(|key| key.0));
    if sections.fleet_key.is_none() {
        warn!("fleet: no fleet key configured: every job message will be refused");
    }
    let client_id = match broker.client_id {
        Some(id) => {
            let mut name = Name::new();
            let _ = core::fmt::Write::write_str(&mut name, id);
            name
        }
        None => fleet::default_client_id(&jos_abi::signature::public_key(&repr.advert_seed)),
    };
    let rx: &'static mut [u8] = Box::leak(vec![0u8; TCP_BUFFER].into_boxed_slice());
    let tx: &'static mut [u8] = Box::leak(vec![0u8; TCP_BUFFER].into_boxed_slice());
    let mut socket = tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx));
    socket.set_timeout(Some(TCP_TIMEOUT));
    let socket = match net::add_client_socket(socket) {
        Ok(handle) => handle,
        Err(code) => {
            error!("fleet: no socket for the broker connection ({code:?}); not joining fleet {}", broker.fleet);
            return false;
        }
    };
    let [a, b, c, d] = broker.address;
    info!("fleet: joining fleet {} through broker {a}.{b}.{c}.{d}:{} as {}", broker.fleet, broker.port, client_id);
    let settings = Settings {
        broker,
        name: repr.name,
        client_id,
        max_packet: repr.policy.max_module_len.saturating_add(PACKET_OVERHEAD),
        socket,
    };
    if AGENT.busy.swap(true, Ordering::Acquire) {
        return false;
    }
    // SAFETY: the busy flag is held, so this is the only reference to the future.
    unsafe { *AGENT.future.get() = Some(Box::pin(run(settings))) };
    AGENT.busy.store(false, Ordering::Release);
    true
}

/// One step of the client (executive task): polls its future once.
pub fn poll() {
    if AGENT.busy.swap(true, Ordering::Acquire) {
        return;
    }
    // SAFETY: the busy flag is held, so this is the only reference to the future.
    let slot = unsafe { &mut *AGENT.future.get() };
    if let Some(future) = slot.as_mut() {
        let mut context = Context::from_waker(Waker::noop());
        if future.as_mut().poll(&mut context).is_ready() {
            *slot = None;
        }
    }
    AGENT.busy.store(false, Ordering::Release);
}

/// Job messages received on the fleet's job topic so far.
pub fn fleet_messages() -> u32 {
    FLEET_MESSAGES.load(Ordering::Relaxed)
}

/// A fleet job the server accepted, waiting for its sealed result.
struct Pending {
    job_id: [u8; 16],
    /// Where the result goes (`None`: the job message named no response topic; the result is
    /// dropped).
    topic: Option<String>,
    correlation: Vec<u8>,
    /// The job message's packet identifier on the current connection, to acknowledge after the
    /// result went out (`None` after a reconnection: the broker redelivers or already moved it).
    packet: Option<PacketIdentifier>,
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    /// The TCP connection was refused or reset, or did not open in time.
    Unreachable,
    /// The broker did not answer CONNECT in time, or refused it.
    Refused,
    /// The connection closed or failed while up.
    Lost,
    /// The broker sent nothing for [`SILENCE_US`], or a packet stalled.
    Silent,
    /// The broker sent something the client refused, or a packet could not be built.
    Protocol,
}

fn now() -> u64 {
    TIMER.now_micros()
}

/// Returns `Pending` once: the rest runs in the next frame.
async fn yield_now() {
    let mut yielded = false;
    poll_fn(|_| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            Poll::Pending
        }
    })
    .await
}

async fn sleep_until(deadline: u64) {
    poll_fn(|_| if now() >= deadline { Poll::Ready(()) } else { Poll::Pending }).await
}

/// `future`'s output, or `None` if it is not done by `deadline` (microseconds since boot).
async fn within<F: Future>(deadline: u64, future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    poll_fn(|context| match future.as_mut().poll(context) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending if now() >= deadline => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
    })
    .await
}

/// The client for ever: wait for an address, connect, serve, and after a failure wait the
/// backoff and try again.
async fn run(settings: Settings) {
    let mut backoff = MIN_BACKOFF_US;
    let mut pending: Vec<Pending> = Vec::new();
    loop {
        while net::has_address() != Some(true) {
            yield_now().await;
        }
        let failure = session(&settings, &mut backoff, &mut pending).await;
        // A new connection starts clean: the old packet identifiers mean nothing there.
        for job in &mut pending {
            job.packet = None;
        }
        let _ = net::with_client_socket(settings.socket, |socket, _| socket.abort());
        let mut jitter = [0u8; 4];
        let _ = RNG.fill(&mut jitter);
        let wait = backoff + u64::from(u32::from_le_bytes(jitter)) % (backoff / 4 + 1);
        warn!("fleet: broker connection ended ({failure:?}); reconnecting in {} ms", wait / 1000);
        sleep_until(now() + wait).await;
        backoff = (backoff * 2).min(MAX_BACKOFF_US);
    }
}

/// Opens the TCP connection to the broker.
async fn open(settings: &Settings) -> Result<(), Failure> {
    let mut port = [0u8; 2];
    let _ = RNG.fill(&mut port);
    let local_port = 49152 + u16::from_le_bytes(port) % 16384;
    let [a, b, c, d] = settings.broker.address;
    let remote = (IpAddress::Ipv4(Ipv4Address::new(a, b, c, d)), settings.broker.port);
    let started = net::with_client_socket(settings.socket, |socket, context| {
        socket.abort();
        socket.connect(context, remote, local_port).is_ok()
    });
    if started != Some(true) {
        return Err(Failure::Unreachable);
    }
    let deadline = now() + CONNECT_TIMEOUT_US;
    poll_fn(|_| {
        let state = net::with_client_socket(settings.socket, |socket, _| socket.state());
        match state {
            Some(tcp::State::Established) => Poll::Ready(Ok(())),
            Some(tcp::State::Closed) | Some(tcp::State::TimeWait) => Poll::Ready(Err(Failure::Unreachable)),
            _ if now() >= deadline => Poll::Ready(Err(Failure::Unreachable)),
            _ => Poll::Pending,
        }
    })
    .await
}

/// The device's status message now, as of broker connection `connects`, in `buffer`; returns
/// its length.
fn status(settings: &Settings, state: DeviceState, connects: u32, buffer: &mut [u8]) -> usize {
    let heap = crate::memory::heap::HEAP.stats();
    let (done, failed, busy) = crate::services::offload::job_figures().unwrap_or((0, 0, false));
    let counters = crate::services::offload::fleet_counters().unwrap_or_default();
    let state = match state {
        DeviceState::Offline => DeviceState::Offline,
        _ if busy => DeviceState::Busy,
        _ => DeviceState::Idle,
    };
    let repr = StatusRepr {
        state,
        formats: fleet::FORMAT_WASM | fleet::FORMAT_NATIVE,
        abi: jos_abi::AbiVersion::CURRENT.to_u32(),
        heap_free: (heap.size - heap.used) as u32,
        heap_size: heap.size as u32,
        uptime_s: (now() / 1_000_000) as u32,
        jobs_done: done,
        jobs_failed: failed,
        fleet_messages: FLEET_MESSAGES.load(Ordering::Relaxed),
        connects,
        fleet_jobs: counters.answered,
        refusals: counters.refusals,
        name: settings.name,
    };
    repr.emit(buffer).unwrap_or(0)
}

/// What a status message says apart from the clock and heap: jobs done and failed, busy, fleet
/// messages, fleet jobs answered, refusals.
type StatusKey = (u64, u64, bool, u32, u32, u64);

/// The current [`StatusKey`]: the status is republished when it changes.
fn status_key() -> StatusKey {
    let (done, failed, busy) = crate::services::offload::job_figures().unwrap_or((0, 0, false));
    let counters = crate::services::offload::fleet_counters().unwrap_or_default();
    (done, failed, busy, FLEET_MESSAGES.load(Ordering::Relaxed), counters.answered, counters.refusals.total())
}

/// The broker connection's transport: the network manager's client socket.
struct Link {
    socket: SocketHandle,
}

/// A transport failure (the connection is closed or reset).
#[derive(Debug)]
struct LinkError;

impl core::fmt::Display for LinkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("broker connection closed or reset")
    }
}

impl core::error::Error for LinkError {}

impl embedded_io_async::Error for LinkError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::ConnectionReset
    }
}

impl ErrorType for Link {
    type Error = LinkError;
}

impl Read for Link {
    async fn read(&mut self, buffer: &mut [u8]) -> Result<usize, LinkError> {
        if buffer.is_empty() {
            return Ok(0);
        }
        let socket = self.socket;
        poll_fn(|_| {
            net::with_client_socket(socket, |socket, _| {
                if socket.can_recv() {
                    Poll::Ready(socket.recv_slice(&mut *buffer).map_err(|_| LinkError))
                } else if !socket.may_recv() {
                    Poll::Ready(Err(LinkError))
                } else {
                    Poll::Pending
                }
            })
            .unwrap_or(Poll::Pending)
        })
        .await
    }
}

impl Write for Link {
    async fn write(&mut self, bytes: &[u8]) -> Result<usize, LinkError> {
        if bytes.is_empty() {
            return Ok(0);
        }
        let socket = self.socket;
        poll_fn(|_| {
            net::with_client_socket(socket, |socket, _| {
                if !socket.may_send() {
                    Poll::Ready(Err(LinkError))
                } else if socket.can_send() {
                    Poll::Ready(socket.send_slice(bytes).map_err(|_| LinkError))
                } else {
                    Poll::Pending
                }
            })
            .unwrap_or(Poll::Pending)
        })
        .await
    }

    /// Queued bytes leave with the network manager's next poll (the next frame).
    async fn flush(&mut self) -> Result<(), LinkError> {
        Ok(())
    }
}

/// The client: one subscription, 4 QoS 1 messages in flight each way, no user properties,
/// subscription identifiers or topic aliases.
type MqttClient<'a, 'c> = Client<'a, 'c, Link, AllocBuffer, 1, 4, 4, 0, 0, 0, 0>;

/// One connection: connect, subscribe, publish the status, then serve until it fails.
async fn session(settings: &Settings, backoff: &mut u64, pending: &mut Vec<Pending>) -> Failure {
    match serve(settings, backoff, pending).await {
        Ok(()) => Failure::Lost,
        Err(failure) => failure,
    }
}

async fn serve(settings: &Settings, backoff: &mut u64, pending: &mut Vec<Pending>) -> Result<(), Failure> {
    open(settings).await?;
    let status_topic = fleet::status_topic(settings.broker.fleet, settings.client_id.as_str());
    let subscription = fleet::jobs_subscription(settings.broker.fleet);
    let topic_name =
        || MqttString::from_str(status_topic.as_str()).ok().and_then(TopicName::new).ok_or(Failure::Protocol);
    let mut will_bytes = [0u8; fleet::STATUS_FIXED_LEN + jos_abi::config::MAX_NAME_LEN];
    // The will speaks for this connection: the count it will have once the broker accepts it.
    let will_len = status(settings, DeviceState::Offline, CONNECTS.load(Ordering::Relaxed) + 1, &mut will_bytes);
    let will_payload = MqttBinary::from_slice(&will_bytes[..will_len]).map_err(|_| Failure::Protocol)?;
    let will = WillOptions::new(topic_name()?, will_payload).retain().at_least_once();
    let keep_alive = NonZero::new(KEEP_ALIVE_S).map_or(KeepAlive::Infinite, KeepAlive::Seconds);
    let max_packet = NonZero::new(settings.max_packet).ok_or(Failure::Protocol)?;
    let mut options =
        ConnectOptions::new().clean_start().keep_alive(keep_alive).maximum_packet_size(max_packet).will(will);
    if let Some(user) = settings.broker.username {
        options = options.user_name(MqttString::from_str(user).map_err(|_| Failure::Protocol)?);
    }
    if let Some(password) = settings.broker.password {
        options = options.password(MqttBinary::from_slice(password).map_err(|_| Failure::Protocol)?);
    }
    let client_id = MqttString::from_str(settings.client_id.as_str()).map_err(|_| Failure::Protocol)?;

    let mut buffer = AllocBuffer;
    let mut client: MqttClient<'_, '_> = Client::new(&mut buffer);
    // Every QoS 1 job is acknowledged by hand: after its result went out, or at once when refused.
    client.ack_manually_when(&|_| true);
    let link = Link { socket: settings.socket };
    match within(now() + CONNECT_TIMEOUT_US, client.connect(link, &options, Some(client_id))).await {
        Some(Ok(_)) => {}
        Some(Err(e)) => {
            warn!("fleet: broker refused the connection: {e:?}");
            return Err(Failure::Refused);
        }
        None => return Err(Failure::Refused),
    }
    let connects = CONNECTS.fetch_add(1, Ordering::Relaxed) + 1;
    *backoff = MIN_BACKOFF_US;
    info!("fleet: connected to the broker (connection {connects}); status on {}", status_topic.as_str());

    let filter =
        MqttString::from_str(subscription.as_str()).ok().and_then(TopicFilter::new).ok_or(Failure::Protocol)?;
    let subscribed =
        within(now() + PACKET_TIMEOUT_US, client.subscribe(filter, &SubscriptionOptions::new().qos(QoS::AtLeastOnce)))
            .await;
    if !matches!(subscribed, Some(Ok(_))) {
        return Err(Failure::Lost);
    }

    let mut status_bytes = [0u8; fleet::STATUS_FIXED_LEN + jos_abi::config::MAX_NAME_LEN];
    let mut last_rx = now();
    let mut last_tx = now();
    let mut last_status: Option<(u64, StatusKey)> = None;
    loop {
        let at = now();
        let readable = net::with_client_socket(settings.socket, |socket, _| (socket.can_recv(), socket.may_recv()));
        match readable {
            Some((true, _)) => {
                let event = within(at + PACKET_TIMEOUT_US, client.poll()).await.ok_or(Failure::Silent)?;
                last_rx = now();
                match event {
                    Ok(Event::Publish(publish)) => {
                        let count = FLEET_MESSAGES.fetch_add(1, Ordering::Relaxed) + 1;
                        let packet = match publish.identified_qos {
                            IdentifiedQoS::AtLeastOnce(packet) | IdentifiedQoS::ExactlyOnce(packet) => Some(packet),
                            IdentifiedQoS::AtMostOnce => None,
                        };
                        let topic = publish.response_topic.as_ref().map(|topic| String::from(topic.as_ref().as_str()));
                        let correlation =
                            publish.correlation_data.as_ref().map_or_else(Vec::new, |data| data.as_bytes().to_vec());
                        let len = publish.message.len();
                        let verdict = crate::services::offload::fleet_job(&publish.message);
                        let _ = publish;
                        match verdict {
                            Some(Ok(job_id)) => {
                                info!("fleet: job message {count} ({len} bytes) accepted");
                                if topic.is_none() {
                                    warn!("fleet: job message {count} names no response topic; its result is dropped");
                                }
                                if pending.len() >= MAX_PENDING {
                                    let oldest = pending.remove(0);
                                    warn!("fleet: {MAX_PENDING} jobs wait for results; the oldest is forgotten");
                                    if let Some(packet) = oldest.packet {
                                        acknowledge(&mut client, packet).await?;
                                    }
                                }
                                pending.push(Pending { job_id, topic, correlation, packet });
                            }
                            verdict => {
                                warn!("fleet: job message {count} ({len} bytes) refused: {verdict:?}");
                                if let Some(packet) = packet {
                                    acknowledge(&mut client, packet).await?;
                                }
                            }
                        }
                    }
                    Ok(Event::Suback(suback)) => {
                        if suback.reason_code.is_success() {
                            info!(
                                "fleet: subscribed to {} on connection {connects} ({:?})",
                                subscription.as_str(),
                                suback.reason_code
                            );
                        } else {
                            error!("fleet: the broker refused {}: {:?}", subscription.as_str(), suback.reason_code);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        warn!("fleet: {e:?}");
                        return Err(if e.is_recoverable() { Failure::Protocol } else { Failure::Lost });
                    }
                }
                continue;
            }
            Some((false, false)) => return Err(Failure::Lost),
            _ => {}
        }
        if at.saturating_sub(last_rx) > SILENCE_US {
            return Err(Failure::Silent);
        }
        if at.saturating_sub(last_tx) >= u64::from(KEEP_ALIVE_S) * 500_000 {
            within(at + PACKET_TIMEOUT_US, client.ping()).await.ok_or(Failure::Silent)?.map_err(|_| Failure::Lost)?;
            last_tx = now();
        }
        while let Some(result) = crate::services::offload::take_fleet_result() {
            let Some(index) = pending.iter().position(|job| job.job_id == result.job_id) else { continue };
            let job = pending.remove(index);
            if let Some(topic) = job.topic.as_deref() {
                let name = MqttString::from_str(topic).ok().and_then(TopicName::new);
                let correlation = MqttBinary::from_slice(&job.correlation).ok();
                if let (Some(name), Some(correlation)) = (name, correlation) {
                    let options = PublicationOptions::new(TopicReference::Name(name))
                        .at_least_once()
                        .correlation_data(correlation);
                    within(now() + PACKET_TIMEOUT_US, client.publish(&options, (&result.message[..]).into()))
                        .await
                        .ok_or(Failure::Silent)?
                        .map_err(|_| Failure::Lost)?;
                    info!("fleet: result published ({} bytes)", result.message.len());
                } else {
                    warn!("fleet: a job's response topic or correlation data is not usable; result dropped");
                }
            }
            if let Some(packet) = job.packet {
                acknowledge(&mut client, packet).await?;
            }
            last_tx = now();
        }
        let key = status_key();
        let due = match last_status {
            None => true,
            Some((sent, old_key)) => {
                at.saturating_sub(sent) >= STATUS_PERIOD_US
                    || (old_key != key && at.saturating_sub(sent) >= STATUS_MIN_GAP_US)
            }
        };
        if due {
            let len = status(settings, DeviceState::Idle, connects, &mut status_bytes);
            let options = PublicationOptions::new(TopicReference::Name(topic_name()?)).retain();
            within(at + PACKET_TIMEOUT_US, client.publish(&options, (&status_bytes[..len]).into()))
                .await
                .ok_or(Failure::Silent)?
                .map_err(|_| Failure::Lost)?;
            if last_status.is_none() {
                info!("fleet: status published ({len} bytes, retained)");
            }
            last_status = Some((at, key));
            last_tx = now();
        }
        yield_now().await;
    }
}

/// Sends the PUBACK of job message `packet`. A packet identifier the session no longer tracks
/// (the broker resent it on a newer connection) is skipped.
async fn acknowledge(client: &mut MqttClient<'_, '_>, packet: PacketIdentifier) -> Result<(), Failure> {
    match within(now() + PACKET_TIMEOUT_US, client.manual_acknowledge(packet, ReasonCode::Success, &AckOptions::new()))
        .await
    {
        None => Err(Failure::Silent),
        Some(Ok(())) => Ok(()),
        Some(Err(e)) if e.is_recoverable() => {
            warn!("fleet: acknowledgement skipped: {e:?}");
            Ok(())
        }
        Some(Err(_)) => Err(Failure::Lost),
    }
}
