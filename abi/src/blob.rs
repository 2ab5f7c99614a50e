//! The native blob format: signed ARMv6 position-independent code with load-time bound imports.
//!
//! A blob is a fixed 72-byte little-endian [header](field), the loadable image (text, rodata and
//! data, back to back), an import table of `(slot offset, syscall id)` pairs, a relocation list,
//! and a signature trailer (see [`crate::signature`]). The layout table is in `docs/formats.md`.
//!
//! A blob compiled ahead of time from a wasm module (`jos-cli build --format aot`) sets
//! [`BlobFlags::AOT`] and carries the SHA-256 of that module in the [`AOT_NOTE_LEN`] bytes right
//! after the header ([`Blob::wasm_source`]); nothing else of the image, tables or loading changes,
//! so the device runs it as any native blob (it needs the `native` right: the device cannot check
//! how native code was made).
//!
//! Loading (done by the runtime): reserve `memory_len()` bytes aligned to `align()`, copy the
//! image to the start, zero the `bss_len()` bytes after it, add the load base to each relocated
//! word, then for each import store the kernel's function address for the call id into the
//! 4-byte slot: one array lookup and one store. No address of a particular kernel build is ever
//! in a blob; every address inside it is image-relative.
//!
//! Untrusted bytes go through [`Blob::new_checked`] only. It validates every length, offset and
//! table entry against the buffer, so that afterwards no accessor can panic and every offset the
//! accessors return is in bounds of the regions the documentation promises.

use core::fmt;

use crate::codec::{List, Record, Writer};
use crate::error::ErrorCode;
use crate::syscall::{AbiVersion, SyscallId};

/// The magic at offset 0.
pub const MAGIC: [u8; 4] = *b"JOSB";
/// The blob format version this crate reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// The size of the header; the image, tables and trailer follow it.
pub const HEADER_LEN: usize = 72;
/// Size of one import table entry: slot offset (u32) then syscall id (u32).
pub const IMPORT_LEN: usize = 8;
/// Size of one relocation entry: the image offset (u32) of the word to relocate.
pub const RELOCATION_LEN: usize = 4;
/// The smallest accepted alignment of the loaded image (one ARM word).
pub const MIN_ALIGN: u32 = 4;
/// The largest accepted alignment of the loaded image (one 64 KiB MMU large page).
pub const MAX_ALIGN: u32 = 65536;
/// Length of the AOT note (the source module's SHA-256) after the header of an AOT blob.
pub const AOT_NOTE_LEN: usize = 32;
/// The largest accepted loaded size (image plus bss): 64 MiB, well past any board's free memory,
/// small enough that `memory_len + align` cannot overflow a `u32` or `usize`.
pub const MAX_MEMORY_LEN: u32 = 64 << 20;

/// Byte offsets of the header fields; every field is a little-endian `u32`.
pub mod field {
    /// `b"JOSB"`.
    pub const MAGIC: usize = 0;
    /// [`super::FORMAT_VERSION`].
    pub const FORMAT_VERSION: usize = 4;
    /// The ABI the blob was built against, as [`crate::AbiVersion::to_u32`].
    pub const ABI_VERSION: usize = 8;
    /// [`super::Arch`].
    pub const ARCH: usize = 12;
    /// [`super::BlobFlags`]; unknown bits are refused.
    pub const FLAGS: usize = 16;
    /// Offset of the entry point in the image (ARM state, in text, 4-aligned).
    pub const ENTRY: usize = 20;
    /// Length of the text section (the image starts with it).
    pub const TEXT_LEN: usize = 24;
    /// Length of the rodata section (follows text).
    pub const RODATA_LEN: usize = 28;
    /// Length of the data section (follows rodata).
    pub const DATA_LEN: usize = 32;
    /// Bytes of zeroed memory after the image.
    pub const BSS_LEN: usize = 36;
    /// Alignment of the load address: a power of two in `MIN_ALIGN..=MAX_ALIGN`.
    pub const ALIGN: usize = 40;
    /// Offset of the image in the blob.
    pub const IMAGE_OFFSET: usize = 44;
    /// Length of the image: text + rodata + data.
    pub const IMAGE_LEN: usize = 48;
    /// Offset of the import table in the blob (4-aligned).
    pub const IMPORT_OFFSET: usize = 52;
    /// Number of import entries.
    pub const IMPORT_COUNT: usize = 56;
    /// Offset of the relocation list in the blob (4-aligned).
    pub const RELOCATION_OFFSET: usize = 60;
    /// Number of relocation entries.
    pub const RELOCATION_COUNT: usize = 64;
    /// Length of the signed part (header, image, tables); the signature trailer follows it.
    pub const SIGNED_LEN: usize = 68;
}

