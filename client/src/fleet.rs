//! Jobs for a fleet of devices behind an MQTT 5 broker (docs/fleet.md): read the devices'
//! retained statuses, publish sealed and signed jobs, collect and open their results, keep
//! exactly one result per task, and publish a task again (with a fresh job id) when its result
//! did not come back within its deadline.
//!
//! The MQTT client is `rumqttc`'s `v5` module (docs/fleet.md says why): its event loop runs on a
//! thread of its own and hands the messages to [`FleetClient`] through a channel; the client
//! subscribes again after every reconnection. The job and result formats are
//! `jos_abi::fleet_job`'s; this module does the client's half of both Noise patterns:
//! `Noise_N` initiator sealing a job's input to the fleet key, `Noise_X` responder opening a
//! result sealed to this client's reply key and checking that the sender's static key is a
//! device in the trust store.
//!
//! ```no_run
//! use jos_client::fleet::{FleetClient, FleetKeys, FleetSettings, RunOptions, Task};
//! use jos_client::store::Home;
//! let home = Home::locate()?;
//! let settings = FleetSettings::new("127.0.0.1", 1883, "lab");
//! let keys = FleetKeys::from_home(&home, "lab")?;
//! let mut fleet = FleetClient::connect(&settings)?;
//! let module = std::sync::Arc::<[u8]>::from(std::fs::read("md5.wasm")?);
//! let tasks: Vec<Task> = ["a", "b", "c"].iter().map(|input| Task::wasm(module.clone(), input.as_bytes())).collect();
//! let run = fleet.run(&tasks, &keys, &RunOptions::default(), &mut |_| {})?;
//! for (task, result) in run.results.iter().enumerate() {
//!     match &result.outcome {
//!         Ok(job) => println!("{task}: {} from {}", String::from_utf8_lossy(&job.output), result.device),
//!         Err(error) => println!("{task}: failed: {error}"),
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ed25519_dalek::Signer;
use jos_abi::fleet::{DeviceState, Refusals, StatusRepr};
use jos_abi::fleet_job::{
    Envelope, JobHeader, JobInputRepr, JobRepr, ResultRepr, INPUT_NOISE_PARAMS, JOB_ID_LEN, MAX_JOB_LIFETIME_MS,
    RESULT_NOISE_PARAMS,
};
use jos_abi::job::Value;
use jos_abi::wire::{Call, Format, Limits, Message, MAX_CALL_ARGS, MAX_INPUT_LEN};
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{Client as MqttClient, Event, MqttOptions};

use crate::session::{level_name, JobLog, JobOutcome};
use crate::store::{self, Home, Key, StoreError, TrustedDevice};
use crate::ClientError;

/// How long to wait for the broker's CONNACK and the subscriptions' SUBACK.
pub const CONNECT_WAIT: Duration = Duration::from_secs(10);
/// The largest MQTT packet this client accepts (a result is at most one Noise message).
pub const MAX_PACKET: u32 = 1 << 20;
/// How long the broker keeps this client's session (subscription and queued results) while the
/// client reconnects.
pub const SESSION_EXPIRY_S: u32 = 300;

/// Where the broker is and which fleet to talk to.
#[derive(Clone, Debug)]
pub struct FleetSettings {
    /// The broker's host name or address.
    pub host: String,
    /// Its port (1883 usually).
    pub port: u16,
    /// The fleet's name (`jos/<fleet>/...`).
    pub fleet: String,
    /// This client's MQTT client id: also the last part of its results topic. Distinct per
    /// running client (two clients with one id take over each other's session).
    pub client_id: String,
    /// Broker user name and password, if the broker wants them.
    pub credentials: Option<(String, String)>,
}

impl FleetSettings {
    /// Settings for `fleet` at `host:port`, with a random client id `jos-cli-` and 8 hex digits.
    pub fn new(host: &str, port: u16, fleet: &str) -> FleetSettings {
        let mut random = [0u8; 4];
        let _ = store::random_bytes(&mut random);
        FleetSettings {
            host: host.into(),
            port,
            fleet: fleet.into(),
            client_id: format!("jos-cli-{}", hex::encode(random)),
            credentials: None,
        }
    }

    /// Checks the fleet name and client id (topic-safe characters, lengths).
    pub fn check(&self) -> Result<(), ClientError> {
        if !jos_abi::fleet::is_topic_name(self.fleet.as_bytes(), jos_abi::fleet::MAX_FLEET_LEN) {
            return Err(ClientError::Setup(format!(
                "`{}` is not a fleet name (1..=32 of A-Z a-z 0-9 - _ .)",
                self.fleet
            )));
        }
        if !jos_abi::fleet::is_topic_name(self.client_id.as_bytes(), jos_abi::fleet::MAX_CLIENT_ID_LEN) {
            return Err(ClientError::Setup(format!(
                "`{}` is not a client id (1..=64 of A-Z a-z 0-9 - _ .)",
                self.client_id
            )));
        }
        Ok(())
    }

    /// This client's results topic: `jos/<fleet>/results/<client id>` (every job's response
    /// topic).
    pub fn results_topic(&self) -> String {
        format!("jos/{}/results/{}", self.fleet, self.client_id)
    }
}

/// The keys a fleet job needs: the developer's signing key (the envelope), the fleet's public
/// key (the sealed input) and the trusted devices (whose results are accepted).
#[derive(Clone)]
pub struct FleetKeys {
    /// The Ed25519 seed that signs each job's envelope (a signer every device trusts).
    pub signing_seed: Key,
    /// The fleet's X25519 public key (its secret is in each device's configuration).
    pub fleet_public: Key,
    /// The devices whose results are accepted (by Noise static key).
    pub devices: Vec<TrustedDevice>,
}

