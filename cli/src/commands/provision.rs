//! `jos-cli provision`: a device's boot configuration (`jos_abi::config`), with a fresh device
//! key pair, pinned in the client's trust store.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use jos_abi::config::{is_strong_x25519_key, ConfigRepr, FleetKey, Network, Policy, PortRange, Sections, DEVICE_PORTS};
use jos_abi::fleet::BrokerSettings;
use jos_abi::signature::{check_signer_key, SignerRights, TrustedSigner};
use jos_abi::wire::Limits;
use jos_client::store::{key_from_hex, random_key, read_key_file, write_file, x25519_public, Home, Key, TrustedDevice};

use crate::exit::Exit;

use super::{home, print_json, CliError, CommandResult};

/// Arguments of `provision`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  jos-cli provision --name lab-pi --dhcp -o config.bin
  jos-cli provision --name bench --static 192.168.7.2/24 --gateway 192.168.7.1 -o config.bin
  jos-cli provision --name shared --trust-client self --trust-client alice-client.pub \\
      --signer self:wasm,native --signer bob-signing.pub:wasm -o config.bin
  jos-cli provision --name iot --signer self:wasm,native,net,screen,gpio --job-ports 7000-7009 -o config.bin
  jos-cli provision --name rack-3 --broker 192.168.7.1 --fleet lab --mqtt-username pi \
      --mqtt-password-file broker.pass -o config.bin

Rights of a signer: `wasm` and `native` say which formats it may sign; `net`, `screen` and `gpio`
are the capabilities its jobs get (UDP sockets on the --job-ports range, lines on the status
screen, GPIO pins). A job without a capability gets `permission denied` from those calls.
With --broker and --fleet the device also joins a fleet: it connects out to that MQTT 5 broker
(an IPv4 address; the device resolves no names), publishes its status and takes the fleet's jobs
(docs/fleet.md). The configuration then also holds the fleet key (the X25519 secret job inputs
are sealed to), made once per fleet in $JOS_HOME/fleets/NAME.key: every device provisioned with
--fleet NAME gets the same one, and `jos-cli fleet push` seals to it.
Without --trust-client and --signer, this client's key and signing key (wasm and native, no
capabilities) are the ones trusted. Keys no honest key pair has (small-order or non-canonical
Ed25519 signer keys, low-order X25519 client keys) are refused (exit 3), and so is a key given
twice (exit 2). The file holds the device's secret keys: it is created with mode 0600 (with
--force, an old file is replaced by a new one of that mode). On QEMU the file is loaded with
  -device loader,file=config.bin,addr=0x01F00000,force-raw=on
on a Raspberry Pi with `initramfs config.bin 0x01F00000` in config.txt: `jos-cli image` takes
the same options and writes the whole SD card.")]
pub struct Args {
    /// What the device is given.
    #[command(flatten)]
    pub options: Options,
    /// Where to write the configuration.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
    /// Print what was written as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The provisioning options, shared by `provision` and `image`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// The device's name (1 to 32 bytes of UTF-8); required to provision.
    #[arg(long)]
    pub name: Option<String>,
    /// Get the address by DHCP (the default).
    #[arg(long, conflicts_with = "static_address")]
    pub dhcp: bool,
    /// A fixed address, IP/PREFIX (e.g. 10.0.2.15/24).
    #[arg(long = "static", value_name = "IP/PREFIX")]
    pub static_address: Option<String>,
    /// The default gateway with --static.
    #[arg(long, value_name = "IP", requires = "static_address")]
    pub gateway: Option<Ipv4Addr>,
    /// A client allowed to connect: a public key file (client.pub) or `self` (repeatable).
    #[arg(long = "trust-client", value_name = "KEYFILE|self")]
    pub trust_client: Vec<String>,
    /// A code signer and its rights: KEYFILE:RIGHTS, RIGHTS a comma list of wasm, native, net,
    /// screen, gpio (KEYFILE may be `self`; repeatable).
    #[arg(long, value_name = "KEYFILE:RIGHTS")]
    pub signer: Vec<String>,
    /// Largest module accepted, in bytes (at most 16 MiB).
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub max_module: u32,
    /// Device policy: fuel cap per wasm job.
    #[arg(long, default_value_t = 10_000_000_000)]
    pub max_fuel: u64,
    /// Device policy: memory cap per job, bytes.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    pub max_memory: u32,
    /// Device policy: deadline cap per job, milliseconds.
    #[arg(long, default_value_t = 60_000)]
    pub max_deadline_ms: u32,
    /// Device policy: jobs waiting at most (1 to 64).
    #[arg(long, default_value_t = 8)]
    pub queue: u16,
    /// Device policy: the UDP ports jobs with the `net` right may bind, FIRST-LAST (not 7, 68,
    /// 4747 or 4748).
    #[arg(long, value_name = "FIRST-LAST", default_value = "7000-7099")]
    pub job_ports: String,
    /// Do not make this device the default one.
    #[arg(long)]
    pub no_default: bool,
    /// The fleet's MQTT broker, if the device joins one.
    #[command(flatten)]
    pub broker: BrokerOptions,
}

