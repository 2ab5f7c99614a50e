//! The mailbox property channel (channel 8) to the VideoCore firmware: board information, memory
//! split, MAC address, clocks, power, framebuffer. Registers: mailbox 0 at 0x2000_B880 (BCM2835
//! ARM Peripherals does not document it; layout and message format as the Raspberry Pi firmware
//! wiki "Mailbox property interface" describes them).
//!
//! The message buffer is 16-byte aligned and lives in the DMA region (non-cacheable once the MMU
//! is on, plain RAM before), and is handed to the VideoCore by its bus address
//! ([`crate::dma::bus_address`]).

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

use super::mmio::Mmio;
use crate::arch::cache::data_sync_barrier;
use crate::sync::IrqLock;

register_bitfields! {
    u32,
    /// Mailbox status.
    STATUS [
        /// The mailbox is full: do not write.
        FULL OFFSET(31) NUMBITS(1) [],
        /// The mailbox is empty: nothing to read.
        EMPTY OFFSET(30) NUMBITS(1) []
    ]
}

register_structs! {
    #[allow(non_snake_case)]
    /// Mailbox 0 registers (read side) and mailbox 1 write register.
    pub Registers {
        /// Read: channel in bits 3:0, data in 31:4.
        (0x00 => READ: ReadOnly<u32>),
        (0x04 => _reserved0),
        /// Status of mailbox 0 (ARM reads).
        (0x18 => STATUS: ReadOnly<u32, STATUS::Register>),
        (0x1c => _reserved1),
        /// Write (mailbox 1): channel in bits 3:0, data in 31:4.
        (0x20 => WRITE: WriteOnly<u32>),
        (0x24 => _reserved2),
        /// Status of mailbox 1 (ARM writes).
        (0x38 => WRITE_STATUS: ReadOnly<u32, STATUS::Register>),
        (0x3c => @END),
    }
}

/// The property channel.
const PROPERTY_CHANNEL: u32 = 8;
/// Words in the message buffer (256 bytes).
const BUFFER_WORDS: usize = 64;
/// How long the firmware may take to answer.
const TIMEOUT_MICROS: u32 = 200_000;
/// Request code / "success" response code of a property message.
const RESPONSE_SUCCESS: u32 = 0x8000_0000;

/// Property tags used by the kernel (firmware wiki names).
pub mod tag {
    /// Get board revision.
    pub const BOARD_REVISION: u32 = 0x0001_0002;
    /// Get board MAC address.
    pub const MAC_ADDRESS: u32 = 0x0001_0003;
    /// Get board serial.
    pub const BOARD_SERIAL: u32 = 0x0001_0004;
    /// Get ARM memory.
    pub const ARM_MEMORY: u32 = 0x0001_0005;
    /// Get VC memory.
    pub const VC_MEMORY: u32 = 0x0001_0006;
    /// Set power state.
    pub const SET_POWER_STATE: u32 = 0x0002_8001;
    /// Get clock rate.
    pub const CLOCK_RATE: u32 = 0x0003_0002;
    /// Allocate framebuffer.
    pub const ALLOCATE_BUFFER: u32 = 0x0004_0001;
    /// Get physical (display) width/height: the size the firmware chose for the display.
    pub const GET_PHYSICAL_SIZE: u32 = 0x0004_0003;
    /// Get pitch.
    pub const PITCH: u32 = 0x0004_0008;
    /// Set physical display width/height.
    pub const SET_PHYSICAL_SIZE: u32 = 0x0004_8003;
    /// Set virtual (buffer) width/height.
    pub const SET_VIRTUAL_SIZE: u32 = 0x0004_8004;
    /// Set depth.
    pub const SET_DEPTH: u32 = 0x0004_8005;
    /// Set pixel order.
    pub const SET_PIXEL_ORDER: u32 = 0x0004_8006;
    /// Set virtual offset.
    pub const SET_VIRTUAL_OFFSET: u32 = 0x0004_8009;
}

/// Power domain ids for [`Mailbox::set_power`] (firmware wiki).
pub mod device {
    /// USB host controller (DWC2).
    pub const USB_HCD: u32 = 3;
}

/// Clock ids for [`Mailbox::clock_rate`] (firmware wiki).
pub mod clock {
    /// UART.
    pub const UART: u32 = 2;
}

