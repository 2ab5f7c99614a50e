//! The wasm pass after compiling: ABI checks, custom sections, memory cap, `jos.abi` section.
//!
//! - every import must be a function from module `"jos"` named in the syscall table, with the
//!   table's exact signature ([`AbiError`] names the first one that is not);
//! - the module must export `run: () -> i32` (the entry convention);
//! - every custom section is removed (names, producers, DWARF, target features), except `name`
//!   with `--keep-names`; signing comes after the build and puts its `signature` section first;
//! - the memory maximum is set to at most the cap; a module whose initial memory is larger than
//!   the cap is refused;
//! - a custom section `jos.abi` is appended: the ABI version as a little-endian u32
//!   (`AbiVersion::to_u32`, major << 16 | minor).

use std::fmt;

use jos_abi::syscall::{self, AbiVersion, ValueType, WASM_IMPORT_MODULE};
use walrus::{ExportItem, ImportKind, ModuleConfig, RawCustomSection, ValType};

use super::SizeReport;

/// Name of the custom section that records the ABI version.
pub const ABI_SECTION: &str = "jos.abi";

/// The exported entry point.
pub const ENTRY_EXPORT: &str = "run";

/// Choices for [`finish`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// The memory maximum is capped to this many 64 KiB pages.
    pub max_memory_pages: u64,
    /// Keep the `name` section.
    pub keep_names: bool,
}

/// How a module breaks the ABI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AbiError {
    /// Not a valid WebAssembly module.
    Invalid(String),
    /// An import from a module other than `"jos"`.
    ForeignImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
    },
    /// An import from `"jos"` that the syscall table does not have.
    UnknownSyscall {
        /// Import name.
        name: String,
    },
    /// A memory, table, global or tag import: jos only provides functions.
    NonFunctionImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
    },
    /// A system call imported with the wrong signature.
    WrongSignature {
        /// Import name.
        name: String,
        /// The table's signature.
        expected: String,
        /// The module's.
        found: String,
    },
    /// No exported `run` function.
    NoEntry,
    /// `run` has the wrong type.
    WrongEntrySignature {
        /// The module's.
        found: String,
    },
    /// The module asks for more initial memory than the cap.
    MemoryTooLarge {
        /// Pages the module asks for at start.
        initial: u64,
        /// The cap.
        cap: u64,
    },
    /// More than one memory.
    SeveralMemories,
}

impl fmt::Display for AbiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AbiError::Invalid(why) => write!(f, "not a valid wasm module: {why}"),
            AbiError::ForeignImport { module, name } => write!(
                f,
                "import `{module}.{name}` is not from module \"{WASM_IMPORT_MODULE}\": jos modules may only import \
                 jos system calls (an undefined C function or a missing library becomes such an import)"
            ),
            AbiError::UnknownSyscall { name } => write!(
                f,
                "import `{WASM_IMPORT_MODULE}.{name}` is not a jos system call (ABI {}); known calls: {}",
                AbiVersion::CURRENT,
                known_calls()
            ),
            AbiError::NonFunctionImport { module, name } => {
                write!(f, "import `{module}.{name}` is not a function: jos modules define their own memory")
            }
            AbiError::WrongSignature { name, expected, found } => write!(
                f,
                "import `{WASM_IMPORT_MODULE}.{name}` has type {found}, but the system call is {expected}"
            ),
            AbiError::NoEntry => write!(f, "the module does not export `{ENTRY_EXPORT}`: define `int run(void)` (C) or use `jos_guest::entry!` (Rust)"),
            AbiError::WrongEntrySignature { found } => {
                write!(f, "export `{ENTRY_EXPORT}` has type {found}, but the entry point must be () -> i32")
            }
            AbiError::MemoryTooLarge { initial, cap } => write!(
                f,
                "the module needs {initial} pages of memory at start, more than the cap of {cap} pages \
                 (raise --max-memory-pages or use less static memory)"
            ),
            AbiError::SeveralMemories => write!(f, "the module defines more than one memory"),
        }
    }
}

impl std::error::Error for AbiError {}

fn known_calls() -> String {
    syscall::SYSCALLS.iter().map(|call| call.name).collect::<Vec<_>>().join(", ")
}

fn format_signature(params: &[ValType], results: &[ValType]) -> String {
    let list = |types: &[ValType]| types.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
    format!("({}) -> ({})", list(params), list(results))
}

fn value_type(value: ValueType) -> ValType {
    match value {
        ValueType::I32 => ValType::I32,
        ValueType::I64 => ValType::I64,
    }
}

