//! A user-space impaired Ethernet link for the network-fault tests: it forwards frames between a
//! TAP device in a network namespace (the client's side: Linux's TCP/IP and jos-cli) and QEMU's
//! `-netdev socket,udp=...` (the device's side: one UDP datagram per frame on loopback), and on
//! the way drops, duplicates, delays, reorders and corrupts them, each decision drawn from a
//! seeded generator so that a failing run can be replayed (`JOS_LINK_SEED`).
//!
//! It stands in for `tc netem`, which this host's kernel lacks (docs/network.md, "Fault
//! injection"). Every thread has a bounded wait and stops when the [`Link`] is dropped.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the link does to each frame. Probabilities are per frame, from 0 to 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Impairment {
    /// A frame is dropped.
    pub loss: f64,
    /// A frame that is not dropped is sent twice (each copy with its own delay).
    pub duplicate: f64,
    /// A copy is sent at once instead of after the delay, overtaking the frames in flight
    /// (netem's `reorder`).
    pub reorder: f64,
    /// One byte after the Ethernet header of a copy is flipped (caught by the IPv4, TCP or UDP
    /// checksum, or by Noise's tag if a checksum misses it).
    pub corrupt: f64,
    /// Base one-way delay of a copy.
    pub delay: Duration,
    /// The delay varies uniformly by up to this much either way (which also reorders frames).
    pub jitter: Duration,
}

impl Impairment {
    /// A perfect link: every frame passes at once, unchanged.
    pub const NONE: Impairment = Impairment {
        loss: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        corrupt: 0.0,
        delay: Duration::ZERO,
        jitter: Duration::ZERO,
    };

    /// The network-fault profile of issue 17: 5% loss, 2% duplication, 5% reordering, a
    /// 10 ms ± 5 ms delay, and 0.1% corruption on top.
    pub const LOSSY: Impairment = Impairment {
        loss: 0.05,
        duplicate: 0.02,
        reorder: 0.05,
        corrupt: 0.001,
        delay: Duration::from_millis(10),
        jitter: Duration::from_millis(5),
    };
}

/// A small deterministic generator (SplitMix64): the same seed gives the same decisions.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Whether an event of probability `p` happens.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// A number below `bound` (non-zero).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}

/// What happens to one copy of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// How long after it arrived the copy is sent.
    pub delay: Duration,
    /// Sent at once, overtaking the frames in flight.
    pub expedited: bool,
    /// `(offset, mask)`: the byte at `offset` is XORed with `mask` (non-zero).
    pub corrupt: Option<(usize, u8)>,
}

/// The fate of one frame: no copy (lost), one, or two (duplicated).
pub fn decide(rng: &mut Rng, impairment: &Impairment, frame_len: usize) -> Vec<Delivery> {
    if rng.chance(impairment.loss) {
        return Vec::new();
    }
    let copies = if rng.chance(impairment.duplicate) { 2 } else { 1 };
    (0..copies)
        .map(|_| {
            let expedited = rng.chance(impairment.reorder);
            let delay = if expedited {
                Duration::ZERO
            } else {
                let jitter = impairment.jitter.as_micros() as i64;
                let offset = if jitter > 0 { rng.below(2 * jitter as u64 + 1) as i64 - jitter } else { 0 };
                Duration::from_micros((impairment.delay.as_micros() as i64 + offset).max(0) as u64)
            };
            let corrupt = (rng.chance(impairment.corrupt) && frame_len > 14).then(|| {
                let offset = 14 + rng.below(frame_len as u64 - 14) as usize;
                (offset, 1u8 << rng.below(8))
            });
            Delivery { delay, expedited, corrupt }
        })
        .collect()
}

/// Frame counts of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Frames that entered the link.
    pub frames: u64,
    /// Frames dropped.
    pub lost: u64,
    /// Frames sent twice.
    pub duplicated: u64,
    /// Copies sent at once (netem's reorder).
    pub expedited: u64,
    /// Copies that left before a copy that entered earlier (by expediting or jitter).
    pub reordered: u64,
    /// Copies with a flipped byte.
    pub corrupted: u64,
    /// Copies delivered.
    pub delivered: u64,
}

