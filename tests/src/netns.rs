//! Network namespaces that tests make for themselves, with a TAP device as the Ethernet wire of
//! an emulated USB NIC ([`crate::lan9512`], [`crate::ecm_model`]) and, when asked, dnsmasq as
//! the DHCP server on it; the USB device model as a process inside the namespace; and a way to
//! run test code (sockets) inside the namespace from the test process.
//!
//! The namespace side of the link is 10.0.2.1/24; the guest gets 10.0.2.15 (by DHCP or
//! statically). Traffic stays inside the namespace. Everything made is removed on drop, and the
//! model and dnsmasq processes are killed.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The namespace side's address.
pub const HOST_ADDRESS: &str = "10.0.2.1";
/// The guest's address (the DHCP server's only lease).
pub const GUEST_ADDRESS: &str = "10.0.2.15";

/// Opens the TAP device `name` (it must exist in the caller's network namespace) without packet
/// information headers: each read returns one Ethernet frame, each write sends one.
pub fn open_tap(name: &str) -> std::io::Result<File> {
    const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
    const IFF_TAP: libc::c_short = 0x0002;
    const IFF_NO_PI: libc::c_short = 0x1000;
    #[repr(C)]
    struct IfReq {
        name: [u8; 16],
        flags: libc::c_short,
        padding: [u8; 22],
    }
    if name.len() >= 16 {
        return Err(std::io::Error::other(format!("interface name {name:?} is too long")));
    }
    let file = std::fs::OpenOptions::new().read(true).write(true).open("/dev/net/tun")?;
    let mut request = IfReq { name: [0; 16], flags: IFF_TAP | IFF_NO_PI, padding: [0; 22] };
    request.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads and writes one `struct ifreq`, which `IfReq` lays out (16-byte
    // name, then the flags in a union of at least 24 bytes); the file descriptor is open.
    let result = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut request as *mut IfReq) };
    if result < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file)
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip").args(args).output().map_err(|e| format!("cannot run ip: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
    }
}

/// A network namespace with a TAP device at 10.0.2.1/24 and, optionally, dnsmasq serving
/// 10.0.2.15 by DHCP. Deleted on drop.
pub struct Namespace {
    /// The namespace's name (`ip netns`).
    pub name: String,
    /// The TAP device's name inside it.
    pub tap: String,
    dnsmasq: Option<Child>,
}

impl Namespace {
    /// Makes the namespace `jos-TAG-PID` with TAP `jtTAGPID`; `dhcp` starts dnsmasq on it.
    /// An error when the rights are missing (the caller may skip) or a tool fails.
    pub fn create(tag: &str, dhcp: bool) -> Result<Self, String> {
        let id = std::process::id() % 100_000;
        let name = format!("jos-{tag}-{id}");
        let tap = format!("jt{}{id}", &tag[..tag.len().min(6)]);
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name])?;
        let mut namespace = Self { name: name.clone(), tap: tap.clone(), dnsmasq: None };
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
        ip(&["-n", &name, "tuntap", "add", "dev", &tap, "mode", "tap"])?;
        ip(&["-n", &name, "addr", "add", &format!("{HOST_ADDRESS}/24"), "brd", "10.0.2.255", "dev", &tap])?;
        ip(&["-n", &name, "link", "set", &tap, "up"])?;
        if dhcp {
            let child = Command::new("ip")
                .args(["netns", "exec", &name, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0"])
                .arg(format!("--interface={tap}"))
                // Its own pid file: dnsmasq's default /run/dnsmasq.pid is shared by every
                // instance, and tests running at once would fight over it.
                .arg(format!("--pid-file={}", std::env::temp_dir().join(format!("{name}.dnsmasq.pid")).display()))
                .args(["--bind-interfaces", "--leasefile-ro", "--no-hosts", "--no-resolv", "--log-facility=-"])
                .arg(format!("--dhcp-range={GUEST_ADDRESS},{GUEST_ADDRESS},255.255.255.0,1h"))
                .arg(format!("--dhcp-option=option:router,{HOST_ADDRESS}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start dnsmasq (package dnsmasq-base): {e}"))?;
            namespace.dnsmasq = Some(child);
            std::thread::sleep(Duration::from_millis(300));
            if let Some(Ok(Some(status))) = namespace.dnsmasq.as_mut().map(|c| c.try_wait()) {
                return Err(format!("dnsmasq exited at once ({status})"));
            }
        }
        Ok(namespace)
    }

    /// Runs `program args` inside the namespace and waits for it.
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .output()
            .expect("run a command in the namespace")
    }

    /// Runs `f` on a thread that entered the namespace (network namespaces are per thread), so
    /// the sockets it opens live there; returns its result.
    pub fn run_in<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let path = Path::new("/var/run/netns").join(&self.name);
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let file = File::open(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
                    // SAFETY: setns with an open namespace file descriptor changes only this
                    // thread's network namespace; the thread ends when `f` returns.
                    let result = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                    assert_eq!(result, 0, "setns: {}", std::io::Error::last_os_error());
                    f()
                })
                .join()
                .expect("the namespace thread panicked")
        })
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Some(mut child) = self.dnsmasq.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
        let _ = std::fs::remove_file(std::env::temp_dir().join(format!("{}.dnsmasq.pid", self.name)));
    }
}

