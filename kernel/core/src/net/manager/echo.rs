//! The UDP and TCP echo services (port 7), with the UDP fast path that answers a plain echo
//! request straight from the received frame, and the hosted service's turn on its sockets.

use smoltcp::socket::{tcp, udp};

use super::{sizes, Manager, NetworkDevice, TCP_ECHO_PORT};
use crate::drivers::Clock;
use crate::net::{echo_reply_unchecked, Local};

impl<D: NetworkDevice, C: Clock> Manager<'_, D, C> {
    /// The UDP echo service's fast path: answers the oldest received frame, a plain echo request
    /// ([`crate::net::Verdict::Echo`]), straight into a transmit buffer ([`echo_reply_unchecked`]:
    /// the frame was just classified), with no smoltcp ingress, socket or egress. Only while the echo socket holds nothing, so replies
    /// leave in the order requests came; `false` (the frame stays for smoltcp) when it does, or
    /// every transmit buffer is taken.
    pub(super) fn echo_fast(&mut self, local: &Local) -> bool {
        let socket = self.sockets.get::<udp::Socket>(self.udp);
        if socket.can_recv() || socket.send_queue() != 0 {
            return false;
        }
        if self.device.answer(|request, reply| echo_reply_unchecked(request, local, reply)).is_none() {
            return false;
        }
        self.counters.udp_echoes += 1;
        true
    }

    /// UDP and TCP echo.
    pub(super) fn serve(&mut self) {
        let udp_socket = self.sockets.get_mut::<udp::Socket>(self.udp);
        let scratch = &mut self.scratch[..sizes::UDP_CHUNK];
        while udp_socket.can_recv() {
            // Copy, send, and only then dequeue: a datagram is never taken and then lost for
            // want of transmit space; it waits for the next poll instead.
            let Ok((payload, metadata)) = udp_socket.peek() else { break };
            let remote = metadata.endpoint;
            let Some(copy) = scratch.get_mut(..payload.len()) else {
                let _ = udp_socket.recv();
                self.counters.udp_echo_drops += 1;
                continue;
            };
            copy.copy_from_slice(payload);
            let length = copy.len();
            if length > udp_socket.payload_send_capacity() {
                let _ = udp_socket.recv();
                self.counters.udp_echo_drops += 1;
                continue;
            }
            match udp_socket.send_slice(&scratch[..length], remote) {
                Ok(()) => {
                    let _ = udp_socket.recv();
                    self.counters.udp_echoes += 1;
                }
                // No address or port to answer (a request from 0.0.0.0 or from port 0): dropped,
                // or it would stay at the head of the queue and stop the service.
                Err(udp::SendError::Unaddressable) => {
                    let _ = udp_socket.recv();
                    self.counters.udp_echo_drops += 1;
                }
                Err(udp::SendError::BufferFull) => break,
            }
        }
        for (index, handle) in self.tcp.into_iter().enumerate() {
            let socket = self.sockets.get_mut::<tcp::Socket>(handle);
            if !socket.is_open() {
                if self.tcp_open[index] {
                    self.tcp_open[index] = false;
                }
                let _ = socket.listen(TCP_ECHO_PORT);
                continue;
            }
            if socket.is_active() && !self.tcp_open[index] {
                self.tcp_open[index] = true;
                self.counters.tcp_connections += 1;
            }
            let chunk = &mut self.scratch[..sizes::TCP_CHUNK];
            while socket.can_recv() && socket.can_send() {
                let room = (socket.send_capacity() - socket.send_queue()).min(chunk.len());
                if room == 0 {
                    break;
                }
                let Ok(got) = socket.recv_slice(&mut chunk[..room]) else { break };
                if got == 0 {
                    break;
                }
                let sent = socket.send_slice(&chunk[..got]).unwrap_or(0);
                self.counters.tcp_echo_bytes += sent as u64;
            }
            if !socket.may_recv() && socket.send_queue() == 0 && socket.state() == tcp::State::CloseWait {
                socket.close();
            }
        }
        if let Some(service) = self.hosted {
            (service.serve)(&mut self.sockets);
        }
    }
}
