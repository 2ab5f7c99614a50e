//! The guests' network side, seen from the host: UDP ports for `hostfwd`, the echo runs and
//! their latencies, one-datagram queries, the guest clock read through QMP, and the parsing of
//! `name=value` lines.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use jos_tests::Qemu;

use crate::results::Latencies;
use crate::ECHO_PAYLOAD;

/// A free UDP port on 127.0.0.1 for a `hostfwd`.
pub fn free_port() -> Result<u16, String> {
    UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).map_err(|e| e.to_string())
}

/// The network devices both guests get: usb-net on the root port, slirp, UDP port 7 forwarded.
pub fn net_args(port: u16) -> Vec<String> {
    vec![
        "-netdev".into(),
        format!("user,id=n0,hostfwd=udp:127.0.0.1:{port}-:7"),
        "-device".into(),
        "usb-net,netdev=n0,port=1".into(),
    ]
}

/// Round-trip latencies of one echo run, seen from the host.
pub struct EchoRun {
    /// Each answered request's round trip.
    pub latencies_us: Vec<f64>,
    /// Requests not answered within 1 s.
    pub lost: u64,
    /// Host wall time of the run.
    pub wall_s: f64,
}

impl EchoRun {
    /// The `p`-th percentile round trip (NaN when nothing was answered).
    pub fn percentile(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let mut sorted = self.latencies_us.clone();
        sorted.sort_by(f64::total_cmp);
        let index = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        sorted[index]
    }
    /// The mean round trip.
    pub fn mean(&self) -> f64 {
        self.latencies_us.iter().sum::<f64>() / self.latencies_us.len().max(1) as f64
    }
    /// The figures written to the results.
    pub fn latencies(&self) -> Latencies {
        let known = |value: f64| (!value.is_nan()).then_some(value);
        Latencies {
            answered: self.latencies_us.len() as u64,
            lost: self.lost,
            wall_s: self.wall_s,
            mean_us: Some(self.mean()),
            p50_us: known(self.percentile(50.0)),
            p99_us: known(self.percentile(99.0)),
            p999_us: known(self.percentile(99.9)),
            max_us: known(self.percentile(100.0)),
        }
    }
}

/// Sends `requests` echo requests one at a time (1 s timeout each) after 10 warm-up ones.
pub fn echo_run(port: u16, requests: u64) -> Result<EchoRun, String> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    socket.set_read_timeout(Some(Duration::from_secs(1))).map_err(|e| e.to_string())?;
    socket.connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    let mut reply = [0u8; 2048];
    let mut warm = 0;
    for _ in 0..50 {
        socket.send(ECHO_PAYLOAD).map_err(|e| e.to_string())?;
        if matches!(socket.recv(&mut reply), Ok(n) if &reply[..n] == ECHO_PAYLOAD) {
            warm += 1;
            if warm == 10 {
                break;
            }
        }
    }
    if warm < 10 {
        return Err(format!("the echo service answered only {warm} of the warm-up requests"));
    }
    let mut run = EchoRun { latencies_us: Vec::with_capacity(requests as usize), lost: 0, wall_s: 0.0 };
    let started = Instant::now();
    for _ in 0..requests {
        let sent = Instant::now();
        socket.send(ECHO_PAYLOAD).map_err(|e| e.to_string())?;
        match socket.recv(&mut reply) {
            Ok(n) if &reply[..n] == ECHO_PAYLOAD => run.latencies_us.push(sent.elapsed().as_secs_f64() * 1e6),
            _ => run.lost += 1,
        }
    }
    run.wall_s = started.elapsed().as_secs_f64();
    Ok(run)
}

/// Sends one datagram and returns the reply as text.
pub fn udp_query(port: u16, query: &[u8]) -> Result<String, String> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    socket.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
    let mut reply = [0u8; 512];
    for _ in 0..5 {
        socket.send_to(query, ("127.0.0.1", port)).map_err(|e| e.to_string())?;
        if let Ok(n) = socket.recv(&mut reply) {
            return Ok(String::from_utf8_lossy(&reply[..n]).into_owned());
        }
    }
    Err(format!("no answer to {:?}", String::from_utf8_lossy(query)))
}

/// `name=value` out of a line of such pairs.
pub fn field(line: &str, name: &str) -> Option<f64> {
    line.split_whitespace().find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

/// The word after `name` in a line of `name value` pairs.
pub fn after(line: &str, name: &str) -> Option<f64> {
    line.split_whitespace().skip_while(|w| *w != name).nth(1)?.parse().ok()
}

/// The guest's clock in microseconds: the BCM2835 system timer's counter (CLO/CHI at
/// 0x2000_3004, BCM2835 ARM Peripherals section 12), read through QMP's `xp`. Under `-icount`
/// this is guest time; both OSes run from this counter, so the reading means the same for both.
pub fn guest_clock_us(qemu: &Qemu) -> Result<u64, String> {
    let reply = qemu
        .qmp(r#"{"execute":"human-monitor-command","arguments":{"command-line":"xp /2wx 0x20003004"}}"#)
        .map_err(|e| format!("QMP: {e}"))?;
    let words: Vec<u64> = reply
        .split(':')
        .nth(2)
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|w| {
            u64::from_str_radix(w.trim_start_matches("0x").trim_end_matches(['\\', 'r', 'n', '"', '}']), 16).ok()
        })
        .take(2)
        .collect();
    match words[..] {
        [low, high] => Ok(high << 32 | low),
        _ => Err(format!("cannot read the system timer: {reply}")),
    }
}

/// Mean of a list.
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}
