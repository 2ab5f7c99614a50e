//! ATAGs: the boot tag list the Raspberry Pi firmware leaves in memory for the kernel, and the
//! kernel command line it carries.
//!
//! On a Pi 1 or Zero the firmware (`start.elf`) loads `kernel.img` at 0x8000 and enters it with
//! r0 = 0, r1 = the machine type ([`MACHINE_BCM2708`]) and r2 = the address of a tag list
//! ([`FIRMWARE_ADDRESS`], 0x100), as ARM Linux boot loaders do (Linux's
//! `Documentation/arm/booting.rst` and `arch/arm/include/uapi/asm/setup.h` describe the format:
//! little-endian words; each tag is a header of two words, its size in words including the
//! header and its tag value, followed by its data; the list starts with `ATAG_CORE` and ends with
//! a header of size 0, `ATAG_NONE`). When the card holds a device tree for the board, or
//! `config.txt` names one, r2 points at a flattened device tree instead ([`is_device_tree`]);
//! `jos-cli image` writes `device_tree=` so the firmware passes ATAGs.
//!
//! The firmware's tags: `ATAG_CORE`, `ATAG_MEM` (the ARM's share of RAM), `ATAG_INITRD2` when
//! `config.txt` has an `initramfs` line, and `ATAG_CMDLINE` with its own parameters
//! (`bcm2708_fb.fbwidth=656 bcm2708_fb.fbheight=416 bcm2708.boardrev=0xe bcm2708.serial=0x...
//! smsc95xx.macaddr=B8:27:EB:..:..:.. vc_mem.mem_base=0x1ec00000 vc_mem.mem_size=0x20000000 ...`)
//! followed by `cmdline.txt`'s text. [`Cmdline`] reads those `key=value` words.
//!
//! [`Atags::new_checked`] validates every tag header (sizes at least two words, inside the buffer,
//! the known tags at their fixed sizes, `ATAG_CORE` first, a terminator, at most [`MAX_TAGS`]);
//! afterwards no accessor can panic. [`AtagsRepr`] is the parsed form with `parse`, `emit` and
//! `buffer_len`.

use core::fmt;

use crate::codec::{Cursor, Writer};

/// Where the Pi firmware puts the tag list (and what it passes in r2).
pub const FIRMWARE_ADDRESS: usize = 0x100;
/// The most bytes the kernel reads at the tag list's address.
pub const MAX_LEN: usize = 16 * 1024;
/// The most tags a list may hold (the firmware passes about five).
pub const MAX_TAGS: usize = 64;
/// The ARM Linux machine type the Pi 1 / Zero firmware passes in r1 (`MACH_TYPE_BCM2708`, 3138).
pub const MACHINE_BCM2708: u32 = 0x0000_0C42;
/// The first four bytes of a flattened device tree (big-endian 0xd00dfeed).
pub const FDT_MAGIC: [u8; 4] = [0xd0, 0x0d, 0xfe, 0xed];

/// End of the list (a header of size 0).
pub const ATAG_NONE: u32 = 0x0000_0000;
/// First tag: flags, page size, root device (or no data at all).
pub const ATAG_CORE: u32 = 0x5441_0001;
/// A bank of memory: size, start.
pub const ATAG_MEM: u32 = 0x5441_0002;
/// The board serial number: low word, high word.
pub const ATAG_SERIAL: u32 = 0x5441_0006;
/// The board revision.
pub const ATAG_REVISION: u32 = 0x5441_0007;
/// The kernel command line, NUL-terminated text.
pub const ATAG_CMDLINE: u32 = 0x5441_0009;
/// The initial RAM disk's physical start and size (the firmware's `initramfs FILE ADDR`).
pub const ATAG_INITRD2: u32 = 0x5442_0005;

/// Why a tag list was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum AtagError {
    /// A tag header or its data runs past the buffer.
    Truncated = 1,
    /// The list does not start with `ATAG_CORE` (for example: nothing was put there).
    NoCore = 2,
    /// A tag smaller than its header, or a known tag at a size it never has.
    BadSize = 3,
    /// More than [`MAX_TAGS`] tags before the terminator.
    TooManyTags = 4,
    /// (emit only) the buffer is too small or the command line too long.
    BufferTooSmall = 5,
}

