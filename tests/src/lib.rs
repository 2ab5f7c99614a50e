//! A QEMU harness for the jos kernel: boot a kernel ELF on an emulated BCM2835, read its UART,
//! wait for text with a deadline, take screenshots through QMP, and always kill QEMU on drop.
//!
//! Every wait has a timeout, and [`Qemu`]'s `Drop` kills the process even when a test panics, so
//! no test can hang CI or leave QEMU running.

pub mod cli;
pub mod config;
pub mod ecm_model;
pub mod fleet_lab;
pub mod lan9512;
pub mod netns;
pub mod usb_model;
pub mod usbredir;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub mod link;

/// The emulated boards jos supports.
pub const MACHINES: &[&str] = &["raspi0", "raspi1ap"];

/// A free port on 127.0.0.1 (UDP or TCP) for a QEMU `hostfwd`.
pub fn free_port(udp: bool) -> u16 {
    if udp {
        std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }
}

/// Writes a boot configuration image to a temporary file named after this process and `tag`,
/// for QEMU's `loader` device to place at `jos_abi::config::CONFIG_ADDRESS`.
pub fn write_config(repr: &jos_abi::config::ConfigRepr<'_>, tag: &str) -> PathBuf {
    write_config_with(repr, &jos_abi::config::Sections::default(), tag)
}

/// [`write_config`] with optional `sections` after the policy (the fleet's broker settings).
pub fn write_config_with(
    repr: &jos_abi::config::ConfigRepr<'_>,
    sections: &jos_abi::config::Sections<'_>,
    tag: &str,
) -> PathBuf {
    let mut bytes = vec![0; repr.buffer_len_with(sections)];
    repr.emit_with(sections, &mut bytes).expect("the test's configuration encodes");
    let path = std::env::temp_dir().join(format!("jos-{tag}-config-{}.bin", std::process::id()));
    std::fs::write(&path, bytes).expect("write the configuration file");
    path
}

/// `source` (C files' first file, or a Rust guest crate folder) built by jos-build (the builder `jos-cli build` uses) as
/// `format` in a folder of its own (removed afterwards), signed with `seed`.
pub fn build_signed(source: &Path, format: jos_abi::wire::Format, seed: &[u8; 32]) -> Result<Vec<u8>, String> {
    use jos_abi::wire::Format;
    static BUILDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let build = BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let folder = std::env::temp_dir().join(format!("jos-tests-build-{}-{build}", std::process::id()));
    std::fs::create_dir_all(&folder).map_err(|e| format!("create {}: {e}", folder.display()))?;
    let name = source.file_stem().and_then(|stem| stem.to_str()).unwrap_or("guest");
    let (builder_format, extension) = match format {
        Format::Wasm => (jos_build::Format::Wasm, "wasm"),
        Format::NativeArmv6 => (jos_build::Format::Native, "blob"),
    };
    let request = jos_build::BuildRequest {
        sources: vec![source.to_path_buf()],
        format: builder_format,
        output: Some(folder.join(format!("{name}.{extension}"))),
        max_memory_pages: jos_build::DEFAULT_MAX_MEMORY_PAGES,
        keep_names: false,
        verbose: false,
    };
    let built = jos_build::build(&request).map_err(|e| format!("building {}: {e}", source.display()));
    let bytes =
        built.and_then(|built| std::fs::read(&built.path).map_err(|e| format!("read {}: {e}", built.path.display())));
    let _ = std::fs::remove_dir_all(&folder);
    let bytes = bytes?;
    let signing = |e: &dyn std::fmt::Display| format!("signing {}: {e}", source.display());
    match format {
        Format::Wasm => jos_abi::signature::sign_wasm(&bytes, seed, true).map_err(|e| signing(&e)),
        Format::NativeArmv6 => jos_abi::signature::sign_blob(&bytes, seed, true).map_err(|e| signing(&e)),
    }
}

/// Where `cargo xtask` leaves kernel builds (`JOS_BUILD_DIR`, default `<repo>/build`).
pub fn build_dir() -> PathBuf {
    std::env::var_os("JOS_BUILD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../build"))
}