/// Frame counts of both directions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// From the client (TAP) to the device (QEMU).
    pub to_device: DirectionStats,
    /// From the device to the client.
    pub to_client: DirectionStats,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Direction {
    ToDevice,
    ToClient,
}

/// A copy waiting to leave: (due, sequence, direction, bytes).
type Pending = Reverse<(Instant, u64, Direction, Vec<u8>)>;

struct Shared {
    impairment: Mutex<Impairment>,
    queue: Mutex<BinaryHeap<Pending>>,
    ready: Condvar,
    stop: AtomicBool,
    state: Mutex<State>,
}

struct State {
    rng: [Rng; 2],
    sequence: u64,
    /// The due time of the last copy scheduled in each direction (to count reorderings).
    last_due: [Option<Instant>; 2],
    stats: LinkStats,
}

impl Shared {
    /// Runs a received frame through the impairment and queues its copies.
    fn admit(&self, direction: Direction, frame: &[u8]) {
        let impairment = *self.impairment.lock().expect("link lock");
        let now = Instant::now();
        let mut state = self.state.lock().expect("link lock");
        let index = direction as usize;
        let copies = decide(&mut state.rng[index], &impairment, frame.len());
        let State { sequence, last_due, stats, .. } = &mut *state;
        let stats = match direction {
            Direction::ToDevice => &mut stats.to_device,
            Direction::ToClient => &mut stats.to_client,
        };
        stats.frames += 1;
        match copies.len() {
            0 => stats.lost += 1,
            2 => stats.duplicated += 1,
            _ => {}
        }
        let mut queue = self.queue.lock().expect("link lock");
        for copy in copies {
            let mut bytes = frame.to_vec();
            if let Some((offset, mask)) = copy.corrupt {
                bytes[offset] ^= mask;
                stats.corrupted += 1;
            }
            stats.expedited += u64::from(copy.expedited);
            let due = now + copy.delay;
            if last_due[index].is_some_and(|last| due < last) {
                stats.reordered += 1;
            }
            last_due[index] = Some(last_due[index].map_or(due, |last| last.max(due)));
            *sequence += 1;
            queue.push(Reverse((due, *sequence, direction, bytes)));
        }
        drop(queue);
        self.ready.notify_all();
    }
}

/// A running impaired link between a TAP device and QEMU's UDP socket netdev. Dropping it stops
/// its threads.
pub struct Link {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    seed: u64,
    /// The UDP port QEMU's `-netdev socket,udp=127.0.0.1:PORT` must send to.
    pub port: u16,
    /// The UDP port QEMU must listen on (`localaddr=127.0.0.1:PORT`).
    pub qemu_port: u16,
}

impl Link {
    /// Starts forwarding between `tap` (an open TAP device without packet information) and QEMU,
    /// with no impairment until [`Link::set`]. `seed` drives every decision.
    pub fn start(tap: File, seed: u64) -> std::io::Result<Link> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let port = socket.local_addr()?.port();
        let qemu_port = UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
        let qemu: SocketAddr = ([127, 0, 0, 1], qemu_port).into();
        let shared = Arc::new(Shared {
            impairment: Mutex::new(Impairment::NONE),
            queue: Mutex::new(BinaryHeap::new()),
            ready: Condvar::new(),
            stop: AtomicBool::new(false),
            state: Mutex::new(State {
                rng: [Rng::new(seed ^ 0x746f_6465_7669_6365), Rng::new(seed ^ 0x746f_636c_6965_6e74)],
                sequence: 0,
                last_due: [None, None],
                stats: LinkStats::default(),
            }),
        });
        let mut tap_writer = tap.try_clone()?;
        let mut tap_reader = tap;
        let udp_reader = socket.try_clone()?;
        let udp_writer = socket;
        let mut threads = Vec::new();

