//! `jos-cli image`: the SD card that boots jos on a Raspberry Pi 1 or Zero, as a disk image
//! (`-o jos-sd.img`, written to a card with `dd`) or straight onto a card (`--device /dev/sdX`).
//!
//! The card: an MBR with one partition of type 0x0C (FAT32 with LBA) starting at 4 MiB, formatted
//! FAT32 with 2 KiB clusters (as Raspberry Pi OS's own images are made), holding the Raspberry Pi
//! firmware (`bootcode.bin`, `start.elf`, `fixup.dat`, and the cut-down `start_cd.elf` /
//! `fixup_cd.dat` that `gpu_mem=16` selects) with its licence, `kernel.img` (the raw kernel the
//! firmware loads at 0x8000), `config.txt` and `jos-config.bin` (the boot configuration, made here
//! from the provisioning options or taken from `jos-cli provision`'s file). The FAT file system
//! is written by the `fatfs` crate, the partition table by `mbrman`. File times are the FAT
//! epoch (1980-01-01) and the volume and disk ids come from the contents, so the same inputs give
//! the same image.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::exit::Exit;

use super::provision::{self, Options};
use super::{home, print_json, CliError, CommandResult};

/// Arguments of `image`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  jos-cli image --name lab-pi -o jos-sd.img              # provision a device and make its card
  jos-cli image --config config.bin -o jos-sd.img        # a card for a configuration made before
  jos-cli image --name lab-pi --device /dev/sdb          # write the card directly (asks first)
  sudo dd if=jos-sd.img of=/dev/sdX bs=4M conv=fsync     # write the image to a card by hand

The card holds the Raspberry Pi firmware, kernel.img, config.txt and jos-config.bin. The kernel
is --kernel, else build/kernel.img in the current folder or one above it (`cargo xtask kernel`
writes it); the firmware is --firmware DIR, else build/firmware (scripts/setup.sh fetches Debian's
raspi-firmware package there). --device refuses anything but a removable whole-disk block device
that is not mounted. See docs/hardware.md.")]
pub struct Args {
    /// The image file to write.
    #[arg(short, long, value_name = "FILE", required_unless_present = "device", conflicts_with = "device")]
    pub output: Option<PathBuf>,
    /// Write the card directly: a removable, unmounted, whole-disk block device (/dev/sdX,
    /// /dev/mmcblkN). Everything on it is erased.
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<PathBuf>,
    /// Do not ask before writing --device.
    #[arg(long, short)]
    pub yes: bool,
    /// The kernel as a raw binary [default: build/kernel.img].
    #[arg(long, value_name = "FILE")]
    pub kernel: Option<PathBuf>,
    /// A folder with bootcode.bin, start.elf, fixup.dat, start_cd.elf, fixup_cd.dat and the
    /// licence (LICENCE.broadcom or copyright) [default: build/firmware].
    #[arg(long, value_name = "DIR")]
    pub firmware: Option<PathBuf>,
    /// A boot configuration written by `jos-cli provision`, instead of provisioning here.
    #[arg(long, value_name = "FILE", conflicts_with = "name")]
    pub config: Option<PathBuf>,
    /// The provisioning options (as `jos-cli provision`), used without --config.
    #[command(flatten)]
    pub provision: Options,
    /// The image size in MiB (the partition is 4 MiB smaller).
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_SIZE_MIB)]
    pub size: u32,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
    /// Print what was written as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Bytes per sector on the card.
pub const SECTOR: u64 = 512;
/// The partition's first sector: 4 MiB, a multiple of every SD card's erase block.
pub const PARTITION_START: u64 = 8192;
/// MBR partition type 0x0C: FAT32 with LBA addressing.
pub const PARTITION_TYPE: u8 = 0x0C;
/// FAT32 cluster size (as Raspberry Pi OS formats its boot partition: 4 sectors).
pub const CLUSTER: u32 = 2048;
/// The default image size.
pub const DEFAULT_SIZE_MIB: u32 = 256;
/// The smallest image: FAT32 needs at least 65,525 clusters (128 MiB of 2 KiB clusters), plus
/// the 4 MiB before the partition and the FATs.
pub const MIN_SIZE_MIB: u32 = 136;
/// The largest image.
pub const MAX_SIZE_MIB: u32 = 32 * 1024;
/// The FAT volume label.
pub const LABEL: [u8; 11] = *b"JOS-BOOT   ";

