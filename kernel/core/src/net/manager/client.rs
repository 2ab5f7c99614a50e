//! Outgoing TCP sockets that other services own (the kernel's fleet broker connection): added to
//! the manager's socket set once, then reached through [`Manager::with_client_socket`]; their
//! bytes leave on the next [`Manager::poll`].

use jos_abi::ErrorCode;
use smoltcp::iface::{Context, SocketHandle};
use smoltcp::socket::tcp;

use super::{sizes, Manager, NetworkDevice};
use crate::drivers::Clock;

impl<'a, D: NetworkDevice, C: Clock> Manager<'a, D, C> {
    /// Adds an outgoing TCP socket that another service owns (its buffers are the caller's) and
    /// returns its handle. `LimitExceeded` past [`sizes::CLIENT_SOCKETS`].
    pub fn add_client_socket(&mut self, socket: tcp::Socket<'a>) -> Result<SocketHandle, ErrorCode> {
        if self.client_sockets >= sizes::CLIENT_SOCKETS {
            return Err(ErrorCode::LimitExceeded);
        }
        self.client_sockets += 1;
        Ok(self.sockets.add(socket))
    }

    /// Runs `f` on a socket added by [`Manager::add_client_socket`], with the interface's
    /// context (to `connect`). Queued bytes leave on the next [`Manager::poll`].
    pub fn with_client_socket<R>(
        &mut self,
        handle: SocketHandle,
        f: impl FnOnce(&mut tcp::Socket<'a>, &mut Context) -> R,
    ) -> R {
        f(self.sockets.get_mut::<tcp::Socket<'a>>(handle), self.iface.context())
    }
}
