//! The embeddable jos client: find jos devices, check them against the user's trust store, open
//! a Noise session, push signed code in chunks, run it (entry point or a typed function call),
//! and run it again by hash, with a progress callback. It has no terminal or command-line
//! dependencies: `jos-cli` is a thin layer of commands over it, and applications offload from
//! their own code with it.
//!
//! # The pieces
//! - [`store`]: `$JOS_HOME` (keys, trust store of pinned devices, default device), the files
//!   `jos-cli keygen`, `provision`, `trust` and `emu start` write.
//! - [`discover`]: the UDP probe and the signature-checked adverts ([`DeviceAdvert`]).
//! - [`Session`]: one Noise IK session over TCP (push, invoke, cached-module runs), usable without
//!   a store when the application holds the keys itself.
//! - [`Client`]: the store, discovery and sessions together: [`Client::resolve`] a device,
//!   [`Client::push_and_run`], [`Client::invoke`].
//! - [`call`]: typed arguments for a call of an exported wasm function.
//!
//! # Offloading from a program
//! With the user's `$JOS_HOME` (a device provisioned or started with `jos-cli emu start`):
//!
//! ```no_run
//! use jos_client::store::Home;
//! use jos_client::{Client, DeviceSpec, PushRequest};
//! let client = Client::new(Home::locate()?)?;
//! let device = client.resolve(&DeviceSpec::Default)?;
//! let module = std::fs::read("md5.wasm")?; // built with `jos-cli build`, signed with `jos-cli sign`
//! let outcome = client.push_and_run(&device, &PushRequest::wasm(&module, b"hello"), &mut |_| {})?;
//! println!("{}", String::from_utf8_lossy(&outcome.job.output));
//! // The device caches the module: run it again by hash without sending it.
//! let again = client.invoke(&device, outcome.hash, &PushRequest::wasm(&[], b"world"), &mut |_| {})?;
//! # let _ = again;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `examples/offload.rs` is a whole program doing this against a device given by address and
//! keys; `client/tests/offload_example.rs` runs it against the real device-side protocol code on
//! loopback sockets. docs/embedding.md says more.
//!
//! # Errors
//! Every operation returns a [`ClientError`], one variant per kind of failure (unreachable,
//! untrusted, rejected, busy, timeout, ...), so callers can react to each; `jos-cli` maps each to
//! its process exit code.

pub mod call;
pub mod discovery;
pub mod fleet;
pub mod session;
pub mod store;

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use jos_abi::job::Value;
use jos_abi::wire::discovery::DISCOVERY_PORT;
use jos_abi::wire::{Call, Format, JobStatus, Limits, MAX_CALL_ARGS};
use jos_abi::ErrorCode;

pub use discovery::{discover, parse_address, DeviceAdvert, Discovery, Target};
pub use session::{JobLog, JobOutcome, Progress, Session, Traffic, NOISE_PARAMS, PROLOGUE};

use crate::store::{ClientKey, Home, StoreError, TrustedDevice};

/// Why a client operation failed: one variant per kind of failure (`jos-cli` gives each its own
/// process exit code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// No device answered, or the connection failed.
    Unreachable(String),
    /// The device accepted the connection but gave it no session: it closed the connection or
    /// did not answer the handshake (overloaded, restarting, or not a jos device). Reported like
    /// [`ClientError::Unreachable`] (same exit code in `jos-cli`), with its own hint.
    NoSession(String),
    /// The device is not pinned, or its keys or advert signature are wrong.
    Untrusted(String),
    /// The device refused this client's key.
    NotAuthorized(String),
    /// The device refused the module or request (code and message from the device).
    Rejected(ErrorCode, String),
    /// A size limit (module, input, output).
    Limit(String),
    /// The device's queue is full, or it has no session free for this connection.
    Busy(String),
    /// The device has no module with that hash.
    NotCached(String),
    /// The device broke the protocol.
    Protocol(String),
    /// The device went silent.
    Timeout(String),
    /// Keys, trust store or settings missing or unreadable.
    Setup(String),
    /// A local I/O error.
    Io(String),
}

