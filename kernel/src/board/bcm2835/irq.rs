//! The BCM2835 interrupt controller (BCM2835 ARM Peripherals, chapter 7) and the kernel's IRQ
//! dispatch: handlers are registered per interrupt number; an IRQ with no handler is masked and
//! counted, so a stray source cannot storm.
//!
//! Numbering: 0-63 are the GPU peripheral interrupts (pending registers 1 and 2; e.g. 1 and 3 the
//! system timer matches, 9 USB, 57 UART), 64-71 the ARM basic interrupts.

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite};

use super::mmio::Mmio;

register_structs! {
    #[allow(non_snake_case)]
    /// Interrupt controller registers (7.5), from offset 0x200 of the ARM control block.
    pub Registers {
        /// IRQ basic pending.
        (0x00 => IRQ_BASIC_PENDING: ReadOnly<u32>),
        /// IRQ pending 1 (GPU IRQs 0-31).
        (0x04 => IRQ_PENDING_1: ReadOnly<u32>),
        /// IRQ pending 2 (GPU IRQs 32-63).
        (0x08 => IRQ_PENDING_2: ReadOnly<u32>),
        /// FIQ control.
        (0x0c => FIQ_CONTROL: ReadWrite<u32>),
        /// Enable IRQs 1 (write 1 to enable).
        (0x10 => ENABLE_IRQS_1: ReadWrite<u32>),
        /// Enable IRQs 2.
        (0x14 => ENABLE_IRQS_2: ReadWrite<u32>),
        /// Enable basic IRQs.
        (0x18 => ENABLE_BASIC_IRQS: ReadWrite<u32>),
        /// Disable IRQs 1 (write 1 to disable).
        (0x1c => DISABLE_IRQS_1: ReadWrite<u32>),
        /// Disable IRQs 2.
        (0x20 => DISABLE_IRQS_2: ReadWrite<u32>),
        /// Disable basic IRQs.
        (0x24 => DISABLE_BASIC_IRQS: ReadWrite<u32>),
        (0x28 => @END),
    }
}

/// Number of interrupt sources (64 GPU + 8 ARM basic).
pub const IRQ_COUNT: usize = 72;

/// Why an interrupt could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum IrqError {
    /// The number is 72 or more.
    InvalidNumber = 1,
}

/// The interrupt controller driver plus the handler table.
pub struct InterruptController {
    registers: Mmio<Registers>,
    handlers: [AtomicUsize; IRQ_COUNT],
    /// IRQs that arrived with no handler (each then masked).
    pub spurious: AtomicU32,
}

impl InterruptController {
    /// Creates the driver.
    ///
    /// # Safety
    /// `base` must be the interrupt controller's block (ARM base + 0x200), mapped as device
    /// memory, with no other driver instance.
    pub const unsafe fn new(base: usize) -> Self {
        // SAFETY: promised by the caller.
        let registers = unsafe { Mmio::new(base) };
        Self { registers, handlers: [const { AtomicUsize::new(0) }; IRQ_COUNT], spurious: AtomicU32::new(0) }
    }

    /// Masks every source and routes none to FIQ.
    pub fn init(&self) {
        let r = &self.registers;
        r.FIQ_CONTROL.set(0);
        r.DISABLE_IRQS_1.set(u32::MAX);
        r.DISABLE_IRQS_2.set(u32::MAX);
        r.DISABLE_BASIC_IRQS.set(u32::MAX);
    }

    /// Installs `handler` for interrupt `number` and unmasks it. The handler runs in IRQ mode
    /// with IRQs masked: it must acknowledge the device and mark work pending, nothing more.
    pub fn register(&self, number: u32, handler: fn()) -> Result<(), IrqError> {
        let slot = self.handlers.get(number as usize).ok_or(IrqError::InvalidNumber)?;
        slot.store(handler as usize, Ordering::Release);
        self.enable(number)
    }

    /// Masks interrupt `number` and removes its handler.
    pub fn unregister(&self, number: u32) -> Result<(), IrqError> {
        self.disable(number)?;
        self.handlers[number as usize].store(0, Ordering::Release);
        Ok(())
    }

    /// Unmasks interrupt `number`.
    pub fn enable(&self, number: u32) -> Result<(), IrqError> {
        let r = &self.registers;
        match number {
            0..=31 => r.ENABLE_IRQS_1.set(1 << number),
            32..=63 => r.ENABLE_IRQS_2.set(1 << (number - 32)),
            64..=71 => r.ENABLE_BASIC_IRQS.set(1 << (number - 64)),
            _ => return Err(IrqError::InvalidNumber),
        }
        Ok(())
    }

    /// Masks interrupt `number`.
    pub fn disable(&self, number: u32) -> Result<(), IrqError> {
        let r = &self.registers;
        match number {
            0..=31 => r.DISABLE_IRQS_1.set(1 << number),
            32..=63 => r.DISABLE_IRQS_2.set(1 << (number - 32)),
            64..=71 => r.DISABLE_BASIC_IRQS.set(1 << (number - 64)),
            _ => return Err(IrqError::InvalidNumber),
        }
        Ok(())
    }

    /// The pending sources as a 72-bit set: (GPU 0-31, GPU 32-63, basic 0-7).
    pub fn pending(&self) -> (u32, u32, u32) {
        let r = &self.registers;
        (r.IRQ_PENDING_1.get(), r.IRQ_PENDING_2.get(), r.IRQ_BASIC_PENDING.get() & 0xFF)
    }

    fn call(&self, number: u32) {
        let handler = self.handlers[number as usize].load(Ordering::Acquire);
        if handler == 0 {
            let _ = self.disable(number);
            self.spurious.fetch_add(1, Ordering::Relaxed);
        } else {
            // SAFETY: non-zero slots only ever hold a `fn()` stored by `register`.
            let handler: fn() = unsafe { core::mem::transmute::<usize, fn()>(handler) };
            handler();
        }
    }
}

/// Calls the handler of every pending interrupt (from the IRQ vector).
pub fn dispatch() {
    let controller = &super::IRQ;
    let (gpu_low, gpu_high, basic) = controller.pending();
    for (bits, offset) in [(gpu_low, 0u32), (gpu_high, 32), (basic, 64)] {
        let mut bits = bits;
        while bits != 0 {
            let bit = bits.trailing_zeros();
            bits &= bits - 1;
            controller.call(offset + bit);
        }
    }
}