        // Client to device: frames from the TAP (poll with a timeout, so the thread sees `stop`).
        let from_tap = Arc::clone(&shared);
        threads.push(std::thread::spawn(move || {
            let mut buffer = vec![0u8; 65536];
            while !from_tap.stop.load(Ordering::Relaxed) {
                let mut poll = libc::pollfd { fd: tap_reader.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                // SAFETY: `poll` points at one valid pollfd for the duration of the call.
                let ready = unsafe { libc::poll(&mut poll, 1, 50) };
                if ready <= 0 {
                    continue;
                }
                match tap_reader.read(&mut buffer) {
                    Ok(len) if len > 0 => from_tap.admit(Direction::ToDevice, &buffer[..len]),
                    _ => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        }));

        // Device to client: one datagram from QEMU per frame.
        let from_qemu = Arc::clone(&shared);
        threads.push(std::thread::spawn(move || {
            let mut buffer = vec![0u8; 65536];
            while !from_qemu.stop.load(Ordering::Relaxed) {
                if let Ok((len, _)) = udp_reader.recv_from(&mut buffer) {
                    from_qemu.admit(Direction::ToClient, &buffer[..len]);
                }
            }
        }));

        // The scheduler: sends each copy when it is due.
        let scheduler = Arc::clone(&shared);
        threads.push(std::thread::spawn(move || {
            let mut queue = scheduler.queue.lock().expect("link lock");
            while !scheduler.stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                let wait = match queue.peek() {
                    Some(Reverse((due, ..))) if *due <= now => Duration::ZERO,
                    Some(Reverse((due, ..))) => (*due - now).min(Duration::from_millis(50)),
                    None => Duration::from_millis(50),
                };
                if !wait.is_zero() {
                    queue = scheduler.ready.wait_timeout(queue, wait).expect("link lock").0;
                    continue;
                }
                let Some(Reverse((_, _, direction, bytes))) = queue.pop() else { continue };
                drop(queue);
                // A frame the far side cannot take now is lost, as on a wire.
                let sent = match direction {
                    Direction::ToDevice => udp_writer.send_to(&bytes, qemu).is_ok(),
                    Direction::ToClient => tap_writer.write(&bytes).is_ok(),
                };
                if sent {
                    let mut state = scheduler.state.lock().expect("link lock");
                    match direction {
                        Direction::ToDevice => state.stats.to_device.delivered += 1,
                        Direction::ToClient => state.stats.to_client.delivered += 1,
                    }
                }
                queue = scheduler.queue.lock().expect("link lock");
            }
        }));
        Ok(Link { shared, threads, seed, port, qemu_port })
    }

    /// The seed the link was started with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Changes what the link does to frames from now on (frames in flight keep their fate).
    pub fn set(&self, impairment: Impairment) {
        *self.shared.impairment.lock().expect("link lock") = impairment;
    }

    /// Frame counts so far.
    pub fn stats(&self) -> LinkStats {
        self.shared.state.lock().expect("link lock").stats
    }

    /// QEMU's arguments for a usb-net device on this link.
    pub fn qemu_args(&self) -> Vec<String> {
        vec![
            "-netdev".into(),
            format!("socket,id=n0,udp=127.0.0.1:{},localaddr=127.0.0.1:{}", self.port, self.qemu_port),
            "-device".into(),
            "usb-net,netdev=n0,port=1".into(),
        ]
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.ready.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The seed for a run: `JOS_LINK_SEED` when set (to replay a failure), else one from the clock.
pub fn seed_from_env() -> u64 {
    std::env::var("JOS_LINK_SEED").ok().and_then(|text| text.trim().parse().ok()).unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        now.as_nanos() as u64 ^ u64::from(std::process::id()) << 32
    })
}

/// A network namespace with a TAP device `tap` at 10.0.2.1/24 and a default route through it
/// (so a limited broadcast has a way out); deleted on drop. Needs CAP_NET_ADMIN: `Err` says why
/// it could not be made.
pub struct Namespace {
    /// The namespace's name (`ip netns exec NAME ...`).
    pub name: String,
    /// The TAP device's name inside it.
    pub tap: String,
}

impl Namespace {
    /// Makes the namespace and its TAP device (a stale one of the same name is deleted first).
    pub fn create(name: &str, tap: &str) -> Result<Self, String> {
        let run = |args: &[&str]| -> Result<(), String> {
            let output = std::process::Command::new("ip")
                .args(args)
                .output()
                .map_err(|error| format!("cannot run ip: {error}"))?;
            if output.status.success() {
                Ok(())
            } else {
                Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
            }
        };
        let _ = std::process::Command::new("ip").args(["netns", "del", name]).output();
        run(&["netns", "add", name])?;
        let namespace = Namespace { name: name.into(), tap: tap.into() };
        run(&["-n", name, "link", "set", "lo", "up"])?;
        run(&["-n", name, "tuntap", "add", "dev", tap, "mode", "tap"])?;
        run(&["-n", name, "addr", "add", "10.0.2.1/24", "brd", "10.0.2.255", "dev", tap])?;
        run(&["-n", name, "link", "set", tap, "up"])?;
        run(&["-n", name, "route", "add", "default", "dev", tap])?;
        Ok(namespace)
    }