/// The raw `kernel.img` that `cargo xtask kernel` writes beside the ELF.
///
/// # Panics
/// When the file is missing: the tests need `cargo xtask test`, which builds it first.
pub fn kernel_img() -> PathBuf {
    let path = build_dir().join("kernel.img");
    assert!(path.exists(), "{} is missing: run the tests through `cargo xtask test`", path.display());
    path
}

/// The kernel ELF built with `features` ("" for the normal kernel).
///
/// # Panics
/// When the file is missing: the tests need `cargo xtask test`, which builds every variant first.
pub fn kernel_elf(features: &str) -> PathBuf {
    let name = if features.is_empty() { "jos-kernel.elf".to_string() } else { format!("jos-kernel-{features}.elf") };
    let path = build_dir().join(name);
    assert!(path.exists(), "{} is missing: run the tests through `cargo xtask test`", path.display());
    path
}

/// How to start QEMU.
#[derive(Clone, Debug)]
pub struct BootOptions {
    /// `raspi0` or `raspi1ap`.
    pub machine: String,
    /// The kernel ELF.
    pub kernel: PathBuf,
    /// `-icount shift=N` when set: guest time follows the instruction count.
    pub icount_shift: Option<u32>,
    /// Extra QEMU arguments (network devices, loader devices, ...).
    pub extra_args: Vec<String>,
    /// A command that QEMU runs under, e.g. `ip netns exec NAME` (it must exec QEMU in place,
    /// so that killing the child kills QEMU). Empty: QEMU runs directly.
    pub command_prefix: Vec<String>,
    /// How the kernel gets into memory and is entered.
    pub load: KernelLoad,
}

/// How QEMU loads and enters the kernel.
#[derive(Clone, Debug)]
pub enum KernelLoad {
    /// `-kernel ELF`: loaded at its own addresses, entered at its entry point with r0-r2 = 0.
    Elf,
    /// As the Pi firmware does it: `kernel` is a raw `kernel.img` placed at 0x8000 with QEMU's
    /// generic loader, the tag list at 0x100, and a 32-byte stub at 0 (where the ARM core starts
    /// after reset, the firmware's own stub's place) that sets r0 = 0, r1 = `machine`, r2 =
    /// 0x100 and jumps to 0x8000, in SVC mode with interrupts masked as after reset.
    Firmware {
        /// The bytes placed at 0x100 (an ATAG list, or anything a test wants r2 to point at).
        tags: Vec<u8>,
        /// The machine type passed in r1.
        machine: u32,
    },
}

/// Where the firmware loads `kernel.img` on a Pi 1 / Zero.
pub const KERNEL_IMG_ADDRESS: u32 = 0x8000;
/// Where the firmware leaves its ATAG list.
pub const TAGS_ADDRESS: u32 = 0x100;

/// The stub the firmware-like boot puts at address 0: r0 = 0, r1 = `machine`, r2 = 0x100, then
/// a jump to 0x8000. Hand-assembled ARM (A32) words (checked with arm-none-eabi-objdump):
/// `mov r0, #0`; `ldr r1, [pc, #8]`; `ldr r2, [pc, #8]`; `ldr pc, [pc, #8]`; a pad word; the
/// three literals.
pub fn firmware_stub(machine: u32) -> Vec<u8> {
    let words = [0xe3a0_0000, 0xe59f_1008, 0xe59f_2008, 0xe59f_f008, 0, machine, TAGS_ADDRESS, KERNEL_IMG_ADDRESS];
    words.iter().flat_map(|word: &u32| word.to_le_bytes()).collect()
}

impl BootOptions {
    /// The normal kernel on `machine`, no extras.
    pub fn new(machine: &str, kernel: PathBuf) -> Self {
        Self {
            machine: machine.into(),
            kernel,
            icount_shift: None,
            extra_args: Vec::new(),
            command_prefix: Vec::new(),
            load: KernelLoad::Elf,
        }
    }
}

/// The UART text received so far, shared with the reader thread.
#[derive(Default)]
struct Serial {
    text: Mutex<String>,
    grew: Condvar,
}

