//! `jos-cli keygen`: the developer signing key (Ed25519) and the client key (X25519).

use crate::exit::Exit;

use super::{home, print_json, CliError, CommandResult};

/// Arguments of `keygen`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  jos-cli keygen                 # creates the keys in $JOS_HOME (default ~/.config/jos)
  JOS_HOME=/tmp/jos jos-cli keygen --json
  jos-cli keygen --force         # replaces existing keys (devices must be re-provisioned)

Files: signing.key/.pub (Ed25519: signs modules and blobs), client.key/.pub (X25519: the Noise
key devices must trust). Secret files are written with mode 0600.")]
pub struct Args {
    /// Replace existing keys (devices provisioned with the old ones will refuse this client).
    #[arg(long)]
    pub force: bool,
    /// Print the public keys as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `keygen`.
pub fn run(args: Args) -> CommandResult {
    let home = home()?;
    let existing: Vec<_> =
        [home.signing_key_path(), home.client_key_path()].into_iter().filter(|path| path.exists()).collect();
    if !existing.is_empty() && !args.force {
        let names: Vec<String> = existing.iter().map(|path| path.display().to_string()).collect();
        return Err(CliError::new(Exit::Exists, format!("keys exist already: {}", names.join(", "))).hint(
            "keep them, or pass --force to replace them (devices trusting the old keys must be re-provisioned)",
        ));
    }
    let (signing, client) = home.write_new_keys()?;
    if args.json {
        print_json(&serde_json::json!({
            "home": home.root().display().to_string(),
            "signing_public_key": hex::encode(signing.public),
            "client_public_key": hex::encode(client.public),
            "key_id": hex::encode(jos_abi::signature::key_id(&signing.public)),
        }));
    } else {
        println!("wrote keys to {}", home.root().display());
        println!("  signing key (Ed25519): {}", hex::encode(signing.public));
        println!("  client key  (X25519):  {}", hex::encode(client.public));
    }
    Ok(Exit::Success)
}
