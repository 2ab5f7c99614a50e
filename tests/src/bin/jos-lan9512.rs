//! Serves an emulated USB Ethernet device to QEMU's `usb-redir` over a Unix socket, with a TAP
//! device as its Ethernet wire.
//!
//! ```text
//! jos-lan9512 --socket PATH --tap NAME [--device lan9512|ecm] [--trace PATH] [--rx-crc-errors N]
//! ```
//!
//! `lan9512` is the SMSC LAN9512 Ethernet function (`jos_tests::lan9512`), `ecm` a
//! two-configuration adapter whose second configuration is CDC-ECM (`jos_tests::ecm_model`).
//! It listens on PATH, serves the first connection (QEMU's `-chardev socket,path=PATH`) until
//! QEMU closes it, writes the trace (register writes, events, a closing summary) to the trace
//! file, and exits. `--rx-crc-errors N` marks every N-th frame the LAN9512 receives from the
//! wire as damaged (RX status error summary and CRC error), to test a driver's error path.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::sync::mpsc;

use clap::Parser;

use jos_tests::ecm_model::EcmAdapter;
use jos_tests::lan9512::Lan9512;
use jos_tests::netns::open_tap;
use jos_tests::usbredir::{self, Event};

/// Serves an emulated USB Ethernet device to QEMU's usb-redir over a Unix socket, with a TAP
/// device as its Ethernet wire.
#[derive(Debug, Parser)]
#[command(name = "jos-lan9512")]
struct Settings {
    /// The Unix socket to listen on (QEMU's `-chardev socket,path=PATH`).
    #[arg(long, value_name = "PATH")]
    socket: String,
    /// The TAP device that is the Ethernet wire.
    #[arg(long, value_name = "NAME")]
    tap: String,
    /// The device to emulate.
    #[arg(long, default_value = "lan9512", value_parser = ["lan9512", "ecm"])]
    device: String,
    /// Where to write the trace [default: stderr].
    #[arg(long, value_name = "PATH")]
    trace: Option<String>,
    /// Mark every N-th frame the LAN9512 receives from the wire as damaged (0: none).
    #[arg(long, default_value_t = 0, value_name = "N")]
    rx_crc_errors: u64,
}

fn run(settings: Settings) -> Result<(), String> {
    let trace: Box<dyn Write + Send> = match &settings.trace {
        Some(path) => Box::new(std::fs::File::create(path).map_err(|e| format!("{path}: {e}"))?),
        None => Box::new(std::io::stderr()),
    };
    let tap = open_tap(&settings.tap).map_err(|e| format!("TAP {}: {e}", settings.tap))?;
    let _ = std::fs::remove_file(&settings.socket);
    let listener = UnixListener::bind(&settings.socket).map_err(|e| format!("{}: {e}", settings.socket))?;
    let (stream, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    let (sender, events) = mpsc::channel();
    usbredir::spawn_guest_reader(stream.try_clone().map_err(|e| e.to_string())?, sender.clone());
    let mut tap_reader = tap.try_clone().map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        let mut buffer = vec![0u8; 65536];
        while let Ok(n) = tap_reader.read(&mut buffer) {
            if n == 0 || sender.send(Event::Frame(buffer[..n].to_vec())).is_err() {
                return;
            }
        }
    });
    let mut tap_writer = tap;
    let mut wire = |frame: &[u8]| {
        let _ = tap_writer.write_all(frame);
    };
    let mut guest = stream;
    match settings.device.as_str() {
        "lan9512" => {
            let mut device = Lan9512::new(trace);
            device.inject_crc_errors(settings.rx_crc_errors);
            let result = usbredir::serve(&mut device, 64, "jos-tests LAN9512 model", &events, &mut guest, &mut wire);
            device.trace_summary();
            result.map_err(|e| e.to_string())
        }
        "ecm" => {
            let mut device = EcmAdapter::new([0x02, 0x6a, 0x6f, 0x73, 0x00, 0x01]);
            let result =
                usbredir::serve(&mut device, 64, "jos-tests ECM adapter model", &events, &mut guest, &mut wire);
            let mut trace = trace;
            let _ = writeln!(
                trace,
                "summary configuration {} filter {:?} dropped {}",
                usbredir::Device::configuration(&device),
                device.filter(),
                device.dropped
            );
            result.map_err(|e| e.to_string())
        }
        other => Err(format!("unknown device {other} (lan9512, ecm)")),
    }
}

fn main() {
    if let Err(e) = run(Settings::parse()) {
        eprintln!("jos-lan9512: {e}");
        std::process::exit(1);
    }
}
