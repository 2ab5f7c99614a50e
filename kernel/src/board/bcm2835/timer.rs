//! The BCM2835 system timer: a free-running 64-bit microsecond counter and four 32-bit compare
//! registers (BCM2835 ARM Peripherals, chapter 12). Compare channels 0 and 2 belong to the
//! VideoCore; channels 1 and 3 are the ARM's (interrupt controller IRQs 1 and 3).

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite};
use tock_registers::{register_bitfields, register_structs};

use super::mmio::Mmio;

use jos_kcore::drivers::Clock;

register_bitfields! {
    u32,
    /// System Timer Control/Status (12.1, CS). Write 1 to a bit to clear it.
    CS [
        /// System Timer Match 3: "a match has been detected" against C3.
        M3 OFFSET(3) NUMBITS(1) [],
        /// System Timer Match 2.
        M2 OFFSET(2) NUMBITS(1) [],
        /// System Timer Match 1.
        M1 OFFSET(1) NUMBITS(1) [],
        /// System Timer Match 0.
        M0 OFFSET(0) NUMBITS(1) []
    ]
}

register_structs! {
    #[allow(non_snake_case)]
    /// System timer registers (12.1).
    pub Registers {
        /// Control/status.
        (0x00 => CS: ReadWrite<u32, CS::Register>),
        /// Counter lower 32 bits.
        (0x04 => CLO: ReadOnly<u32>),
        /// Counter higher 32 bits.
        (0x08 => CHI: ReadOnly<u32>),
        /// Compare 0 (VideoCore).
        (0x0c => C0: ReadWrite<u32>),
        /// Compare 1 (ARM).
        (0x10 => C1: ReadWrite<u32>),
        /// Compare 2 (VideoCore).
        (0x14 => C2: ReadWrite<u32>),
        /// Compare 3 (ARM).
        (0x18 => C3: ReadWrite<u32>),
        (0x1c => @END),
    }
}

/// The ARM's compare channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// Compare 1: the cyclic executive's minor frame.
    One,
    /// Compare 3: free for deadlines (job service) and the self-test.
    Three,
}

impl Channel {
    /// The interrupt controller's IRQ number for this channel's match.
    pub const fn irq(self) -> u32 {
        match self {
            Channel::One => 1,
            Channel::Three => 3,
        }
    }
}

/// The system timer driver.
pub struct SystemTimer {
    registers: Mmio<Registers>,
}

impl SystemTimer {
    /// Creates the driver.
    ///
    /// # Safety
    /// `base` must be the system timer's register block, mapped as device memory, with no other
    /// driver instance.
    pub const unsafe fn new(base: usize) -> Self {
        // SAFETY: promised by the caller.
        Self { registers: unsafe { Mmio::new(base) } }
    }

    /// Microseconds since the counter started (power-on), read so that a carry from CLO into
    /// CHI between the two reads cannot produce a wrong value.
    pub fn now_micros(&self) -> u64 {
        let r = &self.registers;
        loop {
            let high = r.CHI.get();
            let low = r.CLO.get();
            if r.CHI.get() == high {
                return (u64::from(high) << 32) | u64::from(low);
            }
        }
    }

    /// The low 32 bits of the counter (what compare registers match against).
    pub fn now_low(&self) -> u32 {
        self.registers.CLO.get()
    }

    /// Sets `channel`'s compare value to `at` (low counter bits) and clears a pending match. The
    /// match interrupt fires when CLO equals `at`, if the IRQ is enabled in the controller.
    pub fn set_compare(&self, channel: Channel, at: u32) {
        let r = &self.registers;
        match channel {
            Channel::One => r.C1.set(at),
            Channel::Three => r.C3.set(at),
        }
        self.acknowledge(channel);
    }

    /// The compare value of `channel`.
    pub fn compare(&self, channel: Channel) -> u32 {
        match channel {
            Channel::One => self.registers.C1.get(),
            Channel::Three => self.registers.C3.get(),
        }
    }

    /// True when `channel` has matched and the match was not acknowledged.
    pub fn matched(&self, channel: Channel) -> bool {
        match channel {
            Channel::One => self.registers.CS.is_set(CS::M1),
            Channel::Three => self.registers.CS.is_set(CS::M3),
        }
    }

    /// Clears `channel`'s match (and its interrupt request).
    pub fn acknowledge(&self, channel: Channel) {
        match channel {
            Channel::One => self.registers.CS.write(CS::M1::SET),
            Channel::Three => self.registers.CS.write(CS::M3::SET),
        }
    }

    /// Arms `channel` to match `delay` microseconds from now and returns the compare value.
    ///
    /// A compare value only matches when the counter passes it, so one written a moment too late
    /// (the core stalled between reading the counter and writing the compare; under QEMU a busy
    /// host does that) would match only after the 32-bit counter wraps, 71 minutes later. The
    /// write is therefore checked and redone until the match is still ahead.
    pub fn arm_in(&self, channel: Channel, delay: u32) -> u32 {
        loop {
            let at = self.now_low().wrapping_add(delay.max(1));
            self.set_compare(channel, at);
            if Self::ahead(at, self.now_low()) {
                return at;
            }
        }
    }

    /// True when compare value `at` is still in the future at counter value `now`.
    fn ahead(at: u32, now: u32) -> bool {
        (at.wrapping_sub(now) as i32) > 0
    }

    /// For a periodic interrupt: moves `channel`'s compare on by `period` from its last value
    /// (no drift) and acknowledges the match. Slots that have already passed are skipped (the
    /// grid is kept); returns how many were skipped. Like [`arm_in`](Self::arm_in), the write is
    /// checked so the timer can never be left waiting for a wrap.
    pub fn advance_compare(&self, channel: Channel, period: u32) -> u32 {
        let period = period.max(1);
        let mut next = self.compare(channel).wrapping_add(period);
        let mut skipped = 0;
        loop {
            let now = self.now_low();
            if !Self::ahead(next, now) {
                let behind = now.wrapping_sub(next) / period + 1;
                skipped += behind;
                next = next.wrapping_add(behind.wrapping_mul(period));
            }
            self.set_compare(channel, next);
            if Self::ahead(next, self.now_low()) {
                return skipped;
            }
        }
    }
}

impl Clock for SystemTimer {
    fn now_micros(&self) -> u64 {
        SystemTimer::now_micros(self)
    }

    /// Spins for roughly a microsecond without touching a device register. Busy-wait loops call
    /// it between register reads: under QEMU with `-icount` every device read is costly in host
    /// time while it advances guest time by one instruction, so a loop of bare register reads
    /// makes a 100 ms guest wait take seconds of host time.
    #[inline(never)]
    fn relax(&self) {
        for step in 0..256u32 {
            core::hint::black_box(step);
        }
    }
}
