//! `jos-cli emu`: the emulated default device. `start` provisions it (once), boots the kernel in
//! QEMU in the background with usb-net and loopback port forwards, waits until it answers
//! discovery and makes it the default device; `status`, `console`, `screenshot`, `stop`.
//!
//! Files in `$JOS_HOME/emu/`: `config.bin` (the device's boot configuration), `state.json`
//! (QEMU's pid, ports, sockets), `qemu.pid`, `serial.log` (the UART), `qmp.sock`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jos_client::store::{Home, Settings};
use jos_client::{discover, Target};
use serde::{Deserialize, Serialize};

use crate::exit::Exit;

use super::{home, print_json, CliError, CommandResult};

/// The name of the emulated device.
pub const EMU_NAME: &str = "emu";
/// The first UDP port the emulated device grants to jobs (its policy's job port range starts
/// here); `emu start` forwards a free host UDP port to it.
pub const JOB_PORT: u16 = jos_abi::config::PortRange::DEFAULT.first;

/// Arguments of `emu`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  jos-cli emu start                      # provision (once), boot, wait for discovery
  jos-cli emu start --machine raspi1ap --icount
  jos-cli emu status --json
  jos-cli emu console                    # the kernel's UART log so far
  jos-cli emu screenshot screen.png      # the emulated HDMI screen
  jos-cli emu stop

The kernel ELF is --kernel, else $JOS_KERNEL, else build/jos-kernel.elf in the current folder
or one above it (`cargo xtask kernel` builds it there). The emulated device trusts your signing
key with every right (wasm, native, net, screen, gpio) and lets jobs bind UDP 7000-7099; a free
host UDP port is forwarded to its port 7000 (`emu status` names it), e.g. for the echo example.")]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// `emu` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Provision the emulated device if needed, boot it in QEMU, wait until it answers.
    Start(StartArgs),
    /// Stop QEMU (nothing is left running).
    Stop {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Whether it runs, its ports, and whether it answers discovery.
    Status {
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the kernel's UART log.
    Console {
        /// Keep printing new lines until the emulator stops (Ctrl-C to leave).
        #[arg(long, short)]
        follow: bool,
    },
    /// Save the emulated HDMI screen as a PNG file.
    Screenshot {
        /// The PNG file to write.
        file: PathBuf,
    },
}

/// Arguments of `emu start`.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The emulated board.
    #[arg(long, default_value = "raspi0", value_parser = ["raspi0", "raspi1ap"])]
    pub machine: String,
    /// Guest time follows the instruction count (`-icount shift=0`): reproducible timings.
    #[arg(long)]
    pub icount: bool,
    /// The kernel ELF [default: $JOS_KERNEL or build/jos-kernel.elf].
    #[arg(long, value_name = "ELF")]
    pub kernel: Option<PathBuf>,
    /// How long to wait for the device to answer discovery, in seconds.
    #[arg(long, default_value_t = 120, value_name = "S")]
    pub wait: u64,
    /// Do not wait for discovery (the kernel boots; the device may not answer yet).
    #[arg(long)]
    pub no_wait: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What `emu start` recorded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EmuState {
    /// QEMU's process id.
    pub pid: u32,
    /// The board.
    pub machine: String,
    /// The kernel booted.
    pub kernel: PathBuf,
    /// Host UDP port forwarded to the device's discovery port 4747.
    pub discovery_port: u16,
    /// Host TCP port forwarded to the device's offload port 4748.
    pub session_port: u16,
    /// Host UDP port forwarded to the first job port (`JOB_PORT`), for network-serving jobs.
    #[serde(default)]
    pub job_port: Option<u16>,
    /// QMP socket.
    pub qmp: PathBuf,
    /// UART log.
    pub serial: PathBuf,
}

fn emu_error(message: impl Into<String>) -> CliError {
    CliError::new(Exit::Emulator, message)
}

fn state_path(home: &Home) -> PathBuf {
    home.emu_dir().join("state.json")
}

fn load_state(home: &Home) -> Option<EmuState> {
    serde_json::from_slice(&std::fs::read(state_path(home)).ok()?).ok()
}

/// Whether process `pid` exists and is QEMU.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| cmdline.contains("qemu-system-arm"))
}