/// The fleet options of `provision` and `image`: the MQTT 5 broker the device connects out to.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BrokerOptions {
    /// The fleet's MQTT 5 broker, `IP[:PORT]` (an IPv4 address; port 1883 when left out).
    #[arg(long, value_name = "IP[:PORT]", requires = "fleet")]
    pub broker: Option<String>,
    /// The fleet the device joins (1 to 32 of A-Z a-z 0-9 - _ .): names its MQTT topics.
    #[arg(long, value_name = "NAME", requires = "broker")]
    pub fleet: Option<String>,
    /// The device's MQTT client id (at most 64 of A-Z a-z 0-9 - _ .; default: `jos-` and 16 hex
    /// digits of the device's advert key).
    #[arg(long, value_name = "ID", requires = "broker")]
    pub mqtt_client_id: Option<String>,
    /// The user name the device logs in to the broker with.
    #[arg(long, value_name = "NAME", requires = "broker")]
    pub mqtt_username: Option<String>,
    /// A file holding the broker password (one line; a final newline is dropped). A file rather
    /// than an argument, so the password shows in no process list or shell history.
    #[arg(long, value_name = "FILE", requires = "broker")]
    pub mqtt_password_file: Option<PathBuf>,
}

impl BrokerOptions {
    /// The broker section these options ask for (`None` without --broker), with its password.
    fn settings(&self) -> Result<Option<(BrokerSettingsOwned, BrokerText)>, CliError> {
        let Some(text) = &self.broker else { return Ok(None) };
        let bad = || {
            CliError::new(Exit::Usage, format!("--broker `{text}` is not IP[:PORT]"))
                .hint("an IPv4 address, e.g. --broker 192.168.7.1 or --broker 10.0.2.2:1884 (the device resolves no host names)")
        };
        let (ip, port) = match text.split_once(':') {
            Some((ip, port)) => (ip, port.parse::<u16>().map_err(|_| bad())?),
            None => (text.as_str(), jos_abi::fleet::DEFAULT_PORT),
        };
        let address: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        let password = match &self.mqtt_password_file {
            Some(path) => {
                let mut bytes = std::fs::read(path).map_err(|error| {
                    CliError::new(Exit::Usage, format!("cannot read --mqtt-password-file {}: {error}", path.display()))
                })?;
                if bytes.ends_with(b"\n") {
                    bytes.pop();
                    if bytes.ends_with(b"\r") {
                        bytes.pop();
                    }
                }
                if bytes.is_empty() {
                    return Err(CliError::new(Exit::Usage, format!("{} holds no password", path.display())));
                }
                Some(bytes)
            }
            None => None,
        };
        let owned = BrokerSettingsOwned { address: address.octets(), port };
        let texts = BrokerText {
            fleet: self.fleet.clone().unwrap_or_default(),
            client_id: self.mqtt_client_id.clone(),
            username: self.mqtt_username.clone(),
            password,
        };
        owned.borrow(&texts).check().map_err(|error| {
            CliError::new(Exit::Usage, format!("cannot use these broker settings: {error}"))
                .hint("e.g. --broker 192.168.7.1 --fleet lab; fleet names and client ids use A-Z a-z 0-9 - _ . only")
        })?;
        Ok(Some((owned, texts)))
    }
}