/// The firmware files every Pi 1 / Zero card needs (the `_cd` pair because of `gpu_mem=16`).
pub const FIRMWARE_FILES: [&str; 5] = ["bootcode.bin", "start.elf", "fixup.dat", "start_cd.elf", "fixup_cd.dat"];
/// The licence's name on the card.
pub const LICENCE: &str = "LICENCE.broadcom";
/// Where the firmware loads the boot configuration (`jos_abi::config::CONFIG_ADDRESS`).
pub const CONFIG_FILE: &str = "jos-config.bin";

/// The card's `config.txt`.
pub const CONFIG_TXT: &str = "\
# jos: the Raspberry Pi firmware reads this file (written by `jos-cli image`; docs/hardware.md).
# Boards: Raspberry Pi 1 A/B/A+/B+, Zero, Zero W (BCM2835).

# The kernel: a raw binary the firmware loads at 0x8000 and enters with r0 = 0,
# r1 = the machine type (0xC42) and r2 = 0x100, the address of its ATAG list.
kernel=kernel.img
kernel_address=0x8000

# No device tree: with none the firmware passes ATAGs (memory, the command line with the
# board's MAC address, revision and serial), which jos reads. Keep .dtb files off this card.
device_tree=

# The serial console: PL011 on GPIO 14 (TXD, header pin 8) and 15 (RXD, pin 10), 115200 8N1.
enable_uart=1

# The smallest GPU memory split: 16 MiB for the VideoCore, the rest for jos. It makes the
# firmware use the cut-down start_cd.elf / fixup_cd.dat (no camera or codecs, which jos does
# not use; the early framebuffer is limited to 1080p, and jos falls back to 640x480).
gpu_mem=16

# The boot configuration (device keys, trusted clients and signers, policy, network), loaded
# where the kernel reads it: 31 MiB, above the kernel and its DMA region.
initramfs jos-config.bin 0x01F00000

# To see the firmware's own progress on the serial console, uncomment:
#uart_2ndstage=1
";

/// The sizes of the image's parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The whole image in bytes.
    pub total: u64,
    /// The partition's first sector.
    pub start_sector: u64,
    /// The partition's length in sectors.
    pub sectors: u64,
}

impl Layout {
    /// The layout of a `size_mib` image, or why not.
    pub fn new(size_mib: u32) -> Result<Self, CliError> {
        if !(MIN_SIZE_MIB..=MAX_SIZE_MIB).contains(&size_mib) {
            return Err(CliError::new(
                Exit::Usage,
                format!("--size {size_mib}: the image must be {MIN_SIZE_MIB} to {MAX_SIZE_MIB} MiB"),
            )
            .hint(format!(
                "FAT32 with 2 KiB clusters needs at least {MIN_SIZE_MIB} MiB; the default is {DEFAULT_SIZE_MIB}"
            )));
        }
        let total = u64::from(size_mib) << 20;
        Ok(Layout { total, start_sector: PARTITION_START, sectors: total / SECTOR - PARTITION_START })
    }
}

/// One file for the card.
#[derive(Clone, Debug)]
pub struct CardFile {
    /// Its name in the card's root folder.
    pub name: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// A window `[start, start + len)` of a file, seen as a whole disk by `fatfs`.
struct Window<'a> {
    file: &'a mut std::fs::File,
    start: u64,
    len: u64,
    position: u64,
}

impl Read for Window<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.position);
        let take = buffer.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        self.file.seek(SeekFrom::Start(self.start + self.position))?;
        let read = self.file.read(&mut buffer[..take])?;
        // Past the file's written end (a sparse image) reads zeros.
        let read = if read == 0 && take > 0 {
            buffer[..take].fill(0);
            take
        } else {
            read
        };
        self.position += read as u64;
        Ok(read)
    }
}