/// Why a blob was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum BlobError {
    /// The buffer is shorter than the header.
    Truncated = 1,
    /// The magic is not `JOSB`.
    BadMagic = 2,
    /// The format version is not [`FORMAT_VERSION`].
    UnsupportedVersion = 3,
    /// The architecture is not one this crate knows.
    UnknownArch = 4,
    /// A flag bit this version does not define is set.
    UnknownFlags = 5,
    /// The alignment is not a power of two in `MIN_ALIGN..=MAX_ALIGN`.
    BadAlignment = 6,
    /// text + rodata + data does not equal the image length (or overflows).
    SectionSizes = 7,
    /// The signed length is shorter than the header or longer than the buffer.
    SignedLenOutOfBounds = 8,
    /// The image lies (partly) outside the signed part or inside the header.
    ImageOutOfBounds = 9,
    /// The import table lies outside the signed part, or is not 4-aligned.
    ImportTableOutOfBounds = 10,
    /// The relocation list lies outside the signed part, or is not 4-aligned.
    RelocationTableOutOfBounds = 11,
    /// Two of image, import table and relocation list overlap.
    Overlap = 12,
    /// The entry point is not inside text.
    EntryOutsideText = 13,
    /// The entry point is not 4-aligned (ARM state).
    MisalignedEntry = 14,
    /// An import slot is not a whole word inside the image.
    ImportSlotOutside = 15,
    /// An import slot is not 4-aligned.
    ImportSlotMisaligned = 16,
    /// Import slots are not in strictly ascending order (a slot appears twice).
    ImportsUnsorted = 17,
    /// An import names a syscall id this ABI does not have.
    UnknownSyscall = 18,
    /// A relocation is not a whole word inside the image.
    RelocationOutside = 19,
    /// A relocation offset is not 4-aligned.
    RelocationMisaligned = 20,
    /// Relocations are not in strictly ascending order (one appears twice).
    RelocationsUnsorted = 21,
    /// A relocated word holds a value past the end of the loaded memory (image + bss).
    RelocationTargetOutside = 22,
    /// A word is both an import slot and a relocation.
    RelocatedImportSlot = 23,
    /// image + bss overflows or exceeds [`MAX_MEMORY_LEN`].
    MemoryTooLarge = 24,
    /// (emit only) the buffer is shorter than [`BlobRepr::buffer_len`] or a size overflows `u32`.
    BufferTooSmall = 25,
    /// An AOT blob's signed part ends inside its AOT note.
    AotNoteOutOfBounds = 26,
}

impl BlobError {
    /// The code this error crosses the ABI and the wire with.
    pub const fn code(self) -> ErrorCode {
        match self {
            BlobError::UnsupportedVersion | BlobError::UnknownArch => ErrorCode::Unsupported,
            BlobError::UnknownSyscall => ErrorCode::AbiMismatch,
            BlobError::MemoryTooLarge => ErrorCode::LimitExceeded,
            BlobError::BufferTooSmall => ErrorCode::InvalidArgument,
            _ => ErrorCode::Malformed,
        }
    }

    /// A short lower-case description.
    pub const fn message(self) -> &'static str {
        match self {
            BlobError::Truncated => "blob shorter than its header",
            BlobError::BadMagic => "not a jos blob (bad magic)",
            BlobError::UnsupportedVersion => "unsupported blob format version",
            BlobError::UnknownArch => "unknown architecture",
            BlobError::UnknownFlags => "unknown flag bits set",
            BlobError::BadAlignment => "alignment not a power of two in range",
            BlobError::SectionSizes => "section sizes do not add up to the image length",
            BlobError::SignedLenOutOfBounds => "signed length outside the blob",
            BlobError::ImageOutOfBounds => "image outside the signed part",
            BlobError::ImportTableOutOfBounds => "import table outside the signed part or unaligned",
            BlobError::RelocationTableOutOfBounds => "relocation list outside the signed part or unaligned",
            BlobError::Overlap => "image and tables overlap",
            BlobError::EntryOutsideText => "entry point outside text",
            BlobError::MisalignedEntry => "entry point not word aligned",
            BlobError::ImportSlotOutside => "import slot outside the image",
            BlobError::ImportSlotMisaligned => "import slot not word aligned",
            BlobError::ImportsUnsorted => "import slots not strictly ascending",
            BlobError::UnknownSyscall => "import of an unknown syscall id",
            BlobError::RelocationOutside => "relocation outside the image",
            BlobError::RelocationMisaligned => "relocation not word aligned",
            BlobError::RelocationsUnsorted => "relocations not strictly ascending",
            BlobError::RelocationTargetOutside => "relocated word points outside the loaded memory",
            BlobError::RelocatedImportSlot => "a word is both import slot and relocation",
            BlobError::MemoryTooLarge => "image plus bss too large",
            BlobError::BufferTooSmall => "buffer too small to emit the blob",
            BlobError::AotNoteOutOfBounds => "AOT note (source module hash) outside the signed part",
        }
    }
}

impl fmt::Display for BlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// The instruction set a blob's code is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Arch {
    /// ARMv6 (ARM1176JZF-S, hard-float AAPCS, VFPv2), entered in ARM state.
    Armv6 = 1,
}

impl TryFrom<u32> for Arch {
    type Error = u32;

    fn try_from(value: u32) -> Result<Self, u32> {
        match value {
            1 => Ok(Arch::Armv6),
            other => Err(other),
        }
    }
}

bitflags::bitflags! {
    /// Header flags; every bit this version does not define must be zero
    /// ([`BlobFlags::from_bits`] refuses them).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct BlobFlags: u32 {
        /// Bit 0: compiled ahead of time from a wasm module; the [`AOT_NOTE_LEN`]-byte SHA-256 of
        /// that module follows the header.
        const AOT = 1;
    }
}

impl BlobFlags {
    /// The bits this version defines.
    pub const KNOWN: u32 = Self::all().bits();
    /// No flags.
    pub const NONE: BlobFlags = BlobFlags::empty();
}

/// One import: the loader stores the address of `syscall`'s kernel function at image offset `slot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Import {
    /// Image offset of the 4-byte slot (4-aligned).
    pub slot: u32,
    /// The call bound into the slot.
    pub syscall: SyscallId,
}

impl Record for Import {
    const LEN: usize = IMPORT_LEN;

    fn decode(bytes: &[u8]) -> Option<Self> {
        let slot = read_u32(bytes, 0)?;
        let syscall = SyscallId::try_from(read_u32(bytes, 4)?).ok()?;
        Some(Import { slot, syscall })
    }

    fn encode(&self, writer: &mut Writer<'_>) -> Option<()> {
        writer.u32(self.slot)?;
        writer.u32(self.syscall as u32)
    }
}

impl Record for u32 {
    const LEN: usize = RELOCATION_LEN;