/// The fixed part of the broker settings.
#[derive(Debug, Clone, Copy)]
struct BrokerSettingsOwned {
    address: [u8; 4],
    port: u16,
}

/// The text fields of the broker settings.
#[derive(Debug, Clone)]
struct BrokerText {
    fleet: String,
    client_id: Option<String>,
    username: Option<String>,
    password: Option<Vec<u8>>,
}

impl BrokerSettingsOwned {
    fn borrow<'a>(&self, text: &'a BrokerText) -> BrokerSettings<'a> {
        BrokerSettings {
            address: self.address,
            port: self.port,
            fleet: &text.fleet,
            client_id: text.client_id.as_deref(),
            username: text.username.as_deref(),
            password: text.password.as_deref(),
        }
    }
}

impl Options {
    /// The device name, or the usage error that it is missing.
    pub fn name(&self) -> Result<&str, CliError> {
        self.name.as_deref().ok_or_else(|| {
            CliError::new(Exit::Usage, "the device needs a name: --name NAME")
                .hint("e.g. --name lab-pi (1 to 32 bytes)")
        })
    }
}

fn key_argument(home: &Home, text: &str, own: impl Fn(&Home) -> Result<Key, CliError>) -> Result<Key, CliError> {
    if text == "self" {
        return own(home);
    }
    if let Some(key) = key_from_hex(text) {
        return Ok(key);
    }
    read_key_file(Path::new(text)).map_err(|error| {
        CliError::new(Exit::Input, format!("key `{text}`: {error}"))
            .hint("give a .pub file written by `jos-cli keygen`, 64 hex digits, or `self`")
    })
}

fn own_client(home: &Home) -> Result<Key, CliError> {
    Ok(home.client_key().map_err(|error| CliError::from(error).hint("run `jos-cli keygen` first"))?.public)
}

fn own_signer(home: &Home) -> Result<Key, CliError> {
    Ok(home.signing_key().map_err(|error| CliError::from(error).hint("run `jos-cli keygen` first"))?.public)
}

/// A client key, refused when no X25519 secret yields it (low order: the session's `ss` would be
/// all-zero, so anyone could open this client's sessions; or not in canonical form).
fn client_argument(home: &Home, text: &str) -> Result<Key, CliError> {
    let key = key_argument(home, text, own_client)?;
    if !is_strong_x25519_key(&key) {
        return Err(CliError::new(
            Exit::Input,
            format!("client key `{text}` ({}) is a low-order or non-canonical X25519 key", hex::encode(key)),
        )
        .hint("anyone could open this client's sessions: give the client.pub that `jos-cli keygen` wrote"));
    }
    Ok(key)
}

/// A signer key, refused when it is weak ([`check_signer_key`]).
fn signer_argument(home: &Home, text: &str) -> Result<Key, CliError> {
    let key = key_argument(home, text, own_signer)?;
    check_signer_key(&key).map_err(|weakness| {
        CliError::new(Exit::Input, format!("signer key `{text}` ({}) is refused: {weakness}", hex::encode(key)))
            .hint("give the signing.pub that `jos-cli keygen` wrote (a key no secret made could sign any code)")
    })?;
    Ok(key)
}

/// Refuses a key given twice in one list (`what`: "--trust-client" or "--signer").
fn refuse_repeats(what: &str, keys: &[Key], texts: &[String]) -> Result<(), CliError> {
    for (index, key) in keys.iter().enumerate() {
        if let Some(earlier) = keys[..index].iter().position(|other| other == key) {
            return Err(CliError::new(
                Exit::Usage,
                format!("{what} `{}` and `{}` are the same key", texts[earlier], texts[index]),
            )
            .hint("give each key once (for --signer, with all its rights: KEYFILE:wasm,net)"));
        }
    }
    Ok(())
}