impl Write for Window<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.position);
        if left == 0 && !bytes.is_empty() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "write past the partition's end"));
        }
        let take = bytes.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        self.file.seek(SeekFrom::Start(self.start + self.position))?;
        let written = self.file.write(&bytes[..take])?;
        self.position += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Seek for Window<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        match target {
            Some(position) if position <= self.len => {
                self.position = position;
                Ok(position)
            }
            _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "seek outside the partition")),
        }
    }
}

/// Every file's time: the FAT epoch, 1980-01-01 00:00 (a valid date; the same on every run).
#[derive(Debug)]
struct FatEpoch;

impl fatfs::TimeProvider for FatEpoch {
    fn get_current_date(&self) -> fatfs::Date {
        fatfs::Date { year: 1980, month: 1, day: 1 }
    }

    fn get_current_date_time(&self) -> fatfs::DateTime {
        fatfs::DateTime { date: self.get_current_date(), time: fatfs::Time { hour: 0, min: 0, sec: 0, millis: 0 } }
    }
}

static FAT_EPOCH: FatEpoch = FatEpoch;

fn io_error(what: &str, error: impl std::fmt::Display) -> CliError {
    CliError::new(Exit::Failure, format!("{what}: {error}"))
}

/// Four bytes that identify these contents (for the FAT volume id and the MBR disk signature).
fn content_id(files: &[CardFile]) -> [u8; 4] {
    let mut all = Vec::new();
    for file in files {
        all.extend_from_slice(file.name.as_bytes());
        all.extend_from_slice(&jos_abi::signature::sha256(&file.bytes));
    }
    let digest = jos_abi::signature::sha256(&all);
    [digest[0], digest[1], digest[2], digest[3]]
}

/// Writes the card image into `file` (truncated to the layout's size first): MBR, FAT32, files.
pub fn write_image(file: &mut std::fs::File, layout: Layout, files: &[CardFile]) -> Result<(), CliError> {
    let fail = |error: io::Error| io_error("writing the image", error);
    file.set_len(0).map_err(fail)?;
    file.set_len(layout.total).map_err(fail)?;
    let id = content_id(files);

    // The partition table: one FAT32 (LBA) partition.
    let mut mbr = mbrman::MBR::new_from(file, SECTOR as u32, id).map_err(|error| io_error("partition table", error))?;
    let first = u32::try_from(layout.start_sector).map_err(|_| io_error("partition table", "start past 2 TiB"))?;
    let sectors = u32::try_from(layout.sectors).map_err(|_| io_error("partition table", "partition past 2 TiB"))?;
    mbr[1] = mbrman::MBRPartitionEntry {
        boot: mbrman::BOOT_INACTIVE,
        first_chs: mbrman::CHS::empty(),
        sys: PARTITION_TYPE,
        last_chs: mbrman::CHS::empty(),
        starting_lba: first,
        sectors,
    };
    mbr.write_into(file).map_err(|error| io_error("partition table", error))?;

    // The file system.
    let start = layout.start_sector * SECTOR;
    let len = layout.sectors * SECTOR;
    let options = fatfs::FormatVolumeOptions::new()
        .fat_type(fatfs::FatType::Fat32)
        .bytes_per_cluster(CLUSTER)
        .total_sectors(sectors)
        .volume_id(u32::from_le_bytes(id))
        .volume_label(LABEL);
    fatfs::format_volume(Window { file: &mut *file, start, len, position: 0 }, options)
        .map_err(|error| io_error("FAT32", error))?;
    // The BPB's hidden-sectors field says where the partition starts (fatfs writes 0): in the
    // boot sector and in FAT32's backup boot sector (sector 6).
    for boot_sector in [0, 6] {
        file.seek(SeekFrom::Start(start + boot_sector * SECTOR + 0x1C)).map_err(fail)?;
        file.write_all(&first.to_le_bytes()).map_err(fail)?;
    }
    let fs = fatfs::FileSystem::new(
        Window { file: &mut *file, start, len, position: 0 },
        fatfs::FsOptions::new().time_provider(&FAT_EPOCH),
    )
    .map_err(|error| io_error("FAT32", error))?;
    if fs.fat_type() != fatfs::FatType::Fat32 {
        return Err(io_error("FAT32", "the volume came out as another FAT type"));
    }
    {
        let root = fs.root_dir();
        for card_file in files {
            let mut out = root.create_file(&card_file.name).map_err(|error| io_error(&card_file.name, error))?;
            out.truncate().map_err(|error| io_error(&card_file.name, error))?;
            out.write_all(&card_file.bytes).map_err(|error| io_error(&card_file.name, error))?;
            out.flush().map_err(|error| io_error(&card_file.name, error))?;
        }
    }
    // Counting the free clusters records the count in FAT32's FSInfo sector at unmount.
    fs.stats().map_err(|error| io_error("FAT32", error))?;
    fs.unmount().map_err(|error| io_error("FAT32", error))?;
    file.sync_all().map_err(fail)
}

