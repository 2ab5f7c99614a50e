//! The network path end to end under QEMU: DWC2 + usb-net (CDC-ECM) + smoltcp, reached from the
//! host through slirp port forwards. DHCP, 1,000 UDP echoes of 1..=1400 bytes with none lost,
//! 1 MiB of TCP echo, the same behind QEMU's automatic hub, and bad input that must not stop
//! the echo service.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use jos_tests::{kernel_elf, BootOptions, Qemu};

/// A host port that was free a moment ago (bound to port 0, then released).
fn free_port(udp: bool) -> u16 {
    if udp {
        UdpSocket::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
    }
}

/// Ports forwarded to the guest.
struct Ports {
    udp_echo: u16,
    tcp_echo: u16,
    udp_closed: u16,
}

/// Boots the kernel on `machine` with usb-net; `hub` leaves out `port=1` so QEMU puts a hub in
/// front.
fn boot(machine: &str, hub: bool) -> (Qemu, Ports) {
    let ports = Ports { udp_echo: free_port(true), tcp_echo: free_port(false), udp_closed: free_port(true) };
    let mut options = BootOptions::new(machine, kernel_elf(""));
    let netdev = format!(
        "user,id=n0,hostfwd=udp:127.0.0.1:{}-:7,hostfwd=tcp:127.0.0.1:{}-:7,hostfwd=udp:127.0.0.1:{}-:9",
        ports.udp_echo, ports.tcp_echo, ports.udp_closed
    );
    let device = if hub { "usb-net,netdev=n0".to_string() } else { "usb-net,netdev=n0,port=1".to_string() };
    options.extra_args = vec!["-netdev".into(), netdev, "-device".into(), device];
    let mut qemu = Qemu::boot(&options).expect("start QEMU");
    let ip = qemu.wait_for_line("net: ip ", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    assert!(ip.starts_with("10.0.2.15/24 via dhcp"), "expected the DHCP lease 10.0.2.15, got {ip:?}");
    (qemu, ports)
}

/// Deterministic bytes for request `index` of `length`.
fn payload(index: usize, length: usize) -> Vec<u8> {
    let mut state = (index as u32).wrapping_mul(2_654_435_761).wrapping_add(length as u32) | 1;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

/// Sends `count` UDP echo requests one at a time; returns how many came back intact. Each
/// request gets one try and a timeout: a loss is counted, not retried.
fn udp_echo(port: u16, count: usize, sizes: impl Fn(usize) -> usize) -> (usize, Vec<String>) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
    socket.connect(("127.0.0.1", port)).expect("connect");
    let mut good = 0;
    let mut problems = Vec::new();
    let mut reply = vec![0u8; 4096];
    for index in 0..count {
        let request = payload(index, sizes(index));
        socket.send(&request).expect("send");
        match socket.recv(&mut reply) {
            Ok(length) if reply[..length] == request[..] => good += 1,
            Ok(length) => {
                problems.push(format!("request {index} ({} bytes): reply of {length} bytes differs", request.len()))
            }
            Err(e) => problems.push(format!("request {index} ({} bytes): {e}", request.len())),
        }
    }
    (good, problems)
}

/// Sends `data` over TCP and reads the echo back concurrently; returns what came back.
fn tcp_echo(port: u16, data: &[u8]) -> Vec<u8> {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let mut reader = stream.try_clone().expect("clone");
    let expected = data.len();
    let receiver = std::thread::spawn(move || {
        let mut got = Vec::with_capacity(expected);
        let mut buffer = vec![0u8; 65536];
        while got.len() < expected {
            match reader.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buffer[..n]),
            }
        }
        got
    });
    let mut writer = stream;
    writer.write_all(data).expect("send");
    let got = receiver.join().expect("receiver");
    let _ = writer.shutdown(Shutdown::Both);
    got
}

/// The last `net: stats` line's counter `name`.
fn stat(output: &str, name: &str) -> Option<u64> {
    let line = output.lines().rev().find(|l| l.starts_with("net: stats "))?;
    let mut words = line.split_whitespace();
    while let Some(word) = words.next() {
        if word == name {
            return words.next()?.parse().ok();
        }
    }
    None
}

