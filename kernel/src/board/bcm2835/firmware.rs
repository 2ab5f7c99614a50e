//! What the Raspberry Pi firmware hands the kernel at entry: r0, r1 (the machine type), r2 (the
//! ATAG list, or a device tree), and what the tags say: memory, the command line (with the MAC
//! address the firmware assigns, the display size it chose, the board revision and serial), where
//! it loaded the `initramfs` file. Read once at boot, before the MMU maps page 0 away
//! (the tags sit at 0x100), and kept in a static.
//!
//! QEMU's ELF boot passes r0-r2 = 0: no tags, and every accessor answers `None`. The format and
//! its checks are `jos_abi::atags`.

use jos_abi::atags::{self, param, AtagError, Atags, AtagsRepr, Cmdline, CmdlineBuffer};

use crate::sync::IrqLock;
use jos_kcore::drivers::Firmware;

/// The longest command line kept (the firmware's is about 400 bytes plus `cmdline.txt`).
pub const CMDLINE_MAX: usize = 1024;

/// What r2 pointed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tags {
    /// r2 was 0 (QEMU's ELF boot) or outside RAM.
    None,
    /// A valid ATAG list of this many bytes.
    Atags(usize),
    /// A flattened device tree (the card holds a `.dtb` for the board, or `config.txt` names
    /// one): jos does not read device trees.
    DeviceTree,
    /// Something that is neither: the reason the ATAG check gave.
    Unreadable(AtagError),
}

/// The boot loader's registers and what its tags said.
#[derive(Clone, Copy, Debug)]
pub struct BootInfo {
    /// r0 at entry (0 from the firmware).
    pub r0: u32,
    /// r1 at entry: the machine type (0xC42 from the Pi 1 / Zero firmware).
    pub machine: u32,
    /// r2 at entry: the tags' address.
    pub tags_address: u32,
    /// What r2 pointed at.
    pub tags: Tags,
    /// `ATAG_MEM`: (start, size) of the ARM's memory.
    pub memory: Option<(usize, usize)>,
    /// `ATAG_INITRD2`: (start, size) of the file `initramfs` loaded.
    pub initrd: Option<(u32, u32)>,
    /// `ATAG_REVISION`, else the command line's `bcm2708.boardrev=`.
    pub revision: Option<u32>,
    /// `ATAG_SERIAL`, else the command line's `bcm2708.serial=`.
    pub serial: Option<u64>,
    /// The command line, cut at a word boundary when longer than [`CMDLINE_MAX`]
    /// ([`CmdlineBuffer::truncated`]).
    pub cmdline: CmdlineBuffer<CMDLINE_MAX>,
}

impl BootInfo {
    const fn empty() -> Self {
        BootInfo {
            r0: 0,
            machine: 0,
            tags_address: 0,
            tags: Tags::None,
            memory: None,
            initrd: None,
            revision: None,
            serial: None,
            cmdline: CmdlineBuffer::new(),
        }
    }

    /// The command line (empty without tags).
    pub fn cmdline(&self) -> Cmdline<'_> {
        self.cmdline.cmdline()
    }
}

static BOOT: IrqLock<BootInfo> = IrqLock::new(BootInfo::empty());

/// The highest address r2 may point below (all Pi 1 / Zero boards have at least 256 MiB).
const TAGS_LIMIT: u32 = 0x1000_0000;

/// Reads the tags r2 points at and keeps what they say. Called once by `kernel_main`, before
/// the MMU is on and before anything else reads [`boot_info`].
pub fn read(r0: u32, machine: u32, tags_address: u32) -> BootInfo {
    let mut info = BootInfo { r0, machine, tags_address, ..BootInfo::empty() };
    let readable =
        tags_address != 0 && tags_address.is_multiple_of(4) && tags_address < TAGS_LIMIT - atags::MAX_LEN as u32;
    if readable {
        // SAFETY: before the MMU is on, every address below 256 MiB is RAM on every BCM2835 board;
        // the window is aligned, inside it, and only read. The firmware's tags (at 0x100) lie
        // below the kernel image; nothing writes this memory while the slice lives.
        let window = unsafe { core::slice::from_raw_parts(tags_address as usize as *const u8, atags::MAX_LEN) };
        info.tags = if atags::is_device_tree(window) {
            Tags::DeviceTree
        } else {
            match Atags::new_checked(window) {
                Ok(list) => {
                    if let Ok(repr) = AtagsRepr::parse(&list) {
                        take(&mut info, &repr);
                    }
                    Tags::Atags(list.total_len())
                }
                Err(error) => Tags::Unreadable(error),
            }
        };
    }
    BOOT.lock(|boot| *boot = info);
    info
}

fn take(info: &mut BootInfo, repr: &AtagsRepr<'_>) {
    info.memory = repr.memory.map(|bank| (bank.start as usize, bank.size as usize));
    info.initrd = repr.initrd.map(|initrd| (initrd.start, initrd.size));
    if let Some(text) = repr.cmdline {
        info.cmdline = CmdlineBuffer::from_text(text);
    }
    let cmdline = info.cmdline.cmdline();
    info.revision = repr.revision.or_else(|| cmdline.number(param::BOARD_REVISION).and_then(|n| u32::try_from(n).ok()));
    info.serial = repr.serial.or_else(|| cmdline.number(param::SERIAL));
}

/// What [`read`] found (an empty record before it ran).
pub fn boot_info() -> BootInfo {
    BOOT.lock(|boot| *boot)
}

/// The MAC address the firmware put on the command line (`smsc95xx.macaddr=B8:27:EB:..`): the
/// Pi 1 B/B+ Ethernet has no EEPROM, so this is its address. `None` without tags or without
/// the parameter (QEMU). For the network drivers.
pub fn cmdline_mac() -> Option<[u8; 6]> {
    BOOT.lock(|boot| boot.cmdline().mac_address(param::SMSC95XX_MACADDR))
}

/// A numeric command-line parameter (decimal or 0x-hex), e.g. [`param::FB_WIDTH`].
pub fn cmdline_number(key: &str) -> Option<u64> {
    BOOT.lock(|boot| boot.cmdline().number(key))
}

/// The VideoCore firmware: the property mailbox's board serial and the command line it passed
/// at boot ([`cmdline_mac`]).
pub struct VideoCore;

impl Firmware for VideoCore {
    fn board_serial(&self) -> Option<u64> {
        super::MAILBOX.board_serial().ok()
    }

    fn configured_mac(&self) -> Option<[u8; 6]> {
        cmdline_mac()
    }
}
