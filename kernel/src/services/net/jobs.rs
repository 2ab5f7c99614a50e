//! Job UDP sockets: the sockets a job binds, sends and receives on through the job I/O service
//! (`services::jobio`); added at [`super::init`], unbound until a job binds one.

use core::sync::atomic::{AtomicU16, AtomicU32, Ordering};

use jos_abi::syscall::Endpoint;
use jos_abi::ErrorCode;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::{IpAddress, Ipv4Address};

use super::{now, sizes, Net, NET, OPEN_UDP_PORTS};
use crate::board::bcm2835::usb::hal;

/// The port each job socket is bound to (0: free); read by the frame pre-filter.
static JOB_PORTS: [AtomicU16; sizes::JOB_SOCKETS] = [const { AtomicU16::new(0) }; sizes::JOB_SOCKETS];
/// Job sockets whose owner ended while the network manager was busy (bit per socket): freed by
/// the next [`super::poll`] or job socket call.
static JOB_RELEASE: AtomicU32 = AtomicU32::new(0);

pub(super) fn job_port_bound(port: u16) -> bool {
    port != 0 && JOB_PORTS.iter().any(|bound| bound.load(Ordering::Relaxed) == port)
}

/// Binds a free job socket to `port` (the caller has checked the port against the policy);
/// returns its index. `InUse` if the port is bound already (by the device or a job socket),
/// `LimitExceeded` when every job socket is taken, `Io` when the network is down.
pub fn job_bind(port: u16) -> Result<usize, ErrorCode> {
    NET.with(|net| {
        net.release_jobs();
        if OPEN_UDP_PORTS.contains(&port) || job_port_bound(port) {
            return Err(ErrorCode::InUse);
        }
        let index =
            JOB_PORTS.iter().position(|bound| bound.load(Ordering::Relaxed) == 0).ok_or(ErrorCode::LimitExceeded)?;
        let socket = net.sockets.get_mut::<udp::Socket>(net.jobs[index]);
        socket.bind(port).map_err(|_| ErrorCode::InUse)?;
        JOB_PORTS[index].store(port, Ordering::Relaxed);
        Ok(index)
    })
    .unwrap_or(Err(ErrorCode::Io))
}

/// Queues a datagram on job socket `index` and moves it to the wire at once.
pub fn job_send(index: usize, to: Endpoint, data: &[u8]) -> Result<(), ErrorCode> {
    let handle = job_handle(index)?;
    NET.with(|net| {
        let socket = net.sockets.get_mut::<udp::Socket>(handle);
        if data.len() > socket.payload_send_capacity() {
            return Err(ErrorCode::LimitExceeded);
        }
        let [a, b, c, d] = to.address;
        let remote = smoltcp::wire::IpEndpoint::new(IpAddress::Ipv4(Ipv4Address::new(a, b, c, d)), to.port);
        match socket.send_slice(data, remote) {
            Ok(()) => {}
            Err(udp::SendError::BufferFull) => return Err(ErrorCode::WouldBlock),
            Err(udp::SendError::Unaddressable) => return Err(ErrorCode::InvalidArgument),
        }
        net.flush();
        Ok(())
    })
    .unwrap_or(Err(ErrorCode::Io))
}

/// The next datagram on job socket `index`, copied into `buffer` (truncated); returns its full
/// length and sender, or `WouldBlock`.
pub fn job_recv(index: usize, buffer: &mut [u8]) -> Result<(usize, Endpoint), ErrorCode> {
    let handle = job_handle(index)?;
    NET.with(|net| {
        let socket = net.sockets.get_mut::<udp::Socket>(handle);
        let (payload, metadata) = socket.recv().map_err(|_| ErrorCode::WouldBlock)?;
        let count = payload.len().min(buffer.len());
        buffer[..count].copy_from_slice(&payload[..count]);
        let address = match metadata.endpoint.addr {
            IpAddress::Ipv4(address) => address.octets(),
        };
        Ok((payload.len(), Endpoint { address, port: metadata.endpoint.port }))
    })
    .unwrap_or(Err(ErrorCode::Io))
}

/// Closes job socket `index` after moving what it queued to the wire. When the network manager
/// is busy (the owner ended inside its poll), the socket is freed by the next poll instead.
pub fn job_close(index: usize) {
    if index >= sizes::JOB_SOCKETS {
        return;
    }
    JOB_RELEASE.fetch_or(1 << index, Ordering::AcqRel);
    NET.with(|net| {
        net.flush();
        net.release_jobs();
    });
}

fn job_handle(index: usize) -> Result<SocketHandle, ErrorCode> {
    let bound = JOB_PORTS.get(index).ok_or(ErrorCode::NotFound)?;
    if bound.load(Ordering::Relaxed) == 0 || JOB_RELEASE.load(Ordering::Relaxed) & (1 << index) != 0 {
        return Err(ErrorCode::NotFound);
    }
    NET.with(|net| net.jobs[index]).ok_or(ErrorCode::Io)
}

impl Net {
    /// Frees the job sockets marked in `JOB_RELEASE`.
    pub(super) fn release_jobs(&mut self) {
        let marked = JOB_RELEASE.swap(0, Ordering::AcqRel);
        for (index, (handle, port)) in self.jobs.iter().zip(JOB_PORTS.iter()).enumerate() {
            if marked & (1 << index) != 0 {
                self.sockets.get_mut::<udp::Socket>(*handle).close();
                port.store(0, Ordering::Relaxed);
            }
        }
    }

    /// Moves queued frames to the device now (a job's datagram leaves before its next slice).
    fn flush(&mut self) {
        let timestamp = now(hal::now_micros());
        let _ = self.iface.poll_egress(timestamp, &mut self.device, &mut self.sockets);
        self.device.service();
    }
}
