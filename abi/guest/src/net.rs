//! UDP sockets for network-serving jobs (capability `Network`; the device grants the ports).

use jos_abi::syscall::Endpoint;

use crate::{raw, Error, Result};

/// A bound UDP socket, closed when dropped.
#[derive(Debug)]
pub struct UdpSocket {
    handle: i32,
}

impl UdpSocket {
    /// Binds a socket to `port` (which the device must grant the job).
    pub fn bind(port: u16) -> Result<Self> {
        // SAFETY: a plain integer argument.
        let handle = Error::check(unsafe { raw::udp_bind(u32::from(port)) })?;
        Ok(Self { handle: handle as i32 })
    }

    /// Sends one datagram to `to`.
    pub fn send_to(&self, bytes: &[u8], to: Endpoint) -> Result<()> {
        let endpoint = to.to_bytes();
        // SAFETY: both pointers and the length describe live buffers the call only reads.
        Error::check(unsafe { raw::udp_send(self.handle, endpoint.as_ptr(), bytes.as_ptr(), bytes.len()) }).map(drop)
    }

    /// Receives the next datagram into `buffer` (truncated to its size): the datagram's length and
    /// sender; `WouldBlock` when none is waiting.
    pub fn recv_from(&self, buffer: &mut [u8]) -> Result<(usize, Endpoint)> {
        let mut endpoint = [0u8; Endpoint::LEN];
        // SAFETY: the pointers and length describe live buffers the call may write.
        let length = Error::check(unsafe {
            raw::udp_recv(self.handle, buffer.as_mut_ptr(), buffer.len(), endpoint.as_mut_ptr())
        })?;
        let sender = Endpoint::from_bytes(endpoint).ok_or(Error::new(jos_abi::ErrorCode::Malformed))?;
        Ok((length as usize, sender))
    }

    /// Waits for the next datagram, yielding the rest of the device's frame between polls (the
    /// device idles until its next network poll).
    pub fn recv_from_blocking(&self, buffer: &mut [u8]) -> Result<(usize, Endpoint)> {
        loop {
            match self.recv_from(buffer) {
                Err(error) if error.kind() == Some(jos_abi::ErrorCode::WouldBlock) => crate::yield_now(),
                other => return other,
            }
        }
    }

    /// The raw handle.
    pub const fn handle(&self) -> i32 {
        self.handle
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        // SAFETY: a plain integer argument; closing twice is not possible (drop runs once).
        unsafe {
            raw::udp_close(self.handle);
        }
    }
}
