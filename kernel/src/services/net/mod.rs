//! The network service: the one [`jos_kcore::net::manager::Manager`] over the board's USB
//! Ethernet device (CDC-ECM or SMSC LAN95xx) and the system timer. The manager (interface and
//! sockets, DHCPv4 with a static fallback, the pre-filter and the echo services, job and client
//! sockets, the counters) is board-independent and host-tested in `jos_kcore`; this module owns
//! its instance and socket memory, registers the hosted service, and gives the other services
//! their entry points. [`poll`] runs from the executive every minor frame; it never waits.
//!
//! The files: `storage` (the socket memory's static), `client` (outgoing sockets other services
//! own), `jobs` (job UDP sockets, with the release of a socket whose owner ended mid-poll); this
//! file holds the instance, its start ([`init`]) and its poll.

mod client;
mod jobs;
mod storage;

pub use client::{add_client_socket, with_client_socket};
pub use jobs::{job_bind, job_close, job_recv, job_send};
pub use jos_kcore::net::manager::{sizes, AddressState, Counters, HostedService};

use core::sync::atomic::Ordering;

use jos_kcore::net::manager::{Manager, Sinks};

use crate::board::bcm2835::usb::ethernet::{self, EthernetDevice};
use crate::board::bcm2835::usb::hal::{self, Platform};
use crate::board::bcm2835::usb::Slot;

/// The network manager on this board.
type Net = Manager<'static, EthernetDevice, Platform>;

/// The registered service (null: none).
static HOSTED: core::sync::atomic::AtomicPtr<HostedService> = core::sync::atomic::AtomicPtr::new(core::ptr::null_mut());

/// Registers the service that owns the offload sockets (call before [`init`]). The manager
/// calls it and never names that service (the arrows run one way: `offload` -> `jobio` ->
/// `net`).
pub fn host(service: &'static HostedService) {
    HOSTED.store(core::ptr::from_ref(service).cast_mut(), Ordering::Release);
}

fn hosted() -> Option<&'static HostedService> {
    // SAFETY: HOSTED is null or was set by `host` from a `&'static HostedService`, never freed
    // and only read through shared references.
    unsafe { HOSTED.load(Ordering::Acquire).as_ref() }
}

static NET: Slot<Net> = Slot::new();

/// Why the network manager did not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// No Ethernet device was enumerated.
    NoDevice,
    /// `init` ran before.
    AlreadyStarted,
}

/// Builds the interface and sockets over the enumerated Ethernet device.
pub fn init(log: fn(core::fmt::Arguments)) -> Result<(), InitError> {
    if ethernet::DEVICE.with(|_| ()).is_none() {
        return Err(InitError::NoDevice);
    }
    let Some(storage) = storage::take() else {
        return Err(InitError::AlreadyStarted);
    };
    // Move the device out of the driver's slot: the network manager owns it from now on.
    let Some(device) = ethernet::DEVICE.take() else {
        return Err(InitError::NoDevice);
    };
    let sinks = Sinks { log, status: crate::services::status::set_network_line };
    NET.put(Manager::new(device, &hal::PLATFORM, storage, hosted(), sinks));
    Ok(())
}

/// Writes one line to the kernel log (the console sink the USB stack and this service use).
pub fn log_line(args: core::fmt::Arguments) {
    crate::kprintln!("{args}");
}

/// One step of the network: move frames, run the stack, serve the echo sockets, report.
pub fn poll() {
    NET.with(|net| {
        jobs::release_marked(net);
        net.poll();
    });
}

/// The counters, if the network is up.
pub fn counters() -> Option<Counters> {
    NET.with(|net| net.counters())
}

/// Whether the network has an IPv4 address (DHCP lease or static fallback); `None` when the
/// network manager did not start (no Ethernet device). For the status LED.
pub fn has_address() -> Option<bool> {
    NET.with(|net| net.address().is_some())
}