fn parse_rights(text: &str) -> Result<SignerRights, CliError> {
    let mut rights = SignerRights::NONE;
    for word in text.split(',') {
        rights |= match word.trim() {
            "wasm" => SignerRights::WASM,
            "native" => SignerRights::NATIVE,
            "net" => SignerRights::NETWORK,
            "screen" => SignerRights::SCREEN,
            "gpio" => SignerRights::GPIO,
            other => {
                return Err(CliError::new(Exit::Usage, format!("unknown right `{other}`"))
                    .hint("rights are a comma list of wasm, native, net, screen, gpio (e.g. wasm,native,net)"))
            }
        };
    }
    if !rights.contains(SignerRights::WASM) && !rights.contains(SignerRights::NATIVE) {
        return Err(CliError::new(Exit::Usage, format!("rights `{text}` allow no format"))
            .hint("a signer needs `wasm` or `native` (or both) beside its capabilities"));
    }
    Ok(rights)
}

/// Parses `--job-ports FIRST-LAST`.
pub fn parse_job_ports(text: &str) -> Result<PortRange, CliError> {
    let bad = |why: &str| {
        CliError::new(Exit::Usage, format!("--job-ports `{text}`: {why}"))
            .hint(format!("e.g. --job-ports 7000-7099; the device's own ports {DEVICE_PORTS:?} are never granted"))
    };
    let (first, last) = text.split_once('-').ok_or_else(|| bad("not FIRST-LAST"))?;
    let first: u16 = first.trim().parse().map_err(|_| bad("FIRST is not a port number"))?;
    let last: u16 = last.trim().parse().map_err(|_| bad("LAST is not a port number"))?;
    let range = PortRange { first, last };
    if first == 0 || first > last {
        return Err(bad("the range must be non-empty and start above 0"));
    }
    if !range.is_valid() {
        return Err(bad("the range holds one of the device's own ports"));
    }
    Ok(range)
}

fn parse_network(args: &Options) -> Result<Network, CliError> {
    let Some(text) = &args.static_address else { return Ok(Network::Dhcp) };
    let bad =
        || CliError::new(Exit::Usage, format!("--static `{text}` is not IP/PREFIX")).hint("e.g. --static 10.0.2.15/24");
    let (ip, prefix) = text.split_once('/').ok_or_else(bad)?;
    let address: Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let prefix_len: u8 = prefix.parse().ok().filter(|len| *len <= 32).ok_or_else(bad)?;
    if address.is_unspecified() {
        return Err(bad());
    }
    Ok(Network::Static {
        address: address.octets(),
        prefix_len,
        gateway: args.gateway.unwrap_or(Ipv4Addr::UNSPECIFIED).octets(),
    })
}

/// What `provision` made, for callers such as `emu start`.
pub struct Provisioned {
    /// The configuration bytes.
    pub config: Vec<u8>,
    /// The pinned record.
    pub device: TrustedDevice,
}

