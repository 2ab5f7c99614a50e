//! What a board revision code says about the board, and the facts QEMU hides that follow from it.
//!
//! The firmware reports the revision code (mailbox tag 0x0001_0002, and `bcm2708.boardrev=` on
//! the command line). Decoding follows the Raspberry Pi documentation, "Raspberry Pi revision
//! codes": old-style codes are a table from 0x0002 to 0x0015 (bit 24 set when the warranty was
//! voided by overvolting); new-style codes have bit 23 set and fields: memory in bits 22:20 (256
//! MiB << n), manufacturer 19:16, processor 15:12 (0 = BCM2835), type 11:4, PCB revision 3:0.
//! jos runs on the BCM2835 boards only (Pi 1 A/B/A+/B+, CM1, Zero, Zero W); a code for another
//! processor is decoded as [`Model::Unsupported`].
//!
//! The activity LED, per model (the sources agree except where noted; none of this was seen on
//! a board by jos's authors):
//! - Pi 1 A and B (revisions 1 and 2): GPIO 16, active low (Linux 6.1 device trees
//!   `bcm2835-rpi-a.dts`, `bcm2835-rpi-b.dts`, `bcm2835-rpi-b-rev2.dts`: `GPIO_ACTIVE_LOW`;
//!   Circle's `actled.cpp`: "Model B and earlier", pin 16, active low).
//! - Pi 1 A+ and B+: GPIO 47, active high (`bcm2835-rpi-a-plus.dts`, `bcm2835-rpi-b-plus.dts`;
//!   Circle). Their red power LED is GPIO 35, active high; jos leaves it alone.
//! - Pi Zero and Zero W: GPIO 47, active low (Circle treats both Zeros as active low;
//!   `bcm2835-rpi-zero-w.dts` says active low; the Raspberry Pi forum's way of turning the
//!   Zero's LED off is `act_led_activelow=on`). Linux 6.1's `bcm2835-rpi-zero.dts` marks the
//!   Zero's LED active *high*; we follow the other sources and say so in docs/hardware.md.
//! - Compute Module 1: the LED sits on the carrier board (the IO board's device tree says GPIO
//!   47 active low; Circle drives it active high): a custom carrier may wire GPIO 47 to anything,
//!   so jos drives no LED there.

/// The board models jos knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Model {
    /// Raspberry Pi 1 Model A.
    A,
    /// Raspberry Pi 1 Model B (revision 1 or 2).
    B,
    /// Raspberry Pi 1 Model A+.
    APlus,
    /// Raspberry Pi 1 Model B+.
    BPlus,
    /// Compute Module 1.
    ComputeModule1,
    /// Raspberry Pi Zero.
    Zero,
    /// Raspberry Pi Zero W.
    ZeroW,
    /// A board with another processor (Pi 2, 3, 4, 5, Zero 2 W, ...): jos does not run there.
    Unsupported,
    /// A code no table or field explains.
    Unknown,
}

impl Model {
    /// The model's name.
    pub const fn name(self) -> &'static str {
        match self {
            Model::A => "Raspberry Pi A",
            Model::B => "Raspberry Pi B",
            Model::APlus => "Raspberry Pi A+",
            Model::BPlus => "Raspberry Pi B+",
            Model::ComputeModule1 => "Raspberry Pi CM1",
            Model::Zero => "Raspberry Pi Zero",
            Model::ZeroW => "Raspberry Pi Zero W",
            Model::Unsupported => "unsupported board (not a BCM2835)",
            Model::Unknown => "unknown board",
        }
    }
}

/// The on-board network interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ethernet {
    /// None: a USB Ethernet adapter on the (OTG) port is the way onto a wire.
    None,
    /// SMSC LAN9512 (hub with two ports plus 10/100 Ethernet): Pi 1 B.
    Lan9512,
    /// SMSC LAN9514 (hub with four ports plus 10/100 Ethernet): Pi 1 B+.
    Lan9514,
}

/// An LED on a GPIO pin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Led {
    /// The BCM2835 GPIO number.
    pub pin: u32,
    /// Whether driving the pin high lights the LED.
    pub active_high: bool,
}

impl Led {
    /// The pin level that gives `lit`.
    pub const fn level(self, lit: bool) -> bool {
        lit == self.active_high
    }
}

