//! `jos-cli trust`: pin a discovered device (by fingerprint, or on first use with a flag), list
//! and remove pinned devices.

use std::time::Duration;

use jos_abi::config::is_strong_x25519_key;
use jos_abi::signature::check_signer_key;
use jos_client::discover;
use jos_client::store::{fingerprint_matches, TrustedDevice};

use crate::exit::Exit;

use super::discover::targets;
use super::{home, print_json, CliError, CommandResult};

/// Arguments of `trust`.
#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "\
Examples:
  jos-cli trust 3f2a:91c0:77de:0b41              # pin the discovered device with this fingerprint
  jos-cli trust --accept-new --address 10.0.0.7  # trust on first use: pins what answers, shows it
  jos-cli trust 3f2a:91c0 --address 127.0.0.1:5000 --session 127.0.0.1:5001
                                                 # a device behind port forwards (like `emu`'s)
  jos-cli trust list --json
  jos-cli trust remove lab-pi

The fingerprint (at least 8 hex digits; `:` optional) is what `discover` prints and what the
device shows on its screen; compare them before trusting. A device whose advert or Noise key is
weak (small or low order, non-canonical) is never pinned (exit 9)."
)]
pub struct Args {
    /// `list` or `remove`.
    #[command(subcommand)]
    pub action: Option<Action>,
    /// The fingerprint of the device to pin (as `discover` shows it).
    #[arg(value_name = "FINGERPRINT", required_unless_present = "accept_new")]
    pub fingerprint: Option<String>,
    /// Trust on first use: pin every untrusted device that answers (fingerprints are printed).
    #[arg(long, conflicts_with = "fingerprint")]
    pub accept_new: bool,
    /// Probe this address (IP or IP:PORT) instead of broadcasting.
    #[arg(long, value_name = "IP[:PORT]")]
    pub address: Vec<String>,
    /// Open sessions at this address instead of the answering address plus the advert's port
    /// (a device behind a NAT or port forward); pins exactly one device.
    #[arg(long, value_name = "IP:PORT")]
    pub session: Option<String>,
    /// How long to wait for adverts, in milliseconds.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub timeout: u64,
    /// Print the pinned devices as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `trust` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// List the pinned devices.
    List {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Unpin a device (by name or fingerprint).
    Remove {
        /// The device's name or fingerprint.
        device: String,
    },
}

fn device_json(device: &TrustedDevice, default: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "name": device.name,
        "fingerprint": device.fingerprint(),
        "advert_key": device.advert_key,
        "noise_key": device.noise_key,
        "discovery": device.discovery,
        "session": device.session,
        "default": default == Some(device.name.as_str()),
    })
}

/// Runs `trust`.
pub fn run(args: Args) -> CommandResult {
    let home = home()?;
    let mut trust = home.trust()?;
    match args.action {
        Some(Action::List { json }) => {
            let settings = home.settings()?;
            let default = settings.default_device.as_deref();
            if json || args.json {
                let list: Vec<_> = trust.devices.iter().map(|device| device_json(device, default)).collect();
                print_json(&serde_json::json!({ "devices": list }));
            } else if trust.devices.is_empty() {
                println!("no pinned device (provision one, or `jos-cli trust` a discovered one)");
            } else {
                for device in &trust.devices {
                    let mark = if default == Some(device.name.as_str()) { " (default)" } else { "" };
                    let seen = device.discovery.as_deref().unwrap_or("never seen");
                    println!("{:<16} {}  {}{}", device.name, device.fingerprint(), seen, mark);
                }
            }
            Ok(Exit::Success)
        }
        Some(Action::Remove { device }) => {
            let before = trust.devices.len();
            trust
                .devices
                .retain(|pinned| pinned.name != device && !fingerprint_matches(&pinned.fingerprint(), &device));
            if trust.devices.len() == before {
                return Err(
                    CliError::new(Exit::Input, format!("no pinned device `{device}`")).hint("see `jos-cli trust list`")
                );
            }
            home.save_trust(&trust)?;
            let mut settings = home.settings()?;
            if settings.default_device.as_deref().is_some_and(|name| trust.by_name(name).is_none()) {
                settings.default_device = None;
                home.save_settings(&settings)?;
            }
            println!("removed {} device(s)", before - trust.devices.len());
            Ok(Exit::Success)
        }
        None => {
            let targets = targets(&args.address, false, &trust)?;
            let found = discover(&targets, Duration::from_millis(args.timeout), false)?;
            for refused in &found.refused {
                eprintln!("warning: ignored a datagram: {refused}");
            }
            let chosen: Vec<_> = found
                .adverts
                .iter()
                .filter(|advert| match &args.fingerprint {
                    Some(typed) => fingerprint_matches(&advert.fingerprint(), typed),
                    None => trust.by_advert_key(&advert.advert_key).is_none(),
                })
                .cloned()
                .collect();
            if chosen.is_empty() {
                let what = match &args.fingerprint {
                    Some(typed) => format!("no device with fingerprint {typed} answered"),
                    None => format!("no untrusted device answered ({} trusted one(s) did)", found.adverts.len()),
                };
                return Err(CliError::new(Exit::Unreachable, what).hint("run `jos-cli discover` to see what answers"));
            }
            if args.fingerprint.is_some() && chosen.len() > 1 {
                return Err(CliError::new(Exit::Usage, "several devices match this fingerprint prefix")
                    .hint("type more digits"));
            }
            let session = match &args.session {
                None => None,
                Some(_) if chosen.len() > 1 => {
                    return Err(CliError::new(
                        Exit::Usage,
                        format!("--session names one device, but {} answered", chosen.len()),
                    )
                    .hint("give the device's fingerprint, or one --address"));
                }
                Some(text) => Some(
                    text.parse::<std::net::SocketAddr>()
                        .map_err(|_| {
                            CliError::new(Exit::Usage, format!("--session `{text}` is not IP:PORT"))
                                .hint("for example 127.0.0.1:4748")
                        })?
                        .to_string(),
                ),
            };
            // Keys no honest device has: a small-order advert key makes its signature worthless
            // (anyone could sign adverts for it), a low-order Noise key makes the session's
            // secrets predictable.
            for advert in &chosen {
                let weakness = match (check_signer_key(&advert.advert_key), is_strong_x25519_key(&advert.noise_key)) {
                    (Err(weakness), _) => format!("its advert key is {weakness}"),
                    (Ok(()), false) => "its Noise key is a low-order or non-canonical X25519 key".to_string(),
                    (Ok(()), true) => continue,
                };
                return Err(CliError::new(
                    Exit::Untrusted,
                    format!("not pinning `{}` at {}: {weakness}", advert.name, advert.from),
                )
                .hint("this is no jos device provisioned by jos-cli; nothing was pinned"));
            }
            let mut pinned = Vec::new();
            for advert in &chosen {
                let mut device = TrustedDevice::new(&advert.name, &advert.advert_key, &advert.noise_key);
                device.discovery = Some(advert.from.to_string());
                device.session = session.clone();
                trust.pin(device.clone());
                pinned.push(device);
            }
            home.save_trust(&trust)?;
            if args.json {
                let list: Vec<_> = pinned.iter().map(|device| device_json(device, None)).collect();
                print_json(&serde_json::json!({ "pinned": list }));
            } else {
                for device in &pinned {
                    println!(
                        "pinned `{}` at {}, fingerprint {}",
                        device.name,
                        device.discovery.as_deref().unwrap_or("?"),
                        device.fingerprint()
                    );
                    if let Some(session) = &device.session {
                        println!("sessions go to {session}");
                    }
                }
            }
            Ok(Exit::Success)
        }
    }
}