    /// Runs `work` on a thread that has entered the namespace: sockets it opens live there.
    pub fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> std::io::Result<T> {
        let path = format!("/run/netns/{}", self.name);
        let handle = File::open(&path)?;
        std::thread::spawn(move || {
            // SAFETY: `handle` is an open namespace file; setns changes only this thread's
            // network namespace (CLONE_NEWNET is allowed in a multi-threaded process).
            if unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(work())
        })
        .join()
        .map_err(|_| std::io::Error::other("the thread in the namespace panicked"))?
    }

    /// Opens the TAP device (from inside the namespace, where its name is known) for a [`Link`].
    pub fn open_tap(&self) -> std::io::Result<File> {
        let tap = self.tap.clone();
        self.run(move || open_tap(&tap))?
    }

    /// A command run inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        let mut command = std::process::Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

/// `struct ifreq` as TUNSETIFF reads it: the name, then the flags (the rest of the union unused).
#[repr(C)]
struct InterfaceRequest {
    name: [u8; 16],
    flags: libc::c_short,
    _rest: [u8; 22],
}

/// `_IOW('T', 202, int)` from `<linux/if_tun.h>`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

/// Attaches to the TAP device `name` in the calling thread's namespace (no packet information:
/// each read or write is one Ethernet frame).
fn open_tap(name: &str) -> std::io::Result<File> {
    let file = std::fs::OpenOptions::new().read(true).write(true).open("/dev/net/tun")?;
    let mut request =
        InterfaceRequest { name: [0; 16], flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short, _rest: [0; 22] };
    if name.len() >= request.name.len() {
        return Err(std::io::Error::other(format!("TAP name {name:?} is too long")));
    }
    request.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads (and may write back) one `struct ifreq`; `request` is a live,
    // correctly sized `#[repr(C)]` copy of its layout for this call.
    if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut request) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_repeat_for_a_seed_and_differ_across_seeds() {
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..2000).map(|i| decide(&mut rng, &Impairment::LOSSY, 60 + i % 1400)).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn rates_match_the_profile() {
        let mut rng = Rng::new(42);
        let profile = Impairment::LOSSY;
        let frames = 200_000;
        let (mut lost, mut duplicated, mut expedited, mut corrupted, mut copies) = (0, 0, 0, 0, 0);
        for _ in 0..frames {
            let fate = decide(&mut rng, &profile, 1000);
            match fate.len() {
                0 => lost += 1,
                2 => duplicated += 1,
                _ => {}
            }
            for copy in &fate {
                copies += 1;
                if copy.expedited {
                    expedited += 1;
                    assert_eq!(copy.delay, Duration::ZERO);
                } else {
                    assert!(copy.delay >= Duration::from_millis(5) && copy.delay <= Duration::from_millis(15));
                }
                if let Some((offset, mask)) = copy.corrupt {
                    assert!((14..1000).contains(&offset) && mask.count_ones() == 1);
                    corrupted += 1;
                }
            }
        }
        let near = |count: u64, of: u64, p: f64| ((count as f64 / of as f64) - p).abs() < p * 0.1;
        assert!(near(lost, frames, 0.05), "lost {lost}");
        assert!(near(duplicated, frames - lost, 0.02), "duplicated {duplicated}");
        assert!(near(expedited, copies, 0.05), "expedited {expedited}");
        assert!(
            near(corrupted, copies, 0.001) || (corrupted as f64 / copies as f64 - 0.001).abs() < 0.0003,
            "corrupted {corrupted}"
        );
    }