impl AtagError {
    /// A short lower-case description.
    pub const fn message(self) -> &'static str {
        match self {
            AtagError::Truncated => "tag list truncated",
            AtagError::NoCore => "no ATAG_CORE first",
            AtagError::BadSize => "bad tag size",
            AtagError::TooManyTags => "too many tags",
            AtagError::BufferTooSmall => "buffer too small",
        }
    }
}

impl fmt::Display for AtagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Whether `bytes` (what r2 points at) start like a flattened device tree.
pub fn is_device_tree(bytes: &[u8]) -> bool {
    bytes.starts_with(&FDT_MAGIC)
}

/// The size in words a known tag must have (header included), or `None` for any size.
fn fixed_words(tag: u32) -> Option<&'static [u32]> {
    match tag {
        ATAG_CORE => Some(&[2, 5]),
        ATAG_MEM | ATAG_SERIAL | ATAG_INITRD2 => Some(&[4]),
        ATAG_REVISION => Some(&[3]),
        _ => None,
    }
}

/// One tag: its value and its data (the words after the header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tag<'a> {
    /// The tag value (`ATAG_MEM`, ...).
    pub tag: u32,
    /// The data words as bytes.
    pub data: &'a [u8],
}

/// A checked tag list over `buffer` (which may be longer than the list).
#[derive(Clone, Copy, Debug)]
pub struct Atags<T: AsRef<[u8]>> {
    buffer: T,
    len: usize,
}

impl<T: AsRef<[u8]>> Atags<T> {
    /// Checks every tag header from the start of `buffer` to the terminator.
    pub fn new_checked(buffer: T) -> Result<Self, AtagError> {
        let bytes = buffer.as_ref();
        let mut offset = 0;
        let mut count = 0;
        loop {
            let mut cursor = Cursor::new(bytes.get(offset..).ok_or(AtagError::Truncated)?);
            let words = cursor.u32().ok_or(AtagError::Truncated)?;
            let tag = cursor.u32().ok_or(AtagError::Truncated)?;
            if count == 0 && tag != ATAG_CORE {
                return Err(AtagError::NoCore);
            }
            if words == 0 && count > 0 {
                // ATAG_NONE: the header alone ends the list.
                return Ok(Atags { buffer, len: offset + 8 });
            }
            if count == MAX_TAGS {
                return Err(AtagError::TooManyTags);
            }
            if words < 2 || fixed_words(tag).is_some_and(|sizes| !sizes.contains(&words)) {
                return Err(AtagError::BadSize);
            }
            if tag == ATAG_CMDLINE && words < 3 {
                return Err(AtagError::BadSize);
            }
            let len = (words as usize).checked_mul(4).ok_or(AtagError::Truncated)?;
            let end = offset.checked_add(len).ok_or(AtagError::Truncated)?;
            if end > bytes.len() {
                return Err(AtagError::Truncated);
            }
            offset = end;
            count += 1;
        }
    }

    /// The list's length in bytes, terminator included.
    pub fn total_len(&self) -> usize {
        self.len
    }

    /// The tags in order (the terminator not included).
    pub fn tags(&self) -> TagIter<'_> {
        TagIter { bytes: &self.buffer.as_ref()[..self.len] }
    }
}

/// The tags of a checked list.
#[derive(Clone, Debug)]
pub struct TagIter<'a> {
    bytes: &'a [u8],
}

impl<'a> Iterator for TagIter<'a> {
    type Item = Tag<'a>;

    fn next(&mut self) -> Option<Tag<'a>> {
        let mut cursor = Cursor::new(self.bytes);
        let words = cursor.u32()? as usize;
        let tag = cursor.u32()?;
        if words < 2 {
            self.bytes = &[];
            return None;
        }
        // Checked by new_checked: the tag lies inside the list.
        let data = cursor.take(words * 4 - 8)?;
        self.bytes = cursor.rest();
        Some(Tag { tag, data })
    }
}

/// `ATAG_CORE`'s optional data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Core {
    /// Bit 0: mount the root read-only.
    pub flags: u32,
    /// The page size the loader assumed (0 when unknown).
    pub page_size: u32,
    /// The root device number.
    pub root_device: u32,
}

/// A memory bank: `ATAG_MEM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemoryBank {
    /// Size in bytes.
    pub size: u32,
    /// Physical start address.
    pub start: u32,
}

/// Where the firmware loaded the `initramfs` file: `ATAG_INITRD2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Initrd {
    /// Physical start address.
    pub start: u32,
    /// Size in bytes.
    pub size: u32,
}