/// A running QEMU. Dropping it kills QEMU.
pub struct Qemu {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    serial: Arc<Serial>,
    qmp_path: PathBuf,
    _scratch: TempDir,
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Qemu {
    /// Starts QEMU with the console on a pipe and a QMP socket for screenshots.
    pub fn boot(options: &BootOptions) -> std::io::Result<Self> {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let unique = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let scratch = std::env::temp_dir().join(format!("jos-qemu-{}-{unique}", std::process::id()));
        std::fs::create_dir_all(&scratch)?;
        let qmp_path = scratch.join("qmp.sock");
        let mut command = match options.command_prefix.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg("qemu-system-arm");
                command
            }
            None => Command::new("qemu-system-arm"),
        };
        command.args(["-M", &options.machine, "-display", "none", "-monitor", "none", "-serial", "stdio"]);
        match &options.load {
            KernelLoad::Elf => {
                command.arg("-kernel").arg(&options.kernel);
            }
            KernelLoad::Firmware { tags, machine } => {
                let stub = scratch.join("stub.bin");
                let tags_file = scratch.join("tags.bin");
                std::fs::write(&stub, firmware_stub(*machine))?;
                std::fs::write(&tags_file, tags)?;
                for (file, address) in [(&options.kernel, KERNEL_IMG_ADDRESS), (&tags_file, TAGS_ADDRESS), (&stub, 0)] {
                    command
                        .arg("-device")
                        .arg(format!("loader,file={},addr={address:#x},force-raw=on", file.display()));
                }
            }
        }
        command.arg("-qmp").arg(format!("unix:{},server=on,wait=off", qmp_path.display()));
        if let Some(shift) = options.icount_shift {
            command.args(["-icount", &format!("shift={shift}")]);
        }
        command.args(&options.extra_args);
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = command.spawn()?;
        let stdin = child.stdin.take();
        let serial = Arc::new(Serial::default());
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let sink = Arc::clone(&serial);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(count) = stdout.read(&mut buffer) {
                if count == 0 {
                    break;
                }
                let mut text = sink.text.lock().expect("serial lock");
                text.push_str(&String::from_utf8_lossy(&buffer[..count]).replace('\r', ""));
                sink.grew.notify_all();
            }
        });
        Ok(Self { child, stdin, serial, qmp_path, _scratch: TempDir(scratch) })
    }

    /// Types `text` on the kernel's serial console.
    pub fn send(&mut self, text: &str) -> std::io::Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| std::io::Error::other("QEMU's stdin is closed"))?;
        stdin.write_all(text.as_bytes())?;
        stdin.flush()
    }

    /// Everything the kernel printed so far.
    pub fn output(&self) -> String {
        self.serial.text.lock().expect("serial lock").clone()
    }

    /// Waits until the console output contains `needle`; returns the output so far. On timeout
    /// (or when QEMU exits first) the error carries the whole output for the test's message.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        let mut text = self.serial.text.lock().expect("serial lock");
        loop {
            if text.contains(needle) {
                return Ok(text.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!("timed out after {timeout:?} waiting for {needle:?}; console so far:\n{text}"));
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("QEMU exited ({status}) before {needle:?}; console:\n{text}"));
            }
            let slice = (deadline - now).min(Duration::from_millis(200));
            text = self.serial.grew.wait_timeout(text, slice).expect("serial lock").0;
        }
    }

    /// Waits for a whole console line that starts with `prefix` and returns the rest of it.
    pub fn wait_for_line(&mut self, prefix: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        let mut text = self.serial.text.lock().expect("serial lock");
        loop {
            let found = text.lines().zip(text.split_inclusive('\n')).find_map(|(line, raw)| {
                (raw.ends_with('\n') && line.starts_with(prefix)).then(|| line[prefix.len()..].to_string())
            });
            if let Some(rest) = found {
                return Ok(rest);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "timed out after {timeout:?} waiting for a line {prefix:?}; console so far:\n{text}"
                ));
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("QEMU exited ({status}) before a line {prefix:?}; console:\n{text}"));
            }
            let slice = (deadline - now).min(Duration::from_millis(200));
            text = self.serial.grew.wait_timeout(text, slice).expect("serial lock").0;
        }
    }

    /// Waits for a whole console line that contains `needle` and returns that line.
    pub fn wait_for_line_containing(&mut self, needle: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        let mut text = self.serial.text.lock().expect("serial lock");
        loop {
            let found = text
                .split_inclusive('\n')
                .find(|raw| raw.ends_with('\n') && raw.contains(needle))
                .map(|raw| raw.trim_end().to_string());
            if let Some(line) = found {
                return Ok(line);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "timed out after {timeout:?} waiting for a line with {needle:?}; console so far:\n{text}"
                ));
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("QEMU exited ({status}) before a line with {needle:?}; console:\n{text}"));
            }
            let slice = (deadline - now).min(Duration::from_millis(200));
            text = self.serial.grew.wait_timeout(text, slice).expect("serial lock").0;
        }
    }

    /// Sends a QMP command and returns QEMU's reply line.
    pub fn qmp(&self, command: &str) -> std::io::Result<String> {
        let stream = UnixStream::connect(&self.qmp_path)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut writer = stream;
        let mut line = String::new();
        reader.read_line(&mut line)?; // greeting
        writer.write_all(b"{\"execute\":\"qmp_capabilities\"}\n")?;
        line.clear();
        reader.read_line(&mut line)?;
        writer.write_all(command.as_bytes())?;
        writer.write_all(b"\n")?;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Err(std::io::Error::other("QMP closed"));
            }
            // Skip asynchronous events; the reply has "return" or "error".
            if line.contains("\"return\"") || line.contains("\"error\"") {
                return Ok(line);
            }
        }
    }

    /// The guest's physical memory `[address, address + len)` as QEMU holds it, read from
    /// outside through QMP `pmemsave` into a scratch file (what a probe on the bus would see;
    /// QEMU models no caches). At most [`Qemu::MAX_PHYSICAL_READ`] bytes.
    pub fn read_physical(&self, address: u64, len: usize) -> std::io::Result<Vec<u8>> {
        if len > Self::MAX_PHYSICAL_READ {
            return Err(std::io::Error::other(format!("read_physical: {len} bytes is more than the helper reads")));
        }
        let path = self._scratch.0.join("physical.bin");
        let reply = self.qmp(&format!(
            "{{\"execute\":\"pmemsave\",\"arguments\":{{\"val\":{address},\"size\":{len},\"filename\":\"{}\"}}}}",
            path.display()
        ))?;
        if reply.contains("\"error\"") {
            return Err(std::io::Error::other(reply));
        }
        let bytes = std::fs::read(&path)?;
        let _ = std::fs::remove_file(&path);
        if bytes.len() != len {
            return Err(std::io::Error::other(format!("pmemsave wrote {} bytes, not {len}", bytes.len())));
        }
        Ok(bytes)
    }

    /// The most bytes [`Qemu::read_physical`] reads at once (16 MiB).
    pub const MAX_PHYSICAL_READ: usize = 16 << 20;

    /// Saves the emulated HDMI screen as a PPM file through QMP `screendump`.
    pub fn screendump(&self, path: &Path) -> std::io::Result<()> {
        let reply =
            self.qmp(&format!("{{\"execute\":\"screendump\",\"arguments\":{{\"filename\":\"{}\"}}}}", path.display()))?;
        if reply.contains("\"error\"") {
            return Err(std::io::Error::other(reply));
        }
        Ok(())
    }

    /// Takes a screendump into a scratch file and decodes it.
    pub fn screen_picture(&self) -> std::io::Result<Picture> {
        let path = self._scratch.0.join("screen.ppm");
        self.screendump(&path)?;
        let bytes = std::fs::read(&path)?;
        let _ = std::fs::remove_file(&path);
        Ok(Picture::parse(&bytes))
    }

    /// Kills QEMU now (drop does the same).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The counters `(udp_echo, busy_us, at_us)` of the kernel's last `net: stats` line, once it
