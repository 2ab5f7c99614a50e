//! MD5 digests computed by a fleet of jos devices behind an MQTT 5 broker: one job per text,
//! spread by the broker over the devices that are free, each result checked as coming from a
//! pinned device, exactly one result per text (docs/fleet.md).
//!
//! ```text
//! jos-cli provision --name rack-3 --broker 192.168.7.1 --fleet lab -o rack-3.bin   # and more boards
//! jos-cli build guest-examples/c/md5.c --format wasm -o md5.wasm
//! cargo run -p jos-client --example fleet -- 192.168.7.1:1883 lab md5.wasm hello world
//! ```
//!
//! Arguments: the broker `HOST:PORT`, the fleet's name, the md5 module (signed or not: it is
//! signed here with `$JOS_HOME/signing.key` when it is not), then the texts. Prints the fleet's
//! devices, then one line per text: `md5("TEXT") = DIGEST (DEVICE, attempt N)`.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use jos_client::fleet::{FleetClient, FleetKeys, FleetProgress, FleetSettings, RunOptions, Task};
use jos_client::store::Home;

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [broker, fleet, module, texts @ ..] = args.as_slice() else {
        return Err("usage: fleet HOST:PORT FLEET MODULE.wasm TEXT...".into());
    };
    let (host, port) = broker.rsplit_once(':').ok_or("the broker is HOST:PORT")?;
    let home = Home::locate()?;
    let keys = FleetKeys::from_home(&home, fleet)?;
    let mut bytes = std::fs::read(module)?;
    if jos_abi::signature::split_wasm(&bytes).is_err() {
        bytes = jos_abi::signature::sign_wasm(&bytes, &home.signing_key()?.seed, true)
            .map_err(|error| format!("sign: {error}"))?;
    }
    let module: Arc<[u8]> = Arc::from(bytes.as_slice());

    let mut client = FleetClient::connect(&FleetSettings::new(host, port.parse()?, fleet))?;
    for device in client.statuses(Duration::from_secs(2)) {
        println!("device {} ({}): {} jobs done", device.name, device.state.name(), device.jobs_done);
    }
    let tasks: Vec<Task> = texts.iter().map(|text| Task::wasm(module.clone(), text.as_bytes())).collect();
    let options = RunOptions { job_timeout: Duration::from_secs(30), ..RunOptions::default() };
    let run = client.run(&tasks, &keys, &options, &mut |progress| {
        if let FleetProgress::Republished { task, attempt } = progress {
            eprintln!("`{}`: no result in time, published again (attempt {attempt})", texts[task]);
        }
    })?;
    for (text, result) in texts.iter().zip(&run.results) {
        match &result.outcome {
            Ok(job) => println!(
                "md5({text:?}) = {} ({}, attempt {})",
                String::from_utf8_lossy(&job.output).trim(),
                result.device,
                result.attempts
            ),
            Err(error) => println!("md5({text:?}) failed: {error}"),
        }
    }
    Ok(())
}
