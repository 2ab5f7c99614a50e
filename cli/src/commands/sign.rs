//! `jos-cli sign` and `jos-cli verify`: Ed25519 signatures in the WebAssembly tool-conventions
//! format (wasm `signature` section, compatible with `wasmsign2`) and the native blob trailer.

use std::path::{Path, PathBuf};

use jos_abi::blob::Blob;
use jos_abi::signature::{self, SignerRights, TrustedSigner};
use jos_client::store::{read_key_file, warn_if_exposed, Home, Key, SigningKey};

use crate::exit::Exit;

use super::{home, is_blob, is_wasm, print_json, read_input, CliError, CommandResult};

/// Arguments of `sign`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  jos-cli sign md5.wasm                    # in place, with $JOS_HOME/signing.key
  jos-cli sign md5.blob -o md5.signed.blob
  jos-cli sign md5.wasm --key other.key    # a jos key file or a wasmsign2 secret key file

wasm modules get a `signature` custom section first (replacing an old one), in the format
wasmsign2 reads; native blobs get the signature trailer after their signed part.")]
pub struct Args {
    /// The wasm module or native blob.
    pub file: PathBuf,
    /// Where to write the signed file [default: FILE itself].
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// The signing key [default: $JOS_HOME/signing.key].
    #[arg(long, value_name = "KEYFILE")]
    pub key: Option<PathBuf>,
    /// Leave the key id out of the signature.
    #[arg(long)]
    pub no_key_id: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  jos-cli verify md5.wasm                       # against $JOS_HOME/signing.pub
  jos-cli verify md5.wasm --key alice.pub --key bob.pub --json

Keys: jos .pub files (64 hex digits) or wasmsign2 public key files. Exits 0 when a given key
signed exactly this content, 23 otherwise.")]
pub struct VerifyArgs {
    /// The wasm module or native blob.
    pub file: PathBuf,
    /// A trusted public key (repeatable) [default: $JOS_HOME/signing.pub].
    #[arg(long, value_name = "KEYFILE")]
    pub key: Vec<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Reads a secret key: a jos key file (hex seed) or a wasmsign2 secret key (0x81, seed, public);
/// warns if others may read the file.
pub fn read_secret_key(path: &Path) -> Result<SigningKey, CliError> {
    let bytes = read_input(path)?;
    let seed: Key = if bytes.len() == 65 && bytes[0] == 0x81 {
        bytes[1..33].try_into().map_err(|_| CliError::new(Exit::Input, "short key"))?
    } else {
        read_key_file(path).map_err(|error| CliError::new(Exit::Input, error.to_string()))?
    };
    warn_if_exposed(path);
    Ok(SigningKey { seed, public: signature::public_key(&seed) })
}

/// Reads a public key: a jos .pub file (hex) or a wasmsign2 public key (0x01, key).
pub fn read_public_key(path: &Path) -> Result<Key, CliError> {
    let bytes = read_input(path)?;
    if bytes.len() == 33 && bytes[0] == 0x01 {
        return bytes[1..].try_into().map_err(|_| CliError::new(Exit::Input, "short key"));
    }
    read_key_file(path).map_err(|error| {
        CliError::new(Exit::Input, error.to_string())
            .hint("give a .pub file from `jos-cli keygen` or a wasmsign2 public key")
    })
}

/// The default signing key, with a hint when there is none.
pub fn default_signing_key(home: &Home) -> Result<SigningKey, CliError> {
    home.signing_key().map_err(|error| CliError::from(error).hint("run `jos-cli keygen` to create a signing key"))
}

/// Signs wasm or blob bytes.
pub fn sign_bytes(bytes: &[u8], key: &SigningKey, with_key_id: bool) -> Result<Vec<u8>, CliError> {
    if is_wasm(bytes) {
        signature::sign_wasm(bytes, &key.seed, with_key_id)
            .map_err(|error| CliError::new(Exit::Input, format!("cannot sign this module: {error}")))
    } else if is_blob(bytes) {
        signature::sign_blob(bytes, &key.seed, with_key_id)
            .map_err(|error| CliError::new(Exit::Input, format!("cannot sign this blob: {error}")))
    } else {
        Err(CliError::new(Exit::Input, "neither a wasm module nor a jos native blob")
            .hint("build one with `jos-cli build SRC --format wasm|native`"))
    }
}

/// Whether the file carries a signature at all (any key).
pub fn is_signed(bytes: &[u8]) -> bool {
    if is_wasm(bytes) {
        signature::split_wasm(bytes).is_ok_and(|module| module.payload.has_signature())
    } else if is_blob(bytes) {
        Blob::new_checked(bytes).is_ok_and(|blob| !blob.trailer().is_empty())
    } else {
        false
    }
}

/// Verifies against keys (each given both rights); the error's message names the failure.
pub fn verify_bytes(bytes: &[u8], keys: &[Key]) -> Result<signature::Verified, CliError> {
    let signers: Vec<TrustedSigner> =
        keys.iter().map(|key| TrustedSigner { public_key: *key, rights: SignerRights::ALL }).collect();
    let result = if is_wasm(bytes) {
        signature::verify_wasm(bytes, &signers)
    } else if is_blob(bytes) {
        let blob = Blob::new_checked(bytes)
            .map_err(|error| CliError::new(Exit::Input, format!("not a valid jos blob: {error}")))?;
        signature::verify_blob(&blob, &signers)
    } else {
        return Err(CliError::new(Exit::Input, "neither a wasm module nor a jos native blob"));
    };
    result.map_err(|error| {
        CliError::new(Exit::BadSignature, format!("signature check failed: {error}"))
            .hint("sign it with `jos-cli sign FILE`, or pass the signer's key with --key")
    })
}

/// Runs `sign`.
pub fn run(args: Args) -> CommandResult {
    let bytes = read_input(&args.file)?;
    let key = match &args.key {
        Some(path) => read_secret_key(path)?,
        None => default_signing_key(&home()?)?,
    };
    let signed = sign_bytes(&bytes, &key, !args.no_key_id)?;
    let output = args.output.unwrap_or(args.file);
    std::fs::write(&output, &signed)
        .map_err(|error| CliError::new(Exit::Failure, format!("cannot write {}: {error}", output.display())))?;
    let kind = if is_wasm(&signed) { "wasm" } else { "native" };
    if args.json {
        print_json(&serde_json::json!({
            "output": output.display().to_string(),
            "format": kind,
            "bytes": signed.len(),
            "signer": hex::encode(key.public),
            "key_id": hex::encode(signature::key_id(&key.public)),
        }));
    } else {
        println!("signed {} ({kind}, {} bytes) with {}", output.display(), signed.len(), hex::encode(key.public));
    }
    Ok(Exit::Success)
}

/// Runs `verify`.
pub fn run_verify(args: VerifyArgs) -> CommandResult {
    let bytes = read_input(&args.file)?;
    let keys = if args.key.is_empty() {
        vec![default_signing_key(&home()?)?.public]
    } else {
        args.key.iter().map(|path| read_public_key(path)).collect::<Result<_, _>>()?
    };
    match verify_bytes(&bytes, &keys) {
        Ok(verified) => {
            if args.json {
                print_json(&serde_json::json!({
                    "valid": true,
                    "signer": hex::encode(verified.public_key),
                    "content_sha256": hex::encode(verified.content_hash),
                }));
            } else {
                println!("{}: signature valid, signer {}", args.file.display(), hex::encode(verified.public_key));
            }
            Ok(Exit::Success)
        }
        Err(error) if args.json => {
            print_json(&serde_json::json!({ "valid": false, "error": error.message }));
            Ok(error.exit)
        }
        Err(error) => Err(error),
    }
}