/// shows at least `min_echoes` echoes (waits up to 30 s; the kernel reports once a second when
/// its counters moved). Used by the network benchmarks (`jos-net-bench`, `jos-bench`).
pub fn net_stats(qemu: &mut Qemu, min_echoes: u64) -> Option<(u64, u64, u64)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let output = qemu.output();
        if let Some(line) = output.lines().rev().find(|l| l.starts_with("net: stats ")) {
            let value =
                |name: &str| -> Option<u64> { line.split_whitespace().skip_while(|w| *w != name).nth(1)?.parse().ok() };
            if let (Some(echoes), Some(busy), Some(at)) = (value("udp_echo"), value("busy_us"), value("at_us")) {
                if echoes >= min_echoes {
                    return Some((echoes, busy, at));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

/// The device's offload counters as `key=value` pairs, from a fresh `offload` console command
/// (waits up to 20 s for the line; panics without one).
pub fn offload_counters(qemu: &mut Qemu) -> std::collections::HashMap<String, u64> {
    const PREFIX: &str = "offload: counters ";
    let complete_lines = |text: &str| -> Vec<String> {
        text.split_inclusive('\n')
            .filter(|line| line.ends_with('\n') && line.starts_with(PREFIX))
            .map(|line| line.trim_end().to_string())
            .collect()
    };
    let before = complete_lines(&qemu.output()).len();
    qemu.send("offload\r").expect("type a command");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(line) = complete_lines(&qemu.output()).get(before) {
            return line[PREFIX.len()..]
                .split_whitespace()
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or_else(|| panic!("not key=value: {line}"));
                    (key.to_string(), value.parse().unwrap_or_else(|_| panic!("not a number: {line}")))
                })
                .collect();
        }
        assert!(Instant::now() < deadline, "no counters line; console:\n{}", qemu.output());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A decoded binary PPM (P6, maxval 255).
pub struct Picture {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    rgb: Vec<u8>,
}

impl Picture {
    /// Decodes a P6 file.
    ///
    /// # Panics
    /// On anything but an 8-bit binary PPM whose data length matches its header.
    pub fn parse(bytes: &[u8]) -> Picture {
        // Header: "P6", width, height, maxval, each separated by whitespace, then one byte.
        let mut fields = Vec::new();
        let mut index = 0;
        while fields.len() < 4 {
            while bytes[index].is_ascii_whitespace() {
                index += 1;
            }
            let start = index;
            while !bytes[index].is_ascii_whitespace() {
                index += 1;
            }
            fields.push(String::from_utf8_lossy(&bytes[start..index]).to_string());
        }
        assert_eq!(fields[0], "P6", "not a binary PPM");
        assert_eq!(fields[3], "255");
        let width: usize = fields[1].parse().expect("width");
        let height: usize = fields[2].parse().expect("height");
        let rgb = bytes[index + 1..].to_vec();
        assert_eq!(rgb.len(), width * height * 3, "PPM data length");
        Picture { width, height, rgb }
    }

    /// The pixel at `(x, y)` as 0x00RRGGBB.
    pub fn pixel(&self, x: usize, y: usize) -> u32 {
        let i = (y * self.width + x) * 3;
        u32::from(self.rgb[i]) << 16 | u32::from(self.rgb[i + 1]) << 8 | u32::from(self.rgb[i + 2])
    }

    /// Compares text row `row` (8x16 cells from column 0) with `text` drawn in the kernel font in
    /// `foreground` on `background`; returns the number of differing pixels.
    pub fn text_mismatches(&self, row: usize, text: &str, foreground: u32, background: u32) -> usize {
        let mut wrong = 0;
        for (column, byte) in text.bytes().enumerate() {
            for y in 0..jos_kcore::font::HEIGHT {
                for x in 0..jos_kcore::font::WIDTH {
                    let expected = if jos_kcore::font::pixel(byte, x, y) { foreground } else { background };
                    if self.pixel(column * jos_kcore::font::WIDTH + x, row * jos_kcore::font::HEIGHT + y) != expected {
                        wrong += 1;
                    }
                }
            }
        }
        wrong
    }
}

/// A wasm module that writes its input back as its output and returns its length (the QEMU
/// tests' everyday job).
pub const ECHO: &str = r#"
(module
  (import "jos" "input_len" (func $input_len (result i32)))
  (import "jos" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
  (import "jos" "output_write" (func $output_write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (local $n i32)
    (local.set $n (call $input_read (i32.const 0) (call $input_len) (i32.const 0)))
    (drop (call $output_write (i32.const 0) (local.get $n)))
    (local.get $n)))
"#;