    fn decode(bytes: &[u8]) -> Option<Self> {
        read_u32(bytes, 0)
    }

    fn encode(&self, writer: &mut Writer<'_>) -> Option<()> {
        writer.u32(*self)
    }
}

/// A table of a blob (imports, relocations): either still encoded (from [`Blob`], validated) or a
/// slice of entries (to [`BlobRepr::emit`]); the same fixed-record list as the other formats use.
pub type Table<'a, T> = List<'a, T>;

fn read_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    let word = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes([word[0], word[1], word[2], word[3]]))
}

/// Writes a little-endian `u32` at `offset`; does nothing when out of bounds (callers check).
fn write_u32(bytes: &mut [u8], offset: usize, value: u32) {
    if let Some(word) = offset.checked_add(4).and_then(|end| bytes.get_mut(offset..end)) {
        word.copy_from_slice(&value.to_le_bytes());
    }
}

/// A byte range `[start, start + len)` checked not to overflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    fn new(start: u32, len: usize) -> Option<Span> {
        let start = start as usize;
        Some(Span { start, end: start.checked_add(len)? })
    }

    fn within(self, outer: Span) -> bool {
        outer.start <= self.start && self.end <= outer.end
    }

    fn overlaps(self, other: Span) -> bool {
        self.start < self.end && other.start < other.end && self.start < other.end && other.start < self.end
    }
}