fn free_port(udp: bool) -> Result<u16, CliError> {
    let local = (Ipv4Addr::LOCALHOST, 0);
    let port = if udp {
        UdpSocket::bind(local).and_then(|socket| socket.local_addr())
    } else {
        TcpListener::bind(local).and_then(|socket| socket.local_addr())
    };
    port.map(|address| address.port()).map_err(|error| emu_error(format!("no free port: {error}")))
}

fn find_kernel(given: Option<&Path>) -> Result<PathBuf, CliError> {
    if let Some(path) = given.map(PathBuf::from).or_else(|| std::env::var_os("JOS_KERNEL").map(PathBuf::from)) {
        return if path.exists() {
            Ok(path)
        } else {
            Err(emu_error(format!("kernel {} does not exist", path.display()))
                .hint("build it with `cargo xtask kernel`"))
        };
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(current) = std::env::current_dir() {
        roots.extend(current.ancestors().map(Path::to_path_buf));
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().map(Path::to_path_buf));
    }
    roots.iter().map(|root| root.join("build/jos-kernel.elf")).find(|path| path.exists()).ok_or_else(|| {
        emu_error("no kernel found (build/jos-kernel.elf)")
            .hint("build it with `cargo xtask kernel` in the jos repository, or pass --kernel ELF")
    })
}

/// Sends one QMP command; returns the reply line.
fn qmp(socket: &Path, command: &str) -> Result<String, CliError> {
    let failed = |error: std::io::Error| emu_error(format!("QMP {}: {error}", socket.display()));
    let stream = UnixStream::connect(socket).map_err(failed)?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(failed)?;
    let mut reader = BufReader::new(stream.try_clone().map_err(failed)?);
    let mut writer = stream;
    let mut line = String::new();
    reader.read_line(&mut line).map_err(failed)?;
    writer.write_all(b"{\"execute\":\"qmp_capabilities\"}\n").map_err(failed)?;
    line.clear();
    reader.read_line(&mut line).map_err(failed)?;
    writer.write_all(command.as_bytes()).and_then(|()| writer.write_all(b"\n")).map_err(failed)?;
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(failed)? == 0 {
            return Ok(String::new());
        }
        if line.contains("\"return\"") || line.contains("\"error\"") {
            return Ok(line);
        }
    }
}

fn running_state(home: &Home) -> Result<EmuState, CliError> {
    match load_state(home) {
        Some(state) if alive(state.pid) => Ok(state),
        _ => Err(emu_error("the emulator is not running").hint("start it with `jos-cli emu start`")),
    }
}

/// The QMP socket path: in `emu/`, or in the temp folder when that path is too long for a Unix
/// socket (108 bytes).
fn qmp_path(home: &Home) -> PathBuf {
    let path = home.emu_dir().join("qmp.sock");
    if path.as_os_str().len() < 100 {
        return path;
    }
    let digest = jos_abi::signature::sha256(path.as_os_str().as_encoded_bytes());
    std::env::temp_dir().join(format!("jos-qmp-{}.sock", hex::encode(&digest[..8])))
}

fn wait_for_discovery(state: &EmuState, advert_key: Option<[u8; 32]>, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let target = Target::Unicast(SocketAddr::from((Ipv4Addr::LOCALHOST, state.discovery_port)));
    while Instant::now() < deadline {
        if !alive(state.pid) {
            return false;
        }
        if let Ok(found) = discover(&[target], Duration::from_millis(500), true) {
            if found.adverts.iter().any(|advert| Some(advert.advert_key) == advert_key) {
                return true;
            }
        }
    }
    false
}

