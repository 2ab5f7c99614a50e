//! Job UDP sockets: the sockets a job binds, sends and receives on through the kernel's job I/O
//! service; added by [`super::Manager::new`], unbound until a job binds one.

use jos_abi::syscall::Endpoint;
use jos_abi::ErrorCode;
use smoltcp::socket::udp;
use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address};

use super::{instant, sizes, Manager, NetworkDevice, OPEN_UDP_PORTS};
use crate::drivers::Clock;

/// Whether a job socket in `ports` (0: free) is bound to `port`.
pub(super) fn bound(ports: &[u16; sizes::JOB_SOCKETS], port: u16) -> bool {
    port != 0 && ports.contains(&port)
}

impl<D: NetworkDevice, C: Clock> Manager<'_, D, C> {
    /// Whether a job socket is bound to `port` (the pre-filter lets its datagrams in).
    pub fn job_port_bound(&self, port: u16) -> bool {
        bound(&self.job_ports, port)
    }

    /// Binds a free job socket to `port` (the caller has checked the port against the policy);
    /// returns its index. `InUse` if the port is bound already (by the device or a job socket),
    /// `LimitExceeded` when every job socket is taken.
    pub fn job_bind(&mut self, port: u16) -> Result<usize, ErrorCode> {
        if port == 0 || OPEN_UDP_PORTS.contains(&port) || self.job_port_bound(port) {
            return Err(ErrorCode::InUse);
        }
        let index = self.job_ports.iter().position(|bound| *bound == 0).ok_or(ErrorCode::LimitExceeded)?;
        let socket = self.sockets.get_mut::<udp::Socket>(self.jobs[index]);
        socket.bind(port).map_err(|_| ErrorCode::InUse)?;
        self.job_ports[index] = port;
        Ok(index)
    }

    /// Queues a datagram on job socket `index` and moves it to the wire at once. `NotFound`
    /// for a socket that is not bound, `LimitExceeded` for a datagram larger than its buffer,
    /// `WouldBlock` while its buffer is full, `InvalidArgument` for an address it cannot reach.
    pub fn job_send(&mut self, index: usize, to: Endpoint, data: &[u8]) -> Result<(), ErrorCode> {
        let handle = self.job_handle(index)?;
        let socket = self.sockets.get_mut::<udp::Socket>(handle);
        if data.len() > socket.payload_send_capacity() {
            return Err(ErrorCode::LimitExceeded);
        }
        let [a, b, c, d] = to.address;
        let remote = IpEndpoint::new(IpAddress::Ipv4(Ipv4Address::new(a, b, c, d)), to.port);
        match socket.send_slice(data, remote) {
            Ok(()) => {}
            Err(udp::SendError::BufferFull) => return Err(ErrorCode::WouldBlock),
            Err(udp::SendError::Unaddressable) => return Err(ErrorCode::InvalidArgument),
        }
        self.flush();
        Ok(())
    }

    /// The next datagram on job socket `index`, copied into `buffer` (truncated); returns its
    /// full length and sender, `WouldBlock` when none is waiting, `NotFound` for a socket that
    /// is not bound.
    pub fn job_recv(&mut self, index: usize, buffer: &mut [u8]) -> Result<(usize, Endpoint), ErrorCode> {
        let handle = self.job_handle(index)?;
        let socket = self.sockets.get_mut::<udp::Socket>(handle);
        let (payload, metadata) = socket.recv().map_err(|_| ErrorCode::WouldBlock)?;
        let count = payload.len().min(buffer.len());
        buffer[..count].copy_from_slice(&payload[..count]);
        let address = match metadata.endpoint.addr {
            IpAddress::Ipv4(address) => address.octets(),
        };
        Ok((payload.len(), Endpoint { address, port: metadata.endpoint.port }))
    }

    /// Closes job socket `index` after moving what it queued to the wire.
    pub fn job_close(&mut self, index: usize) {
        if index < sizes::JOB_SOCKETS {
            self.flush();
            self.release_jobs(1 << index);
        }
    }

    /// Frees the job sockets whose bits are set in `marked` (bit per socket index).
    pub fn release_jobs(&mut self, marked: u32) {
        for (index, (handle, port)) in self.jobs.iter().zip(self.job_ports.iter_mut()).enumerate() {
            if marked & (1 << index) != 0 {
                self.sockets.get_mut::<udp::Socket>(*handle).close();
                *port = 0;
            }
        }
    }

    fn job_handle(&self, index: usize) -> Result<smoltcp::iface::SocketHandle, ErrorCode> {
        match self.job_ports.get(index) {
            Some(port) if *port != 0 => Ok(self.jobs[index]),
            _ => Err(ErrorCode::NotFound),
        }
    }

    /// Moves queued frames to the device now (a job's datagram leaves before its next slice).
    fn flush(&mut self) {
        let timestamp = instant(self.clock.now_micros());
        let _ = self.iface.poll_egress(timestamp, &mut self.device, &mut self.sockets);
        self.device.service();
    }
}