/// A file the user named or a default one, with an error that names the fix.
fn read_named(path: &Path, what: &str, hint: &str) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|error| {
        CliError::new(Exit::Input, format!("{what} {}: {error}", path.display())).hint(hint.to_string())
    })
}

/// `build/NAME` in the current folder or one above it, or next to the jos-cli binary's.
fn find_build_output(name: &str) -> Option<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(current) = std::env::current_dir() {
        roots.extend(current.ancestors().map(Path::to_path_buf));
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().map(Path::to_path_buf));
    }
    roots.iter().map(|root| root.join("build").join(name)).find(|path| path.exists())
}

const KERNEL_HINT: &str =
    "build it with `cargo xtask kernel` in the jos repository (it writes build/kernel.img), or pass --kernel FILE";
const FIRMWARE_HINT: &str =
    "run scripts/setup.sh in the jos repository (it fetches Debian's raspi-firmware into build/firmware), \
or pass --firmware DIR (e.g. /usr/lib/raspi-firmware with Debian's raspi-firmware installed)";

/// `kernel.img`: given, or the build's; refused when it is the ELF or does not fit below the
/// kernel's DMA region.
pub fn load_kernel(given: Option<&Path>) -> Result<Vec<u8>, CliError> {
    let path = match given {
        Some(path) => path.to_path_buf(),
        None => find_build_output("kernel.img")
            .ok_or_else(|| CliError::new(Exit::Input, "no kernel.img found (build/kernel.img)").hint(KERNEL_HINT))?,
    };
    let bytes = read_named(&path, "kernel", KERNEL_HINT)?;
    if bytes.starts_with(b"\x7fELF") {
        return Err(CliError::new(
            Exit::Input,
            format!("{} is an ELF file; the firmware loads a raw binary", path.display()),
        )
        .hint("give build/kernel.img, which `cargo xtask kernel` writes beside the ELF"));
    }
    // The image and its .bss and stacks must end below the DMA region at 16 MiB.
    if bytes.is_empty() || bytes.len() > 0x0100_0000 - 0x8000 {
        return Err(CliError::new(
            Exit::Input,
            format!("{} ({} bytes) is not a jos kernel.img", path.display(), bytes.len()),
        )
        .hint(KERNEL_HINT));
    }
    Ok(bytes)
}

/// The firmware files and the licence from `given` or the build's `build/firmware`.
pub fn load_firmware(given: Option<&Path>) -> Result<Vec<CardFile>, CliError> {
    let folder = match given {
        Some(path) => path.to_path_buf(),
        None => find_build_output("firmware").ok_or_else(|| {
            CliError::new(Exit::Input, "no Raspberry Pi firmware found (build/firmware)").hint(FIRMWARE_HINT)
        })?,
    };
    let mut files = Vec::new();
    for name in FIRMWARE_FILES {
        let bytes = read_named(&folder.join(name), "firmware file", FIRMWARE_HINT)?;
        files.push(CardFile { name: name.into(), bytes });
    }
    // The licence: ours, the package's name for it, or where Debian installs it beside
    // /usr/lib/raspi-firmware.
    let candidates =
        [folder.join(LICENCE), folder.join("copyright"), folder.join("../../share/doc/raspi-firmware/copyright")];
    let licence = candidates.iter().find_map(|path| std::fs::read(path).ok()).ok_or_else(|| {
        CliError::new(Exit::Input, format!("no firmware licence in {} (LICENCE.broadcom or copyright)", folder.display()))
            .hint("the firmware may be given away only with its licence: copy Debian's /usr/share/doc/raspi-firmware/copyright there, or use build/firmware")
    })?;
    files.push(CardFile { name: LICENCE.into(), bytes: licence });
    Ok(files)
}

