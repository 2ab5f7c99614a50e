//! ELF (linked with `jos-native.ld`) to native jos blob.
//!
//! The linker script puts the image at address 0: text, rodata, then data (`.data.rel.ro`,
//! `.got`, `.jos_imports`, `.data`), then `.bss`; it defines the symbols [`SYMBOLS`] read here.
//! - every word of `.jos_imports` is an import slot whose initial value is a syscall id;
//! - every entry of `.rel.dyn` becomes a relocation: `R_ARM_RELATIVE` as is, `R_ARM_ABS32`,
//!   `R_ARM_GLOB_DAT` and `R_ARM_JUMP_SLOT` against a symbol defined in the image by writing the
//!   symbol's image offset (plus the addend in place) and relocating the word;
//! - anything a blob cannot express is a [`ConvertError`] naming the section, symbol or
//!   relocation: undefined symbols, other relocation types, `RELA` sections, TLS, writable code,
//!   constructors, allocated sections outside the image, an unknown syscall id in a slot.

use std::collections::BTreeMap;
use std::fmt;

use jos_abi::blob::{Arch, BlobFlags, BlobRepr, Import, Table, MAX_ALIGN};
use jos_abi::syscall::{AbiVersion, SyscallId};
use object::elf::{self, FileHeader32};
use object::read::elf::{FileHeader, Rel, SectionHeader, Sym};
use object::LittleEndian;

use super::SizeReport;

/// Symbols the converter needs from the linker script.
pub const SYMBOLS: [&str; 8] = [
    "_start",
    "__jos_rodata_start",
    "__jos_data_start",
    "__jos_image_end",
    "__jos_bss_start",
    "__jos_bss_end",
    "__jos_imports_start",
    "__jos_imports_end",
];

/// Sections the linker writes for `-pie` that are build metadata, not part of the image.
const METADATA_SECTIONS: [&str; 6] = [".rel.dyn", ".dynamic", ".dynsym", ".dynstr", ".hash", ".gnu.hash"];

/// Sections of constructors and destructors, which the loader does not run.
const CONSTRUCTOR_SECTIONS: [&str; 5] = [".init_array", ".fini_array", ".preinit_array", ".ctors", ".dtors"];