#[test]
fn dhcp_udp_and_tcp_echo() {
    let (qemu, ports) = boot("raspi0", false);
    let output = qemu.output();
    assert!(output.contains("usb: ecm: MAC "), "no ECM attach:\n{output}");
    let (good, problems) = udp_echo(ports.udp_echo, 1000, |i| 1 + (i * 7919) % 1400);
    assert!(problems.is_empty(), "UDP echo: {} of 1000 intact; problems: {problems:#?}", good);
    assert_eq!(good, 1000);
    // Every size from 1 to 1400 appears: 7919 is prime and coprime with 1400.
    let data = payload(99, 1 << 20);
    let echoed = tcp_echo(ports.tcp_echo, &data);
    assert_eq!(echoed.len(), data.len(), "TCP echo came back short");
    assert!(echoed == data, "TCP echo came back altered");
    // The status panel's network row (what the screen shows) has the address and the counters.
    let mut qemu = qemu;
    qemu.send("status\n").expect("type on the console");
    let row = qemu.wait_for_line("status: network  ", Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e}"));
    assert!(row.starts_with("10.0.2.15/24 dhcp rx "), "status row: {row:?}");
    let rx: u64 = row.split_whitespace().nth(3).and_then(|v| v.parse().ok()).unwrap_or(0);
    assert!(rx > 1000, "status row counters: {row:?}");
}

/// On the other board, so both emulated machines run the network path.
#[test]
fn hub_in_front_of_usb_net() {
    let (qemu, ports) = boot("raspi1ap", true);
    let output = qemu.output();
    assert!(output.contains("-> hub"), "no hub was enumerated:\n{output}");
    assert!(output.contains("usb: device 2: 0525:a4a2"), "usb-net not found behind the hub:\n{output}");
    let (good, problems) = udp_echo(ports.udp_echo, 50, |i| 1 + (i * 31) % 1400);
    assert_eq!(good, 50, "UDP echo behind a hub: {problems:#?}");
    let data = payload(5, 64 * 1024);
    assert!(tcp_echo(ports.tcp_echo, &data) == data, "TCP echo behind a hub");
}

#[test]
fn bad_input_does_not_stop_echo() {
    let (mut qemu, ports) = boot("raspi0", false);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.set_read_timeout(Some(Duration::from_millis(1500))).expect("timeout");
    // Oversized datagrams: they arrive as IPv4 fragments, which the kernel drops and counts.
    for size in [1473usize, 4000, 65_000] {
        socket.send_to(&payload(size, size), ("127.0.0.1", ports.udp_echo)).expect("send oversized");
    }
    let mut reply = [0u8; 2048];
    assert!(socket.recv_from(&mut reply).is_err(), "an oversized datagram was echoed");
    // An empty datagram is legal and comes back empty.
    socket.send_to(&[], ("127.0.0.1", ports.udp_echo)).expect("send empty");
    let (length, _) = socket.recv_from(&mut reply).expect("empty datagram echo");
    assert_eq!(length, 0);
    // A flood of 10,000 datagrams to a closed port.
    let flood = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for index in 0..10_000u32 {
        let _ = flood.send_to(&index.to_le_bytes(), ("127.0.0.1", ports.udp_closed));
        if index % 500 == 499 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // Garbage to the TCP port: binary junk, then an abrupt close; and connections that open
    // and close at once.
    {
        let mut junk = TcpStream::connect(("127.0.0.1", ports.tcp_echo)).expect("connect");
        junk.write_all(&payload(7, 30_000)).expect("junk");
        drop(junk);
    }
    for _ in 0..10 {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", ports.tcp_echo)) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
    // The services still answer.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut good, mut problems) = (0, Vec::new());
    while Instant::now() < deadline {
        (good, problems) = udp_echo(ports.udp_echo, 100, |i| 1 + (i * 13) % 1400);
        if good == 100 {
            break;
        }
    }
    assert_eq!(good, 100, "UDP echo after bad input: {problems:#?}\n{}", qemu.output());
    let data = payload(11, 100_000);
    assert!(tcp_echo(ports.tcp_echo, &data) == data, "TCP echo after bad input");
    // The counters show the drops.
    std::thread::sleep(Duration::from_millis(2500));
    let output = qemu.wait_for("net: stats", Duration::from_secs(5)).expect("stats");
    let closed = stat(&output, "closed_port").expect("closed_port counter");
    let fragments = stat(&output, "fragments").expect("fragments counter");
    assert!(closed >= 1000, "closed-port drops not counted: {closed}\n{output}");
    assert!(fragments >= 3, "fragments not counted: {fragments}\n{output}");
    assert!(stat(&output, "udp_echo").unwrap_or(0) >= 101, "{output}");
}
