//! Decoding the board revision code the firmware reports (Raspberry Pi documentation,
//! "Raspberry Pi revision codes": new-style codes have bit 23 set and the board type in bits
//! 11:4; old-style codes are a small table).

/// The board name for revision `code`, or "unknown board".
pub fn board_name(code: u32) -> &'static str {
    if code & (1 << 23) != 0 {
        match (code >> 4) & 0xFF {
            0x00 => "Raspberry Pi A",
            0x01 => "Raspberry Pi B",
            0x02 => "Raspberry Pi A+",
            0x03 => "Raspberry Pi B+",
            0x06 => "Raspberry Pi CM1",
            0x09 => "Raspberry Pi Zero",
            0x0C => "Raspberry Pi Zero W",
            _ => "unknown board",
        }
    } else {
        match code & 0xFF_FFFF {
            0x02..=0x06 | 0x0D..=0x0F => "Raspberry Pi B",
            0x07..=0x09 => "Raspberry Pi A",
            0x10 | 0x13 => "Raspberry Pi B+",
            0x11 | 0x14 => "Raspberry Pi CM1",
            0x12 | 0x15 => "Raspberry Pi A+",
            _ => "unknown board",
        }
    }
}

/// The memory size the revision code announces (new-style codes, bits 22:20), in bytes.
pub fn memory_size(code: u32) -> Option<usize> {
    if code & (1 << 23) == 0 {
        return None;
    }
    Some((256 << ((code >> 20) & 0x7)) << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(board_name(0x0090_0093), "Raspberry Pi Zero");
        assert_eq!(board_name(0x0090_0021), "Raspberry Pi A+");
        assert_eq!(board_name(0x0000_0010), "Raspberry Pi B+");
        assert_eq!(board_name(0x0000_000E), "Raspberry Pi B");
        assert_eq!(board_name(0x0000_0000), "unknown board");
        assert_eq!(board_name(0x00A0_2082), "unknown board");
    }

    #[test]
    fn memory_from_code() {
        assert_eq!(memory_size(0x0090_0093), Some(512 << 20));
        assert_eq!(memory_size(0x0080_0021), Some(256 << 20));
        assert_eq!(memory_size(0x10), None);
    }
}