/// Why an ELF cannot become a blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConvertError {
    /// Not a 32-bit little-endian ARM ELF.
    NotArmElf(String),
    /// A symbol of the linker script is missing: not linked with `jos-native.ld`.
    MissingSymbol(&'static str),
    /// The layout symbols are not in order.
    BadLayout(String),
    /// A section with thread-local storage.
    ThreadLocal(String),
    /// A section that is both writable and executable.
    WritableCode(String),
    /// Constructors or destructors, which the loader does not run.
    Constructors(String),
    /// An allocated section outside the image and bss.
    SectionOutsideImage {
        /// Section name.
        section: String,
        /// Its address.
        address: u32,
    },
    /// A relocation type the blob cannot express.
    UnsupportedRelocation {
        /// The ELF relocation type.
        kind: u32,
        /// Image offset of the relocated word.
        offset: u32,
        /// The symbol, if any.
        symbol: String,
    },
    /// A relocation with an explicit addend (`SHT_RELA`), which ARM linkers do not write.
    RelaSection(String),
    /// A reference to a symbol that nothing defines.
    UndefinedSymbol(String),
    /// A relocation outside the image, or not word aligned.
    RelocationOutside(u32),
    /// An import slot that holds no syscall id of this ABI.
    UnknownSyscall {
        /// Image offset of the slot.
        slot: u32,
        /// The value in it.
        id: u32,
        /// The symbol of the slot.
        symbol: String,
    },
    /// The blob encoder refused the result.
    Blob(jos_abi::blob::BlobError),
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConvertError::NotArmElf(why) => write!(f, "not a 32-bit little-endian ARM ELF ({why})"),
            ConvertError::MissingSymbol(name) => {
                write!(f, "symbol `{name}` is missing: link with the SDK's jos-native.ld and crt0.S")
            }
            ConvertError::BadLayout(why) => write!(f, "the image layout is broken: {why}"),
            ConvertError::ThreadLocal(section) => {
                write!(f, "section `{section}` holds thread-local storage, which native blobs do not support")
            }
            ConvertError::WritableCode(section) => write!(f, "section `{section}` is both writable and executable"),
            ConvertError::Constructors(section) => write!(
                f,
                "section `{section}` holds constructors or destructors, which the loader does not run \
                 (initialise in run() instead)"
            ),
            ConvertError::SectionOutsideImage { section, address } => {
                write!(f, "section `{section}` (address {address:#x}) is outside the image that jos-native.ld lays out")
            }
            ConvertError::UnsupportedRelocation { kind, offset, symbol } => write!(
                f,
                "relocation type {kind} at image offset {offset:#x}{} cannot be expressed in a blob \
                 (only word-sized absolute addresses are): build with -fPIE",
                if symbol.is_empty() { String::new() } else { format!(" against `{symbol}`") }
            ),
            ConvertError::RelaSection(section) => {
                write!(f, "relocation section `{section}` has explicit addends (RELA)")
            }
            ConvertError::UndefinedSymbol(symbol) => write!(
                f,
                "undefined symbol `{symbol}`: native blobs call only jos system calls (through jos.h / \
                 jos-guest) and cannot link to anything else"
            ),
            ConvertError::RelocationOutside(offset) => {
                write!(f, "relocation at {offset:#x} is outside the image or not word aligned")
            }
            ConvertError::UnknownSyscall { slot, id, symbol } => write!(
                f,
                "import slot `{symbol}` at image offset {slot:#x} holds {id}, which is no jos system call id (ABI {})",
                AbiVersion::CURRENT
            ),
            ConvertError::Blob(error) => write!(f, "the blob encoder refused it: {error}"),
        }
    }
}

impl std::error::Error for ConvertError {}

fn malformed(error: object::read::Error) -> ConvertError {
    ConvertError::NotArmElf(error.to_string())
}

/// A symbol of the static table: name, value, and whether it is defined.
struct Symbol {
    name: String,
    value: u32,
    defined: bool,
}