fn stop(home: &Home) -> Result<bool, CliError> {
    let Some(state) = load_state(home) else { return Ok(false) };
    let mut was_running = false;
    if alive(state.pid) {
        was_running = true;
        let _ = qmp(&state.qmp, "{\"execute\":\"quit\"}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(state.pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if alive(state.pid) {
            let _ = Command::new("kill").args(["-9", &state.pid.to_string()]).status();
            std::thread::sleep(Duration::from_millis(200));
        }
        if alive(state.pid) {
            return Err(emu_error(format!("QEMU (pid {}) does not stop", state.pid)));
        }
    }
    let _ = std::fs::remove_file(state_path(home));
    let _ = std::fs::remove_file(home.emu_dir().join("qemu.pid"));
    let _ = std::fs::remove_file(&state.qmp);
    Ok(was_running)
}

fn start(home: &Home, args: &StartArgs) -> CommandResult {
    if let Some(state) = load_state(home) {
        if alive(state.pid) {
            return Err(CliError::new(Exit::Exists, format!("the emulator runs already (pid {})", state.pid))
                .hint("`jos-cli emu stop` first, or use it as it is"));
        }
        stop(home)?;
    }
    let kernel = find_kernel(args.kernel.as_deref())?;
    if home.client_key().is_err() {
        home.write_new_keys()?;
        eprintln!("created keys in {} (no keys were there)", home.root().display());
    }
    let emu_dir = home.emu_dir();
    let config_path = emu_dir.join("config.bin");
    let trust = home.trust()?;
    // A configuration this kernel cannot read (missing, or written by an older jos-cli) is
    // provisioned again.
    let readable =
        std::fs::read(&config_path).is_ok_and(|bytes| jos_abi::config::Config::new_checked(&bytes[..]).is_ok());
    if !readable || trust.by_name(EMU_NAME).is_none() {
        let provision_args = super::provision::Options {
            name: Some(EMU_NAME.into()),
            dhcp: true,
            static_address: None,
            gateway: None,
            trust_client: Vec::new(),
            // The developer's own emulator: their signing key gets every right.
            signer: vec!["self:wasm,native,net,screen,gpio".into()],
            job_ports: format!("{JOB_PORT}-{}", jos_abi::config::PortRange::DEFAULT.last),
            max_module: 4 * 1024 * 1024,
            max_fuel: 10_000_000_000,
            max_memory: 16 * 1024 * 1024,
            max_deadline_ms: 60_000,
            queue: 8,
            no_default: false,
            broker: Default::default(),
        };
        let made = super::provision::provision(home, &provision_args)?;
        jos_client::store::write_file(&config_path, &made.config, true)?;
        eprintln!("provisioned the emulated device `{EMU_NAME}` ({})", made.device.fingerprint());
    }
    let discovery_port = free_port(true)?;
    let session_port = free_port(false)?;
    let job_port = free_port(true)?;
    let serial = emu_dir.join("serial.log");
    let pidfile = emu_dir.join("qemu.pid");
    let qmp_socket = qmp_path(home);
    let _ = std::fs::remove_file(&pidfile);
    let _ = std::fs::remove_file(&qmp_socket);
    let netdev = format!(
        "user,id=n0,hostfwd=udp:127.0.0.1:{discovery_port}-:4747,hostfwd=tcp:127.0.0.1:{session_port}-:4748,hostfwd=udp:127.0.0.1:{job_port}-:{JOB_PORT}"
    );
    let mut command = Command::new("qemu-system-arm");
    command
        .args(["-M", &args.machine, "-display", "none", "-monitor", "none", "-daemonize"])
        .arg("-kernel")
        .arg(&kernel)
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", qmp_socket.display()))
        .arg("-pidfile")
        .arg(&pidfile)
        .arg("-device")
        .arg(format!("loader,file={},addr=0x01F00000,force-raw=on", config_path.display()))
        .args(["-netdev", &netdev, "-device", "usb-net,netdev=n0,port=1"]);
    if args.icount {
        command.args(["-icount", "shift=0"]);
    }
    let output =
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).output().map_err(|error| {
            emu_error(format!("cannot run qemu-system-arm: {error}")).hint("install QEMU (`scripts/setup.sh` does)")
        })?;
    if !output.status.success() {
        return Err(emu_error(format!("QEMU failed: {}", String::from_utf8_lossy(&output.stderr).trim())));
    }
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .ok_or_else(|| emu_error("QEMU wrote no pidfile"))?;
    let state = EmuState {
        pid,
        machine: args.machine.clone(),
        kernel: kernel.clone(),
        discovery_port,
        session_port,
        job_port: Some(job_port),
        qmp: qmp_socket,
        serial: serial.clone(),
    };
    let text = serde_json::to_string_pretty(&state).unwrap_or_default();
    jos_client::store::write_file(&state_path(home), text.as_bytes(), false)?;

    let mut trust = home.trust()?;
    let mut record = trust.by_name(EMU_NAME).cloned().ok_or_else(|| emu_error("the emulated device is not pinned"))?;
    record.discovery = Some(format!("127.0.0.1:{discovery_port}"));
    record.session = Some(format!("127.0.0.1:{session_port}"));
    let advert_key = record.advert_key();
    trust.pin(record);
    home.save_trust(&trust)?;
    home.save_settings(&Settings { default_device: Some(EMU_NAME.into()) })?;

    let answered = !args.no_wait && wait_for_discovery(&state, advert_key, Duration::from_secs(args.wait));
    if !args.no_wait && !answered {
        let log = std::fs::read_to_string(&serial).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect();
        stop(home)?;
        return Err(emu_error(format!(
            "the emulated device did not answer discovery within {} s; last console lines:\n{}",
            args.wait,
            tail.join("\n")
        ))
        .hint("the kernel needs the network and offload services; see `docs/status.md`"));
    }
    if args.json {
        print_json(&serde_json::json!({
            "pid": pid,
            "machine": args.machine,
            "kernel": kernel.display().to_string(),
            "discovery": format!("127.0.0.1:{discovery_port}"),
            "session": format!("127.0.0.1:{session_port}"),
            "job_port": { "host": format!("127.0.0.1:{job_port}"), "device": JOB_PORT },
            "answered": answered,
        }));
    } else {
        println!(
            "emulator running ({}, pid {pid}); device `{EMU_NAME}` {} at 127.0.0.1:{discovery_port} (UDP) / :{session_port} (TCP); job port {JOB_PORT} at 127.0.0.1:{job_port} (UDP)",
            args.machine,
            if answered { "answers" } else { "booting" }
        );
    }
    Ok(Exit::Success)
}