/// What `--device` was checked to be.
#[derive(Clone, Debug)]
pub struct CardDevice {
    /// The device node (symlinks resolved).
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Vendor and model, as sysfs reports them.
    pub description: String,
}

fn refuse(path: &Path, why: impl std::fmt::Display, hint: &str) -> CliError {
    CliError::new(Exit::Input, format!("refusing to write {}: {why}", path.display())).hint(hint.to_string())
}

fn sysfs(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|text| text.trim().to_string())
}

/// Checks that `path` is a card jos-cli may erase: a block device, a whole disk (not a
/// partition), none of it mounted or used as swap, removable (`/sys/block/NAME/removable` is 1,
/// or an SD card in a built-in reader: an `mmcblk` disk whose device type is `SD`), and large
/// enough for `layout`.
pub fn check_device(path: &Path, layout: Layout) -> Result<CardDevice, CliError> {
    check_device_with(path, layout, Path::new("/sys"))
}

/// [`check_device`] reading the kernel's device attributes under `sys` (a copy in unit tests).
fn check_device_with(path: &Path, layout: Layout, sys: &Path) -> Result<CardDevice, CliError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let metadata = std::fs::metadata(path)
        .map_err(|error| refuse(path, error, "give the card's device, e.g. /dev/sdb (see `lsblk`)"))?;
    let kind = metadata.file_type();
    if !kind.is_block_device() {
        let what = if kind.is_file() {
            "it is a regular file, not a block device"
        } else if kind.is_char_device() {
            "it is a character device, not a block device"
        } else if kind.is_dir() {
            "it is a folder, not a block device"
        } else {
            "it is not a block device"
        };
        return Err(refuse(path, what, "give the card's whole disk, e.g. /dev/sdb; to make an image file use -o FILE"));
    }
    let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let name = resolved.file_name().and_then(|name| name.to_str()).unwrap_or_default().to_string();
    let class = sys.join("class/block").join(&name);
    if class.join("partition").exists() {
        let disk = std::fs::canonicalize(&class)
            .ok()
            .and_then(|dir| dir.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()));
        return Err(refuse(
            path,
            "it is a partition",
            &format!("give the whole card, e.g. /dev/{}", disk.unwrap_or_else(|| "sdX".into())),
        ));
    }
    let disk = sys.join("block").join(&name);
    if !disk.exists() {
        return Err(refuse(
            path,
            "the kernel lists no such disk in /sys/block",
            "give the card's whole disk, e.g. /dev/sdb",
        ));
    }
    // Mounted or swap: the disk itself or any of its partitions.
    let mut numbers = vec![(libc_major(metadata.rdev()), libc_minor(metadata.rdev()))];
    let mut names = vec![name.clone()];
    if let Ok(entries) = std::fs::read_dir(&disk) {
        for entry in entries.flatten() {
            let child = entry.path();
            if child.join("partition").exists() {
                if let Some((major, minor)) = sysfs(&child.join("dev")).and_then(|dev| {
                    let (major, minor) = dev.split_once(':')?;
                    Some((major.parse().ok()?, minor.parse().ok()?))
                }) {
                    numbers.push((major, minor));
                }
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    if let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") {
        for line in mountinfo.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let (Some(device), Some(mount_point)) = (fields.get(2), fields.get(4)) else { continue };
            let Some((major, minor)) = device.split_once(':') else { continue };
            let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else { continue };
            if numbers.contains(&(major, minor)) {
                return Err(refuse(
                    path,
                    format!("it is mounted at {mount_point}"),
                    "unmount it (and its partitions) first, e.g. `umount /dev/sdX1`",
                ));
            }
        }
    }
    if let Ok(swaps) = std::fs::read_to_string("/proc/swaps") {
        for line in swaps.lines().skip(1) {
            let device = line.split_whitespace().next().unwrap_or_default();
            if names.iter().any(|name| device == format!("/dev/{name}")) {
                return Err(refuse(path, format!("{device} is in use as swap"), "swapoff it first"));
            }
        }
    }
    let removable = sysfs(&disk.join("removable")).as_deref() == Some("1");
    let sd_slot = name.starts_with("mmcblk") && sysfs(&disk.join("device/type")).as_deref() == Some("SD");
    if !removable && !sd_slot {
        return Err(refuse(
            path,
            format!("it is not a removable disk (/sys/block/{name}/removable is not 1)"),
            "jos-cli writes only to removable cards; for anything else write an image with -o and copy it yourself",
        ));
    }
    let bytes = sysfs(&disk.join("size")).and_then(|sectors| sectors.parse::<u64>().ok()).unwrap_or(0) * 512;
    if bytes < layout.total {
        return Err(refuse(
            path,
            format!("it holds {bytes} bytes, the image needs {}", layout.total),
            "use a larger card or a smaller --size",
        ));
    }
    let vendor = sysfs(&disk.join("device/vendor")).unwrap_or_default();
    let model = sysfs(&disk.join("device/model")).or_else(|| sysfs(&disk.join("device/name"))).unwrap_or_default();
    let description = format!("{vendor} {model}").trim().to_string();
    Ok(CardDevice { path: resolved, bytes, description })
}