/// Converts a linked ELF into an unsigned blob; returns the blob bytes and a size report.
pub fn convert(data: &[u8]) -> Result<(Vec<u8>, SizeReport), ConvertError> {
    let endian = LittleEndian;
    let header = FileHeader32::<LittleEndian>::parse(data).map_err(malformed)?;
    if !header.is_little_endian() || header.e_machine(endian) != elf::EM_ARM {
        return Err(ConvertError::NotArmElf(format!("machine {}", header.e_machine(endian))));
    }
    let sections = header.sections(endian, data).map_err(malformed)?;

    // Static symbols: the layout symbols and names for messages.
    let symbol_table = sections.symbols(endian, data, elf::SHT_SYMTAB).map_err(malformed)?;
    let mut by_name = BTreeMap::new();
    let mut names_by_address = BTreeMap::new();
    for symbol in symbol_table.iter() {
        let name = String::from_utf8_lossy(symbol.name(endian, symbol_table.strings()).unwrap_or(b"")).into_owned();
        if name.is_empty() || name.starts_with('$') {
            continue;
        }
        let defined = symbol.st_shndx(endian) != elf::SHN_UNDEF;
        if !defined && symbol.st_bind() == elf::STB_GLOBAL {
            return Err(ConvertError::UndefinedSymbol(name));
        }
        if defined && symbol.st_type() == elf::STT_OBJECT {
            names_by_address.insert(symbol.st_value(endian), name.clone());
        }
        by_name.insert(name, symbol.st_value(endian));
    }
    let symbol = |name: &'static str| by_name.get(name).copied().ok_or(ConvertError::MissingSymbol(name));
    let [entry, rodata_start, data_start, image_end, bss_start, bss_end, imports_start, imports_end] =
        [0, 1, 2, 3, 4, 5, 6, 7].map(|index| symbol(SYMBOLS[index]));
    let (entry, rodata_start, data_start, image_end) = (entry?, rodata_start?, data_start?, image_end?);
    let (bss_start, bss_end, imports_start, imports_end) = (bss_start?, bss_end?, imports_start?, imports_end?);
    let ordered = rodata_start <= data_start
        && data_start <= imports_start
        && imports_start <= imports_end
        && imports_end <= image_end
        && image_end <= bss_start
        && bss_start <= bss_end;
    if !ordered || image_end % 4 != 0 || rodata_start % 4 != 0 || data_start % 4 != 0 {
        return Err(ConvertError::BadLayout(format!(
            "rodata {rodata_start:#x}, data {data_start:#x}, imports {imports_start:#x}..{imports_end:#x}, \
             image end {image_end:#x}, bss {bss_start:#x}..{bss_end:#x}"
        )));
    }

    // The image: every allocated section copied to its address.
    let mut image = vec![0u8; image_end as usize];
    // The load address must honour the strictest section alignment (at least 8: doublewords).
    let mut align = 8u32;
    for section in sections.iter() {
        let name = String::from_utf8_lossy(sections.section_name(endian, section).unwrap_or(b"?")).into_owned();
        let flags = section.sh_flags(endian);
        let kind = section.sh_type(endian);
        if kind == elf::SHT_RELA {
            return Err(ConvertError::RelaSection(name));
        }
        if flags.0 & elf::SHF_ALLOC.0 == 0 {
            continue;
        }
        if flags.0 & elf::SHF_TLS.0 != 0 {
            return Err(ConvertError::ThreadLocal(name));
        }
        if flags.0 & elf::SHF_WRITE.0 != 0 && flags.0 & elf::SHF_EXECINSTR.0 != 0 {
            return Err(ConvertError::WritableCode(name));
        }
        let constructors = matches!(kind, elf::SHT_INIT_ARRAY | elf::SHT_FINI_ARRAY | elf::SHT_PREINIT_ARRAY)
            || CONSTRUCTOR_SECTIONS.contains(&name.as_str());
        if constructors && section.sh_size(endian) > 0 {
            return Err(ConvertError::Constructors(name));
        }
        let address = section.sh_addr(endian);
        let size = section.sh_size(endian);
        let end = address
            .checked_add(size)
            .ok_or_else(|| ConvertError::SectionOutsideImage { section: name.clone(), address })?;
        if METADATA_SECTIONS.contains(&name.as_str()) {
            if address < bss_end && size > 0 {
                return Err(ConvertError::SectionOutsideImage { section: name, address });
            }
            continue;
        }
        if size == 0 {
            continue;
        }
        align = align.max(section.sh_addralign(endian).next_power_of_two());
        if align > MAX_ALIGN {
            return Err(ConvertError::BadLayout(format!("section `{name}` asks for {align}-byte alignment")));
        }
        if kind == elf::SHT_NOBITS {
            if address < bss_start || end > bss_end {
                return Err(ConvertError::SectionOutsideImage { section: name, address });
            }
            continue;
        }
        if end > image_end {
            return Err(ConvertError::SectionOutsideImage { section: name, address });
        }
        let bytes = section.data(endian, data).map_err(malformed)?;
        image[address as usize..end as usize].copy_from_slice(bytes);
    }
    if entry >= rodata_start || entry % 4 != 0 {
        return Err(ConvertError::BadLayout(format!("entry `_start` at {entry:#x} is not ARM code in text")));
    }

    // Relocations from the dynamic relocation sections.
    let dynamic_symbols = sections.symbols(endian, data, elf::SHT_DYNSYM).map_err(malformed)?;
    let dynamic_symbol = |index: object::SymbolIndex| -> Option<Symbol> {
        let symbol = dynamic_symbols.symbol(index).ok()?;
        let name = String::from_utf8_lossy(symbol.name(endian, dynamic_symbols.strings()).unwrap_or(b"")).into_owned();
        Some(Symbol { name, value: symbol.st_value(endian), defined: symbol.st_shndx(endian) != elf::SHN_UNDEF })
    };
    let mut relocations = Vec::new();
    for section in sections.iter() {
        let Some((entries, _)) = section.rel(endian, data).map_err(malformed)? else { continue };
        for entry in entries {
            let offset = entry.r_offset(endian);
            let kind = entry.r_type(endian);
            let symbol = entry.symbol(endian).and_then(&dynamic_symbol);
            if offset % 4 != 0 || offset.checked_add(4).is_none_or(|end| end > image_end) {
                return Err(ConvertError::RelocationOutside(offset));
            }
            let word = &mut image[offset as usize..offset as usize + 4];
            match kind {
                elf::R_ARM_RELATIVE => {}
                elf::R_ARM_ABS32 | elf::R_ARM_GLOB_DAT | elf::R_ARM_JUMP_SLOT => {
                    let Some(symbol) = symbol.filter(|symbol| symbol.defined) else {
                        let name = entry.symbol(endian).and_then(&dynamic_symbol).map(|s| s.name).unwrap_or_default();
                        return Err(ConvertError::UndefinedSymbol(name));
                    };
                    let addend = if kind == elf::R_ARM_ABS32 {
                        u32::from_le_bytes([word[0], word[1], word[2], word[3]])
                    } else {
                        0
                    };
                    word.copy_from_slice(&symbol.value.wrapping_add(addend).to_le_bytes());
                }
                _ => {
                    return Err(ConvertError::UnsupportedRelocation {
                        kind: kind.0,
                        offset,
                        symbol: symbol.map(|symbol| symbol.name).unwrap_or_default(),
                    })
                }
            }
            relocations.push(offset);
        }
    }
    relocations.sort_unstable();
    relocations.dedup();

    // Import slots: each word of .jos_imports holds the id of its call.
    let mut imports = Vec::new();
    for slot in (imports_start..imports_end).step_by(4) {
        let bytes = &image[slot as usize..slot as usize + 4];
        let id = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let syscall = SyscallId::try_from(id).map_err(|id| ConvertError::UnknownSyscall {
            slot,
            id,
            symbol: names_by_address.get(&slot).cloned().unwrap_or_else(|| "?".into()),
        })?;
        imports.push(Import { slot, syscall });
    }

    let repr = BlobRepr {
        abi_version: AbiVersion::CURRENT,
        arch: Arch::Armv6,
        flags: BlobFlags::NONE,
        entry,
        text: &image[..rodata_start as usize],
        rodata: &image[rodata_start as usize..data_start as usize],
        data: &image[data_start as usize..],
        bss_len: bss_end - image_end,
        align,
        imports: Table::from_slice(&imports),
        relocations: Table::from_slice(&relocations),
        wasm_source: None,
    };
    let mut blob = vec![0u8; repr.buffer_len()];
    repr.emit(&mut blob).map_err(ConvertError::Blob)?;
    // Check what we wrote the way a device will.
    jos_abi::blob::Blob::new_checked(&blob[..]).map_err(ConvertError::Blob)?;

    let mut names: Vec<&'static str> = imports.iter().map(|import| import.syscall.syscall().name).collect();
    names.sort_unstable();
    names.dedup();
    let report = SizeReport {
        compiled: data.len() as u64,
        total: blob.len() as u64,
        code: u64::from(rodata_start),
        data: u64::from(image_end - rodata_start),
        bss: u64::from(bss_end - image_end),
        custom: 0,
        imports: names,
        relocations: relocations.len() as u64,
        memory_max_pages: None,
    };
    Ok((blob, report))
}