impl FleetKeys {
    /// The user's signing key, the fleet key of `fleet` and the trust store from `home`.
    pub fn from_home(home: &Home, fleet: &str) -> Result<FleetKeys, ClientError> {
        let signing = home.signing_key()?;
        let fleet_secret = home.fleet_key(fleet)?.ok_or_else(|| {
            ClientError::Setup(format!(
                "no key for fleet `{fleet}` in {}: `jos-cli provision --fleet {fleet} ...` creates it",
                home.root().display()
            ))
        })?;
        Ok(FleetKeys {
            signing_seed: signing.seed,
            fleet_public: store::x25519_public(&fleet_secret),
            devices: home.trust()?.devices,
        })
    }

    /// The trusted device with this Noise static key.
    pub fn device_by_noise_key(&self, key: &[u8]) -> Option<&TrustedDevice> {
        self.devices.iter().find(|device| device.noise_key().is_some_and(|pinned| pinned.as_slice() == key))
    }
}

/// The code a task runs.
#[derive(Clone, Debug)]
pub enum Code {
    /// A signed module or blob carried in the job (the device caches it under its hash).
    Inline {
        /// Its format.
        format: Format,
        /// The signed bytes, exactly as a direct push sends them.
        bytes: Arc<[u8]>,
    },
    /// A module the devices have cached, by SHA-256.
    Cached(
        /// The module's hash.
        [u8; 32],
    ),
}

impl Code {
    /// The code's SHA-256.
    pub fn hash(&self) -> [u8; 32] {
        match self {
            Code::Inline { bytes, .. } => jos_abi::signature::sha256(bytes),
            Code::Cached(hash) => *hash,
        }
    }
}

/// One task: code, input, limits and an optional function call. A task may be published more
/// than once (each time as a job with a fresh id); it gets exactly one result.
#[derive(Clone, Debug)]
pub struct Task {
    /// What to run.
    pub code: Code,
    /// The input bytes.
    pub input: Vec<u8>,
    /// Requested limits (zero fields: the device's defaults).
    pub limits: Limits,
    /// An exported function to call instead of the entry point.
    pub call: Option<(String, Vec<Value>)>,
}

impl Task {
    /// A wasm module run through its entry point with `input` and default limits.
    pub fn wasm(module: Arc<[u8]>, input: &[u8]) -> Task {
        Task {
            code: Code::Inline { format: Format::Wasm, bytes: module },
            input: input.to_vec(),
            limits: Limits::default(),
            call: None,
        }
    }
}

/// One device's retained status, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceStatus {
    /// Its MQTT client id (the last part of its status topic).
    pub client_id: String,
    /// Its configured name.
    pub name: String,
    /// Offline (its last will), idle or busy.
    pub state: DeviceState,
    /// Formats it runs (`jos_abi::fleet::FORMAT_*` bits).
    pub formats: u8,
    /// Free heap, bytes.
    pub heap_free: u32,
    /// Heap size, bytes.
    pub heap_size: u32,
    /// Seconds since boot.
    pub uptime_s: u32,
    /// Jobs finished (direct and fleet).
    pub jobs_done: u64,
    /// Jobs failed.
    pub jobs_failed: u64,
    /// Job messages received.
    pub fleet_messages: u32,
    /// Fleet jobs accepted and answered.
    pub fleet_jobs: u32,
    /// Broker connections since boot.
    pub connects: u32,
    /// Job messages refused, by reason.
    pub refusals: Refusals,
}

impl DeviceStatus {
    /// Decodes a status message published on `jos/<fleet>/status/<client_id>`.
    pub fn parse(client_id: &str, bytes: &[u8]) -> Result<DeviceStatus, ClientError> {
        let status = StatusRepr::parse(bytes)
            .map_err(|error| ClientError::Protocol(format!("status of `{client_id}`: {}", error.message())))?;
        Ok(DeviceStatus {
            client_id: client_id.into(),
            name: status.name.into(),
            state: status.state,
            formats: status.formats,
            heap_free: status.heap_free,
            heap_size: status.heap_size,
            uptime_s: status.uptime_s,
            jobs_done: status.jobs_done,
            jobs_failed: status.jobs_failed,
            fleet_messages: status.fleet_messages,
            fleet_jobs: status.fleet_jobs,
            connects: status.connects,
            refusals: status.refusals,
        })
    }

    /// The pinned device whose advert key the (derived) client id was made from, if any.
    pub fn pinned<'a>(&self, devices: &'a [TrustedDevice]) -> Option<&'a TrustedDevice> {
        devices.iter().find(|device| {
            device.advert_key().is_some_and(|key| jos_abi::fleet::default_client_id(&key).as_str() == self.client_id)
        })
    }
}

/// How a run publishes and waits.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// A job whose result has not come back this long after it was published is published again
    /// as a new job (also the job's lifetime: devices drop it once it expired).
    pub job_timeout: Duration,
    /// How often a task is published at most before it is reported as timed out.
    pub max_attempts: u32,
    /// Jobs published and not answered at most at once; 0: twice the devices online (at least 2).
    pub in_flight: usize,
    /// How long to wait for the devices' statuses before the first job (to size the window).
    pub status_wait: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            job_timeout: Duration::from_secs(60),
            max_attempts: 4,
            in_flight: 0,
            status_wait: Duration::from_millis(700),
        }
    }
}