/// Decodes a binary PPM (P6, maxval 255) into width, height, RGB.
fn decode_ppm(bytes: &[u8]) -> Option<(u32, u32, &[u8])> {
    let mut fields = Vec::new();
    let mut index = 0;
    while fields.len() < 4 {
        while bytes.get(index)?.is_ascii_whitespace() {
            index += 1;
        }
        let start = index;
        while !bytes.get(index)?.is_ascii_whitespace() {
            index += 1;
        }
        fields.push(std::str::from_utf8(&bytes[start..index]).ok()?);
    }
    let (width, height): (u32, u32) = (fields[1].parse().ok()?, fields[2].parse().ok()?);
    if fields[0] != "P6" || fields[3] != "255" {
        return None;
    }
    let data = bytes.get(index + 1..)?;
    let len = (width as usize).checked_mul(height as usize)?.checked_mul(3)?;
    Some((width, height, data.get(..len)?))
}

fn screenshot(home: &Home, file: &Path) -> CommandResult {
    let state = running_state(home)?;
    let ppm = home.emu_dir().join("screen.ppm");
    let reply = qmp(
        &state.qmp,
        &format!("{{\"execute\":\"screendump\",\"arguments\":{{\"filename\":\"{}\"}}}}", ppm.display()),
    )?;
    if reply.contains("\"error\"") {
        return Err(emu_error(format!("QEMU refused the screendump: {}", reply.trim())));
    }
    let bytes = std::fs::read(&ppm).map_err(|error| emu_error(format!("no screendump: {error}")))?;
    let _ = std::fs::remove_file(&ppm);
    let (width, height, rgb) = decode_ppm(&bytes).ok_or_else(|| emu_error("QEMU's screendump is not a P6 PPM"))?;
    let out = std::fs::File::create(file)
        .map_err(|error| CliError::new(Exit::Failure, format!("cannot write {}: {error}", file.display())))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(out), width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut writer| writer.write_image_data(rgb))
        .map_err(|error| CliError::new(Exit::Failure, format!("cannot write {}: {error}", file.display())))?;
    println!("saved the screen ({width}x{height}) to {}", file.display());
    Ok(Exit::Success)
}