/// A checked view of a native blob; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blob<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Blob<T> {
    /// Wraps a buffer without checking it. Accessors never panic, but on an unchecked buffer
    /// they may return zeros and empty slices; use [`Blob::new_checked`] for untrusted bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        Blob { buffer }
    }

    /// Wraps a buffer after validating every length, offset and table entry.
    pub fn new_checked(buffer: T) -> Result<Self, BlobError> {
        let blob = Blob { buffer };
        blob.check()?;
        Ok(blob)
    }

    /// The buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn field(&self, offset: usize) -> u32 {
        read_u32(self.bytes(), offset).unwrap_or(0)
    }

    /// Validates the buffer; every check the module documentation promises is here.
    pub fn check(&self) -> Result<(), BlobError> {
        let bytes = self.bytes();
        if bytes.len() < HEADER_LEN {
            return Err(BlobError::Truncated);
        }
        if bytes[..4] != MAGIC {
            return Err(BlobError::BadMagic);
        }
        if self.format_version() != FORMAT_VERSION {
            return Err(BlobError::UnsupportedVersion);
        }
        if Arch::try_from(self.field(field::ARCH)).is_err() {
            return Err(BlobError::UnknownArch);
        }
        if BlobFlags::from_bits(self.field(field::FLAGS)).is_none() {
            return Err(BlobError::UnknownFlags);
        }
        let align = self.align();
        if !align.is_power_of_two() || !(MIN_ALIGN..=MAX_ALIGN).contains(&align) {
            return Err(BlobError::BadAlignment);
        }
        let image_len = self.image_len();
        let sections = self.text_len().checked_add(self.rodata_len()).and_then(|sum| sum.checked_add(self.data_len()));
        if sections != Some(image_len) {
            return Err(BlobError::SectionSizes);
        }
        match image_len.checked_add(self.bss_len()) {
            Some(memory) if memory <= MAX_MEMORY_LEN => {}
            _ => return Err(BlobError::MemoryTooLarge),
        }

        let signed_len = self.signed_len() as usize;
        if signed_len < HEADER_LEN || signed_len > bytes.len() {
            return Err(BlobError::SignedLenOutOfBounds);
        }
        let body_start = self.body_start();
        if signed_len < body_start {
            return Err(BlobError::AotNoteOutOfBounds);
        }
        // The AOT note, when present, sits between the header and the body: an image or a table
        // that starts inside it is outside the body.
        let body = Span { start: body_start, end: signed_len };
        let image = Span::new(self.field(field::IMAGE_OFFSET), image_len as usize)
            .filter(|span| span.within(body))
            .ok_or(BlobError::ImageOutOfBounds)?;
        let imports = self
            .table_span(field::IMPORT_OFFSET, field::IMPORT_COUNT, IMPORT_LEN)
            .filter(|span| span.within(body))
            .ok_or(BlobError::ImportTableOutOfBounds)?;
        let relocations = self
            .table_span(field::RELOCATION_OFFSET, field::RELOCATION_COUNT, RELOCATION_LEN)
            .filter(|span| span.within(body))
            .ok_or(BlobError::RelocationTableOutOfBounds)?;
        if image.overlaps(imports) || image.overlaps(relocations) || imports.overlaps(relocations) {
            return Err(BlobError::Overlap);
        }

        let entry = self.entry();
        if entry >= self.text_len() {
            return Err(BlobError::EntryOutsideText);
        }
        if !entry.is_multiple_of(4) {
            return Err(BlobError::MisalignedEntry);
        }

        let image_bytes = &bytes[image.start..image.end];
        let import_bytes = &bytes[imports.start..imports.end];
        let relocation_bytes = &bytes[relocations.start..relocations.end];
        check_word_offsets(
            import_bytes.chunks_exact(IMPORT_LEN).map(|entry| read_u32(entry, 0).unwrap_or(u32::MAX)),
            image_len,
            [BlobError::ImportSlotOutside, BlobError::ImportSlotMisaligned, BlobError::ImportsUnsorted],
        )?;
        for entry in import_bytes.chunks_exact(IMPORT_LEN) {
            if Import::decode(entry).is_none() {
                return Err(BlobError::UnknownSyscall);
            }
        }
        check_word_offsets(
            relocation_bytes.chunks_exact(RELOCATION_LEN).map(|entry| read_u32(entry, 0).unwrap_or(u32::MAX)),
            image_len,
            [BlobError::RelocationOutside, BlobError::RelocationMisaligned, BlobError::RelocationsUnsorted],
        )?;
        let memory_len = self.memory_len();
        for offset in relocation_bytes.chunks_exact(RELOCATION_LEN).filter_map(|entry| read_u32(entry, 0)) {
            // In bounds: check_word_offsets proved offset + 4 <= image_len.
            let target = read_u32(image_bytes, offset as usize).unwrap_or(u32::MAX);
            if target > memory_len {
                return Err(BlobError::RelocationTargetOutside);
            }
        }
        // Both lists are strictly ascending: one merge pass finds a shared word.
        let mut slots = import_bytes.chunks_exact(IMPORT_LEN).filter_map(|entry| read_u32(entry, 0)).peekable();
        let mut relocated =
            relocation_bytes.chunks_exact(RELOCATION_LEN).filter_map(|entry| read_u32(entry, 0)).peekable();
        while let (Some(&slot), Some(&word)) = (slots.peek(), relocated.peek()) {
            match slot.cmp(&word) {
                core::cmp::Ordering::Less => {
                    slots.next();
                }
                core::cmp::Ordering::Greater => {
                    relocated.next();
                }
                core::cmp::Ordering::Equal => return Err(BlobError::RelocatedImportSlot),
            }
        }
        Ok(())
    }

    /// Where image and tables may start: after the header, and after the AOT note if any.
    fn body_start(&self) -> usize {
        if self.flags().contains(BlobFlags::AOT) {
            HEADER_LEN + AOT_NOTE_LEN
        } else {
            HEADER_LEN
        }
    }

    /// The SHA-256 of the wasm module an AOT blob was compiled from; `None` for other blobs.
    pub fn wasm_source(&self) -> Option<[u8; 32]> {
        if !self.flags().contains(BlobFlags::AOT) {
            return None;
        }
        self.slice(HEADER_LEN, AOT_NOTE_LEN).try_into().ok()
    }

    fn table_span(&self, offset_field: usize, count_field: usize, entry_len: usize) -> Option<Span> {
        let offset = self.field(offset_field);
        if !offset.is_multiple_of(4) {
            return None;
        }
        Span::new(offset, (self.field(count_field) as usize).checked_mul(entry_len)?)
    }

    /// The format version field.
    pub fn format_version(&self) -> u32 {
        self.field(field::FORMAT_VERSION)
    }

    /// The ABI version the blob was built against; the runtime checks [`AbiVersion::accepts`].
    pub fn abi_version(&self) -> AbiVersion {
        AbiVersion::from_u32(self.field(field::ABI_VERSION))
    }

    /// The architecture (always known after [`Blob::new_checked`]).
    pub fn arch(&self) -> Option<Arch> {
        Arch::try_from(self.field(field::ARCH)).ok()
    }

    /// The flags.
    pub fn flags(&self) -> BlobFlags {
        BlobFlags::from_bits(self.field(field::FLAGS)).unwrap_or_default()
    }

    /// Image offset of the entry point (in text, 4-aligned).
    pub fn entry(&self) -> u32 {
        self.field(field::ENTRY)
    }

    /// Length of text.
    pub fn text_len(&self) -> u32 {
        self.field(field::TEXT_LEN)
    }

    /// Length of rodata.
    pub fn rodata_len(&self) -> u32 {
        self.field(field::RODATA_LEN)
    }

    /// Length of data.
    pub fn data_len(&self) -> u32 {
        self.field(field::DATA_LEN)
    }

    /// Bytes of zeroed memory after the image.
    pub fn bss_len(&self) -> u32 {
        self.field(field::BSS_LEN)
    }

    /// Alignment of the load address.
    pub fn align(&self) -> u32 {
        self.field(field::ALIGN)
    }

    /// Length of the image (text + rodata + data).
    pub fn image_len(&self) -> u32 {
        self.field(field::IMAGE_LEN)
    }

    /// Bytes the loaded blob occupies: image plus bss (at most [`MAX_MEMORY_LEN`] once checked).
    pub fn memory_len(&self) -> u32 {
        self.image_len().saturating_add(self.bss_len())
    }

    /// Length of the signed part; the trailer starts here.
    pub fn signed_len(&self) -> u32 {
        self.field(field::SIGNED_LEN)
    }

    fn slice(&self, start: usize, len: usize) -> &[u8] {
        let bytes = self.bytes();
        start.checked_add(len).and_then(|end| bytes.get(start..end)).unwrap_or(&[])
    }

    /// The image: text, rodata and data.
    pub fn image(&self) -> &[u8] {
        self.slice(self.field(field::IMAGE_OFFSET) as usize, self.image_len() as usize)
    }

    /// The text section.
    pub fn text(&self) -> &[u8] {
        self.image().get(..self.text_len() as usize).unwrap_or(&[])
    }

    /// The rodata section.
    pub fn rodata(&self) -> &[u8] {
        let start = self.text_len() as usize;
        start.checked_add(self.rodata_len() as usize).and_then(|end| self.image().get(start..end)).unwrap_or(&[])
    }

    /// The data section.
    pub fn data(&self) -> &[u8] {
        let start = (self.text_len() as usize).saturating_add(self.rodata_len() as usize);
        self.image().get(start..).unwrap_or(&[])
    }

    /// The import table.
    pub fn imports(&self) -> Table<'_, Import> {
        let count = (self.field(field::IMPORT_COUNT) as usize).saturating_mul(IMPORT_LEN);
        Table::validated(self.slice(self.field(field::IMPORT_OFFSET) as usize, count))
    }

    /// The relocation list: image offsets of words that get the load base added.
    pub fn relocations(&self) -> Table<'_, u32> {
        let count = (self.field(field::RELOCATION_COUNT) as usize).saturating_mul(RELOCATION_LEN);
        Table::validated(self.slice(self.field(field::RELOCATION_OFFSET) as usize, count))
    }

    /// The bytes the signature covers: header, image and tables.
    pub fn signed_part(&self) -> &[u8] {
        self.slice(0, self.signed_len() as usize)
    }

    /// The signature trailer (empty for an unsigned blob); see [`crate::signature`].
    pub fn trailer(&self) -> &[u8] {
        self.bytes().get(self.signed_len() as usize..).unwrap_or(&[])
    }
}