/// Checks and trims a compiled module; returns the final bytes and the size report.
pub fn finish(module_bytes: &[u8], options: &Options) -> Result<(Vec<u8>, SizeReport), AbiError> {
    let mut config = ModuleConfig::new();
    config.generate_producers_section(false).generate_dwarf(false).generate_name_section(options.keep_names);
    let mut module = config.parse(module_bytes).map_err(|error| AbiError::Invalid(format!("{error:#}")))?;

    let mut imports = Vec::new();
    for import in module.imports.iter() {
        let function = match import.kind {
            ImportKind::Function(function) => function,
            _ => return Err(AbiError::NonFunctionImport { module: import.module.clone(), name: import.name.clone() }),
        };
        if import.module != WASM_IMPORT_MODULE {
            return Err(AbiError::ForeignImport { module: import.module.clone(), name: import.name.clone() });
        }
        let call =
            syscall::by_name(&import.name).ok_or_else(|| AbiError::UnknownSyscall { name: import.name.clone() })?;
        let ty = module.types.get(module.funcs.get(function).ty());
        let expected_params: Vec<ValType> = call.signature.params.iter().copied().map(value_type).collect();
        let expected_results: Vec<ValType> = call.signature.results.iter().copied().map(value_type).collect();
        if ty.params() != expected_params || ty.results() != expected_results {
            return Err(AbiError::WrongSignature {
                name: import.name.clone(),
                expected: format_signature(&expected_params, &expected_results),
                found: format_signature(ty.params(), ty.results()),
            });
        }
        imports.push(call.name);
    }
    imports.sort_unstable();

    let entry = module.exports.iter().find(|export| export.name == ENTRY_EXPORT).ok_or(AbiError::NoEntry)?;
    match entry.item {
        ExportItem::Function(function) => {
            let ty = module.types.get(module.funcs.get(function).ty());
            if !ty.params().is_empty() || ty.results() != [ValType::I32] {
                return Err(AbiError::WrongEntrySignature { found: format_signature(ty.params(), ty.results()) });
            }
        }
        _ => return Err(AbiError::WrongEntrySignature { found: "not a function".into() }),
    }

    if module.memories.len() > 1 {
        return Err(AbiError::SeveralMemories);
    }
    let mut memory_max_pages = None;
    for memory in module.memories.iter_mut() {
        if memory.initial > options.max_memory_pages {
            return Err(AbiError::MemoryTooLarge { initial: memory.initial, cap: options.max_memory_pages });
        }
        let maximum = memory.maximum.map_or(options.max_memory_pages, |max| max.min(options.max_memory_pages));
        memory.maximum = Some(maximum);
        memory_max_pages = Some(maximum);
    }

    let custom_ids: Vec<_> = module.customs.iter().map(|(id, _)| id).collect();
    for id in custom_ids {
        module.customs.delete(id);
    }
    module
        .customs
        .add(RawCustomSection { name: ABI_SECTION.into(), data: AbiVersion::CURRENT.to_u32().to_le_bytes().to_vec() });

    let bytes = module.emit_wasm();
    let mut report = measure(&bytes).map_err(AbiError::Invalid)?;
    report.compiled = module_bytes.len() as u64;
    report.imports = imports;
    report.memory_max_pages = memory_max_pages;
    Ok((bytes, report))
}