impl ClientError {
    /// The error for a device's `Error` message.
    pub fn from_device(code: ErrorCode, message: &str) -> ClientError {
        let text = format!("{message} ({code:?}, code {})", code as u32);
        match code {
            ErrorCode::Busy => ClientError::Busy(text),
            ErrorCode::NotFound => ClientError::NotCached(text),
            ErrorCode::LimitExceeded => ClientError::Limit(text),
            ErrorCode::PermissionDenied => ClientError::NotAuthorized(text),
            _ => ClientError::Rejected(code, text),
        }
    }

    /// What the user can do about it, in terms of `jos-cli` commands.
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self {
            ClientError::Unreachable(_) => {
                "check the address and that the device is up (`jos-cli discover`, `jos-cli emu status`)"
            }
            ClientError::NoSession(_) => {
                "the device may be serving as many connections as it can, or restarting: retry in a moment (`jos-cli discover` shows whether it answers)"
            }
            ClientError::Untrusted(_) => {
                "compare the fingerprint with the device's screen, then `jos-cli trust FINGERPRINT` (or re-provision it)"
            }
            ClientError::NotAuthorized(_) => {
                "the device's configuration must list this client's key: `jos-cli provision --trust-client self ...`"
            }
            ClientError::Rejected(ErrorCode::UntrustedSigner, _) => {
                "sign with a key the device trusts for this format (`provision --signer KEYFILE:wasm,native`)"
            }
            ClientError::Rejected(ErrorCode::BadSignature, _) => "sign the file: `jos-cli sign FILE`",
            ClientError::Rejected(..) => "check the file with `jos-cli verify FILE` and rebuild it with `jos-cli build`",
            ClientError::Busy(_) => "the device is busy (its job queue is full, or every session is taken): retry in a moment",
            ClientError::NotCached(_) => "push the module again (`jos-cli push FILE`): the device no longer has it",
            ClientError::Timeout(_) => "raise --timeout, or check the device's console",
            ClientError::Setup(_) => "run `jos-cli keygen`, then `jos-cli provision` or `jos-cli emu start`",
            _ => return None,
        })
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Unreachable(text) => write!(f, "device unreachable: {text}"),
            ClientError::NoSession(text) => write!(f, "no session: {text}"),
            ClientError::Untrusted(text) => write!(f, "untrusted device: {text}"),
            ClientError::NotAuthorized(text) => write!(f, "not authorized: {text}"),
            ClientError::Rejected(_, text) => write!(f, "rejected by the device: {text}"),
            ClientError::Limit(text) => write!(f, "limit exceeded: {text}"),
            ClientError::Busy(text) => write!(f, "device busy: {text}"),
            ClientError::NotCached(text) => write!(f, "module not cached on the device: {text}"),
            ClientError::Protocol(text) => write!(f, "protocol error: {text}"),
            ClientError::Timeout(text) => write!(f, "timeout: {text}"),
            ClientError::Setup(text) => write!(f, "not set up: {text}"),
            ClientError::Io(text) => write!(f, "{text}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<StoreError> for ClientError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Missing(_) | StoreError::NoHome => ClientError::Setup(error.to_string()),
            _ => ClientError::Io(error.to_string()),
        }
    }
}

/// Which device to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The default device (`settings.json`, set by `emu start` or `discover --set-default`), or
    /// the only pinned device.
    Default,
    /// A pinned device's name, or an address `IP[:PORT]` (discovery port).
    Named(String),
}

/// A device ready to connect to: checked advert, pinned record, where its session is.
#[derive(Clone, Debug)]
pub struct ResolvedDevice {
    /// Its fresh, signature-checked advert.
    pub advert: DeviceAdvert,
    /// Its pinned record.
    pub pinned: TrustedDevice,
    /// The offload service's address.
    pub session: SocketAddr,
}

/// What to push and run.
#[derive(Clone, Debug)]
pub struct PushRequest<'a> {
    /// The format.
    pub format: Format,
    /// The signed module or blob.
    pub module: &'a [u8],
    /// The job's input.
    pub input: &'a [u8],
    /// Requested limits (zero fields: device defaults).
    pub limits: Limits,
    /// A function to call instead of the entry point.
    pub call: Option<(String, Vec<Value>)>,
}