/// Checks a list of image offsets of words: each whole word inside the image, 4-aligned,
/// strictly ascending. `errors` is (outside, misaligned, unsorted).
fn check_word_offsets(
    offsets: impl Iterator<Item = u32>,
    image_len: u32,
    [outside, misaligned, unsorted]: [BlobError; 3],
) -> Result<(), BlobError> {
    let mut previous: Option<u32> = None;
    for offset in offsets {
        match offset.checked_add(4) {
            Some(end) if end <= image_len => {}
            _ => return Err(outside),
        }
        if !offset.is_multiple_of(4) {
            return Err(misaligned);
        }
        if previous.is_some_and(|previous| previous >= offset) {
            return Err(unsorted);
        }
        previous = Some(offset);
    }
    Ok(())
}

/// A blob's contents in high-level form; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobRepr<'a> {
    /// The ABI the code was built against.
    pub abi_version: AbiVersion,
    /// The instruction set.
    pub arch: Arch,
    /// Header flags.
    pub flags: BlobFlags,
    /// Image offset of the entry point.
    pub entry: u32,
    /// The text section (start of the image).
    pub text: &'a [u8],
    /// The rodata section.
    pub rodata: &'a [u8],
    /// The data section.
    pub data: &'a [u8],
    /// Bytes of zeroed memory after the image.
    pub bss_len: u32,
    /// Alignment of the load address.
    pub align: u32,
    /// The import table (strictly ascending slots).
    pub imports: Table<'a, Import>,
    /// The relocation list (strictly ascending offsets).
    pub relocations: Table<'a, u32>,
    /// For an AOT blob, the SHA-256 of its source wasm module ([`BlobFlags::AOT`] is set on
    /// emit exactly when this is `Some`).
    pub wasm_source: Option<[u8; 32]>,
}

impl<'a> BlobRepr<'a> {
    /// Reads a checked blob.
    pub fn parse<T: AsRef<[u8]>>(blob: &'a Blob<T>) -> Result<Self, BlobError> {
        blob.check()?;
        Ok(BlobRepr {
            abi_version: blob.abi_version(),
            arch: blob.arch().ok_or(BlobError::UnknownArch)?,
            flags: blob.flags(),
            entry: blob.entry(),
            text: blob.text(),
            rodata: blob.rodata(),
            data: blob.data(),
            bss_len: blob.bss_len(),
            align: blob.align(),
            imports: blob.imports(),
            relocations: blob.relocations(),
            wasm_source: blob.wasm_source(),
        })
    }

    fn image_len(&self) -> Option<usize> {
        self.text.len().checked_add(self.rodata.len())?.checked_add(self.data.len())
    }

    /// Length of the signed part [`BlobRepr::emit`] writes: header, image (padded to 4), import
    /// table, relocation list. The caller appends the signature trailer after it.
    pub fn buffer_len(&self) -> usize {
        self.layout().map_or(usize::MAX, |layout| layout.signed_len)
    }

    fn layout(&self) -> Option<Layout> {
        let image_len = self.image_len()?;
        let import_offset = self.image_offset().checked_add(image_len)?.checked_add(3)? & !3;
        let relocation_offset = import_offset.checked_add(self.imports.len().checked_mul(IMPORT_LEN)?)?;
        let signed_len = relocation_offset.checked_add(self.relocations.len().checked_mul(RELOCATION_LEN)?)?;
        u32::try_from(signed_len).ok()?;
        Some(Layout { image_len, import_offset, relocation_offset, signed_len })
    }

    fn image_offset(&self) -> usize {
        if self.wasm_source.is_some() {
            HEADER_LEN + AOT_NOTE_LEN
        } else {
            HEADER_LEN
        }
    }

    fn flag_bits(&self) -> u32 {
        let bits = self.flags.bits() & !BlobFlags::AOT.bits();
        if self.wasm_source.is_some() {
            bits | BlobFlags::AOT.bits()
        } else {
            bits
        }
    }