/// Section sizes of a module.
fn measure(bytes: &[u8]) -> Result<SizeReport, String> {
    let mut report = SizeReport { total: bytes.len() as u64, ..SizeReport::default() };
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload.map_err(|error| error.to_string())? {
            wasmparser::Payload::CodeSectionStart { size, .. } => report.code += u64::from(size),
            wasmparser::Payload::DataSection(reader) => report.data += reader.range().len() as u64,
            wasmparser::Payload::CustomSection(reader) => report.custom += reader.data().len() as u64,
            _ => {}
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use walrus::{FunctionBuilder, Module, ModuleConfig, RawCustomSection, ValType};

    use super::*;

    const OPTIONS: Options = Options { max_memory_pages: 16, keep_names: false };

    /// A module with memory (`initial`, `maximum` pages), an exported `run` of the given type,
    /// a custom section, and whatever `add` puts in.
    fn module(
        initial: u64,
        maximum: Option<u64>,
        run: (&[ValType], &[ValType]),
        add: impl FnOnce(&mut Module),
    ) -> Vec<u8> {
        let mut module = Module::with_config(ModuleConfig::new());
        let memory = module.memories.add_local(false, false, initial, maximum, None);
        module.exports.add("memory", memory);
        let mut builder = FunctionBuilder::new(&mut module.types, run.0, run.1);
        if run.1 == [ValType::I32] {
            builder.func_body().i32_const(0);
        }
        let function = builder.finish(vec![], &mut module.funcs);
        module.exports.add(ENTRY_EXPORT, function);
        module.customs.add(RawCustomSection { name: "target_features".into(), data: vec![1, 2, 3] });
        add(&mut module);
        module.emit_wasm()
    }

    fn custom_sections(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        wasmparser::Parser::new(0)
            .parse_all(bytes)
            .filter_map(|payload| match payload.unwrap() {
                wasmparser::Payload::CustomSection(reader) => Some((reader.name().to_string(), reader.data().to_vec())),
                _ => None,
            })
            .collect()
    }

    fn memory_limits(bytes: &[u8]) -> (u64, Option<u64>) {
        let module = Module::from_buffer(bytes).unwrap();
        let memory = module.memories.iter().next().unwrap();
        (memory.initial, memory.maximum)
    }

    #[test]
    fn a_good_module_is_capped_stripped_and_stamped() {
        let input = module(2, None, (&[], &[ValType::I32]), |module| {
            let ty = module.types.add(&[ValType::I32, ValType::I32], &[ValType::I32]);
            let (function, _) = module.add_import_func("jos", "output_write", ty);
            // Keep the import alive: call it from a second export.
            let mut builder = FunctionBuilder::new(&mut module.types, &[], &[ValType::I32]);
            builder.func_body().i32_const(0).i32_const(0).call(function);
            let caller = builder.finish(vec![], &mut module.funcs);
            module.exports.add("write_nothing", caller);
        });
        let (bytes, report) = finish(&input, &OPTIONS).unwrap();
        assert_eq!(custom_sections(&bytes), [(ABI_SECTION.to_string(), vec![0, 0, 1, 0])]);
        assert_eq!(memory_limits(&bytes), (2, Some(16)));
        assert_eq!(report.imports, ["output_write"]);
        assert_eq!(report.memory_max_pages, Some(16));
        assert_eq!(report.total, bytes.len() as u64);
        assert!(report.code > 0 && report.compiled == input.len() as u64);

        // A smaller maximum is kept.
        let (bytes, _) = finish(&module(1, Some(4), (&[], &[ValType::I32]), |_| {}), &OPTIONS).unwrap();
        assert_eq!(memory_limits(&bytes), (1, Some(4)));
    }

    #[test]
    fn imports_are_checked_by_module_name_and_signature() {
        let with_import = |module_name: &'static str, name: &'static str, params: &'static [ValType]| {
            module(1, None, (&[], &[ValType::I32]), move |module| {
                let ty = module.types.add(params, &[ValType::I32]);
                module.add_import_func(module_name, name, ty);
            })
        };
        assert_eq!(
            finish(&with_import("env", "puts", &[ValType::I32]), &OPTIONS).unwrap_err(),
            AbiError::ForeignImport { module: "env".into(), name: "puts".into() }
        );
        assert_eq!(
            finish(&with_import("jos", "fork", &[]), &OPTIONS).unwrap_err(),
            AbiError::UnknownSyscall { name: "fork".into() }
        );
        let error = finish(&with_import("jos", "log", &[ValType::I32]), &OPTIONS).unwrap_err();
        assert_eq!(
            error.to_string(),
            "import `jos.log` has type (i32) -> (i32), but the system call is (i32, i32, i32) -> (i32)"
        );
        let memory_import = module(1, None, (&[], &[ValType::I32]), |module| {
            module.add_import_memory("jos", "memory", false, false, 1, None, None);
        });
        assert_eq!(
            finish(&memory_import, &OPTIONS).unwrap_err(),
            AbiError::NonFunctionImport { module: "jos".into(), name: "memory".into() }
        );
    }

    #[test]
    fn entry_and_memory_are_checked() {
        let no_result = module(1, None, (&[], &[]), |_| {});
        assert!(matches!(finish(&no_result, &OPTIONS), Err(AbiError::WrongEntrySignature { .. })));
        let with_parameter = module(1, None, (&[ValType::I32], &[ValType::I32]), |_| {});
        assert!(matches!(finish(&with_parameter, &OPTIONS), Err(AbiError::WrongEntrySignature { .. })));
        let too_big = module(17, None, (&[], &[ValType::I32]), |_| {});
        assert_eq!(finish(&too_big, &OPTIONS).unwrap_err(), AbiError::MemoryTooLarge { initial: 17, cap: 16 });
        assert!(matches!(finish(b"\0asm\x01\0\0\0\x7f", &OPTIONS), Err(AbiError::Invalid(_))));
        assert!(matches!(finish(b"not wasm", &OPTIONS), Err(AbiError::Invalid(_))));
        let mut bare = Module::with_config(ModuleConfig::new());
        bare.memories.add_local(false, false, 1, None, None);
        assert_eq!(finish(&bare.emit_wasm(), &OPTIONS).unwrap_err(), AbiError::NoEntry);
    }
}