/// Builds a configuration and pins the device (without writing the output file).
pub fn provision(home: &Home, args: &Options) -> Result<Provisioned, CliError> {
    let name = args.name()?;
    let network = parse_network(args)?;
    let broker = args.broker.settings()?;
    let client_texts = if args.trust_client.is_empty() { vec!["self".to_string()] } else { args.trust_client.clone() };
    let clients = client_texts.iter().map(|text| client_argument(home, text)).collect::<Result<Vec<Key>, _>>()?;
    refuse_repeats("--trust-client", &clients, &client_texts)?;
    let job_ports = parse_job_ports(&args.job_ports)?;
    let signer_texts = if args.signer.is_empty() { vec!["self:wasm,native".to_string()] } else { args.signer.clone() };
    let mut signers = Vec::new();
    for text in &signer_texts {
        let (key, rights) = text.rsplit_once(':').ok_or_else(|| {
            CliError::new(Exit::Usage, format!("--signer `{text}` lacks its rights"))
                .hint("write KEYFILE:RIGHTS, e.g. KEYFILE:wasm or self:wasm,native,net")
        })?;
        signers.push(TrustedSigner { public_key: signer_argument(home, key)?, rights: parse_rights(rights)? });
    }
    let signer_keys: Vec<Key> = signers.iter().map(|signer| signer.public_key).collect();
    refuse_repeats("--signer", &signer_keys, &signer_texts)?;
    let io = |error: std::io::Error| CliError::new(Exit::Failure, format!("no randomness: {error}"));
    let noise_secret = random_key().map_err(io)?;
    let advert_seed = random_key().map_err(io)?;
    let policy = Policy {
        max_module_len: args.max_module,
        limits: Limits {
            fuel: args.max_fuel,
            memory: args.max_memory,
            deadline_ms: args.max_deadline_ms,
            output: jos_abi::wire::MAX_OUTPUT_LEN as u32,
        },
        queue_len: args.queue,
        job_ports,
    };
    let repr = ConfigRepr {
        name,
        noise_secret,
        advert_seed,
        network,
        clients: jos_abi::codec::List::from_slice(&clients),
        signers: jos_abi::codec::List::from_slice(&signers),
        policy,
    };
    // A device of a fleet gets the fleet's key (created once per fleet in this client's store):
    // job inputs are sealed to it.
    let fleet_key = match &broker {
        Some((_, text)) => {
            let (secret, _) = home.fleet_key_or_create(&text.fleet)?;
            Some(FleetKey(secret))
        }
        None => None,
    };
    let sections = Sections { broker: broker.as_ref().map(|(fixed, text)| fixed.borrow(text)), fleet_key };
    let mut config = vec![0u8; repr.buffer_len_with(&sections)];
    repr.emit_with(&sections, &mut config).map_err(|error| {
        CliError::new(Exit::Usage, format!("cannot write this configuration: {error}"))
            .hint("names are 1..=32 bytes, at most 32 clients and 32 signers, every policy value non-zero, --max-module at most 16 MiB, --queue at most 64")
    })?;
    let device = TrustedDevice::new(name, &jos_abi::signature::public_key(&advert_seed), &x25519_public(&noise_secret));
    let mut trust = home.trust()?;
    trust.pin(device.clone());
    home.save_trust(&trust)?;
    if !args.no_default {
        let mut settings = home.settings()?;
        settings.default_device = Some(name.to_string());
        home.save_settings(&settings)?;
    }
    Ok(Provisioned { config, device })
}

/// Runs `provision`.
pub fn run(args: Args) -> CommandResult {
    let home = home()?;
    let name = args.options.name()?.to_string();
    if args.output.exists() && !args.force {
        return Err(CliError::new(Exit::Exists, format!("{} exists already", args.output.display()))
            .hint("pass --force to replace it (the device it was made for will no longer be trusted)"));
    }
    let job_ports = parse_job_ports(&args.options.job_ports)?;
    let made = provision(&home, &args.options)?;
    // Mode 0600 from the first byte (a new file renamed over any old one, whatever its mode).
    write_file(&args.output, &made.config, true)
        .map_err(|error| CliError::new(Exit::Failure, format!("cannot write {}: {error}", args.output.display())))?;
    if args.json {
        print_json(&serde_json::json!({
            "output": args.output.display().to_string(),
            "name": name,
            "bytes": made.config.len(),
            "fingerprint": made.device.fingerprint(),
            "advert_key": made.device.advert_key,
            "noise_key": made.device.noise_key,
            "default": !args.options.no_default,
            "job_ports": { "first": job_ports.first, "last": job_ports.last },
            "broker": args.options.broker.broker.as_ref().map(|_| serde_json::json!({
                "address": args.options.broker.broker,
                "fleet": args.options.broker.fleet,
                "client_id": args.options.broker.mqtt_client_id,
                "username": args.options.broker.mqtt_username,
                "fleet_key": args.options.broker.fleet.as_deref().map(|fleet| home.fleet_key_path(fleet).display().to_string()),
            })),
        }));
    } else {
        println!(
            "wrote {} ({} bytes, holds the device's secret keys: keep it private)",
            args.output.display(),
            made.config.len()
        );
        println!("pinned `{name}` in the trust store, fingerprint {}", made.device.fingerprint());
        if let Some(fleet) = &args.options.broker.fleet {
            println!("joins fleet `{fleet}` with the fleet key {}", home.fleet_key_path(fleet).display());
        }
    }
    Ok(Exit::Success)
}