/// What a tag list says, the tags jos reads: the first of each; others are skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AtagsRepr<'a> {
    /// `ATAG_CORE`'s data (`None`: the short form without data).
    pub core: Option<Core>,
    /// The first memory bank.
    pub memory: Option<MemoryBank>,
    /// The command line, up to its first NUL.
    pub cmdline: Option<&'a [u8]>,
    /// The initial RAM disk.
    pub initrd: Option<Initrd>,
    /// The board serial number.
    pub serial: Option<u64>,
    /// The board revision.
    pub revision: Option<u32>,
}

impl<'a> AtagsRepr<'a> {
    /// Reads the tags jos uses from a checked list.
    pub fn parse<T: AsRef<[u8]>>(atags: &'a Atags<T>) -> Result<Self, AtagError> {
        let mut repr =
            AtagsRepr { core: None, memory: None, cmdline: None, initrd: None, serial: None, revision: None };
        for tag in atags.tags() {
            let mut cursor = Cursor::new(tag.data);
            let word = |cursor: &mut Cursor<'_>| cursor.u32().ok_or(AtagError::BadSize);
            match tag.tag {
                ATAG_CORE if !tag.data.is_empty() => {
                    repr.core = Some(Core {
                        flags: word(&mut cursor)?,
                        page_size: word(&mut cursor)?,
                        root_device: word(&mut cursor)?,
                    });
                }
                ATAG_MEM if repr.memory.is_none() => {
                    repr.memory = Some(MemoryBank { size: word(&mut cursor)?, start: word(&mut cursor)? });
                }
                ATAG_CMDLINE if repr.cmdline.is_none() => {
                    let text = tag.data;
                    let end = text.iter().position(|byte| *byte == 0).unwrap_or(text.len());
                    repr.cmdline = Some(&text[..end]);
                }
                ATAG_INITRD2 if repr.initrd.is_none() => {
                    repr.initrd = Some(Initrd { start: word(&mut cursor)?, size: word(&mut cursor)? });
                }
                ATAG_SERIAL if repr.serial.is_none() => {
                    let low = word(&mut cursor)?;
                    let high = word(&mut cursor)?;
                    repr.serial = Some(u64::from(high) << 32 | u64::from(low));
                }
                ATAG_REVISION if repr.revision.is_none() => repr.revision = Some(word(&mut cursor)?),
                _ => {}
            }
        }
        Ok(repr)
    }

    /// The command line's size in words (header included): the text, a NUL, padding.
    fn cmdline_words(text: &[u8]) -> usize {
        2 + (text.len() + 1).div_ceil(4)
    }

    /// Bytes [`emit`](Self::emit) writes: `ATAG_CORE`, then the present tags in the order of the
    /// fields, then the terminator.
    pub fn buffer_len(&self) -> usize {
        let core = if self.core.is_some() { 20 } else { 8 };
        let memory = if self.memory.is_some() { 16 } else { 0 };
        let cmdline = self.cmdline.map_or(0, |text| Self::cmdline_words(text) * 4);
        let initrd = if self.initrd.is_some() { 16 } else { 0 };
        let serial = if self.serial.is_some() { 16 } else { 0 };
        let revision = if self.revision.is_some() { 12 } else { 0 };
        core + memory + cmdline + initrd + serial + revision + 8
    }

    /// Writes the list into `buffer`; returns its length. A command line with a NUL in it is
    /// refused (it would read back shorter).
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, AtagError> {
        let len = self.buffer_len();
        if self.cmdline.is_some_and(|text| text.contains(&0) || text.len() > MAX_LEN) {
            return Err(AtagError::BufferTooSmall);
        }
        let out = buffer.get_mut(..len).ok_or(AtagError::BufferTooSmall)?;
        out.fill(0);
        let mut writer = Writer::new(out);
        let mut write = || -> Option<()> {
            match self.core {
                Some(core) => {
                    writer.u32(5)?;
                    writer.u32(ATAG_CORE)?;
                    writer.u32(core.flags)?;
                    writer.u32(core.page_size)?;
                    writer.u32(core.root_device)?;
                }
                None => {
                    writer.u32(2)?;
                    writer.u32(ATAG_CORE)?;
                }
            }
            if let Some(memory) = self.memory {
                writer.u32(4)?;
                writer.u32(ATAG_MEM)?;
                writer.u32(memory.size)?;
                writer.u32(memory.start)?;
            }
            if let Some(text) = self.cmdline {
                let words = Self::cmdline_words(text);
                writer.u32(words as u32)?;
                writer.u32(ATAG_CMDLINE)?;
                writer.bytes(text)?;
                // The NUL and padding: zeros up to the tag's end.
                writer.bytes(&[0; 4][..(words - 2) * 4 - text.len()])?;
            }
            if let Some(initrd) = self.initrd {
                writer.u32(4)?;
                writer.u32(ATAG_INITRD2)?;
                writer.u32(initrd.start)?;
                writer.u32(initrd.size)?;
            }
            if let Some(serial) = self.serial {
                writer.u32(4)?;
                writer.u32(ATAG_SERIAL)?;
                writer.u32(serial as u32)?;
                writer.u32((serial >> 32) as u32)?;
            }
            if let Some(revision) = self.revision {
                writer.u32(3)?;
                writer.u32(ATAG_REVISION)?;
                writer.u32(revision)?;
            }
            writer.u32(0)?;
            writer.u32(ATAG_NONE)
        };
        write().ok_or(AtagError::BufferTooSmall)?;
        Ok(len)
    }
}