impl<'a> PushRequest<'a> {
    /// A wasm module run through its entry point with default limits.
    pub fn wasm(module: &'a [u8], input: &'a [u8]) -> Self {
        PushRequest { format: Format::Wasm, module, input, limits: Limits::default(), call: None }
    }
}

/// What a push and run produced.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// The module's hash (what `invoke` takes).
    pub hash: [u8; 32],
    /// The job's result.
    pub job: JobOutcome,
    /// Bytes on the wire.
    pub traffic: Traffic,
}

/// A client: the user's keys and trust store, and timeouts.
pub struct Client {
    home: Home,
    key: ClientKey,
    /// Discovery wait.
    pub discovery_timeout: Duration,
    /// Connect and per-message wait.
    pub io_timeout: Duration,
}

impl Client {
    /// A client with the keys in `home` (errors with [`ClientError::Setup`] if there are none).
    pub fn new(home: Home) -> Result<Client, ClientError> {
        let key = home.client_key()?;
        Ok(Client { home, key, discovery_timeout: Duration::from_millis(1500), io_timeout: Duration::from_secs(30) })
    }

    /// The home folder.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// Finds the device: its pinned record, a fresh advert (unicast probe to its last address, or
    /// a broadcast), checks that the advert's keys are the pinned ones, and updates the last
    /// known address in the trust store.
    pub fn resolve(&self, spec: &DeviceSpec) -> Result<ResolvedDevice, ClientError> {
        let mut trust = self.home.trust()?;
        let (pinned, address) = match spec {
            DeviceSpec::Default => {
                let settings = self.home.settings()?;
                let device = match settings.default_device {
                    Some(name) => trust.by_name(&name).cloned().ok_or_else(|| {
                        ClientError::Setup(format!("the default device `{name}` is not in the trust store"))
                    })?,
                    None if trust.devices.len() == 1 => trust.devices[0].clone(),
                    None if trust.devices.is_empty() => {
                        return Err(ClientError::Setup("no device: the trust store is empty".into()))
                    }
                    None => {
                        return Err(ClientError::Setup(
                            "several devices are pinned and none is the default: pass --device NAME".into(),
                        ))
                    }
                };
                (Some(device), None)
            }
            DeviceSpec::Named(text) => match trust.by_name(text) {
                Some(device) => (Some(device.clone()), None),
                None => {
                    let address = parse_address(text, DISCOVERY_PORT).ok_or_else(|| {
                        ClientError::Setup(format!("`{text}` is neither a pinned device's name nor an address"))
                    })?;
                    (None, Some(address))
                }
            },
        };
        // A known address is probed alone first; a broadcast follows only if it did not answer.
        let last = pinned
            .as_ref()
            .and_then(|device| device.discovery.as_deref())
            .and_then(|text| parse_address(text, DISCOVERY_PORT));
        let found = match (address, last) {
            (Some(address), _) => discover(&[Target::Unicast(address)], self.discovery_timeout, true)?,
            (None, Some(last)) => {
                let found = discover(&[Target::Unicast(last)], self.discovery_timeout, true)?;
                if found
                    .adverts
                    .iter()
                    .any(|advert| Some(advert.advert_key) == pinned.as_ref().and_then(TrustedDevice::advert_key))
                {
                    found
                } else {
                    discover(&[Target::Broadcast], self.discovery_timeout, false)?
                }
            }
            (None, None) => discover(&[Target::Broadcast], self.discovery_timeout, false)?,
        };
        let advert = match &pinned {
            Some(device) => {
                found.adverts.iter().find(|advert| Some(advert.advert_key) == device.advert_key()).cloned().ok_or_else(
                    || {
                        ClientError::Unreachable(format!(
                            "device `{}` did not answer discovery ({} other device(s) did)",
                            device.name,
                            found.adverts.len()
                        ))
                    },
                )?
            }
            None => {
                let address = address.expect("an address when nothing is pinned");
                let advert =
                    found.adverts.into_iter().next().ok_or_else(|| match found.refused.into_iter().next() {
                        Some(error) => error,
                        None => ClientError::Unreachable(format!("no jos device answered at {address}")),
                    })?;
                if trust.by_advert_key(&advert.advert_key).is_none() {
                    return Err(ClientError::Untrusted(format!(
                        "`{}` at {} is not in the trust store (fingerprint {})",
                        advert.name,
                        advert.from,
                        advert.fingerprint()
                    )));
                }
                advert
            }
        };
        let mut record = trust.by_advert_key(&advert.advert_key).cloned().ok_or_else(|| {
            ClientError::Untrusted(format!(
                "`{}` is not in the trust store (fingerprint {})",
                advert.name,
                advert.fingerprint()
            ))
        })?;
        if record.noise_key() != Some(advert.noise_key) {
            return Err(ClientError::Untrusted(format!(
                "`{}` advertises a Noise key that differs from the pinned one (fingerprint now {}, pinned {})",
                advert.name,
                advert.fingerprint(),
                record.fingerprint()
            )));
        }
        let session = match record.session.as_deref().and_then(|text| parse_address(text, advert.port)) {
            Some(session) => session,
            None => SocketAddr::new(advert.from.ip(), advert.port),
        };
        let seen = advert.from.to_string();
        if record.discovery.as_deref() != Some(seen.as_str()) {
            record.discovery = Some(seen);
            trust.pin(record.clone());
            self.home.save_trust(&trust)?;
        }
        Ok(ResolvedDevice { advert, pinned: record, session })
    }