    /// Writes the signed part in canonical layout into `buffer[..buffer_len()]`. Emitting does
    /// not validate the contents: run [`Blob::new_checked`] on the result to do so.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<(), BlobError> {
        let layout = self.layout().ok_or(BlobError::BufferTooSmall)?;
        let buffer = buffer.get_mut(..layout.signed_len).ok_or(BlobError::BufferTooSmall)?;
        buffer.fill(0);
        buffer[..4].copy_from_slice(&MAGIC);
        let header = [
            (field::FORMAT_VERSION, FORMAT_VERSION),
            (field::ABI_VERSION, self.abi_version.to_u32()),
            (field::ARCH, self.arch as u32),
            (field::FLAGS, self.flag_bits()),
            (field::ENTRY, self.entry),
            (field::TEXT_LEN, self.text.len() as u32),
            (field::RODATA_LEN, self.rodata.len() as u32),
            (field::DATA_LEN, self.data.len() as u32),
            (field::BSS_LEN, self.bss_len),
            (field::ALIGN, self.align),
            (field::IMAGE_OFFSET, self.image_offset() as u32),
            (field::IMAGE_LEN, layout.image_len as u32),
            (field::IMPORT_OFFSET, layout.import_offset as u32),
            (field::IMPORT_COUNT, self.imports.len() as u32),
            (field::RELOCATION_OFFSET, layout.relocation_offset as u32),
            (field::RELOCATION_COUNT, self.relocations.len() as u32),
            (field::SIGNED_LEN, layout.signed_len as u32),
        ];
        for (offset, value) in header {
            write_u32(buffer, offset, value);
        }
        if let Some(hash) = &self.wasm_source {
            buffer[HEADER_LEN..HEADER_LEN + AOT_NOTE_LEN].copy_from_slice(hash);
        }
        let mut at = self.image_offset();
        for section in [self.text, self.rodata, self.data] {
            buffer[at..at + section.len()].copy_from_slice(section);
            at += section.len();
        }
        let imports = &mut buffer[layout.import_offset..layout.import_offset + self.imports.len() * IMPORT_LEN];
        self.imports.encode(&mut Writer::new(imports)).ok_or(BlobError::BufferTooSmall)?;
        let relocations =
            &mut buffer[layout.relocation_offset..layout.relocation_offset + self.relocations.len() * RELOCATION_LEN];
        self.relocations.encode(&mut Writer::new(relocations)).ok_or(BlobError::BufferTooSmall)
    }
}

#[derive(Clone, Copy)]
struct Layout {
    image_len: usize,
    import_offset: usize,
    relocation_offset: usize,
    signed_len: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// text: `ldr r0, [pc, #0]` style words; data: slot for `output_write`, a pointer to rodata.
    const TEXT: [u8; 8] = [0x00, 0x00, 0xa0, 0xe3, 0x1e, 0xff, 0x2f, 0xe1];
    const RODATA: [u8; 4] = *b"jon\0";
    /// Word 0: import slot (zero), word 1: image-relative pointer to rodata (offset 8).
    const DATA: [u8; 9] = [0, 0, 0, 0, 8, 0, 0, 0, 0x55];
    const IMPORTS: [Import; 1] = [Import { slot: 12, syscall: SyscallId::OutputWrite }];
    const RELOCATIONS: [u32; 1] = [16];

    #[rustfmt::skip]
    const GOLDEN: [u8; 108] = [
        b'J', b'O', b'S', b'B',     // magic
        1, 0, 0, 0,                 // format version
        0, 0, 1, 0,                 // ABI 1.0
        1, 0, 0, 0,                 // armv6
        0, 0, 0, 0,                 // flags
        4, 0, 0, 0,                 // entry
        8, 0, 0, 0,                 // text
        4, 0, 0, 0,                 // rodata
        9, 0, 0, 0,                 // data
        32, 0, 0, 0,                // bss
        8, 0, 0, 0,                 // align
        72, 0, 0, 0,                // image offset
        21, 0, 0, 0,                // image length
        96, 0, 0, 0,                // import offset
        1, 0, 0, 0,                 // import count
        104, 0, 0, 0,               // relocation offset
        1, 0, 0, 0,                 // relocation count
        108, 0, 0, 0,               // signed length
        0x00, 0x00, 0xa0, 0xe3, 0x1e, 0xff, 0x2f, 0xe1, // text
        b'j', b'o', b'n', 0,                            // rodata
        0, 0, 0, 0, 8, 0, 0, 0, 0x55,                   // data
        0, 0, 0,                    // padding to a word
        12, 0, 0, 0, 3, 0, 0, 0,    // import: slot 12 <- output_write
        16, 0, 0, 0,                // relocation at 16
    ];