/// Why a property call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum MailboxError {
    /// No answer within the timeout.
    Timeout = 1,
    /// The firmware answered with an error response code.
    Rejected = 2,
    /// A tag came back without its response bit.
    TagFailed = 3,
    /// The message does not fit the buffer.
    TooLong = 4,
    /// The DMA region had no room for the message buffer.
    NoBuffer = 5,
    /// The power domain does not exist.
    NoSuchDevice = 6,
    /// The power domain did not reach the requested state.
    PowerStateNotReached = 7,
    /// The framebuffer the firmware gave is unusable (zero base, size or pitch).
    BadFramebuffer = 8,
}

/// A framebuffer the firmware allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FramebufferInfo {
    /// ARM physical address of the first pixel.
    pub base: usize,
    /// Size in bytes.
    pub size: usize,
    /// Bytes per row.
    pub pitch: usize,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bits per pixel.
    pub depth: u32,
}

/// The mailbox driver.
pub struct Mailbox {
    registers: Mmio<Registers>,
    buffer: IrqLock<Option<&'static mut [u32]>>,
}

impl Mailbox {
    /// Creates the driver.
    ///
    /// # Safety
    /// `base` must be mailbox 0's register block, mapped as device memory, with no other driver
    /// instance.
    pub const unsafe fn new(base: usize) -> Self {
        // SAFETY: promised by the caller.
        Self { registers: unsafe { Mmio::new(base) }, buffer: IrqLock::new(None) }
    }

    /// Sends a property message made of `tags` (tag id, value buffer size in bytes, request code
    /// 0, value words ...; without the header and end tag) and copies the answer back into
    /// `tags`. Checks the message response code and every tag's response bit.
    pub fn property(&self, tags: &mut [u32]) -> Result<(), MailboxError> {
        if tags.len() + 3 > BUFFER_WORDS {
            return Err(MailboxError::TooLong);
        }
        self.buffer.lock(|slot| {
            if slot.is_none() {
                let bytes = crate::dma::alloc(BUFFER_WORDS * 4, 16).ok_or(MailboxError::NoBuffer)?;
                // SAFETY: the DMA allocation is 16-byte aligned, BUFFER_WORDS * 4 bytes long,
                // zeroed, and owned by the mailbox from now on.
                *slot =
                    Some(unsafe { core::slice::from_raw_parts_mut(bytes.as_mut_ptr().cast::<u32>(), BUFFER_WORDS) });
            }
            let buffer = slot.as_deref_mut().ok_or(MailboxError::NoBuffer)?;
            let words = tags.len() + 3;
            buffer[0] = (words * 4) as u32;
            buffer[1] = 0;
            buffer[2..2 + tags.len()].copy_from_slice(tags);
            buffer[2 + tags.len()] = 0;
            self.exchange(buffer.as_ptr() as usize)?;
            tags.copy_from_slice(&buffer[2..2 + tags.len()]);
            if buffer[1] != RESPONSE_SUCCESS {
                return Err(MailboxError::Rejected);
            }
            Ok(())
        })?;
        let mut index = 0;
        while index + 3 <= tags.len() {
            if tags[index + 2] & RESPONSE_SUCCESS == 0 {
                return Err(MailboxError::TagFailed);
            }
            index += 3 + tags[index + 1] as usize / 4;
        }
        Ok(())
    }

    fn exchange(&self, buffer: usize) -> Result<(), MailboxError> {
        let r = &self.registers;
        let message = (crate::dma::bus_address(buffer) & !0xF) | PROPERTY_CHANNEL;
        let timer = &super::TIMER;
        let start = timer.now_low();
        let expired = || timer.now_low().wrapping_sub(start) > TIMEOUT_MICROS;
        // Drain stale answers, then wait for room.
        while !r.STATUS.is_set(STATUS::EMPTY) {
            let _ = r.READ.get();
        }
        while r.WRITE_STATUS.is_set(STATUS::FULL) {
            if expired() {
                return Err(MailboxError::Timeout);
            }
        }
        data_sync_barrier();
        r.WRITE.set(message);
        loop {
            while r.STATUS.is_set(STATUS::EMPTY) {
                if expired() {
                    return Err(MailboxError::Timeout);
                }
            }
            if r.READ.get() == message {
                data_sync_barrier();
                return Ok(());
            }
        }
    }

    /// One tag with `values` as its value buffer (request in, response out).
    fn single<const N: usize>(&self, tag: u32, request: [u32; N]) -> Result<[u32; N], MailboxError> {
        let mut stream = [0u32; 16];
        if N + 3 > stream.len() {
            return Err(MailboxError::TooLong);
        }
        stream[0] = tag;
        stream[1] = (N * 4) as u32;
        stream[2] = 0;
        stream[3..3 + N].copy_from_slice(&request);
        self.property(&mut stream[..3 + N])?;
        let mut answer = [0u32; N];
        answer.copy_from_slice(&stream[3..3 + N]);
        Ok(answer)
    }