fn console(home: &Home, follow: bool) -> CommandResult {
    let path = home.emu_dir().join("serial.log");
    let mut file = std::fs::File::open(&path).map_err(|_| {
        emu_error("no console log: the emulator has not been started").hint("start it with `jos-cli emu start`")
    })?;
    let mut buffer = Vec::new();
    let mut stdout = std::io::stdout();
    loop {
        buffer.clear();
        file.read_to_end(&mut buffer).map_err(|error| emu_error(error.to_string()))?;
        let text = String::from_utf8_lossy(&buffer).replace('\r', "");
        stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).ok();
        if !follow || !load_state(home).is_some_and(|state| alive(state.pid)) {
            return Ok(Exit::Success);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `emu`.
pub fn run(args: Args) -> CommandResult {
    let home = home()?;
    match args.action {
        Action::Start(start_args) => start(&home, &start_args),
        Action::Stop { json } => {
            let was_running = stop(&home)?;
            if json {
                print_json(&serde_json::json!({ "stopped": was_running }));
            } else if was_running {
                println!("emulator stopped");
            } else {
                println!("the emulator was not running");
            }
            Ok(Exit::Success)
        }
        Action::Status { json } => {
            let state = load_state(&home).filter(|state| alive(state.pid));
            let answers = state.as_ref().is_some_and(|state| {
                let key =
                    home.trust().ok().and_then(|trust| trust.by_name(EMU_NAME).and_then(|device| device.advert_key()));
                wait_for_discovery(state, key, Duration::from_millis(600))
            });
            if json {
                print_json(&serde_json::json!({
                    "running": state.is_some(),
                    "pid": state.as_ref().map(|state| state.pid),
                    "machine": state.as_ref().map(|state| state.machine.clone()),
                    "discovery": state.as_ref().map(|state| format!("127.0.0.1:{}", state.discovery_port)),
                    "session": state.as_ref().map(|state| format!("127.0.0.1:{}", state.session_port)),
                    "job_port": state.as_ref().and_then(|state| state.job_port).map(|port| serde_json::json!({ "host": format!("127.0.0.1:{port}"), "device": JOB_PORT })),
                    "answers": answers,
                }));
            } else {
                match &state {
                    Some(state) => println!(
                        "running: {} pid {}, discovery 127.0.0.1:{}, session 127.0.0.1:{}{}, {}",
                        state.machine,
                        state.pid,
                        state.discovery_port,
                        state.session_port,
                        state
                            .job_port
                            .map(|port| format!(", job port {JOB_PORT} at 127.0.0.1:{port}"))
                            .unwrap_or_default(),
                        if answers { "answers discovery" } else { "does not answer discovery" }
                    ),
                    None => println!("not running"),
                }
            }
            Ok(if state.is_some() { Exit::Success } else { Exit::Emulator })
        }
        Action::Console { follow } => console(&home, follow),
        Action::Screenshot { file } => screenshot(&home, &file),
    }
}