/// What a run reports as it goes (for progress bars and logs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FleetProgress {
    /// A task was published as a job (attempt 1 is the first publication).
    Published {
        /// The task's index.
        task: usize,
        /// Which publication of the task.
        attempt: u32,
    },
    /// A task got its result.
    Finished {
        /// The task's index.
        task: usize,
        /// The device's name in the trust store.
        device: String,
        /// Whether the job ran and ended with status ok.
        ok: bool,
    },
    /// A task's job passed its deadline without a result; it is published again.
    Republished {
        /// The task's index.
        task: usize,
        /// The coming attempt.
        attempt: u32,
    },
    /// A result was dropped: a second one for a finished task (QoS 1 redelivery, or a late
    /// result of a job that was published again), unknown, or not from a trusted device.
    Dropped {
        /// Why.
        reason: String,
    },
    /// The broker connection dropped (the client reconnects by itself).
    BrokerDown(String),
    /// Connected (again) and subscribed.
    BrokerUp,
}

/// One task's result.
#[derive(Clone, Debug)]
pub struct TaskResult {
    /// The job's outcome, or why there is none (the device's error, or a timeout after the last
    /// attempt).
    pub outcome: Result<JobOutcome, ClientError>,
    /// The device's name in the trust store (empty when no device answered).
    pub device: String,
    /// How many times the task was published.
    pub attempts: u32,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct FleetRun {
    /// One result per task, in the tasks' order.
    pub results: Vec<TaskResult>,
    /// Jobs published again after their deadline.
    pub republished: u32,
    /// Results dropped (duplicates, unknown or untrusted).
    pub dropped: u32,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl FleetRun {
    /// Tasks that did not end with a job of status ok.
    pub fn failed(&self) -> usize {
        self.results
            .iter()
            .filter(|result| !matches!(&result.outcome, Ok(job) if job.status == jos_abi::wire::JobStatus::Ok))
            .count()
    }
}

/// What the MQTT thread hands over.
enum Net {
    Up,
    Down(String),
    Message { topic: String, payload: Vec<u8>, correlation: Option<Vec<u8>> },
}

/// A connection to a fleet's broker.
pub struct FleetClient {
    settings: FleetSettings,
    mqtt: MqttClient,
    events: mpsc::Receiver<Net>,
    stop: Arc<AtomicBool>,
    statuses: HashMap<String, DeviceStatus>,
    connected: bool,
}

impl FleetClient {
    /// Connects to the broker and subscribes to the fleet's statuses and this client's results
    /// topic (waits at most [`CONNECT_WAIT`]).
    pub fn connect(settings: &FleetSettings) -> Result<FleetClient, ClientError> {
        settings.check()?;
        let mut options = MqttOptions::new(settings.client_id.clone(), settings.host.clone(), settings.port);
        options
            .set_keep_alive(Duration::from_secs(15))
            .set_clean_start(false)
            .set_session_expiry_interval(Some(SESSION_EXPIRY_S))
            .set_max_packet_size(Some(MAX_PACKET))
            .set_connection_timeout(CONNECT_WAIT.as_secs());
        if let Some((user, password)) = &settings.credentials {
            options.set_credentials(user.clone(), password.clone());
        }
        let (mqtt, mut connection) = MqttClient::new(options, 512);
        let (sender, events) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let subscriber = mqtt.clone();
        let status_filter = jos_abi::fleet::status_filter(&settings.fleet).as_str().to_owned();
        let results_topic = settings.results_topic();
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name("jos-fleet-mqtt".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    let event = match connection.recv_timeout(Duration::from_millis(500)) {
                        Ok(event) => event,
                        Err(rumqttc::v5::RecvTimeoutError::Timeout) => continue,
                        Err(rumqttc::v5::RecvTimeoutError::Disconnected) => break,
                    };
                    let net = match event {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            // Subscribed again on every connection (a restarted broker forgot).
                            let _ = subscriber.try_subscribe(results_topic.clone(), QoS::AtLeastOnce);
                            let _ = subscriber.try_subscribe(status_filter.clone(), QoS::AtMostOnce);
                            None
                        }
                        Ok(Event::Incoming(Packet::SubAck(_))) => Some(Net::Up),
                        Ok(Event::Incoming(Packet::Publish(publish))) => Some(Net::Message {
                            topic: String::from_utf8_lossy(&publish.topic).into_owned(),
                            payload: publish.payload.to_vec(),
                            correlation: publish
                                .properties
                                .as_ref()
                                .and_then(|properties| properties.correlation_data.as_ref())
                                .map(|data| data.to_vec()),
                        }),
                        Ok(_) => None,
                        Err(error) => {
                            let text = error.to_string();
                            // Reconnect attempts at most twice a second.
                            std::thread::sleep(Duration::from_millis(500));
                            Some(Net::Down(text))
                        }
                    };
                    if let Some(net) = net {
                        if sender.send(net).is_err() {
                            break;
                        }
                    }
                }
            })
            .map_err(|error| ClientError::Io(format!("start the MQTT thread: {error}")))?;
        let mut client =
            FleetClient { settings: settings.clone(), mqtt, events, stop, statuses: HashMap::new(), connected: false };
        client.wait_up(CONNECT_WAIT)?;
        Ok(client)
    }

    /// The settings.
    pub fn settings(&self) -> &FleetSettings {
        &self.settings
    }

    /// Waits until connected and subscribed (both subscriptions acknowledged).
    fn wait_up(&mut self, wait: Duration) -> Result<(), ClientError> {
        let deadline = Instant::now() + wait;
        let mut acks = 0;
        let mut last_error = String::from("no answer");
        while acks < 2 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Net::Up) => acks += 1,
                Ok(Net::Down(error)) => last_error = error,
                Ok(Net::Message { topic, payload, .. }) => self.note_status(&topic, &payload),
                Err(_) => {
                    return Err(ClientError::Unreachable(format!(
                        "the broker {}:{} did not accept a connection within {wait:?} ({last_error})",
                        self.settings.host, self.settings.port
                    )))
                }
            }
        }
        self.connected = true;
        Ok(())
    }

    fn note_status(&mut self, topic: &str, payload: &[u8]) {
        let prefix = format!("jos/{}/status/", self.settings.fleet);
        let Some(client_id) = topic.strip_prefix(&prefix) else { return };
        if payload.is_empty() {
            self.statuses.remove(client_id);
        } else if let Ok(status) = DeviceStatus::parse(client_id, payload) {
            self.statuses.insert(client_id.into(), status);
        }
    }

    /// The devices' statuses: what arrived so far, after reading the retained ones for `wait`
    /// (stops early once nothing new came for a fifth of it). Sorted by name.
    pub fn statuses(&mut self, wait: Duration) -> Vec<DeviceStatus> {
        let deadline = Instant::now() + wait;
        let quiet = wait / 5;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.events.recv_timeout(left.min(quiet.max(Duration::from_millis(50)))) {
                Ok(Net::Message { topic, payload, .. }) => self.note_status(&topic, &payload),
                Ok(Net::Up | Net::Down(_)) => {}
                Err(mpsc::RecvTimeoutError::Timeout) if !self.statuses.is_empty() => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let mut all: Vec<DeviceStatus> = self.statuses.values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.client_id.cmp(&b.client_id)));
        all
    }

    /// Publishes every task as a job, collects one result per task (re-publishing a task whose
    /// result did not come back within `options.job_timeout`), and returns them in the tasks'
    /// order. Returns early only on a setup error; a task that never got a result after
    /// `options.max_attempts` publications has a [`ClientError::Timeout`] outcome.
    pub fn run(
        &mut self,
        tasks: &[Task],
        keys: &FleetKeys,
        options: &RunOptions,
        progress: &mut dyn FnMut(FleetProgress),
    ) -> Result<FleetRun, ClientError> {
        let started = Instant::now();
        let lifetime_ms = u64::try_from(options.job_timeout.as_millis()).unwrap_or(u64::MAX);
        if lifetime_ms == 0 || lifetime_ms > MAX_JOB_LIFETIME_MS {
            return Err(ClientError::Setup(format!("the job timeout must be 1 ms..={} s", MAX_JOB_LIFETIME_MS / 1000)));
        }
        for task in tasks {
            check_task(task)?;
        }
        // This run's reply key: results are sealed to it, and it dies with the run.
        let reply_secret = store::random_key().map_err(|error| ClientError::Io(error.to_string()))?;
        let reply_public = store::x25519_public(&reply_secret);
        let online =
            self.statuses(options.status_wait).iter().filter(|status| status.state != DeviceState::Offline).count();
        let window = if options.in_flight > 0 { options.in_flight } else { (2 * online).max(2) };
        let mut tracker = Tracker::new(tasks.len(), window, options.job_timeout, options.max_attempts.max(1));
        let mut results: Vec<Option<TaskResult>> = vec![None; tasks.len()];
        let mut dropped = 0u32;
        let jobs_topic = jos_abi::fleet::jobs_topic(&self.settings.fleet).as_str().to_owned();
        let results_topic = self.settings.results_topic();
        while !tracker.finished() {
            let now = Instant::now();
            for (task, fate) in tracker.expire(now) {
                match fate {
                    Expired::Republish(attempt) => progress(FleetProgress::Republished { task, attempt }),
                    Expired::GiveUp(attempts) => {
                        results[task] = Some(TaskResult {
                            outcome: Err(ClientError::Timeout(format!(
                                "no result after {attempts} publication(s), {:?} each",
                                options.job_timeout
                            ))),
                            device: String::new(),
                            attempts,
                        })
                    }
                }
            }
            while let Some(task) = tracker.next_to_publish() {
                let mut job_id = [0u8; JOB_ID_LEN];
                store::random_bytes(&mut job_id).map_err(|error| ClientError::Io(error.to_string()))?;
                let issued_at = unix_ms();
                let message = seal_job(&tasks[task], keys, job_id, issued_at, issued_at + lifetime_ms, &reply_public)?;
                let properties = PublishProperties {
                    response_topic: Some(results_topic.clone()),
                    correlation_data: Some(job_id.to_vec().into()),
                    ..PublishProperties::default()
                };
                self.mqtt
                    .publish_with_properties(jobs_topic.clone(), QoS::AtLeastOnce, false, message, properties)
                    .map_err(|error| ClientError::Io(format!("publish: {error}")))?;
                let attempt = tracker.published(task, job_id, Instant::now());
                if attempt == 1 {
                    progress(FleetProgress::Published { task, attempt });
                }
            }
            if tracker.finished() {
                break;
            }
            let wait = tracker
                .next_deadline()
                .map_or(Duration::from_millis(200), |deadline| deadline.saturating_duration_since(Instant::now()))
                .clamp(Duration::from_millis(1), Duration::from_millis(500));
            let event = match self.events.recv_timeout(wait) {
                Ok(event) => event,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(ClientError::Io("the MQTT thread ended".into()));
                }
            };
            match event {
                Net::Up => {
                    if !self.connected {
                        self.connected = true;
                        progress(FleetProgress::BrokerUp);
                    }
                }
                Net::Down(error) => {
                    if self.connected {
                        self.connected = false;
                        progress(FleetProgress::BrokerDown(error));
                    }
                }
                Net::Message { topic, payload, correlation } if topic == results_topic => {
                    let opened = open_result(&payload, correlation.as_deref(), &reply_secret, keys);
                    let OpenedResult { job_id, device, outcome } = match opened {
                        Ok(opened) => opened,
                        Err(reason) => {
                            dropped += 1;
                            progress(FleetProgress::Dropped { reason });
                            continue;
                        }
                    };
                    match tracker.result(&job_id) {
                        Fate::New { task, attempts } => {
                            let ok = matches!(&outcome, Ok(job) if job.status == jos_abi::wire::JobStatus::Ok);
                            progress(FleetProgress::Finished { task, device: device.clone(), ok });
                            results[task] = Some(TaskResult { outcome, device, attempts });
                        }
                        Fate::Duplicate(task) => {
                            dropped += 1;
                            progress(FleetProgress::Dropped {
                                reason: format!("a second result for task {task} (from `{device}`)"),
                            });
                        }
                        Fate::Unknown => {
                            dropped += 1;
                            progress(FleetProgress::Dropped { reason: "a result for a job of another run".into() });
                        }
                    }
                }
                Net::Message { topic, payload, .. } => self.note_status(&topic, &payload),
            }
        }
        let results = results
            .into_iter()
            .map(|result| {
                result.unwrap_or_else(|| TaskResult {
                    outcome: Err(ClientError::Timeout("no result".into())),
                    device: String::new(),
                    attempts: 0,
                })
            })
            .collect();
        Ok(FleetRun { results, republished: tracker.republished, dropped, elapsed: started.elapsed() })
    }
}