    /// The board revision code (e.g. 0x900093 for a Pi Zero).
    pub fn board_revision(&self) -> Result<u32, MailboxError> {
        Ok(self.single(tag::BOARD_REVISION, [0])?[0])
    }

    /// The board serial number (QEMU answers 0).
    pub fn board_serial(&self) -> Result<u64, MailboxError> {
        let [low, high] = self.single(tag::BOARD_SERIAL, [0, 0])?;
        Ok(u64::from(high) << 32 | u64::from(low))
    }

    /// The ARM's share of RAM as `(base, size)` in bytes.
    pub fn arm_memory(&self) -> Result<(usize, usize), MailboxError> {
        let [base, size] = self.single(tag::ARM_MEMORY, [0, 0])?;
        Ok((base as usize, size as usize))
    }

    /// The VideoCore's share of RAM as `(base, size)` in bytes.
    pub fn vc_memory(&self) -> Result<(usize, usize), MailboxError> {
        let [base, size] = self.single(tag::VC_MEMORY, [0, 0])?;
        Ok((base as usize, size as usize))
    }

    /// The board's MAC address.
    pub fn mac_address(&self) -> Result<[u8; 6], MailboxError> {
        let [low, high] = self.single(tag::MAC_ADDRESS, [0, 0])?;
        let low = low.to_le_bytes();
        let high = high.to_le_bytes();
        Ok([low[0], low[1], low[2], low[3], high[0], high[1]])
    }

    /// The rate of clock `id` (see [`clock`]) in Hz.
    pub fn clock_rate(&self, id: u32) -> Result<u32, MailboxError> {
        Ok(self.single(tag::CLOCK_RATE, [id, 0])?[1])
    }

    /// Powers device `device_id` (see [`device`]) on or off and waits for it to settle.
    pub fn set_power(&self, device_id: u32, on: bool) -> Result<(), MailboxError> {
        // State bit 0: on; bit 1: wait for the device to be stable.
        let [_, state] = self.single(tag::SET_POWER_STATE, [device_id, u32::from(on) | 0b10])?;
        if state & 0b10 != 0 {
            return Err(MailboxError::NoSuchDevice);
        }
        if (state & 1 != 0) != on {
            return Err(MailboxError::PowerStateNotReached);
        }
        Ok(())
    }

    /// The display size the firmware chose (from the HDMI monitor's preferred mode, or the
    /// composite default), before any framebuffer is allocated. `(0, 0)` when it has none.
    pub fn physical_size(&self) -> Result<(u32, u32), MailboxError> {
        let [width, height] = self.single(tag::GET_PHYSICAL_SIZE, [0, 0])?;
        Ok((width, height))
    }

    /// Asks the firmware for a `width` x `height` framebuffer of `depth` bits per pixel and
    /// returns where it is. Pixel order 0 ("BGR" in the firmware's terms): in memory each pixel
    /// is the bytes B, G, R, X, so a 32-bit pixel reads as 0x00RRGGBB (checked on QEMU 7.2 with a
    /// screendump).
    pub fn allocate_framebuffer(&self, width: u32, height: u32, depth: u32) -> Result<FramebufferInfo, MailboxError> {
        #[rustfmt::skip]
        let mut stream = [
            tag::SET_PHYSICAL_SIZE, 8, 0, width, height,
            tag::SET_VIRTUAL_SIZE, 8, 0, width, height,
            tag::SET_VIRTUAL_OFFSET, 8, 0, 0, 0,
            tag::SET_DEPTH, 4, 0, depth,
            tag::SET_PIXEL_ORDER, 4, 0, 0,
            tag::ALLOCATE_BUFFER, 8, 0, 16, 0,
            tag::PITCH, 4, 0, 0,
        ];
        self.property(&mut stream)?;
        let base = jos_kcore::memory_map::physical_from_bus(stream[26]);
        let size = stream[27] as usize;
        let pitch = stream[31] as usize;
        if base == 0 || size == 0 || pitch == 0 {
            return Err(MailboxError::BadFramebuffer);
        }
        Ok(FramebufferInfo { base, size, pitch, width: stream[3], height: stream[4], depth: stream[18] })
    }
}
