//! Outgoing TCP sockets that other services own (the fleet's broker connection): added to the
//! manager's socket set once, then reached through [`with_client_socket`]; their bytes leave
//! on the next [`super::poll`]. The bookkeeping is `jos_kcore::net::manager` (host-tested).

use jos_abi::ErrorCode;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;

use super::NET;

/// Adds an outgoing TCP socket that another service owns (its buffers are the caller's) and
/// returns its handle. `LimitExceeded` past `sizes::CLIENT_SOCKETS`, `Io` when the network is
/// down.
pub fn add_client_socket(socket: tcp::Socket<'static>) -> Result<SocketHandle, ErrorCode> {
    NET.with(|net| net.add_client_socket(socket)).unwrap_or(Err(ErrorCode::Io))
}

/// Runs `f` on a socket added by [`add_client_socket`], with the interface's context (to
/// `connect`); `None` when the network is down or busy. Queued bytes leave on the next
/// [`super::poll`].
pub fn with_client_socket<R>(
    handle: SocketHandle,
    f: impl FnOnce(&mut tcp::Socket<'static>, &mut smoltcp::iface::Context) -> R,
) -> Option<R> {
    NET.with(|net| net.with_client_socket(handle, f))
}