impl Drop for FleetClient {
    fn drop(&mut self) {
        let _ = self.mqtt.try_disconnect();
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64)
}

fn check_task(task: &Task) -> Result<(), ClientError> {
    if task.input.len() > MAX_INPUT_LEN {
        return Err(ClientError::Limit(format!(
            "an input is {} bytes; a job carries at most {MAX_INPUT_LEN}",
            task.input.len()
        )));
    }
    if let Code::Inline { bytes, .. } = &task.code {
        if bytes.len() > jos_abi::fleet_job::MAX_JOB_CODE_LEN {
            return Err(ClientError::Limit(format!(
                "the code is {} bytes; a job carries at most {}",
                bytes.len(),
                jos_abi::fleet_job::MAX_JOB_CODE_LEN
            )));
        }
    }
    if let Some((name, args)) = &task.call {
        if args.len() > MAX_CALL_ARGS || name.len() > jos_abi::wire::MAX_CALL_NAME_LEN {
            return Err(ClientError::Limit(format!(
                "a call takes at most {MAX_CALL_ARGS} arguments and a name of at most {} bytes",
                jos_abi::wire::MAX_CALL_NAME_LEN
            )));
        }
    }
    Ok(())
}

/// Builds a job message: header, code, the input sealed to the fleet key (Noise `N`, initiator,
/// prologue the header's bytes) and the envelope signature by `keys.signing_seed`.
pub fn seal_job(
    task: &Task,
    keys: &FleetKeys,
    job_id: [u8; JOB_ID_LEN],
    issued_at: u64,
    expires_at: u64,
    reply_public: &Key,
) -> Result<Vec<u8>, ClientError> {
    check_task(task)?;
    let (format, code): (Option<Format>, &[u8]) = match &task.code {
        Code::Inline { format, bytes } => (Some(*format), bytes),
        Code::Cached(_) => (None, &[]),
    };
    let header = JobHeader {
        format,
        job_id,
        issued_at,
        expires_at,
        limits: task.limits,
        code_hash: task.code.hash(),
        reply_key: *reply_public,
    };
    header.check().map_err(|error| ClientError::Setup(error.message().into()))?;
    let slots: Vec<i64>;
    let call = match &task.call {
        Some((name, args)) => {
            slots = args.iter().map(|value| value.to_slot()).collect();
            Some(Call::new(name, &slots).ok_or_else(|| ClientError::Limit("call name or arguments too long".into()))?)
        }
        None => None,
    };
    let input = JobInputRepr { call, input: &task.input };
    let mut plain = vec![0u8; input.buffer_len()];
    input.emit(&mut plain).map_err(|error| ClientError::Limit(error.message().into()))?;
    let prologue = header.to_bytes();
    let crypto = |error: snow::Error| ClientError::Setup(format!("seal the input: {error}"));
    let mut noise = snow::Builder::new(INPUT_NOISE_PARAMS.parse().map_err(crypto)?)
        .remote_public_key(&keys.fleet_public)
        .map_err(crypto)?
        .prologue(&prologue)
        .map_err(crypto)?
        .build_initiator()
        .map_err(crypto)?;
    let mut sealed = vec![0u8; plain.len() + jos_abi::fleet_job::INPUT_SEAL_OVERHEAD];
    let len = noise.write_message(&plain, &mut sealed).map_err(crypto)?;
    sealed.truncate(len);
    let job =
        JobRepr { header, code, sealed_input: &sealed, envelope: Envelope { key_id: [0; 12], signature: [0; 64] } };
    let mut message = vec![0u8; job.buffer_len()];
    let signer = ed25519_dalek::SigningKey::from_bytes(&keys.signing_seed);
    let key_id = jos_abi::signature::key_id(&signer.verifying_key().to_bytes());
    job.emit_signed(&mut message, |signed| Envelope { key_id, signature: signer.sign(signed).to_bytes() })
        .map_err(|error| ClientError::Limit(error.message().into()))?;
    Ok(message)
}