    fn repr() -> BlobRepr<'static> {
        BlobRepr {
            abi_version: AbiVersion::CURRENT,
            arch: Arch::Armv6,
            flags: BlobFlags::NONE,
            entry: 4,
            text: &TEXT,
            rodata: &RODATA,
            data: &DATA,
            bss_len: 32,
            align: 8,
            imports: Table::from_slice(&IMPORTS),
            relocations: Table::from_slice(&RELOCATIONS),
            wasm_source: None,
        }
    }

    fn with_field(offset: usize, value: u32) -> [u8; 108] {
        let mut bytes = GOLDEN;
        write_u32(&mut bytes, offset, value);
        bytes
    }

    #[test]
    fn deconstruct() {
        let blob = Blob::new_checked(&GOLDEN[..]).unwrap();
        assert_eq!(blob.format_version(), 1);
        assert_eq!(blob.abi_version(), AbiVersion::CURRENT);
        assert_eq!(blob.arch(), Some(Arch::Armv6));
        assert_eq!(blob.entry(), 4);
        assert_eq!(blob.text(), &TEXT);
        assert_eq!(blob.rodata(), &RODATA);
        assert_eq!(blob.data(), &DATA);
        assert_eq!(blob.image().len(), 21);
        assert_eq!(blob.bss_len(), 32);
        assert_eq!(blob.memory_len(), 53);
        assert_eq!(blob.align(), 8);
        assert_eq!(blob.imports().iter().collect::<Vec<_>>(), IMPORTS);
        assert_eq!(blob.relocations().iter().collect::<Vec<_>>(), RELOCATIONS);
        assert_eq!(blob.signed_part(), &GOLDEN[..]);
        assert_eq!(blob.trailer(), &[] as &[u8]);
    }

    #[test]
    fn construct() {
        let repr = repr();
        assert_eq!(repr.buffer_len(), GOLDEN.len());
        let mut buffer = [0xaa; 108];
        repr.emit(&mut buffer).unwrap();
        assert_eq!(buffer, GOLDEN);
        let mut short = [0; 107];
        assert_eq!(repr.emit(&mut short), Err(BlobError::BufferTooSmall));
    }

    #[test]
    fn parse_and_emit_round_trip() {
        let blob = Blob::new_checked(&GOLDEN[..]).unwrap();
        let parsed = BlobRepr::parse(&blob).unwrap();
        assert_eq!(parsed, repr());
        let mut buffer = vec![0; parsed.buffer_len()];
        parsed.emit(&mut buffer).unwrap();
        assert_eq!(buffer, GOLDEN);
    }

    #[test]
    fn trailer_is_kept_apart() {
        let mut bytes = GOLDEN.to_vec();
        bytes.extend_from_slice(b"trailer");
        let blob = Blob::new_checked(&bytes[..]).unwrap();
        assert_eq!(blob.signed_part(), &GOLDEN[..]);
        assert_eq!(blob.trailer(), b"trailer");
    }

    #[test]
    fn every_truncation_is_refused() {
        for len in 0..GOLDEN.len() {
            let error = Blob::new_checked(&GOLDEN[..len]).unwrap_err();
            let expected = if len < HEADER_LEN { BlobError::Truncated } else { BlobError::SignedLenOutOfBounds };
            assert_eq!(error, expected, "length {len}");
        }
    }

    #[test]
    fn header_fields_are_checked() {
        let cases: &[(usize, u32, BlobError)] = &[
            (field::MAGIC, u32::from_le_bytes(*b"JOSC"), BlobError::BadMagic),
            (field::FORMAT_VERSION, 2, BlobError::UnsupportedVersion),
            (field::ARCH, 0, BlobError::UnknownArch),
            (field::ARCH, 2, BlobError::UnknownArch),
            (field::FLAGS, 2, BlobError::UnknownFlags),
            (field::FLAGS, 0x8000_0000, BlobError::UnknownFlags),
            (field::ALIGN, 0, BlobError::BadAlignment),
            (field::ALIGN, 2, BlobError::BadAlignment),
            (field::ALIGN, 12, BlobError::BadAlignment),
            (field::ALIGN, MAX_ALIGN * 2, BlobError::BadAlignment),
            (field::TEXT_LEN, 9, BlobError::SectionSizes),
            (field::TEXT_LEN, u32::MAX, BlobError::SectionSizes),
            (field::DATA_LEN, u32::MAX - 10, BlobError::SectionSizes),
            (field::IMAGE_LEN, 22, BlobError::SectionSizes),
            (field::BSS_LEN, u32::MAX, BlobError::MemoryTooLarge),
            (field::BSS_LEN, MAX_MEMORY_LEN - 20, BlobError::MemoryTooLarge),
            (field::SIGNED_LEN, 71, BlobError::SignedLenOutOfBounds),
            (field::SIGNED_LEN, 109, BlobError::SignedLenOutOfBounds),
            (field::SIGNED_LEN, u32::MAX, BlobError::SignedLenOutOfBounds),
            (field::IMAGE_OFFSET, 0, BlobError::ImageOutOfBounds),
            (field::IMAGE_OFFSET, 71, BlobError::ImageOutOfBounds),
            (field::IMAGE_OFFSET, 88, BlobError::ImageOutOfBounds),
            (field::IMAGE_OFFSET, u32::MAX, BlobError::ImageOutOfBounds),
            (field::IMPORT_OFFSET, 97, BlobError::ImportTableOutOfBounds),
            (field::IMPORT_OFFSET, 104, BlobError::ImportTableOutOfBounds),
            (field::IMPORT_OFFSET, 0xffff_fffc, BlobError::ImportTableOutOfBounds),
            (field::IMPORT_COUNT, 2, BlobError::ImportTableOutOfBounds),
            (field::IMPORT_COUNT, u32::MAX, BlobError::ImportTableOutOfBounds),
            (field::RELOCATION_OFFSET, 102, BlobError::RelocationTableOutOfBounds),
            (field::RELOCATION_OFFSET, 108, BlobError::RelocationTableOutOfBounds),
            (field::RELOCATION_COUNT, 2, BlobError::RelocationTableOutOfBounds),
            (field::RELOCATION_COUNT, u32::MAX, BlobError::RelocationTableOutOfBounds),
            (field::IMPORT_OFFSET, 88, BlobError::Overlap),
            (field::IMPORT_OFFSET, 100, BlobError::Overlap),
            (field::RELOCATION_OFFSET, 100, BlobError::Overlap),
            (field::RELOCATION_OFFSET, 88, BlobError::Overlap),
            (field::ENTRY, 8, BlobError::EntryOutsideText),
            (field::ENTRY, u32::MAX, BlobError::EntryOutsideText),
            (field::ENTRY, 2, BlobError::MisalignedEntry),
        ];
        for &(offset, value, expected) in cases {
            let bytes = with_field(offset, value);
            assert_eq!(Blob::new_checked(&bytes[..]), Err(expected), "field {offset} = {value:#x}");
        }
    }

    #[test]
    fn table_entries_are_checked() {
        let cases: &[(usize, u32, BlobError)] = &[
            (96, 20, BlobError::ImportSlotOutside),
            (96, 18, BlobError::ImportSlotOutside),
            (96, u32::MAX, BlobError::ImportSlotOutside),
            (96, 6, BlobError::ImportSlotMisaligned),
            (100, 0, BlobError::UnknownSyscall),
            (100, 9, BlobError::UnknownSyscall),
            (100, u32::MAX, BlobError::UnknownSyscall),
            (104, 20, BlobError::RelocationOutside),
            (104, 0xffff_fffe, BlobError::RelocationOutside),
            (104, 10, BlobError::RelocationMisaligned),
            (104, 12, BlobError::RelocatedImportSlot),
            // The relocated word (image offset 16) itself: 53 is the end of memory, 54 past it.
            (72 + 16, 54, BlobError::RelocationTargetOutside),
            (72 + 16, u32::MAX, BlobError::RelocationTargetOutside),
        ];
        for &(offset, value, expected) in cases {
            let bytes = with_field(offset, value);
            assert_eq!(Blob::new_checked(&bytes[..]), Err(expected), "word {offset} = {value:#x}");
        }
        assert!(Blob::new_checked(&with_field(72 + 16, 53)[..]).is_ok(), "end pointer is allowed");
    }

    #[test]
    fn duplicate_and_unsorted_tables_are_refused() {
        let imports =
            [Import { slot: 12, syscall: SyscallId::OutputWrite }, Import { slot: 12, syscall: SyscallId::Log }];
        let bad = BlobRepr { imports: Table::from_slice(&imports), ..self::repr() };
        let mut buffer = vec![0; bad.buffer_len()];
        bad.emit(&mut buffer).unwrap();
        assert_eq!(Blob::new_checked(&buffer[..]), Err(BlobError::ImportsUnsorted));

        let relocations = [16, 8];
        let repr = BlobRepr { relocations: Table::from_slice(&relocations), ..self::repr() };
        let mut buffer = vec![0; repr.buffer_len()];
        repr.emit(&mut buffer).unwrap();
        assert_eq!(Blob::new_checked(&buffer[..]), Err(BlobError::RelocationsUnsorted));
    }

    #[test]
    fn empty_tables_and_reordered_layout_are_fine() {
        let repr = BlobRepr { imports: Table::from_slice(&[]), relocations: Table::from_slice(&[]), ..self::repr() };
        let mut buffer = vec![0; repr.buffer_len()];
        repr.emit(&mut buffer).unwrap();
        let blob = Blob::new_checked(&buffer[..]).unwrap();
        assert!(blob.imports().is_empty() && blob.relocations().is_empty());

        // Tables before the image: allowed as long as nothing overlaps.
        let mut bytes = vec![0u8; 108];
        bytes[..HEADER_LEN].copy_from_slice(&GOLDEN[..HEADER_LEN]);
        bytes[72..80].copy_from_slice(&GOLDEN[96..104]);
        bytes[80..84].copy_from_slice(&GOLDEN[104..108]);
        bytes[84..105].copy_from_slice(&GOLDEN[72..93]);
        for (offset, value) in [(field::IMPORT_OFFSET, 72), (field::RELOCATION_OFFSET, 80), (field::IMAGE_OFFSET, 84)] {
            write_u32(&mut bytes, offset, value);
        }
        let blob = Blob::new_checked(&bytes[..]).unwrap();
        assert_eq!(BlobRepr::parse(&blob).unwrap(), super::tests::repr());
    }

    #[test]
    fn aot_blob_carries_its_source_hash() {
        let hash = [0x5a; 32];
        let repr = BlobRepr { wasm_source: Some(hash), ..self::repr() };
        let mut buffer = vec![0; repr.buffer_len()];
        assert_eq!(buffer.len(), GOLDEN.len() + AOT_NOTE_LEN);
        repr.emit(&mut buffer).unwrap();
        assert_eq!(read_u32(&buffer, field::FLAGS), Some(BlobFlags::AOT.bits()));
        assert_eq!(&buffer[HEADER_LEN..HEADER_LEN + AOT_NOTE_LEN], &hash);
        assert_eq!(read_u32(&buffer, field::IMAGE_OFFSET), Some((HEADER_LEN + AOT_NOTE_LEN) as u32));
        let blob = Blob::new_checked(&buffer[..]).unwrap();
        assert_eq!(blob.wasm_source(), Some(hash));
        assert_eq!(blob.image(), &GOLDEN[72..93]);
        assert_eq!(BlobRepr::parse(&blob).unwrap(), BlobRepr { flags: BlobFlags::AOT, ..repr });
        assert_eq!(Blob::new_checked(&GOLDEN[..]).unwrap().wasm_source(), None);

        // The flag on a blob without room for the note, or whose image starts inside it.
        let mut short = GOLDEN;
        write_u32(&mut short, field::FLAGS, 1);
        write_u32(&mut short, field::SIGNED_LEN, 100);
        assert_eq!(Blob::new_checked(&short[..]), Err(BlobError::AotNoteOutOfBounds));
        assert_eq!(Blob::new_checked(&with_field(field::FLAGS, 1)[..]), Err(BlobError::ImageOutOfBounds));
        let mut inside = buffer.clone();
        write_u32(&mut inside, field::IMAGE_OFFSET, (HEADER_LEN + 4) as u32);
        assert_eq!(Blob::new_checked(&inside[..]), Err(BlobError::ImageOutOfBounds));
        // Every truncation of the AOT blob is refused.
        for len in 0..buffer.len() {
            assert!(Blob::new_checked(&buffer[..len]).is_err(), "length {len}");
        }
    }

    #[test]
    fn unchecked_accessors_never_panic() {
        let junk = [0xffu8; 80];
        let blob = Blob::new_unchecked(&junk[..]);
        assert!(blob.check().is_err());
        let _ = (blob.image(), blob.text(), blob.rodata(), blob.data(), blob.signed_part(), blob.trailer());
        assert_eq!(blob.imports().iter().count(), 0);
        assert_eq!(blob.relocations().iter().count(), 0);
        let empty = Blob::new_unchecked(&[][..]);
        assert_eq!(empty.entry(), 0);
        assert_eq!(empty.image(), &[] as &[u8]);
    }

    #[test]
    fn error_codes() {
        assert_eq!(BlobError::UnknownSyscall.code(), ErrorCode::AbiMismatch);
        assert_eq!(BlobError::Overlap.code(), ErrorCode::Malformed);
        assert_eq!(BlobError::MemoryTooLarge.code(), ErrorCode::LimitExceeded);
        assert!(!BlobError::Truncated.message().is_empty());
    }
}
