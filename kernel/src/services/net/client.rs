//! Outgoing TCP sockets that other services own (the fleet's broker connection): added to the
//! manager's socket set once, then reached through [`with_client_socket`]; their bytes leave
//! on the next [`super::poll`].

use core::sync::atomic::{AtomicU32, Ordering};

use jos_abi::ErrorCode;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;

use super::{sizes, NET};

/// Client sockets added so far (at most [`sizes::CLIENT_SOCKETS`]).
static CLIENT_SOCKETS_ADDED: AtomicU32 = AtomicU32::new(0);

/// Adds an outgoing TCP socket that another service owns (its buffers are the caller's) and
/// returns its handle. `LimitExceeded` past [`sizes::CLIENT_SOCKETS`], `Io` when the network is
/// down.
pub fn add_client_socket(socket: tcp::Socket<'static>) -> Result<SocketHandle, ErrorCode> {
    NET.with(|net| {
        if CLIENT_SOCKETS_ADDED.load(Ordering::Relaxed) as usize >= sizes::CLIENT_SOCKETS {
            return Err(ErrorCode::LimitExceeded);
        }
        CLIENT_SOCKETS_ADDED.fetch_add(1, Ordering::Relaxed);
        Ok(net.sockets.add(socket))
    })
    .unwrap_or(Err(ErrorCode::Io))
}

/// Runs `f` on a socket added by [`add_client_socket`], with the interface's context (to
/// `connect`); `None` when the network is down or busy. Queued bytes leave on the next
/// [`super::poll`].
pub fn with_client_socket<R>(
    handle: SocketHandle,
    f: impl FnOnce(&mut tcp::Socket<'static>, &mut smoltcp::iface::Context) -> R,
) -> Option<R> {
    NET.with(|net| f(net.sockets.get_mut::<tcp::Socket<'static>>(handle), net.iface.context()))
}