/// Command-line parameters the Pi firmware writes (with ATAGs, as `cmdline.txt` precedes none).
pub mod param {
    /// The Ethernet MAC address the firmware assigns (from the board's OTP): `B8:27:EB:xx:xx:xx`.
    pub const SMSC95XX_MACADDR: &str = "smsc95xx.macaddr";
    /// The framebuffer width the firmware chose for the attached display.
    pub const FB_WIDTH: &str = "bcm2708_fb.fbwidth";
    /// The framebuffer height the firmware chose.
    pub const FB_HEIGHT: &str = "bcm2708_fb.fbheight";
    /// The board revision code.
    pub const BOARD_REVISION: &str = "bcm2708.boardrev";
    /// The board serial number.
    pub const SERIAL: &str = "bcm2708.serial";
    /// The UART reference clock in Hz (newer firmware).
    pub const UART_CLOCK: &str = "bcm2708.uart_clock";
    /// Where the VideoCore's memory starts (the end of the ARM's).
    pub const VC_MEM_BASE: &str = "vc_mem.mem_base";
    /// The end of RAM as the VideoCore sees it (the total, despite the name).
    pub const VC_MEM_SIZE: &str = "vc_mem.mem_size";
}

/// A kernel command line: `key=value` and bare `key` words separated by ASCII spaces. When a
/// key appears more than once, the last one counts (as in Linux). Every accessor takes any bytes
/// and cannot panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cmdline<'a> {
    text: &'a [u8],
}

impl<'a> Cmdline<'a> {
    /// Wraps the command line's bytes.
    pub const fn new(text: &'a [u8]) -> Self {
        Cmdline { text }
    }

    /// The whole text.
    pub const fn text(&self) -> &'a [u8] {
        self.text
    }

    /// Every word as `(key, value)`; a word without `=` has the value `None`.
    pub fn params(&self) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + 'a {
        self.text.split(|byte| byte.is_ascii_whitespace()).filter(|word| !word.is_empty()).map(|word| {
            match word.iter().position(|byte| *byte == b'=') {
                Some(at) => (&word[..at], Some(&word[at + 1..])),
                None => (word, None),
            }
        })
    }

    /// The value of the last `key=value` word for `key`.
    pub fn value(&self, key: &str) -> Option<&'a [u8]> {
        self.params().filter(|(name, _)| *name == key.as_bytes()).filter_map(|(_, value)| value).last()
    }

    /// The value of `key` as a number: decimal, or hexadecimal after `0x`.
    pub fn number(&self, key: &str) -> Option<u64> {
        parse_number(self.value(key)?)
    }

    /// The value of `key` as a MAC address: six hexadecimal byte pairs separated by `:` or `-`.
    pub fn mac_address(&self, key: &str) -> Option<[u8; 6]> {
        parse_mac(self.value(key)?)
    }
}

/// A copy of a command line in a fixed buffer of `N` bytes, for a kernel that keeps the
/// firmware's command line after the tags it came in are gone. A longer line is cut at its last
/// space within `N` bytes, so no parameter is kept half (a single word longer than `N` leaves the
/// copy empty), and the copy remembers that it was cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmdlineBuffer<const N: usize> {
    bytes: [u8; N],
    len: usize,
    truncated: bool,
}