/// What a revision code tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BoardInfo {
    /// The code as reported.
    pub code: u32,
    /// The model.
    pub model: Model,
    /// PCB revision as (major, minor), e.g. (1, 3) for a Zero v1.3; (0, 0) when unknown.
    pub pcb: (u8, u8),
    /// RAM on the board in MiB (both ARM and VideoCore shares); `None` when the code does not
    /// tell (the Embest A+ 0x0015 came with 256 or 512 MiB).
    pub memory_mib: Option<u32>,
    /// Who made it.
    pub manufacturer: &'static str,
    /// The activity LED jos drives, if any.
    pub activity_led: Option<Led>,
    /// The on-board network interface.
    pub ethernet: Ethernet,
}

/// The activity LED of a Pi 1 A or B.
const LED_GPIO16_LOW: Option<Led> = Some(Led { pin: 16, active_high: false });
/// The activity LED of a Pi 1 A+ or B+.
const LED_GPIO47_HIGH: Option<Led> = Some(Led { pin: 47, active_high: true });
/// The activity LED of a Pi Zero or Zero W.
const LED_GPIO47_LOW: Option<Led> = Some(Led { pin: 47, active_high: false });

/// One old-style code: (code, model, PCB revision, MiB, manufacturer).
type OldStyleCode = (u32, Model, (u8, u8), Option<u32>, &'static str);

/// Old-style codes, from the revision-codes table.
const OLD_STYLE: [OldStyleCode; 17] = [
    (0x02, Model::B, (1, 0), Some(256), "Egoman"),
    (0x03, Model::B, (1, 0), Some(256), "Egoman"),
    (0x04, Model::B, (2, 0), Some(256), "Sony UK"),
    (0x05, Model::B, (2, 0), Some(256), "Qisda"),
    (0x06, Model::B, (2, 0), Some(256), "Egoman"),
    (0x07, Model::A, (2, 0), Some(256), "Egoman"),
    (0x08, Model::A, (2, 0), Some(256), "Sony UK"),
    (0x09, Model::A, (2, 0), Some(256), "Qisda"),
    (0x0d, Model::B, (2, 0), Some(512), "Egoman"),
    (0x0e, Model::B, (2, 0), Some(512), "Sony UK"),
    (0x0f, Model::B, (2, 0), Some(512), "Egoman"),
    (0x10, Model::BPlus, (1, 2), Some(512), "Sony UK"),
    (0x11, Model::ComputeModule1, (1, 0), Some(512), "Sony UK"),
    (0x12, Model::APlus, (1, 1), Some(256), "Sony UK"),
    (0x13, Model::BPlus, (1, 2), Some(512), "Embest"),
    (0x14, Model::ComputeModule1, (1, 0), Some(512), "Embest"),
    (0x15, Model::APlus, (1, 1), None, "Embest"),
];

/// New-style manufacturer field (bits 19:16).
const MANUFACTURERS: [&str; 6] = ["Sony UK", "Egoman", "Embest", "Sony Japan", "Embest", "Stadium"];

/// The facts that follow from the model.
const fn model_facts(model: Model) -> (Option<Led>, Ethernet) {
    match model {
        Model::A => (LED_GPIO16_LOW, Ethernet::None),
        Model::B => (LED_GPIO16_LOW, Ethernet::Lan9512),
        Model::APlus => (LED_GPIO47_HIGH, Ethernet::None),
        Model::BPlus => (LED_GPIO47_HIGH, Ethernet::Lan9514),
        Model::Zero | Model::ZeroW => (LED_GPIO47_LOW, Ethernet::None),
        Model::ComputeModule1 | Model::Unsupported | Model::Unknown => (None, Ethernet::None),
    }
}

/// Decodes revision `code`.
pub fn decode(code: u32) -> BoardInfo {
    let mut info = BoardInfo {
        code,
        model: Model::Unknown,
        pcb: (0, 0),
        memory_mib: None,
        manufacturer: "unknown",
        activity_led: None,
        ethernet: Ethernet::None,
    };
    if code & (1 << 23) != 0 {
        let memory = (code >> 20) & 0x7;
        info.memory_mib = if memory <= 6 { Some(256 << memory) } else { None };
        info.manufacturer = MANUFACTURERS.get(((code >> 16) & 0xF) as usize).copied().unwrap_or("unknown");
        info.pcb = (1, (code & 0xF) as u8);
        info.model = if (code >> 12) & 0xF != 0 {
            Model::Unsupported
        } else {
            match (code >> 4) & 0xFF {
                0x00 => Model::A,
                0x01 => Model::B,
                0x02 => Model::APlus,
                0x03 => Model::BPlus,
                0x06 => Model::ComputeModule1,
                0x09 => Model::Zero,
                0x0C => Model::ZeroW,
                _ => Model::Unknown,
            }
        };
    } else if let Some((_, model, pcb, memory, manufacturer)) =
        OLD_STYLE.iter().find(|(old, ..)| *old == code & 0x00FF_FFFF)
    {
        info.model = *model;
        info.pcb = *pcb;
        info.memory_mib = *memory;
        info.manufacturer = manufacturer;
    }
    (info.activity_led, info.ethernet) = model_facts(info.model);
    info
}

/// The board name for revision `code` ("unknown board" when no table explains it).
pub fn board_name(code: u32) -> &'static str {
    decode(code).model.name()
}

