//! Offloading one function from a program: `md5_on_device` computes the MD5 of a text on a jos
//! device instead of on this machine. The first call pushes the module (signed here with the
//! developer key in `$JOS_HOME`, as `jos-cli sign` does) and runs it; later calls run the copy the
//! device cached, by its hash, without sending the module again.
//!
//! ```text
//! jos-cli keygen && jos-cli emu start          # keys, and a device pinned as the default
//! jos-cli build guest-examples/c/md5.c --format wasm -o md5.wasm
//! cargo run -p jos-client --example offload -- md5.wasm hello world
//! ```
//!
//! Arguments: the md5 module (`guest-examples/c/md5.c` built as wasm, signed or not), then the
//! texts to hash; `--device NAME|IP[:PORT]` picks a pinned device other than the default. Prints
//! one line per text: `md5("TEXT") = DIGEST (pushed|cached, N bytes sent)`.
//!
//! `client/tests/offload_example.rs` runs [`run`] against the real device side of the protocol
//! (`jos_offload`) on loopback sockets.

use std::error::Error;
use std::io::Write;

use jos_abi::signature::sign_wasm;
use jos_client::store::Home;
use jos_client::{Client, ClientError, DeviceSpec, PushRequest, ResolvedDevice};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = Home::locate()
        .map_err(|error| -> Box<dyn Error> { error.into() })
        .and_then(|home| run(home, &args, &mut std::io::stdout()));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A device that computes MD5 digests: the module, the device, and the module's hash once the
/// device has it.
pub struct Md5Offload {
    client: Client,
    device: ResolvedDevice,
    module: Vec<u8>,
    cached: Option<[u8; 32]>,
}

/// One digest computed on the device.
pub struct Digest {
    /// The 32 hex digits.
    pub hex: String,
    /// Whether this call sent the module (the first one) or ran the cached copy.
    pub pushed: bool,
    /// Bytes this call wrote to the socket (handshake and frames).
    pub bytes_sent: u64,
}

impl Md5Offload {
    /// The device `spec` names, found and checked against the trust store in `home`, and the
    /// md5 module signed with `home`'s developer key.
    pub fn new(home: Home, spec: &DeviceSpec, module: &[u8]) -> Result<Self, Box<dyn Error>> {
        let signing = home.signing_key()?;
        let module =
            sign_wasm(module, &signing.seed, true).map_err(|error| format!("cannot sign the module: {error:?}"))?;
        let client = Client::new(home)?;
        let device = client.resolve(spec)?;
        Ok(Md5Offload { client, device, module, cached: None })
    }

    /// The offloaded function: MD5 of `text`, computed on the device.
    pub fn md5_on_device(&mut self, text: &str) -> Result<Digest, Box<dyn Error>> {
        // md5.c's input: "N STRING" hashes STRING N times.
        let input = format!("1 {text}");
        let (outcome, pushed) = match self.cached {
            // The device keeps the module: run it by hash. If it dropped it (restart, cache full),
            // push it again.
            Some(hash) => {
                match self.client.invoke(&self.device, hash, &PushRequest::wasm(&[], input.as_bytes()), &mut |_| {}) {
                    Err(ClientError::NotCached(_)) => (self.push(&input)?, true),
                    other => (other?, false),
                }
            }
            None => (self.push(&input)?, true),
        };
        self.cached = Some(outcome.hash);
        if outcome.job.status != jos_abi::wire::JobStatus::Ok {
            let status = jos_client::status_name(outcome.job.status);
            return Err(format!("the md5 job ended with {status}").into());
        }
        let hex = String::from_utf8_lossy(&outcome.job.output).trim().to_string();
        Ok(Digest { hex, pushed, bytes_sent: outcome.traffic.bytes_sent })
    }

    fn push(&self, input: &str) -> Result<jos_client::RunOutcome, ClientError> {
        self.client.push_and_run(&self.device, &PushRequest::wasm(&self.module, input.as_bytes()), &mut |_| {})
    }

    /// The device's name, from its advert.
    pub fn device_name(&self) -> &str {
        &self.device.advert.name
    }
}

/// The program: `MODULE [--device NAME|IP[:PORT]] TEXT...` with the keys and trust store in
/// `home`, the results written to `out`.
pub fn run(home: Home, args: &[String], out: &mut dyn Write) -> Result<(), Box<dyn Error>> {
    let mut spec = DeviceSpec::Default;
    let mut positional = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--device" {
            spec = DeviceSpec::Named(args.next().ok_or("--device needs a NAME or IP[:PORT]")?.clone());
        } else {
            positional.push(arg.as_str());
        }
    }
    let [module_path, texts @ ..] = positional.as_slice() else {
        return Err("usage: offload MD5.wasm [--device NAME|IP[:PORT]] TEXT...".into());
    };
    let module = std::fs::read(module_path).map_err(|error| format!("cannot read {module_path}: {error}"))?;
    let mut md5 = Md5Offload::new(home, &spec, &module)?;
    writeln!(out, "device: {}", md5.device_name())?;
    for text in texts {
        let digest = md5.md5_on_device(text)?;
        let how = if digest.pushed { "pushed" } else { "cached" };
        writeln!(out, "md5({text:?}) = {} ({how}, {} bytes sent)", digest.hex, digest.bytes_sent)?;
    }
    Ok(())
}
