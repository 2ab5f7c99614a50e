//! `jos-cli discover`: probe for devices and list their adverts, trusted or not.

use std::time::Duration;

use jos_abi::wire::discovery::DISCOVERY_PORT;
use jos_client::store::{Home, TrustStore};
use jos_client::{discover, parse_address, DeviceAdvert, Target};

use crate::exit::Exit;

use super::{error_json, home, print_json, CliError, CommandResult};

/// Arguments of `discover`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  jos-cli discover                          # broadcast, plus the pinned devices' last addresses
  jos-cli discover --address 192.168.7.2    # unicast probe (port 4747)
  jos-cli discover --address 127.0.0.1:14747 --json

Each line shows whether the device's key is pinned in the trust store. Pin a new device with
`jos-cli trust FINGERPRINT` after comparing the fingerprint with the device's screen.
Exits 8 (unreachable) when no device answered.")]
pub struct Args {
    /// Probe this address (IP or IP:PORT, repeatable) instead of broadcasting.
    #[arg(long, value_name = "IP[:PORT]")]
    pub address: Vec<String>,
    /// Broadcast as well (the default when no --address is given).
    #[arg(long)]
    pub broadcast: bool,
    /// How long to wait for adverts, in milliseconds.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub timeout: u64,
    /// Print the adverts as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The probe targets for a list of `--address` values, `--broadcast`, and the pinned devices'
/// last known addresses.
pub fn targets(addresses: &[String], broadcast: bool, trust: &TrustStore) -> Result<Vec<Target>, CliError> {
    let mut targets = Vec::new();
    for text in addresses {
        let address = parse_address(text, DISCOVERY_PORT).ok_or_else(|| {
            CliError::new(Exit::Usage, format!("`{text}` is not an address"))
                .hint("write IP or IP:PORT, e.g. 127.0.0.1:4747")
        })?;
        targets.push(Target::Unicast(address));
    }
    if addresses.is_empty() {
        for device in &trust.devices {
            if let Some(address) = device.discovery.as_deref().and_then(|text| parse_address(text, DISCOVERY_PORT)) {
                targets.push(Target::Unicast(address));
            }
        }
    }
    if broadcast || addresses.is_empty() {
        targets.push(Target::Broadcast);
    }
    Ok(targets)
}

/// The JSON form of an advert.
pub fn advert_json(advert: &DeviceAdvert, trust: &TrustStore) -> serde_json::Value {
    let pinned = trust.by_advert_key(&advert.advert_key);
    serde_json::json!({
        "name": advert.name,
        "address": advert.from.to_string(),
        "port": advert.port,
        "abi_version": format!("{}.{}", advert.abi_version.major, advert.abi_version.minor),
        "formats": advert.format_names(),
        "state": if advert.busy { "busy" } else { "idle" },
        "queued": advert.queued,
        "free_memory": advert.free_memory,
        "fingerprint": advert.fingerprint(),
        "trusted": pinned.is_some_and(|device| device.noise_key() == Some(advert.noise_key)),
        "pinned_name": pinned.map(|device| device.name.clone()),
    })
}

/// Runs `discover`.
pub fn run(args: Args) -> CommandResult {
    let home: Home = home()?;
    let trust = home.trust()?;
    let targets = targets(&args.address, args.broadcast, &trust)?;
    let found = discover(&targets, Duration::from_millis(args.timeout), false)?;
    for refused in &found.refused {
        eprintln!("warning: ignored a datagram: {refused}");
    }
    let failure = found.adverts.is_empty().then(|| {
        CliError::new(Exit::Unreachable, format!("no device answered within {} ms", args.timeout))
            .hint("check that the device is up and on this network, or probe it with --address IP")
    });
    if args.json {
        // One object: the (empty) list, and the error when no device answered.
        let list: Vec<_> = found.adverts.iter().map(|advert| advert_json(advert, &trust)).collect();
        let mut value = serde_json::json!({ "devices": list });
        if let Some(error) = &failure {
            value["error"] = error_json(error.exit, &error.message, error.hint.as_deref())["error"].take();
            print_json(&value);
            return Ok(error.report());
        }
        print_json(&value);
    } else if !found.adverts.is_empty() {
        println!(
            "{:<16} {:<22} {:<5} {:<19} {:<10} {:>9}  {:<9} fingerprint",
            "name", "address", "abi", "formats", "load", "free KiB", "trust"
        );
        for advert in &found.adverts {
            let json = advert_json(advert, &trust);
            let load = if advert.busy { format!("busy+{}", advert.queued) } else { "idle".into() };
            println!(
                "{:<16} {:<22} {:<5} {:<19} {:<10} {:>9}  {:<9} {}",
                advert.name,
                advert.from,
                json["abi_version"].as_str().unwrap_or(""),
                advert.format_names().join(","),
                load,
                advert.free_memory / 1024,
                if json["trusted"] == true { "trusted" } else { "UNTRUSTED" },
                advert.fingerprint()
            );
        }
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(Exit::Success),
    }
}