/// The major number of a Linux device number (glibc's `gnu_dev_major`).
fn libc_major(device: u64) -> u64 {
    ((device >> 32) & 0xffff_f000) | ((device >> 8) & 0x0000_0fff)
}

/// The minor number of a Linux device number (glibc's `gnu_dev_minor`).
fn libc_minor(device: u64) -> u64 {
    ((device >> 12) & 0xffff_ff00) | (device & 0x0000_00ff)
}

/// Asks on the terminal; true for `y` or `yes`.
fn confirm(card: &CardDevice) -> Result<bool, CliError> {
    eprint!(
        "This erases everything on {} ({}, {:.1} GB). Write the jos card? [y/N] ",
        card.path.display(),
        if card.description.is_empty() { "unknown card" } else { &card.description },
        card.bytes as f64 / 1e9
    );
    let _ = io::stderr().flush();
    let mut answer = String::new();
    io::stdin().read_line(&mut answer).map_err(|error| io_error("reading the answer", error))?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

/// Runs `image`.
pub fn run(args: Args) -> CommandResult {
    let layout = Layout::new(args.size)?;
    let kernel = load_kernel(args.kernel.as_deref())?;
    let firmware = load_firmware(args.firmware.as_deref())?;
    if args.config.is_none() && args.provision.name.is_none() {
        return Err(CliError::new(
            Exit::Usage,
            "the card needs a boot configuration: --name NAME (and the provisioning options) or --config FILE",
        )
        .hint("e.g. jos-cli image --name lab-pi -o jos-sd.img; see jos-cli provision --help for the options"));
    }
    // Where it goes, checked before anything is provisioned.
    let card = match &args.device {
        Some(device) => Some(check_device(device, layout)?),
        None => None,
    };
    if let Some(output) = &args.output {
        if output.exists() && !args.force {
            return Err(CliError::new(Exit::Exists, format!("{} exists already", output.display()))
                .hint("pass --force to replace it"));
        }
    }
    if let Some(card) = &card {
        if !args.yes && !confirm(card)? {
            return Err(CliError::new(Exit::Exists, format!("{} not written: not confirmed", card.path.display()))
                .hint("answer y, or pass --yes"));
        }
    }
    let (config, provisioned) = match &args.config {
        Some(path) => {
            let bytes = read_named(path, "configuration", "give a file written by `jos-cli provision`")?;
            jos_abi::config::Config::new_checked(&bytes[..]).map_err(|error| {
                CliError::new(Exit::Input, format!("{}: not a jos boot configuration: {error}", path.display()))
                    .hint("make one with `jos-cli provision --name NAME -o config.bin`")
            })?;
            (bytes, None)
        }
        None => {
            let home = home()?;
            let made = provision::provision(&home, &args.provision)?;
            (made.config, Some(made.device))
        }
    };
    let mut files = firmware;
    files.push(CardFile { name: "kernel.img".into(), bytes: kernel });
    files.push(CardFile { name: "config.txt".into(), bytes: CONFIG_TXT.as_bytes().to_vec() });
    files.push(CardFile { name: CONFIG_FILE.into(), bytes: config });

    let target = match (&card, &args.output) {
        (Some(card), _) => card.path.clone(),
        (None, Some(output)) => output.clone(),
        (None, None) => return Err(CliError::new(Exit::Usage, "give -o FILE or --device DEVICE")),
    };
    match &card {
        None => {
            // Written beside the target, then renamed: no half image under the name.
            let partial = target.with_extension("partial");
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&partial)
                .map_err(|error| io_error(&format!("cannot write {}", partial.display()), error))?;
            let written = write_image(&mut file, layout, &files);
            if written.is_err() {
                let _ = std::fs::remove_file(&partial);
            }
            written?;
            std::fs::rename(&partial, &target)
                .map_err(|error| io_error(&format!("cannot write {}", target.display()), error))?;
        }
        Some(card) => {
            let scratch = tempfile::tempfile().map_err(|error| io_error("scratch file", error))?;
            let mut scratch = scratch;
            write_image(&mut scratch, layout, &files)?;
            copy_to_device(&mut scratch, &card.path, layout.total)?;
        }
    }
    if args.json {
        print_json(&serde_json::json!({
            "output": target.display().to_string(),
            "device": card.is_some(),
            "bytes": layout.total,
            "partition": { "start_sector": layout.start_sector, "sectors": layout.sectors, "type": format!("{PARTITION_TYPE:#04x}"), "fat": "FAT32", "cluster_bytes": CLUSTER },
            "files": files.iter().map(|file| serde_json::json!({"name": file.name, "bytes": file.bytes.len()})).collect::<Vec<_>>(),
            "provisioned": provisioned.as_ref().map(|device| serde_json::json!({"name": device.name, "fingerprint": device.fingerprint()})),
        }));
    } else {
        println!(
            "wrote {} ({} MiB: MBR, FAT32 partition at sector {}, {} files)",
            target.display(),
            layout.total >> 20,
            layout.start_sector,
            files.len()
        );
        for file in &files {
            println!("  {:<18} {:>9} bytes", file.name, file.bytes.len());
        }
        if let Some(device) = &provisioned {
            println!(
                "provisioned `{}` and pinned it in the trust store, fingerprint {}",
                device.name,
                device.fingerprint()
            );
        }
        if card.is_none() {
            println!(
                "write it to a card: sudo dd if={} of=/dev/sdX bs=4M conv=fsync (or jos-cli image --device /dev/sdX)",
                target.display()
            );
        } else {
            println!("done: remove the card, put it in the Pi, power on (docs/hardware.md)");
        }
    }
    Ok(Exit::Success)
}