/// Opens a result message: checks that its job id is the correlation data, opens the Noise `X`
/// message with the reply secret (prologue the job id), checks that the sender's static key is a
/// trusted device and decodes the wire message. Returns the job id, the device's name, and the
/// job's outcome (or the device's error); `Err` (a reason) when the message is to be dropped.
pub fn open_result(
    payload: &[u8],
    correlation: Option<&[u8]>,
    reply_secret: &Key,
    keys: &FleetKeys,
) -> Result<OpenedResult, String> {
    let result = ResultRepr::parse(payload).map_err(|error| format!("a malformed result: {}", error.message()))?;
    if correlation != Some(result.job_id.as_slice()) {
        return Err("a result whose correlation data is not its job id".into());
    }
    let crypto = |error: snow::Error| format!("a result that does not open: {error}");
    let mut noise = snow::Builder::new(RESULT_NOISE_PARAMS.parse().map_err(crypto)?)
        .local_private_key(reply_secret)
        .map_err(crypto)?
        .prologue(&result.job_id)
        .map_err(crypto)?
        .build_responder()
        .map_err(crypto)?;
    let mut plain = vec![0u8; result.sealed.len()];
    let len = noise.read_message(result.sealed, &mut plain).map_err(crypto)?;
    let sender = noise.get_remote_static().ok_or("a result without a sender key")?;
    let device = keys
        .device_by_noise_key(sender)
        .ok_or_else(|| format!("a result from a device not in the trust store (Noise key {})", hex::encode(sender)))?;
    let outcome = match Message::parse(&plain[..len]) {
        Ok(Message::JobResult { status, exit_value, stats, output, results, logs }) => Ok(JobOutcome {
            status,
            exit_value,
            stats,
            output: output.to_vec(),
            results: results.iter().collect(),
            logs: logs
                .iter()
                .map(|line| JobLog { level: level_name(line.level as u32), text: line.text.into() })
                .collect(),
        }),
        Ok(Message::Error { code, message }) => Err(ClientError::from_device(code, message)),
        Ok(other) => Err(ClientError::Protocol(format!("a result carried message kind {}", other.kind()))),
        Err(error) => Err(ClientError::Protocol(format!("a result's message: {error}"))),
    };
    Ok(OpenedResult { job_id: result.job_id, device: device.name.clone(), outcome })
}