impl<const N: usize> Default for CmdlineBuffer<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> CmdlineBuffer<N> {
    /// An empty command line.
    pub const fn new() -> Self {
        CmdlineBuffer { bytes: [0; N], len: 0, truncated: false }
    }

    /// Copies `text`, cut at a word boundary when it is longer than `N` bytes.
    pub fn from_text(text: &[u8]) -> Self {
        let mut copy = Self::new();
        let mut len = text.len();
        if len > N {
            // Cut at the last space that keeps the copy within N bytes.
            len = text[..=N].iter().rposition(|byte| *byte == b' ').unwrap_or(0);
            copy.truncated = true;
        }
        copy.bytes[..len].copy_from_slice(&text[..len]);
        copy.len = len;
        copy
    }

    /// The command line kept.
    pub fn cmdline(&self) -> Cmdline<'_> {
        Cmdline::new(&self.bytes[..self.len])
    }

    /// Whether the original was longer than `N` bytes (and so was cut).
    pub const fn truncated(&self) -> bool {
        self.truncated
    }
}

/// A decimal number, or a hexadecimal one after `0x` / `0X`; `None` on anything else or overflow.
pub fn parse_number(text: &[u8]) -> Option<u64> {
    let (digits, radix) = match text {
        [b'0', b'x' | b'X', rest @ ..] => (rest, 16),
        _ => (text, 10),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for byte in digits {
        let digit = char::from(*byte).to_digit(radix)?;
        value = value.checked_mul(u64::from(radix))?.checked_add(u64::from(digit))?;
    }
    Some(value)
}

/// A MAC address written `B8:27:EB:12:34:56` (or with `-`, either case).
pub fn parse_mac(text: &[u8]) -> Option<[u8; 6]> {
    if text.len() != 17 {
        return None;
    }
    let separator = text[2];
    if separator != b':' && separator != b'-' {
        return None;
    }
    let mut mac = [0u8; 6];
    for (index, byte) in mac.iter_mut().enumerate() {
        let at = index * 3;
        if index > 0 && text[at - 1] != separator {
            return None;
        }
        let high = char::from(text[at]).to_digit(16)?;
        let low = char::from(text[at + 1]).to_digit(16)?;
        *byte = (high * 16 + low) as u8;
    }
    Some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A list as the firmware writes it on a Pi Zero with `initramfs jos-config.bin 0x01F00000`,
    /// built word by word (not with `emit`).
    fn firmware_list(cmdline: &[u8]) -> Vec<u8> {
        let mut words: Vec<u32> =
            vec![5, ATAG_CORE, 0, 4096, 0, 4, ATAG_MEM, 0x1F00_0000, 0, 4, ATAG_INITRD2, 0x01F0_0000, 300];
        let text_words = (cmdline.len() + 1).div_ceil(4);
        words.extend_from_slice(&[2 + text_words as u32, ATAG_CMDLINE]);
        let mut text = cmdline.to_vec();
        text.resize(text_words * 4, 0);
        words.extend(text.chunks(4).map(|chunk| u32::from_le_bytes(chunk.try_into().unwrap())));
        words.extend_from_slice(&[0, ATAG_NONE]);
        words.iter().flat_map(|word| word.to_le_bytes()).collect()
    }

    const CMDLINE: &[u8] = b"bcm2708_fb.fbwidth=656 bcm2708_fb.fbheight=416 bcm2708.boardrev=0x9000c1 \
bcm2708.serial=0x12345678 smsc95xx.macaddr=B8:27:EB:12:34:56 vc_mem.mem_base=0x1f000000 vc_mem.mem_size=0x20000000 \
console=ttyAMA0,115200 quiet";

    #[test]
    fn deconstruct_firmware_list() {
        let bytes = firmware_list(CMDLINE);
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0xAA; 64]);
        let atags = Atags::new_checked(&padded[..]).unwrap();
        assert_eq!(atags.total_len(), bytes.len());
        let tags: Vec<u32> = atags.tags().map(|tag| tag.tag).collect();
        assert_eq!(tags, [ATAG_CORE, ATAG_MEM, ATAG_INITRD2, ATAG_CMDLINE]);
        let repr = AtagsRepr::parse(&atags).unwrap();
        assert_eq!(repr.core, Some(Core { flags: 0, page_size: 4096, root_device: 0 }));
        assert_eq!(repr.memory, Some(MemoryBank { size: 0x1F00_0000, start: 0 }));
        assert_eq!(repr.initrd, Some(Initrd { start: 0x01F0_0000, size: 300 }));
        assert_eq!(repr.cmdline, Some(CMDLINE));
        assert_eq!(repr.serial, None);
    }

    #[test]
    fn construct_gives_the_same_bytes() {
        let repr = AtagsRepr {
            core: Some(Core { flags: 0, page_size: 4096, root_device: 0 }),
            memory: Some(MemoryBank { size: 0x1F00_0000, start: 0 }),
            cmdline: Some(CMDLINE),
            initrd: Some(Initrd { start: 0x01F0_0000, size: 300 }),
            serial: None,
            revision: None,
        };
        let mut bytes = vec![0u8; repr.buffer_len()];
        assert_eq!(repr.emit(&mut bytes), Ok(bytes.len()));
        // Emit orders the command line before the initrd; same tags, same parse.
        let atags = Atags::new_checked(&bytes[..]).unwrap();
        assert_eq!(AtagsRepr::parse(&atags), Ok(repr));
        assert_eq!(&bytes[..8], &[5, 0, 0, 0, 0x01, 0x00, 0x41, 0x54]);
        assert_eq!(&bytes[bytes.len() - 8..], &[0; 8]);
        assert_eq!(repr.emit(&mut [0u8; 16]), Err(AtagError::BufferTooSmall));
    }

    #[test]
    fn serial_revision_and_short_core() {
        let words: [u32; 11] = [2, ATAG_CORE, 4, ATAG_SERIAL, 0x8765_4321, 0x1, 3, ATAG_REVISION, 0x000e, 0, 0];
        let bytes: Vec<u8> = words.iter().flat_map(|word| word.to_le_bytes()).collect();
        let atags = Atags::new_checked(&bytes[..]).unwrap();
        let repr = AtagsRepr::parse(&atags).unwrap();
        assert_eq!(repr.core, None);
        assert_eq!(repr.serial, Some(0x1_8765_4321));
        assert_eq!(repr.revision, Some(0xe));
        let mut again = vec![0u8; repr.buffer_len()];
        repr.emit(&mut again).unwrap();
        assert_eq!(again, bytes);
    }

    #[test]
    fn refusals() {
        let check = |words: &[u32]| {
            let bytes: Vec<u8> = words.iter().flat_map(|word| word.to_le_bytes()).collect();
            Atags::new_checked(&bytes[..]).map(|atags| atags.total_len())
        };
        assert_eq!(check(&[]), Err(AtagError::Truncated));
        assert_eq!(check(&[0, 0]), Err(AtagError::NoCore));
        assert_eq!(check(&[4, ATAG_MEM, 1, 0, 0, 0]), Err(AtagError::NoCore));
        assert_eq!(check(&[2, ATAG_CORE]), Err(AtagError::Truncated));
        assert_eq!(check(&[0, ATAG_CORE, 0, 0]), Err(AtagError::BadSize));
        assert_eq!(check(&[3, ATAG_CORE, 0, 0, 0]), Err(AtagError::BadSize));
        assert_eq!(check(&[2, ATAG_CORE, 1, 0x1234, 0, 0]), Err(AtagError::BadSize));
        assert_eq!(check(&[2, ATAG_CORE, 3, ATAG_MEM, 0, 0, 0]), Err(AtagError::BadSize));
        assert_eq!(check(&[2, ATAG_CORE, 2, ATAG_CMDLINE, 0, 0]), Err(AtagError::BadSize));
        assert_eq!(check(&[2, ATAG_CORE, 0x4000_0000, 0x1234, 0, 0]), Err(AtagError::Truncated));
        assert_eq!(check(&[2, ATAG_CORE, 0, 0]), Ok(16));
        // An unknown tag of any size is walked over.
        assert_eq!(check(&[2, ATAG_CORE, 3, 0x5441_0008, 7, 0, 0]), Ok(28));
        let mut many = vec![2, ATAG_CORE];
        for _ in 0..MAX_TAGS {
            many.extend_from_slice(&[2, 0x1234]);
        }
        many.extend_from_slice(&[0, 0]);
        assert_eq!(check(&many), Err(AtagError::TooManyTags));
    }

    #[test]
    fn device_tree_is_recognised() {
        assert!(is_device_tree(&[0xd0, 0x0d, 0xfe, 0xed, 0, 0]));
        assert!(!is_device_tree(&firmware_list(b"x")));
        assert!(!is_device_tree(&[0xd0, 0x0d]));
    }

    #[test]
    fn command_line_parameters() {
        let cmdline = Cmdline::new(CMDLINE);
        assert_eq!(cmdline.mac_address(param::SMSC95XX_MACADDR), Some([0xB8, 0x27, 0xEB, 0x12, 0x34, 0x56]));
        assert_eq!(cmdline.number(param::FB_WIDTH), Some(656));
        assert_eq!(cmdline.number(param::FB_HEIGHT), Some(416));
        assert_eq!(cmdline.number(param::BOARD_REVISION), Some(0x9000c1));
        assert_eq!(cmdline.number(param::VC_MEM_BASE), Some(0x1f00_0000));
        assert_eq!(cmdline.value("console"), Some(&b"ttyAMA0,115200"[..]));
        assert_eq!(cmdline.value("quiet"), None);
        assert!(cmdline.params().any(|(key, value)| key == b"quiet" && value.is_none()));
        assert_eq!(cmdline.number("missing"), None);
        // The last one counts; tabs and newlines separate too.
        let twice = Cmdline::new(b"a=1\tsmsc95xx.macaddr=00-11-22-aa-bb-cc\na=0x10 ");
        assert_eq!(twice.number("a"), Some(16));
        assert_eq!(twice.mac_address(param::SMSC95XX_MACADDR), Some([0, 0x11, 0x22, 0xaa, 0xbb, 0xcc]));
    }

    #[test]
    fn command_line_copies_are_cut_at_a_word() {
        let kept = CmdlineBuffer::<16>::from_text(b"a=1 bb=2");
        assert_eq!((kept.cmdline().text(), kept.truncated()), (&b"a=1 bb=2"[..], false));
        let full = CmdlineBuffer::<8>::from_text(b"a=1 bb=2");
        assert_eq!((full.cmdline().text(), full.truncated()), (&b"a=1 bb=2"[..], false));
        // One byte too long: the last word goes whole, not half.
        let cut = CmdlineBuffer::<7>::from_text(b"a=1 bb=2");
        assert_eq!((cut.cmdline().text(), cut.truncated()), (&b"a=1"[..], true));
        assert_eq!(cut.cmdline().number("bb"), None);
        // A space just past the capacity still ends a whole word.
        let at_edge = CmdlineBuffer::<3>::from_text(b"a=1 bb=2");
        assert_eq!((at_edge.cmdline().text(), at_edge.truncated()), (&b"a=1"[..], true));
        let one_word = CmdlineBuffer::<4>::from_text(b"console=tty1");
        assert_eq!((one_word.cmdline().text(), one_word.truncated()), (&b""[..], true));
        let empty = CmdlineBuffer::<4>::default();
        assert_eq!((empty.cmdline().text(), empty.truncated()), (&b""[..], false));
        let long = CmdlineBuffer::<1024>::from_text(&[CMDLINE; 8].concat());
        assert!(long.truncated() && long.cmdline().text().len() <= 1024);
        assert_eq!(long.cmdline().number(param::FB_WIDTH), Some(656));
    }

    #[test]
    fn bad_numbers_and_addresses() {
        assert_eq!(parse_number(b""), None);
        assert_eq!(parse_number(b"0x"), None);
        assert_eq!(parse_number(b"12a"), None);
        assert_eq!(parse_number(b"-1"), None);
        assert_eq!(parse_number(b"0xFFFFFFFFFFFFFFFF"), Some(u64::MAX));
        assert_eq!(parse_number(b"0x10000000000000000"), None);
        assert_eq!(parse_number(b"99999999999999999999"), None);
        assert_eq!(parse_mac(b"B8:27:EB:12:34"), None);
        assert_eq!(parse_mac(b"B8:27:EB:12:34:5G"), None);
        assert_eq!(parse_mac(b"B8:27-EB:12:34:56"), None);
        assert_eq!(parse_mac(b"B8.27.EB.12.34.56"), None);
        assert_eq!(parse_mac(b"b8:27:eb:12:34:56"), Some([0xb8, 0x27, 0xeb, 0x12, 0x34, 0x56]));
        // Any bytes: a bare `=` is an empty key with an empty value.
        let odd = Cmdline::new(&[0xff, b'=', 0xfe, b' ', b'=']);
        assert_eq!(odd.value(""), Some(&b""[..]));
        assert_eq!(odd.value("x"), None);
        assert_eq!(odd.params().next(), Some((&[0xff][..], Some(&[0xfe][..]))));
    }
}