/// The memory size the revision code announces, in bytes (`None`: the code does not tell).
pub fn memory_size(code: u32) -> Option<usize> {
    decode(code).memory_mib.map(|mib| (mib as usize) << 20)
}

/// Where the kernel's idea of the ARM's memory came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemorySource {
    /// The mailbox's "get ARM memory" answer.
    Mailbox,
    /// The firmware's `ATAG_MEM`.
    Atag,
    /// Neither answered: the smallest board's split (256 MiB with the firmware's default 64 MiB
    /// for the VideoCore).
    Fallback,
}

/// The ARM memory jos assumes when nothing answers: 192 MiB.
pub const FALLBACK_ARM_MEMORY: usize = 0x0C00_0000;

/// The ARM's memory `(base, size, source)`, from the mailbox first (it is what the firmware
/// split at this boot, `gpu_mem` applied), then `ATAG_MEM`, then [`FALLBACK_ARM_MEMORY`]. An
/// answer larger than the board's RAM (per its revision code) is refused as not credible.
pub fn arm_memory(
    mailbox: Option<(usize, usize)>,
    atag: Option<(usize, usize)>,
    revision: u32,
) -> (usize, usize, MemorySource) {
    let board = memory_size(revision);
    let credible =
        |(base, size): (usize, usize)| size > 0 && board.is_none_or(|total| base.saturating_add(size) <= total);
    if let Some((base, size)) = mailbox.filter(|answer| credible(*answer)) {
        return (base, size, MemorySource::Mailbox);
    }
    if let Some((base, size)) = atag.filter(|answer| credible(*answer)) {
        return (base, size, MemorySource::Atag);
    }
    (0, FALLBACK_ARM_MEMORY, MemorySource::Fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every Pi 1 and Zero code of the revision-codes page, with the model, PCB, memory and LED.
    #[test]
    fn every_bcm2835_code() {
        let low16 = Some(Led { pin: 16, active_high: false });
        let high47 = Some(Led { pin: 47, active_high: true });
        let low47 = Some(Led { pin: 47, active_high: false });
        type Row = (u32, Model, (u8, u8), Option<u32>, &'static str, Option<Led>, Ethernet);
        #[rustfmt::skip]
        let table: [Row; 26] = [
            (0x0002, Model::B, (1, 0), Some(256), "Egoman", low16, Ethernet::Lan9512),
            (0x0003, Model::B, (1, 0), Some(256), "Egoman", low16, Ethernet::Lan9512),
            (0x0004, Model::B, (2, 0), Some(256), "Sony UK", low16, Ethernet::Lan9512),
            (0x0005, Model::B, (2, 0), Some(256), "Qisda", low16, Ethernet::Lan9512),
            (0x0006, Model::B, (2, 0), Some(256), "Egoman", low16, Ethernet::Lan9512),
            (0x0007, Model::A, (2, 0), Some(256), "Egoman", low16, Ethernet::None),
            (0x0008, Model::A, (2, 0), Some(256), "Sony UK", low16, Ethernet::None),
            (0x0009, Model::A, (2, 0), Some(256), "Qisda", low16, Ethernet::None),
            (0x000d, Model::B, (2, 0), Some(512), "Egoman", low16, Ethernet::Lan9512),
            (0x000e, Model::B, (2, 0), Some(512), "Sony UK", low16, Ethernet::Lan9512),
            (0x000f, Model::B, (2, 0), Some(512), "Egoman", low16, Ethernet::Lan9512),
            (0x0010, Model::BPlus, (1, 2), Some(512), "Sony UK", high47, Ethernet::Lan9514),
            (0x0011, Model::ComputeModule1, (1, 0), Some(512), "Sony UK", None, Ethernet::None),
            (0x0012, Model::APlus, (1, 1), Some(256), "Sony UK", high47, Ethernet::None),
            (0x0013, Model::BPlus, (1, 2), Some(512), "Embest", high47, Ethernet::Lan9514),
            (0x0014, Model::ComputeModule1, (1, 0), Some(512), "Embest", None, Ethernet::None),
            (0x0015, Model::APlus, (1, 1), None, "Embest", high47, Ethernet::None),
            (0x900021, Model::APlus, (1, 1), Some(512), "Sony UK", high47, Ethernet::None),
            (0x900032, Model::BPlus, (1, 2), Some(512), "Sony UK", high47, Ethernet::Lan9514),
            (0x900061, Model::ComputeModule1, (1, 1), Some(512), "Sony UK", None, Ethernet::None),
            (0x900092, Model::Zero, (1, 2), Some(512), "Sony UK", low47, Ethernet::None),
            (0x920092, Model::Zero, (1, 2), Some(512), "Embest", low47, Ethernet::None),
            (0x900093, Model::Zero, (1, 3), Some(512), "Sony UK", low47, Ethernet::None),
            (0x920093, Model::Zero, (1, 3), Some(512), "Embest", low47, Ethernet::None),
            (0x9000c1, Model::ZeroW, (1, 1), Some(512), "Sony UK", low47, Ethernet::None),
            // QEMU raspi1ap answers 0x900021 too; a warranty-voided new-style code (bit 25).
            (0x2900093, Model::Zero, (1, 3), Some(512), "Sony UK", low47, Ethernet::None),
        ];
        for (code, model, pcb, memory, manufacturer, led, ethernet) in table {
            let info = decode(code);
            assert_eq!(info.model, model, "{code:#x}");
            assert_eq!(info.pcb, pcb, "{code:#x}");
            assert_eq!(info.memory_mib, memory, "{code:#x}");
            assert_eq!(info.manufacturer, manufacturer, "{code:#x}");
            assert_eq!(info.activity_led, led, "{code:#x}");
            assert_eq!(info.ethernet, ethernet, "{code:#x}");
        }
    }

    #[test]
    fn warranty_bit_and_strangers() {
        // Old-style codes with the overvolt warranty bit (24) decode like the plain ones.
        assert_eq!(decode(0x0100_000e).model, Model::B);
        assert_eq!(decode(0x0100_0010).model, Model::BPlus);
        assert_eq!(board_name(0), "unknown board");
        assert_eq!(board_name(0x0001), "unknown board");
        assert_eq!(board_name(0x000a), "unknown board");
        assert_eq!(board_name(0x0016), "unknown board");
        // Other processors: Pi 2 B, Pi 3 B, Zero 2 W.
        for code in [0xa01041, 0xa02082, 0x902120] {
            assert_eq!(decode(code).model, Model::Unsupported, "{code:#x}");
            assert_eq!(decode(code).activity_led, None);
        }
        // A new-style BCM2835 type nobody made.
        assert_eq!(decode(0x9000F0).model, Model::Unknown);
        assert_eq!(decode(0x9000F0).memory_mib, Some(512));
        assert_eq!(decode(0xF000F0).memory_mib, None);
    }

    #[test]
    fn led_levels() {
        let zero = decode(0x900093).activity_led.unwrap();
        assert!(!zero.level(true) && zero.level(false));
        let plus = decode(0x0010).activity_led.unwrap();
        assert!(plus.level(true) && !plus.level(false));
    }

    #[test]
    fn memory_from_code() {
        assert_eq!(memory_size(0x0090_0093), Some(512 << 20));
        assert_eq!(memory_size(0x0080_0021), Some(256 << 20));
        assert_eq!(memory_size(0x10), Some(512 << 20));
        assert_eq!(memory_size(0x15), None);
    }

    #[test]
    fn arm_memory_sources() {
        let zero = 0x900093;
        // gpu_mem=16 on a 512 MiB board: the mailbox's 496 MiB wins.
        assert_eq!(arm_memory(Some((0, 496 << 20)), Some((0, 496 << 20)), zero), (0, 496 << 20, MemorySource::Mailbox));
        assert_eq!(arm_memory(None, Some((0, 448 << 20)), zero), (0, 448 << 20, MemorySource::Atag));
        // More than the board has is not credible; a zero size neither.
        assert_eq!(arm_memory(Some((0, 1 << 30)), Some((0, 240 << 20)), zero), (0, 240 << 20, MemorySource::Atag));
        assert_eq!(arm_memory(Some((0, 0)), None, zero), (0, FALLBACK_ARM_MEMORY, MemorySource::Fallback));
        // A 256 MiB Pi 1 B refuses 448 MiB; an unknown code takes what the mailbox says.
        assert_eq!(arm_memory(Some((0, 448 << 20)), None, 0x0004), (0, FALLBACK_ARM_MEMORY, MemorySource::Fallback));
        assert_eq!(arm_memory(Some((0, 448 << 20)), None, 0), (0, 448 << 20, MemorySource::Mailbox));
    }
}