/// A USB device model (`jos-lan9512`) running inside a namespace, listening on a Unix socket
/// for QEMU's `usb-redir`. Killed on drop.
pub struct Model {
    child: Child,
    /// The socket QEMU connects to.
    pub socket: PathBuf,
    /// The model's trace (register writes, events, the closing summary).
    pub trace: PathBuf,
}

impl Model {
    /// Starts `binary --device DEVICE` in `namespace` on its TAP and waits until it listens.
    pub fn start(binary: &Path, namespace: &Namespace, device: &str) -> Result<Self, String> {
        Self::start_with(binary, namespace, device, &[])
    }

    /// [`Model::start`] with extra arguments for the model (e.g. `--rx-crc-errors 10`).
    pub fn start_with(binary: &Path, namespace: &Namespace, device: &str, extra: &[&str]) -> Result<Self, String> {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let unique = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = std::env::temp_dir().join(format!("jos-usbredir-{}-{unique}", std::process::id()));
        let socket = base.with_extension("sock");
        let trace = base.with_extension("trace");
        let _ = std::fs::remove_file(&socket);
        let child = Command::new("ip")
            .args(["netns", "exec", &namespace.name])
            .arg(binary)
            .args(["--device", device, "--tap", &namespace.tap])
            .arg("--socket")
            .arg(&socket)
            .arg("--trace")
            .arg(&trace)
            .args(extra)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut model = Self { child, socket, trace };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !model.socket.exists() {
            if let Ok(Some(status)) = model.child.try_wait() {
                return Err(format!("the model exited ({status}) before listening"));
            }
            if Instant::now() > deadline {
                return Err("the model did not listen within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(model)
    }

    /// QEMU arguments that attach the model to the DWC2's root port.
    pub fn qemu_args(&self) -> Vec<String> {
        vec![
            "-chardev".into(),
            format!("socket,id=usbredir0,path={}", self.socket.display()),
            "-device".into(),
            "usb-redir,chardev=usbredir0,id=redir0,port=1".into(),
        ]
    }

    /// The trace so far.
    pub fn trace_text(&self) -> String {
        std::fs::read_to_string(&self.trace).unwrap_or_default()
    }

    /// Waits (up to `timeout`) for the model to exit after QEMU went away, so the trace has its
    /// summary line; kills it otherwise.
    pub fn finish(&mut self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.trace_text()
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_file(&self.trace);
    }
}

/// The value of the last write to register `name` in a model's trace (`W NAME 0x...` lines).
pub fn last_write(trace: &str, name: &str) -> Option<u32> {
    let prefix = format!("W {name} ");
    trace
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| u32::from_str_radix(value.trim_start_matches("0x"), 16).ok())
}
