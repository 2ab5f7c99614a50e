//! USB on the BCM2835: the DWC2 host controller driver, the board platform the USB stack runs
//! on ([`hal::Platform`]), and the slot that holds the Ethernet device after boot.
//!
//! The stack itself (control transfers, enumeration, the hub, CDC-ECM and SMSC LAN95xx class
//! drivers, the shared Ethernet data path) is board-independent and host-tested:
//! `jos_kcore::usb`. Enumeration runs once at boot with blocking, deadline-bounded control
//! transfers; the Ethernet data path afterwards is split-phase and polled from the executive.

pub mod dwc2;
pub mod hal;

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use jos_kcore::usb::bus::Bus;

use dwc2::{Dwc2, UsbError};

// SAFETY: DWC2_BASE is the only DWC2 block on the BCM2835 and this is its only driver instance.
/// The host controller.
pub static HOST: Dwc2 = unsafe { Dwc2::new(dwc2::DWC2_BASE) };

/// The Ethernet device the network service drives.
pub mod ethernet {
    pub use jos_kcore::usb::ethernet::{Counters, RxCounters, TxCounters};

    use super::{hal::Platform, Slot};

    /// A USB Ethernet device on this board.
    pub type EthernetDevice = jos_kcore::usb::ethernet::EthernetDevice<Platform>;

    /// The Ethernet device, once enumeration found one.
    pub static DEVICE: Slot<EthernetDevice> = Slot::new();
}

/// A cell for a driver object that the main loop owns after boot. `with` refuses re-entry, so
/// two `&mut` to the object can never exist.
pub struct Slot<T> {
    value: UnsafeCell<Option<T>>,
    busy: AtomicBool,
}

// SAFETY: access goes through `with`, whose busy flag makes it exclusive; the kernel is
// single-core, and the slots are used from the main loop only (never from interrupt handlers).
unsafe impl<T: Send> Sync for Slot<T> {}

impl<T> Slot<T> {
    /// An empty slot.
    pub const fn new() -> Self {
        Self { value: UnsafeCell::new(None), busy: AtomicBool::new(false) }
    }

    /// Stores `value` (replacing any earlier one). Refused (value dropped, false) while in use.
    pub fn put(&self, value: T) -> bool {
        self.with_option(|slot| *slot = Some(value)).is_some()
    }

    /// Moves the stored object out, leaving the slot empty.
    pub fn take(&self) -> Option<T> {
        self.with_option(Option::take).flatten()
    }

    /// Runs `f` on the stored object; `None` when the slot is empty or already in use.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        self.with_option(|slot| slot.as_mut().map(f)).flatten()
    }

    fn with_option<R>(&self, f: impl FnOnce(&mut Option<T>) -> R) -> Option<R> {
        if self.busy.swap(true, Ordering::Acquire) {
            return None;
        }
        // SAFETY: the busy flag was false and is now true, so this is the only reference.
        let result = f(unsafe { &mut *self.value.get() });
        self.busy.store(false, Ordering::Release);
        Some(result)
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Brings up the controller and enumerates everything behind the root port. Afterwards
/// [`ethernet::DEVICE`] holds the Ethernet device if one was found.
pub fn start(console: fn(core::fmt::Arguments)) -> Result<(), UsbError> {
    let started = hal::now_micros();
    let speed = HOST.init()?;
    console(format_args!("usb: DWC2 core {:#010x}, root port {:?} speed", HOST.id(), speed));
    let mut bus = Bus::new(&hal::PLATFORM, console)?;
    let result = bus.enumerate(speed, 0);
    if let Some(device) = bus.take_ethernet() {
        ethernet::DEVICE.put(device);
    }
    console(format_args!("usb: enumeration took {} ms", (hal::now_micros() - started) / 1000));
    result
}