/// Copies the first `len` bytes of `image` onto the card and flushes it.
fn copy_to_device(image: &mut std::fs::File, device: &Path, len: u64) -> Result<(), CliError> {
    let fail = |error: io::Error| io_error(&format!("writing {}", device.display()), error);
    let mut out = std::fs::OpenOptions::new().write(true).open(device).map_err(fail)?;
    image.seek(SeekFrom::Start(0)).map_err(fail)?;
    let mut buffer = vec![0u8; 4 << 20];
    let mut left = len;
    while left > 0 {
        let chunk = buffer.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        image.read_exact(&mut buffer[..chunk]).map_err(fail)?;
        out.write_all(&buffer[..chunk]).map_err(fail)?;
        left -= chunk as u64;
    }
    out.sync_all().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_sizes() {
        let layout = Layout::new(DEFAULT_SIZE_MIB).unwrap();
        assert_eq!(layout.total, 256 << 20);
        assert_eq!(layout.start_sector, 8192);
        assert_eq!(layout.sectors, (256 << 20) / 512 - 8192);
        assert!(Layout::new(MIN_SIZE_MIB - 1).is_err());
        assert!(Layout::new(MAX_SIZE_MIB + 1).is_err());
    }

    #[test]
    fn smallest_image_is_fat32() {
        // The smallest allowed size still formats as FAT32 with 2 KiB clusters.
        let layout = Layout::new(MIN_SIZE_MIB).unwrap();
        let mut file = tempfile::tempfile().unwrap();
        write_image(&mut file, layout, &[CardFile { name: "a.txt".into(), bytes: b"x".to_vec() }]).unwrap();
        let window =
            Window { file: &mut file, start: layout.start_sector * SECTOR, len: layout.sectors * SECTOR, position: 0 };
        let fs = fatfs::FileSystem::new(window, fatfs::FsOptions::new()).unwrap();
        assert_eq!(fs.fat_type(), fatfs::FatType::Fat32);
        assert_eq!(fs.cluster_size(), CLUSTER);
        assert!(fs.stats().unwrap().total_clusters() >= 65_525);
    }

    /// The sysfs checks against a made-up sysfs for a real block device node (a loop device):
    /// a partition is refused, a non-removable disk is refused, a removable one of the right size
    /// is accepted (nothing is written: `check_device` only reads).
    #[test]
    fn sysfs_decides_partition_and_removable() {
        let Some(node) = (0..8).map(|n| format!("/dev/loop{n}")).find(|node| {
            use std::os::unix::fs::FileTypeExt;
            std::fs::metadata(node).is_ok_and(|m| m.file_type().is_block_device())
        }) else {
            println!("skipped: no loop device node here");
            return;
        };
        let name = node.trim_start_matches("/dev/");
        let layout = Layout::new(DEFAULT_SIZE_MIB).unwrap();
        let sys = tempfile::tempdir().unwrap();
        let class = sys.path().join("class/block").join(name);
        let disk = sys.path().join("block").join(name);
        std::fs::create_dir_all(&class).unwrap();
        std::fs::create_dir_all(disk.join("device")).unwrap();
        std::fs::write(class.join("partition"), "1\n").unwrap();
        let error = check_device_with(Path::new(&node), layout, sys.path()).unwrap_err();
        assert!(error.message.contains("it is a partition"), "{}", error.message);
        std::fs::remove_file(class.join("partition")).unwrap();
        std::fs::write(disk.join("removable"), "0\n").unwrap();
        std::fs::write(disk.join("size"), "15523840\n").unwrap();
        let error = check_device_with(Path::new(&node), layout, sys.path()).unwrap_err();
        assert!(error.message.contains("not a removable disk"), "{}", error.message);
        std::fs::write(disk.join("removable"), "1\n").unwrap();
        std::fs::write(disk.join("device/vendor"), "Generic\n").unwrap();
        std::fs::write(disk.join("device/model"), "STORAGE DEVICE\n").unwrap();
        let card = check_device_with(Path::new(&node), layout, sys.path()).unwrap();
        assert_eq!((card.bytes, card.description.as_str()), (15_523_840 * 512, "Generic STORAGE DEVICE"));
        // Too small a card.
        std::fs::write(disk.join("size"), "1000\n").unwrap();
        let error = check_device_with(Path::new(&node), layout, sys.path()).unwrap_err();
        assert!(error.message.contains("the image needs"), "{}", error.message);
        // An SD card in a built-in reader reports removable 0 but device type SD (mmcblk only).
        std::fs::write(disk.join("size"), "15523840\n").unwrap();
        std::fs::write(disk.join("removable"), "0\n").unwrap();
        std::fs::write(disk.join("device/type"), "SD\n").unwrap();
        assert!(
            check_device_with(Path::new(&node), layout, sys.path()).is_err(),
            "only mmcblk disks count as SD slots"
        );
    }

    #[test]
    fn device_numbers() {
        // 8:16 (sdb) and 179:0 (mmcblk0), as glibc packs them.
        assert_eq!((libc_major(0x810), libc_minor(0x810)), (8, 16));
        assert_eq!((libc_major(0xb300), libc_minor(0xb300)), (179, 0));
    }
}