/// A result message opened by [`open_result`].
#[derive(Clone, Debug)]
pub struct OpenedResult {
    /// The job it answers.
    pub job_id: [u8; JOB_ID_LEN],
    /// The sending device's name in the trust store.
    pub device: String,
    /// The job's outcome, or the device's error (it refused the code, or had no such module).
    pub outcome: Result<JobOutcome, ClientError>,
}

impl Home {
    /// `fleets/<fleet>.key`: the fleet's X25519 secret.
    pub fn fleet_key_path(&self, fleet: &str) -> std::path::PathBuf {
        self.root().join("fleets").join(format!("{fleet}.key"))
    }

    /// The fleet's key, if this store has one.
    pub fn fleet_key(&self, fleet: &str) -> Result<Option<Key>, StoreError> {
        let path = self.fleet_key_path(fleet);
        if !path.exists() {
            return Ok(None);
        }
        store::read_secret_key_file(&path).map(Some)
    }

    /// The fleet's key, created (random, file 0600) on first use; `true` when it was created.
    pub fn fleet_key_or_create(&self, fleet: &str) -> Result<(Key, bool), StoreError> {
        if let Some(key) = self.fleet_key(fleet)? {
            return Ok((key, false));
        }
        let path = self.fleet_key_path(fleet);
        let key = store::random_key().map_err(|error| StoreError::Io(path.clone(), error))?;
        store::write_key_file(&path, &format!("jos fleet `{fleet}` key (X25519 secret): keep secret"), &key, true)?;
        Ok((key, true))
    }

    /// The fleets this store has keys for, sorted.
    pub fn fleets(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.root().join("fleets"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.strip_suffix(".key").map(str::to_owned))
            .collect();
        names.sort();
        names
    }
}

/// What a result does to its task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// The task's first result.
    New { task: usize, attempts: u32 },
    /// The task already has one.
    Duplicate(usize),
    /// Not a job of this run.
    Unknown,
}

