//! Job UDP sockets: the sockets a job binds, sends and receives on through the job I/O service
//! (`services::jobio`). The sockets and their ports are `jos_kcore::net::manager`'s
//! (host-tested); this file adds the release of a socket whose owner ended while the manager
//! was busy.

use core::sync::atomic::{AtomicU32, Ordering};

use jos_abi::syscall::Endpoint;
use jos_abi::ErrorCode;

use super::{sizes, Net, NET};

/// Job sockets whose owner ended while the network manager was busy (bit per socket): freed by
/// the next use of the manager ([`with_net`]).
static JOB_RELEASE: AtomicU32 = AtomicU32::new(0);

/// Runs `f` on the manager after freeing the job sockets marked for release; `Io` when the
/// network is down or busy.
fn with_net<R>(f: impl FnOnce(&mut Net) -> Result<R, ErrorCode>) -> Result<R, ErrorCode> {
    NET.with(|net| {
        release_marked(net);
        f(net)
    })
    .unwrap_or(Err(ErrorCode::Io))
}

/// Frees the job sockets marked in `JOB_RELEASE`.
pub(super) fn release_marked(net: &mut Net) {
    net.release_jobs(JOB_RELEASE.swap(0, Ordering::AcqRel));
}

/// Binds a free job socket to `port` (the caller has checked the port against the policy);
/// returns its index. `InUse` if the port is bound already (by the device or a job socket),
/// `LimitExceeded` when every job socket is taken, `Io` when the network is down.
pub fn job_bind(port: u16) -> Result<usize, ErrorCode> {
    with_net(|net| net.job_bind(port))
}

/// Queues a datagram on job socket `index` and moves it to the wire at once.
pub fn job_send(index: usize, to: Endpoint, data: &[u8]) -> Result<(), ErrorCode> {
    with_net(|net| net.job_send(index, to, data))
}

/// The next datagram on job socket `index`, copied into `buffer` (truncated); returns its full
/// length and sender, or `WouldBlock`.
pub fn job_recv(index: usize, buffer: &mut [u8]) -> Result<(usize, Endpoint), ErrorCode> {
    with_net(|net| net.job_recv(index, buffer))
}

/// Closes job socket `index` after moving what it queued to the wire. When the network manager
/// is busy (the owner ended inside its poll), the socket is freed by the next poll instead.
pub fn job_close(index: usize) {
    if index >= sizes::JOB_SOCKETS {
        return;
    }
    JOB_RELEASE.fetch_or(1 << index, Ordering::AcqRel);
    let _ = NET.with(|net| {
        JOB_RELEASE.fetch_and(!(1 << index), Ordering::AcqRel);
        net.job_close(index);
        release_marked(net);
    });
}