    /// Opens an authenticated session with a resolved device.
    pub fn connect(&self, device: &ResolvedDevice) -> Result<Session, ClientError> {
        Session::connect(device.session, &self.key.secret, &device.advert.noise_key, self.io_timeout)
    }

    /// Pushes a module, then runs it.
    pub fn push_and_run(
        &self,
        device: &ResolvedDevice,
        request: &PushRequest<'_>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<RunOutcome, ClientError> {
        if !device.advert.formats.accepts(request.format) {
            return Err(ClientError::Rejected(
                ErrorCode::Unsupported,
                format!(
                    "`{}` does not accept this format (it accepts {})",
                    device.advert.name,
                    device.advert.format_names().join(", ")
                ),
            ));
        }
        let mut session = self.connect(device)?;
        let hash = session.push(request.format, request.module, request.limits, progress)?;
        let job = run_on(&mut session, hash, request, progress)?;
        Ok(RunOutcome { hash, job, traffic: session.traffic() })
    }

    /// Runs a module the device has cached.
    pub fn invoke(
        &self,
        device: &ResolvedDevice,
        hash: [u8; 32],
        request: &PushRequest<'_>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<RunOutcome, ClientError> {
        let mut session = self.connect(device)?;
        let job = run_on(&mut session, hash, request, progress)?;
        Ok(RunOutcome { hash, job, traffic: session.traffic() })
    }
}

fn run_on(
    session: &mut Session,
    hash: [u8; 32],
    request: &PushRequest<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<JobOutcome, ClientError> {
    let slots: Vec<i64>;
    let call = match &request.call {
        Some((name, args)) => {
            if args.len() > MAX_CALL_ARGS {
                return Err(ClientError::Limit(format!("at most {MAX_CALL_ARGS} call arguments")));
            }
            slots = args.iter().map(|value| value.to_slot()).collect();
            Some(Call::new(name, &slots).ok_or_else(|| ClientError::Limit("call name longer than 64 bytes".into()))?)
        }
        None => None,
    };
    session.invoke(hash, request.limits, request.input, call, progress)
}

/// A short name for a status.
pub fn status_name(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Ok => "ok",
        JobStatus::Trap => "trap",
        JobStatus::OutOfFuel => "out-of-fuel",
        JobStatus::LimitExceeded => "limit-exceeded",
        JobStatus::Rejected => "rejected",
        JobStatus::Deadline => "deadline",
        JobStatus::Aborted => "aborted",
    }
}