    #[test]
    fn no_impairment_passes_every_frame_at_once() {
        let mut rng = Rng::new(1);
        for _ in 0..1000 {
            assert_eq!(
                decide(&mut rng, &Impairment::NONE, 100),
                vec![Delivery { delay: Duration::ZERO, expedited: false, corrupt: None }]
            );
        }
    }

    /// The link end to end over loopback UDP in place of the TAP: no namespace needed.
    #[test]
    fn frames_cross_with_the_profile_applied() {
        // A socket pair stands in for the TAP device: the link reads frames written to one end.
        let (client_end, link_end) = std::os::unix::net::UnixDatagram::pair().expect("socket pair");
        let tap = File::from(std::os::fd::OwnedFd::from(link_end));
        let link = Link::start(tap, 99).expect("link");
        let qemu = UdpSocket::bind(("127.0.0.1", link.qemu_port)).expect("the QEMU end");
        qemu.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        client_end.set_read_timeout(Some(Duration::from_millis(500))).unwrap();

        // Clean: every frame arrives once, in order, unchanged, both ways.
        for i in 0..50u8 {
            client_end.send(&[i; 64]).unwrap();
            let mut buffer = [0u8; 128];
            let (len, _) = qemu.recv_from(&mut buffer).expect("frame to the device");
            assert_eq!(&buffer[..len], &[i; 64]);
            qemu.send_to(&[i ^ 0xff; 70], ("127.0.0.1", link.port)).unwrap();
            let len = client_end.recv(&mut buffer).expect("frame to the client");
            assert_eq!(&buffer[..len], &[i ^ 0xff; 70]);
        }

        // Lossy: about 5% lost and some duplicated or reordered, counted.
        link.set(Impairment { corrupt: 0.0, ..Impairment::LOSSY });
        let sent = 2000u32;
        // The device end reads while the client end sends, so no socket buffer overflows.
        let reader = std::thread::spawn(move || {
            let mut received = Vec::new();
            let mut buffer = [0u8; 128];
            while let Ok((len, _)) = qemu.recv_from(&mut buffer) {
                assert_eq!(len, 60);
                received.push(u32::from_be_bytes(buffer[20..24].try_into().unwrap()));
            }
            received
        });
        for i in 0..sent {
            let mut frame = vec![0u8; 60];
            frame[20..24].copy_from_slice(&i.to_be_bytes());
            client_end.send(&frame).unwrap();
            if i % 20 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let received = reader.join().expect("reader");
        let stats = link.stats().to_device;
        assert_eq!(stats.frames, u64::from(50 + sent));
        assert_eq!(stats.delivered, received.len() as u64 + 50);
        assert!((50..=170).contains(&stats.lost), "{stats:?}");
        assert!(stats.duplicated >= 10 && stats.reordered >= 20, "{stats:?}");
        let out_of_order = received.windows(2).filter(|pair| pair[1] < pair[0]).count();
        assert!(out_of_order >= 10, "{out_of_order} out of order in {} frames", received.len());
        let mut unique = received.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len() as u64, u64::from(sent) - stats.lost);
    }
}