/// What happens to a job past its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expired {
    /// Published again (this attempt comes next).
    Republish(u32),
    /// Given up after this many attempts.
    GiveUp(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TaskState {
    Waiting,
    InFlight { deadline: Instant, attempts: u32 },
    Done,
}

/// The task bookkeeping of a run, without I/O: which task to publish next (a window of jobs in
/// flight), which job id belongs to which task, the first result per task, deadlines.
struct Tracker {
    tasks: Vec<TaskState>,
    by_job: HashMap<[u8; JOB_ID_LEN], usize>,
    queue: VecDeque<usize>,
    in_flight: usize,
    window: usize,
    timeout: Duration,
    max_attempts: u32,
    done: usize,
    republished: u32,
}

impl Tracker {
    fn new(tasks: usize, window: usize, timeout: Duration, max_attempts: u32) -> Tracker {
        Tracker {
            tasks: vec![TaskState::Waiting; tasks],
            by_job: HashMap::new(),
            queue: (0..tasks).collect(),
            in_flight: 0,
            window: window.max(1),
            timeout,
            max_attempts,
            done: 0,
            republished: 0,
        }
    }

    fn finished(&self) -> bool {
        self.done == self.tasks.len()
    }

    /// The next task to publish, if the window has room (re-publications first).
    fn next_to_publish(&mut self) -> Option<usize> {
        let &task = self.queue.front()?;
        let again = matches!(self.tasks[task], TaskState::InFlight { .. });
        if !again && self.in_flight >= self.window {
            return None;
        }
        self.queue.pop_front()
    }

    /// Records a publication of `task` as job `job_id`; returns its attempt number.
    fn published(&mut self, task: usize, job_id: [u8; JOB_ID_LEN], now: Instant) -> u32 {
        let attempts = match self.tasks[task] {
            TaskState::InFlight { attempts, .. } => attempts + 1,
            _ => {
                self.in_flight += 1;
                1
            }
        };
        self.tasks[task] = TaskState::InFlight { deadline: now + self.timeout, attempts };
        self.by_job.insert(job_id, task);
        attempts
    }

    /// A result for `job_id` arrived (any of the task's jobs counts; the first one wins).
    fn result(&mut self, job_id: &[u8; JOB_ID_LEN]) -> Fate {
        let Some(&task) = self.by_job.get(job_id) else { return Fate::Unknown };
        match self.tasks[task] {
            TaskState::InFlight { attempts, .. } => {
                self.finish(task);
                // A re-publication still queued is not needed any more.
                self.queue.retain(|&queued| queued != task);
                Fate::New { task, attempts }
            }
            TaskState::Done => Fate::Duplicate(task),
            TaskState::Waiting => Fate::Unknown,
        }
    }

    fn finish(&mut self, task: usize) {
        self.tasks[task] = TaskState::Done;
        self.in_flight -= 1;
        self.done += 1;
    }

    /// Tasks whose job passed its deadline: queued again, or given up after the last attempt.
    fn expire(&mut self, now: Instant) -> Vec<(usize, Expired)> {
        let mut expired = Vec::new();
        for task in 0..self.tasks.len() {
            let TaskState::InFlight { deadline, attempts } = self.tasks[task] else { continue };
            if deadline > now || self.queue.contains(&task) {
                continue;
            }
            if attempts >= self.max_attempts {
                self.finish(task);
                expired.push((task, Expired::GiveUp(attempts)));
            } else {
                self.queue.push_front(task);
                self.republished += 1;
                expired.push((task, Expired::Republish(attempts + 1)));
            }
        }
        expired
    }

    /// The earliest deadline of a job in flight.
    fn next_deadline(&self) -> Option<Instant> {
        self.tasks
            .iter()
            .filter_map(|state| match state {
                TaskState::InFlight { deadline, .. } => Some(*deadline),
                _ => None,
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> [u8; JOB_ID_LEN] {
        [n; JOB_ID_LEN]
    }

    #[test]
    fn the_window_limits_jobs_in_flight_and_results_free_it() {
        let now = Instant::now();
        let mut tracker = Tracker::new(5, 2, Duration::from_secs(10), 3);
        assert_eq!(tracker.next_to_publish(), Some(0));
        tracker.published(0, id(0), now);
        assert_eq!(tracker.next_to_publish(), Some(1));
        tracker.published(1, id(1), now);
        assert_eq!(tracker.next_to_publish(), None, "two in flight fill a window of two");
        assert_eq!(tracker.result(&id(1)), Fate::New { task: 1, attempts: 1 });
        assert_eq!(tracker.next_to_publish(), Some(2));
        assert!(!tracker.finished());
    }

    #[test]
    fn one_result_per_task_duplicates_and_strangers_dropped() {
        let now = Instant::now();
        let mut tracker = Tracker::new(2, 4, Duration::from_secs(10), 3);
        for task in 0..2 {
            assert_eq!(tracker.next_to_publish(), Some(task));
            tracker.published(task, id(task as u8), now);
        }
        assert_eq!(tracker.result(&id(0)), Fate::New { task: 0, attempts: 1 });
        assert_eq!(tracker.result(&id(0)), Fate::Duplicate(0), "QoS 1 delivered it twice");
        assert_eq!(tracker.result(&id(9)), Fate::Unknown);
        assert_eq!(tracker.result(&id(1)), Fate::New { task: 1, attempts: 1 });
        assert!(tracker.finished());
    }

    #[test]
    fn a_late_job_is_published_again_with_a_new_id_and_the_first_result_wins() {
        let start = Instant::now();
        let timeout = Duration::from_secs(10);
        let mut tracker = Tracker::new(1, 1, timeout, 3);
        tracker.next_to_publish();
        assert_eq!(tracker.published(0, id(1), start), 1);
        assert!(tracker.expire(start + timeout / 2).is_empty());
        assert_eq!(tracker.next_deadline(), Some(start + timeout));
        assert_eq!(tracker.expire(start + timeout), vec![(0, Expired::Republish(2))]);
        assert!(tracker.expire(start + timeout).is_empty(), "queued once");
        // Re-publication does not wait for room in the window.
        assert_eq!(tracker.next_to_publish(), Some(0));
        assert_eq!(tracker.published(0, id(2), start + timeout), 2);
        assert_eq!(tracker.republished, 1);
        // The first job's result comes after all: it counts, the second one's is a duplicate.
        assert_eq!(tracker.result(&id(1)), Fate::New { task: 0, attempts: 2 });
        assert_eq!(tracker.result(&id(2)), Fate::Duplicate(0));
        assert!(tracker.finished());
        assert_eq!(tracker.next_deadline(), None);
    }

    #[test]
    fn a_task_is_given_up_after_its_last_attempt() {
        let start = Instant::now();
        let timeout = Duration::from_secs(1);
        let mut tracker = Tracker::new(2, 2, timeout, 2);
        for task in 0..2 {
            tracker.next_to_publish();
            tracker.published(task, id(task as u8), start);
        }
        assert_eq!(tracker.result(&id(1)), Fate::New { task: 1, attempts: 1 });
        assert_eq!(tracker.expire(start + timeout), vec![(0, Expired::Republish(2))]);
        tracker.next_to_publish();
        tracker.published(0, id(7), start + timeout);
        assert_eq!(tracker.expire(start + 2 * timeout), vec![(0, Expired::GiveUp(2))]);
        assert!(tracker.finished());
        assert_eq!(tracker.result(&id(7)), Fate::Duplicate(0), "a result after giving up is dropped");
    }

    #[test]
    fn a_result_clears_a_queued_republication() {
        let start = Instant::now();
        let timeout = Duration::from_secs(1);
        let mut tracker = Tracker::new(1, 1, timeout, 3);
        tracker.next_to_publish();
        tracker.published(0, id(1), start);
        tracker.expire(start + timeout);
        assert_eq!(tracker.result(&id(1)), Fate::New { task: 0, attempts: 1 });
        assert_eq!(tracker.next_to_publish(), None);
        assert!(tracker.finished());
    }

    /// The device's half of both patterns, with snow as the device uses it: the sealed input
    /// opens with the fleet secret and the header as prologue; a result sealed by a trusted
    /// device opens, one by a stranger or for another job id does not.
    #[test]
    fn sealed_input_opens_with_the_fleet_key_and_results_are_authenticated() {
        let fleet_secret = [0x41; 32];
        let seed = [0x42; 32];
        let device_secret = [0x43; 32];
        let reply_secret = [0x44; 32];
        let device = TrustedDevice::new("board", &[0x45; 32], &store::x25519_public(&device_secret));
        let keys =
            FleetKeys { signing_seed: seed, fleet_public: store::x25519_public(&fleet_secret), devices: vec![device] };
        let task = Task {
            code: Code::Cached([9; 32]),
            input: b"hello".to_vec(),
            limits: Limits::default(),
            call: Some(("add".into(), vec![Value::I32(2), Value::I64(3)])),
        };
        let reply_public = store::x25519_public(&reply_secret);
        let message = seal_job(&task, &keys, id(5), 1_000, 61_000, &reply_public).unwrap();
        let job = JobRepr::parse(&message).unwrap();
        assert!(jos_abi::fleet_job::verify_envelope(&jos_abi::signature::public_key(&seed), &message));
        assert_eq!((job.header.format, job.header.code_hash, job.header.reply_key), (None, [9; 32], reply_public));
        let mut device_noise = snow::Builder::new(INPUT_NOISE_PARAMS.parse().unwrap())
            .local_private_key(&fleet_secret)
            .unwrap()
            .prologue(&job.header.to_bytes())
            .unwrap()
            .build_responder()
            .unwrap();
        let mut plain = vec![0u8; job.sealed_input.len()];
        let len = device_noise.read_message(job.sealed_input, &mut plain).unwrap();
        let input = JobInputRepr::parse(&plain[..len]).unwrap();
        assert_eq!(input.input, b"hello");
        assert_eq!(input.call.unwrap().name, "add");
        // A wrong prologue (another job's header) does not open it.
        let mut other = job.header;
        other.job_id = id(6);
        let mut wrong = snow::Builder::new(INPUT_NOISE_PARAMS.parse().unwrap())
            .local_private_key(&fleet_secret)
            .unwrap()
            .prologue(&other.to_bytes())
            .unwrap()
            .build_responder()
            .unwrap();
        assert!(wrong.read_message(job.sealed_input, &mut plain).is_err());

        let seal = |sender: &Key, job_id: [u8; JOB_ID_LEN], wire: &[u8]| {
            let mut noise = snow::Builder::new(RESULT_NOISE_PARAMS.parse().unwrap())
                .local_private_key(sender)
                .unwrap()
                .remote_public_key(&reply_public)
                .unwrap()
                .prologue(&job_id)
                .unwrap()
                .build_initiator()
                .unwrap();
            let mut sealed = vec![0u8; wire.len() + jos_abi::fleet_job::RESULT_SEAL_OVERHEAD];
            let len = noise.write_message(wire, &mut sealed).unwrap();
            let repr = ResultRepr { job_id, sealed: &sealed[..len] };
            let mut bytes = vec![0u8; repr.buffer_len()];
            repr.emit(&mut bytes).unwrap();
            bytes
        };
        let error = Message::Error { code: jos_abi::ErrorCode::NotFound, message: "no such module" };
        let mut wire = vec![0u8; jos_abi::wire::MAX_MESSAGE_LEN];
        let wire_len = error.emit(&mut wire).unwrap();
        let good = seal(&device_secret, id(5), &wire[..wire_len]);
        let opened = open_result(&good, Some(&id(5)), &reply_secret, &keys).unwrap();
        assert_eq!((opened.job_id, opened.device.as_str()), (id(5), "board"));
        assert!(matches!(opened.outcome, Err(ClientError::NotCached(_))), "{:?}", opened.outcome);
        assert!(open_result(&good, Some(&id(6)), &reply_secret, &keys).unwrap_err().contains("correlation"));
        assert!(open_result(&good, Some(&id(5)), &[0x47; 32], &keys).unwrap_err().contains("does not open"));
        let stranger = seal(&[0x46; 32], id(5), &wire[..wire_len]);
        assert!(open_result(&stranger, Some(&id(5)), &reply_secret, &keys).unwrap_err().contains("trust store"));
        let mut altered = good.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(open_result(&altered, Some(&id(5)), &reply_secret, &keys).is_err());
        assert!(open_result(&good[..10], Some(&id(5)), &reply_secret, &keys).unwrap_err().contains("malformed"));
    }

    #[test]
    fn bad_settings_and_lifetimes_are_refused() {
        let mut settings = FleetSettings::new("127.0.0.1", 1883, "lab");
        assert!(settings.check().is_ok());
        assert_eq!(settings.results_topic(), format!("jos/lab/results/{}", settings.client_id));
        settings.fleet = "a/b".into();
        assert!(matches!(settings.check(), Err(ClientError::Setup(_))));
        let keys = FleetKeys { signing_seed: [1; 32], fleet_public: [2; 32], devices: Vec::new() };
        let task = Task::wasm(Arc::from(&b"\0asm"[..]), b"");
        assert!(matches!(seal_job(&task, &keys, id(1), 10, 10, &[3; 32]), Err(ClientError::Setup(_))));
        let too_long = MAX_JOB_LIFETIME_MS + 11;
        assert!(matches!(seal_job(&task, &keys, id(1), 10, too_long, &[3; 32]), Err(ClientError::Setup(_))));
        let big = Task { input: vec![0; MAX_INPUT_LEN + 1], ..task };
        assert!(matches!(seal_job(&big, &keys, id(1), 10, 20, &[3; 32]), Err(ClientError::Limit(_))));
    }
}
