//! `StdHost`'s UDP (what `jos-cli run --local --grant net` gives a job): loopback sockets,
//! non-blocking receive, full datagram lengths, handles, and sockets closed with the host.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use jos_abi::syscall::Endpoint;
use jos_abi::ErrorCode;
use jos_runtime::{Host, StdHost};

fn receive(host: &mut StdHost, handle: u32, buffer: &mut [u8]) -> (usize, Endpoint) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match host.udp_recv(handle, buffer) {
            Err(ErrorCode::WouldBlock) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            other => return other.expect("a datagram"),
        }
    }
}

#[test]
fn udp_on_loopback_answers_would_block_and_closes() {
    let mut host = StdHost::new(Vec::new());
    let handle = host.udp_bind(0).unwrap();
    let port = host.udp_port(handle).unwrap();
    assert_ne!(port, 0);
    let mut buffer = [0u8; 4];
    assert_eq!(host.udp_recv(handle, &mut buffer), Err(ErrorCode::WouldBlock));

    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    peer.send_to(b"hello, job", ("127.0.0.1", port)).unwrap();
    let (length, from) = receive(&mut host, handle, &mut buffer);
    assert_eq!(length, 10, "the full length, not the truncated one");
    assert_eq!(&buffer, b"hell");
    assert_eq!(from, Endpoint { address: [127, 0, 0, 1], port: peer.local_addr().unwrap().port() });

    host.udp_send(handle, from, b"back").unwrap();
    let mut reply = [0u8; 16];
    let (count, sender) = peer.recv_from(&mut reply).unwrap();
    assert_eq!(&reply[..count], b"back");
    assert_eq!(sender.port(), port);

    // The same port twice is in use; unknown handles are not found.
    assert_eq!(host.udp_bind(port), Err(ErrorCode::InUse));
    assert_eq!(host.udp_recv(99, &mut buffer), Err(ErrorCode::NotFound));
    assert_eq!(host.udp_send(99, from, b"x"), Err(ErrorCode::NotFound));
    host.udp_close(handle).unwrap();
    assert_eq!(host.udp_close(handle), Err(ErrorCode::NotFound));
    assert_eq!(host.open_sockets(), 0);
    // Closed: the port is free again.
    let again = host.udp_bind(port).unwrap();
    assert_ne!(again, handle, "handles are not reused");
    // Dropping the host (the job ended) closes its sockets.
    drop(host);
    UdpSocket::bind(("127.0.0.1", port)).expect("the port is free once the host is gone");
}

#[test]
fn a_job_holds_a_bounded_number_of_sockets() {
    let mut host = StdHost::new(Vec::new());
    let handles: Vec<u32> = (0..jos_runtime::host::MAX_SOCKETS).map(|_| host.udp_bind(0).unwrap()).collect();
    assert_eq!(host.udp_bind(0), Err(ErrorCode::LimitExceeded));
    host.udp_close(handles[0]).unwrap();
    host.udp_bind(0).unwrap();
}
