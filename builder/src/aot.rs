//! `jos-cli build --format aot` and `run --local --aot`: a wasm module compiled ahead of time.
//!
//! The pipeline uses existing tools, not a compiler of our own:
//! 1. the wasm module (given, or built from C or Rust like `--format wasm`) goes through
//!    [`wasm::finish`] (ABI checks, memory cap);
//! 2. wabt's `wasm2c` translates it to C with explicit bounds checks;
//! 3. [`glue`] writes the module's `jos` imports (each one a `jos_aot_*` adapter of
//!    `abi/aot/jos-aot.h`, which checks guest pointers against the linear memory) and the entry
//!    `int run(void)`;
//! 4. arm-none-eabi-gcc compiles it with the runtime `abi/aot/jos-aot-rt.c` (wasm2c's `wasm-rt`
//!    interface: static memory and table arenas, traps, function types, call depth) and links it
//!    like a C native blob (crt0, `jos-native.ld`, the same import slots), then
//!    [`elf::convert`] makes the blob, marked AOT and carrying the source module's SHA-256.
//!
//! On the host ([`host_program`]), the same C is compiled by the host's `cc` with
//! `abi/aot/jos-aot-host.c` (the system calls and `main`) into a program that `run --local --aot`
//! runs as a child process. See docs/runtime.md, "Ahead-of-time compiled wasm".

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use jos_abi::blob::{Blob, BlobRepr};
use wasmparser::{Parser, Payload, TypeRef};

use super::{elf, stem, wasm, BuildError, BuildOutput, BuildRequest, Context, Source};

/// `jos-aot.h`: the system-call adapters for AOT-compiled modules.
pub const JOS_AOT_H: &str = include_str!("../../abi/aot/jos-aot.h");
/// `jos-aot-rt.c`: wasm2c's `wasm-rt` interface for jos.
pub const JOS_AOT_RT_C: &str = include_str!("../../abi/aot/jos-aot-rt.c");
/// `jos-aot-host.c`: the host's system calls and `main` for `run --local --aot`.
pub const JOS_AOT_HOST_C: &str = include_str!("../../abi/aot/jos-aot-host.c");

/// Where wabt installs the `wasm-rt.h` header wasm2c's output includes.
const WASM_RT_H: &str = "/usr/include/wasm-rt.h";

/// The deepest call nesting of AOT code, as the interpreter's `max_recursion_depth`.
pub fn max_call_depth() -> usize {
    jos_runtime::wasm::SandboxConfig::default().max_recursion_depth
}

/// What the runtime must reserve for a module: its memory cap and table room.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// The memory maximum in 64 KiB pages (0 without a memory).
    pub memory_pages: u64,
    /// Table elements over all tables (each at its maximum, or at the interpreter's table limit
    /// without one), capped at that limit.
    pub table_elements: u64,
    /// Whether the module exports its memory as `memory` (the system calls' buffers live there).
    pub exports_memory: bool,
    /// The `jos` imports, by name.
    pub imports: Vec<String>,
}

impl Shape {
    /// Reads what the runtime needs from a module that passed [`wasm::finish`].
    pub fn of(module: &[u8]) -> Result<Shape, BuildError> {
        let invalid =
            |error: wasmparser::BinaryReaderError| BuildError::Abi(wasm::AbiError::Invalid(error.to_string()));
        let table_limit = u64::from(jos_runtime::wasm::Limits::default().max_table_elements);
        let mut shape = Shape::default();
        let mut memories = 0;
        for payload in Parser::new(0).parse_all(module) {
            match payload.map_err(invalid)? {
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        let import = import.map_err(invalid)?;
                        if matches!(import.ty, TypeRef::Func(_)) {
                            shape.imports.push(import.name.to_string());
                        }
                    }
                }
                Payload::MemorySection(reader) => {
                    for memory in reader {
                        let memory = memory.map_err(invalid)?;
                        memories += 1;
                        shape.memory_pages = memory.maximum.unwrap_or(memory.initial);
                    }
                }
                Payload::TableSection(reader) => {
                    for table in reader {
                        let table = table.map_err(invalid)?;
                        // Room to grow to the maximum, or to the interpreter's limit without one.
                        shape.table_elements +=
                            table.ty.maximum.unwrap_or(table_limit).min(table_limit).max(table.ty.initial);
                    }
                }
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let export = export.map_err(invalid)?;
                        if export.name == "memory" && export.kind == wasmparser::ExternalKind::Memory {
                            shape.exports_memory = true;
                        }
                    }
                }
                _ => {}
            }
        }
        if memories > 1 {
            return Err(BuildError::Usage("an AOT build takes modules with at most one memory".into()));
        }
        shape.table_elements = shape.table_elements.min(table_limit);
        Ok(shape)
    }
}

/// The C type of each parameter and the result of a system call's wasm2c import, by name.
fn import_signature(name: &str) -> Option<(&'static [&'static str], &'static str)> {
    const U: &str = "u32";
    Some(match name {
        "input_len" | "time_us" | "yield" => (&[], if name == "time_us" { "u64" } else { U }),
        "input_read" | "log" => (&[U, U, U], U),
        "output_write" | "random" | "screen_print" | "gpio_write" => (&[U, U], U),
        "exit" => (&[U], "void"),
        "udp_bind" | "udp_close" | "gpio_read" => (&[U], U),
        "udp_send" | "udp_recv" => (&[U, U, U, U], U),
        _ => return None,
    })
}

/// The C glue of a module translated with `wasm2c -n guest`: its `jos` imports bound to the
/// `jos_aot_*` adapters, and the native entry `int run(void)`.
pub fn glue(shape: &Shape) -> Result<String, BuildError> {
    let mut c = String::from(
        "/* Generated by jos-cli build --format aot: the module's jos imports and its entry. */\n\
         #include \"guest.h\"\n#include \"jos-aot.h\"\n\n\
         struct Z_jos_instance_t { wasm_rt_memory_t *memory; };\n\
         static struct Z_jos_instance_t jos_aot_env;\nstatic Z_guest_instance_t jos_aot_guest;\n\n",
    );
    for name in &shape.imports {
        let (params, result) = import_signature(name)
            .ok_or_else(|| BuildError::Abi(wasm::AbiError::UnknownSyscall { name: name.clone() }))?;
        let declared: String = params.iter().enumerate().map(|(i, ty)| format!(", {ty} a{i}")).collect();
        let passed: String = (0..params.len()).map(|i| format!(", a{i}")).collect();
        let body = if result == "void" { "" } else { "return " };
        let _ = writeln!(
            c,
            "{result} Z_josZ_{name}(struct Z_jos_instance_t *env{declared}) {{ {body}jos_aot_{name}(env->memory{passed}); }}"
        );
    }
    let instantiate = if shape.imports.is_empty() {
        "Z_guest_instantiate(&jos_aot_guest);"
    } else {
        "Z_guest_instantiate(&jos_aot_guest, &jos_aot_env);"
    };
    let memory = if shape.exports_memory {
        "jos_aot_env.memory = Z_guestZ_memory(&jos_aot_guest);"
    } else {
        "jos_aot_env.memory = 0;"
    };
    let _ = write!(
        c,
        "\nint run(void) {{\n    wasm_rt_init();\n    Z_guest_init_module();\n    {memory}\n    {instantiate}\n    \
         return (int)Z_guestZ_run(&jos_aot_guest);\n}}\n"
    );
    Ok(c)
}

/// The C sources of an AOT build, in a scratch folder, and the defines they need.
pub struct Translation {
    /// The C files: wasm2c's output, the glue, the runtime.
    pub sources: Vec<PathBuf>,
    /// `-D` and float flags (memory and table arenas, call depth, explicit bounds checks, strict
    /// floats).
    pub defines: Vec<String>,
    /// The module's shape.
    pub shape: Shape,
}

/// Translates a finished module to C in `scratch` (wasm2c, glue, runtime files).
pub fn translate(scratch: &Path, module: &[u8], verbose: bool) -> Result<Translation, BuildError> {
    let shape = Shape::of(module)?;
    let wasm_path = scratch.join("guest.wasm");
    std::fs::write(&wasm_path, module).map_err(BuildError::io("write the module for wasm2c"))?;
    let header = std::fs::read(WASM_RT_H).map_err(|_| BuildError::ToolMissing {
        tool: "wasm2c".into(),
        hint: "run scripts/setup.sh, or install Debian's wabt",
    })?;
    // A private copy: for ARM, -I /usr/include would drag the host's libc headers in.
    std::fs::write(scratch.join("wasm-rt.h"), header).map_err(BuildError::io("write wasm-rt.h"))?;
    for (name, text) in [("jos-aot.h", JOS_AOT_H), ("jos-aot-rt.c", JOS_AOT_RT_C), ("jos-aot-host.c", JOS_AOT_HOST_C)] {
        std::fs::write(scratch.join(name), text).map_err(BuildError::io(format!("write {name}")))?;
    }
    let mut wasm2c = Command::new("wasm2c");
    wasm2c.arg("-n").arg("guest").arg("-o").arg(scratch.join("guest.c")).arg(&wasm_path);
    Context { scratch, verbose }.run(&mut wasm2c, "wasm2c", "run scripts/setup.sh, or install Debian's wabt")?;
    let guest_c = scratch.join("guest.c");
    let translated = std::fs::read_to_string(&guest_c).map_err(BuildError::io("read wasm2c's output"))?;
    if let Some(split) = split_bounds_checks(&translated) {
        std::fs::write(&guest_c, split).map_err(BuildError::io("write wasm2c's output"))?;
    } else if verbose {
        eprintln!("jos-build: wasm2c's loads and stores not recognised, their bounds checks stay 64-bit");
    }
    std::fs::write(scratch.join("glue.c"), glue(&shape)?).map_err(BuildError::io("write the AOT glue"))?;
    let defines = vec![
        format!("-DJOS_AOT_MEMORY_PAGES={}", shape.memory_pages),
        format!("-DJOS_AOT_TABLE_ELEMENTS={}", shape.table_elements),
        format!("-DJOS_AOT_TABLE_LIMIT={}u", jos_runtime::wasm::Limits::default().max_table_elements),
        format!("-DWASM_RT_MAX_CALL_STACK_DEPTH={}", max_call_depth()),
        "-DWASM_RT_MEMCHECK_SIGNAL_HANDLER=0".into(),
        "-DWASM_RT_USE_STACK_DEPTH_COUNT=1".into(),
        // Keep wasm's float semantics: no folding that drops a NaN's quieting (x * 1.0 -> x),
        // no contraction into fused multiply-adds.
        "-fsignaling-nans".into(),
        "-ffp-contract=off".into(),
    ];
    let sources = ["guest.c", "glue.c", "jos-aot-rt.c"].iter().map(|name| scratch.join(name)).collect();
    Ok(Translation { sources, defines, shape })
}

/// Loads and stores whose bounds check compares 32-bit values, defined after wasm2c's own (one
/// per `DEFINE_LOAD` / `DEFINE_STORE` line, same types): `jos_NAME(mem, base, offset)` checks
/// `base + offset + size <= mem->size` as `offset + size <= mem->size` (loop-invariant) and
/// `base <= mem->size - offset - size` (one compare), where wasm2c's `NAME(mem, addr)` receives
/// `addr = (u64)base + offset` and checks it with a 64-bit add and compare, which a 32-bit core
/// pays in four instructions and a register pair per access. The result is the same (wasm2c's
/// `mem->size` is 32-bit; the first test keeps the subtraction from wrapping). The loads keep
/// wasm2c's empty `asm` on the loaded value. Both are always inlined: left to GCC, a function of
/// the spec suite with a thousand loads (skip-stack-guard-page.wast) called them out of line,
/// kept every result and grew from a 56-byte to an 8.5 KB frame, past the stack its recursion
/// depth allows.
const SPLIT_LOADS_AND_STORES: &str = r#"
/* jos: loads and stores with the address's base and constant offset apart (builder/src/aot.rs) */
#define JOS_CHECK(mem, base, offset, t)                                  \
  if (UNLIKELY((u64)(offset) + sizeof(t) > (mem)->size ||                \
               (base) > (mem)->size - (offset) - sizeof(t)))             \
    TRAP(OOB);
#define JOS_DEFINE_LOAD(name, t1, t2, t3)                                \
  static inline __attribute__((always_inline)) t3                       \
  jos_##name(wasm_rt_memory_t* mem, u32 base, u32 offset) {              \
    JOS_CHECK(mem, base, offset, t1);                                    \
    t1 result;                                                           \
    wasm_rt_memcpy(&result, &mem->data[(size_t)base + offset], sizeof(t1)); \
    wasm_asm("" ::"r"(result));                                          \
    return (t3)(t2)result;                                               \
  }
#define JOS_DEFINE_STORE(name, t1, t2)                                   \
  static inline __attribute__((always_inline)) void                     \
  jos_##name(wasm_rt_memory_t* mem, u32 base, u32 offset, t2 value) {   \
    JOS_CHECK(mem, base, offset, t1);                                    \
    t1 wrapped = (t1)value;                                              \
    wasm_rt_memcpy(&mem->data[(size_t)base + offset], &wrapped, sizeof(t1)); \
  }
"#;

/// Rewrites wasm2c's output (little-endian, explicit bounds checks) so that its loads and stores
/// check bounds on 32-bit values (the C functions of `SPLIT_LOADS_AND_STORES`): every call
/// `NAME(MEM, (u64)(VAR) + N` (`N` with or without a `u`) or `NAME(MEM, (u64)(VAR)` of a load
/// or store wasm2c defined becomes `jos_NAME(MEM, VAR, Nu` (`0u`). Calls of another shape are
/// left as they are (wasm2c's own functions remain). `None` when the output has no
/// `DEFINE_LOAD` lines (another wasm2c).
pub fn split_bounds_checks(c: &str) -> Option<String> {
    let mut names = Vec::new();
    let mut definitions = String::from(SPLIT_LOADS_AND_STORES);
    let mut after_definitions = 0;
    let mut offset = 0;
    for line in c.split_inclusive('\n') {
        offset += line.len();
        for kind in ["DEFINE_LOAD(", "DEFINE_STORE("] {
            if let Some(arguments) = line.strip_prefix(kind) {
                let name = arguments.split(',').next()?.trim();
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return None;
                }
                names.push(name.to_string());
                definitions.push_str("JOS_");
                definitions.push_str(line);
                after_definitions = offset;
            }
        }
    }
    if names.is_empty() {
        return None;
    }
    let (head, body) = c.split_at(after_definitions);
    let mut out = String::with_capacity(c.len() + definitions.len() + c.len() / 8);
    out.push_str(head);
    out.push_str(&definitions);
    let mut rest = body;
    while !rest.is_empty() {
        // The next identifier-start position that begins one of the names followed by `(`.
        let Some(at) = rest.find('(') else { break };
        let before = &rest[..at];
        let start = before.rfind(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_')).map_or(0, |i| i + 1);
        let name = &before[start..];
        if names.iter().any(|known| known == name) {
            if let Some((replacement, used)) = split_call(name, &rest[at + 1..]) {
                out.push_str(&rest[..start]);
                out.push_str(&replacement);
                rest = &rest[at + 1 + used..];
                continue;
            }
        }
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// `arguments` follows `NAME(`: if they start `MEM, (u64)(VAR)` with an optional ` + Nu`, then
/// `,` or `)`, returns `jos_NAME(MEM, VAR, Nu` (without that `,` or `)`) and the bytes consumed.
fn split_call(name: &str, arguments: &str) -> Option<(String, usize)> {
    let comma = arguments.find(", ")?;
    let memory = &arguments[..comma];
    if memory.is_empty() || memory.contains(['(', ')', ';', '\n']) {
        return None;
    }
    let after_memory = &arguments[comma + 2..];
    let variable_text = after_memory.strip_prefix("(u64)(")?;
    let close = variable_text.find(')')?;
    let variable = &variable_text[..close];
    if variable.is_empty() || !variable.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    let mut tail = &variable_text[close + 1..];
    let mut constant = "0";
    if let Some(plus) = tail.strip_prefix(" + ") {
        let digits = plus.bytes().take_while(u8::is_ascii_digit).count();
        let number = &plus[..digits];
        // Loads print the offset with a `u` suffix, stores without.
        let after = plus[digits..].strip_prefix('u').unwrap_or(&plus[digits..]);
        // wasm32 offsets are u32; anything else is not the shape this rewrite knows.
        number.parse::<u32>().ok()?;
        constant = number;
        tail = after;
    }
    if !(tail.starts_with(',') || tail.starts_with(')')) {
        return None;
    }
    let used = arguments.len() - tail.len();
    Some((format!("jos_{name}({memory}, {variable}, {constant}u"), used))
}

/// The module to compile: a given `.wasm` file (its bytes, hashed as given), or C or Rust built
/// to wasm exactly as `--format wasm` does (hashed as that build would write it).
fn source_module(context: &Context<'_>, request: &BuildRequest) -> Result<(String, Vec<u8>), BuildError> {
    if let [path] = request.sources.as_slice() {
        if path.extension().is_some_and(|extension| extension == "wasm") {
            let bytes = std::fs::read(path)
                .map_err(|error| BuildError::Input { path: path.clone(), reason: error.to_string() })?;
            return Ok((stem(path), bytes));
        }
    }
    let options = wasm::Options::from(request);
    match Source::detect(&request.sources)? {
        Source::C(files) => {
            let module = context.clang_wasm(&files)?;
            Ok((stem(&files[0]), wasm::finish(&module, &options)?.0))
        }
        Source::Rust(manifest) => {
            let (name, path) = context.cargo(&manifest, super::Format::Wasm)?;
            let module = std::fs::read(&path).map_err(BuildError::io(format!("read {}", path.display())))?;
            Ok((name, wasm::finish(&module, &options)?.0))
        }
    }
}

/// Builds an AOT blob (`jos-cli build --format aot`).
pub fn build(request: &BuildRequest) -> Result<BuildOutput, BuildError> {
    let scratch =
        tempfile::Builder::new().prefix("jos-aot-").tempdir().map_err(BuildError::io("create a temporary folder"))?;
    crate::sdk::write_to(scratch.path()).map_err(BuildError::io("write the SDK files"))?;
    let context = Context { scratch: scratch.path(), verbose: request.verbose };
    let (name, source) = source_module(&context, request)?;
    let (bytes, report) = compile_blob(&context, &source, &wasm::Options::from(request))?;
    let path = request.output.clone().unwrap_or_else(|| PathBuf::from(format!("{name}.blob")));
    std::fs::write(&path, &bytes).map_err(BuildError::io(format!("write {}", path.display())))?;
    Ok(BuildOutput { path, report })
}

/// Compiles `source` (a wasm module) into an unsigned AOT blob.
fn compile_blob(
    context: &Context<'_>,
    source: &[u8],
    options: &wasm::Options,
) -> Result<(Vec<u8>, super::SizeReport), BuildError> {
    let (module, _) = wasm::finish(source, options)?;
    let translation = translate(context.scratch, &module, context.verbose)?;
    let mut inputs: Vec<OsString> = translation.defines.iter().map(OsString::from).collect();
    inputs.extend(translation.sources.iter().map(|path| path.as_os_str().to_owned()));
    // Float rounding helpers (nearbyint, ...) of wasm2c's output come from newlib's libm.
    inputs.push("-lm".into());
    let elf = context.gcc_native(inputs, true)?;
    let (plain, mut report) = elf::convert(&elf)?;
    let blob = Blob::new_checked(&plain[..]).map_err(|error| BuildError::Native(elf::ConvertError::Blob(error)))?;
    let repr = BlobRepr {
        wasm_source: Some(jos_abi::signature::sha256(source)),
        ..BlobRepr::parse(&blob).map_err(|error| BuildError::Native(elf::ConvertError::Blob(error)))?
    };
    let mut bytes = vec![0; repr.buffer_len()];
    repr.emit(&mut bytes).map_err(|error| BuildError::Native(elf::ConvertError::Blob(error)))?;
    report.total = bytes.len() as u64;
    report.compiled = source.len() as u64;
    Ok((bytes, report))
}

/// Compiles a wasm module with the host's `cc` into the program `run --local --aot` runs (see
/// `abi/aot/jos-aot-host.c` for its arguments). Returns its path inside `scratch`.
pub fn host_program(
    scratch: &Path,
    module: &[u8],
    options: &wasm::Options,
    verbose: bool,
) -> Result<PathBuf, BuildError> {
    crate::sdk::write_to(scratch).map_err(BuildError::io("write the SDK files"))?;
    let (module, _) = wasm::finish(module, options)?;
    let translation = translate(scratch, &module, verbose)?;
    let program = scratch.join("guest-host");
    let mut cc = Command::new("cc");
    cc.args(["-O2", "-std=gnu11", "-w", "-DJOS_AOT_HOST"])
        .args(&translation.defines)
        .arg("-I")
        .arg(scratch)
        .arg("-o")
        .arg(&program)
        .args(&translation.sources)
        .arg(scratch.join("jos-aot-host.c"))
        .arg("-lm");
    Context { scratch, verbose }.run(&mut cc, "cc", "run scripts/setup.sh, or install Debian's gcc")?;
    Ok(program)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glue_binds_each_import_and_the_entry() {
        let shape = Shape {
            memory_pages: 2,
            table_elements: 0,
            exports_memory: true,
            imports: vec!["output_write".into(), "time_us".into(), "exit".into()],
        };
        let c = glue(&shape).unwrap();
        assert!(c.contains("u32 Z_josZ_output_write(struct Z_jos_instance_t *env, u32 a0, u32 a1) { return jos_aot_output_write(env->memory, a0, a1); }"));
        assert!(c.contains("u64 Z_josZ_time_us(struct Z_jos_instance_t *env) { return jos_aot_time_us(env->memory); }"));
        assert!(c.contains("void Z_josZ_exit(struct Z_jos_instance_t *env, u32 a0) { jos_aot_exit(env->memory, a0); }"));
        assert!(c.contains("Z_guest_instantiate(&jos_aot_guest, &jos_aot_env);"));
        assert!(c.contains("jos_aot_env.memory = Z_guestZ_memory(&jos_aot_guest);"));
        let unknown = Shape { imports: vec!["nope".into()], ..shape };
        assert!(matches!(glue(&unknown), Err(BuildError::Abi(wasm::AbiError::UnknownSyscall { .. }))));
    }

    #[test]
    fn loads_and_stores_check_bounds_on_32_bit_values() {
        let c = "#define DEFINE_LOAD(name, t1, t2, t3) x\n\
                 DEFINE_LOAD(i32_load, u32, u32, u32)\n\
                 DEFINE_LOAD(i32_load8_u, u8, u32, u32)\n\
                 DEFINE_STORE(i64_store, u64, u64)\n\
                 static void f(void) {\n\
                 \x20 w2c_i0 = i32_load(&instance->w2c_memory, (u64)(w2c_i0) + 12u);\n\
                 \x20 w2c_i1 = i32_load8_u(&instance->w2c_memory, (u64)(w2c_i1));\n\
                 \x20 i64_store(&instance->w2c_memory, (u64)(w2c_i0) + 8, w2c_j1);\n\
                 \x20 w2c_i0 = i32_load(&instance->w2c_memory, (u64)(w2c_i0 + 1));\n\
                 \x20 w2c_i0 = xi32_load(&instance->w2c_memory, (u64)(w2c_i0));\n\
                 \x20 w2c_i0 = i32_load(&instance->w2c_memory, (u64)(w2c_i0) + 4294967296u);\n\
                 }\n";
        let split = split_bounds_checks(c).unwrap();
        // The split functions are defined after wasm2c's, once per DEFINE line, same types.
        let defined = split.find("JOS_DEFINE_LOAD(i32_load, u32, u32, u32)").unwrap();
        assert!(defined > split.find("DEFINE_STORE(i64_store, u64, u64)").unwrap());
        assert!(split.contains("JOS_DEFINE_LOAD(i32_load8_u, u8, u32, u32)"));
        assert!(split.contains("JOS_DEFINE_STORE(i64_store, u64, u64)"));
        let body = &split[split.find("static void f").unwrap()..];
        assert!(body.contains("w2c_i0 = jos_i32_load(&instance->w2c_memory, w2c_i0, 12u);"));
        assert!(body.contains("w2c_i1 = jos_i32_load8_u(&instance->w2c_memory, w2c_i1, 0u);"));
        assert!(body.contains("jos_i64_store(&instance->w2c_memory, w2c_i0, 8u, w2c_j1);"));
        // Other shapes, other names and offsets past u32 stay wasm2c's.
        assert!(body.contains("w2c_i0 = i32_load(&instance->w2c_memory, (u64)(w2c_i0 + 1));"));
        assert!(body.contains("w2c_i0 = xi32_load(&instance->w2c_memory, (u64)(w2c_i0));"));
        assert!(body.contains("w2c_i0 = i32_load(&instance->w2c_memory, (u64)(w2c_i0) + 4294967296u);"));
        // Output of another wasm2c (no DEFINE lines): nothing to rewrite.
        assert_eq!(split_bounds_checks("int main(void) { return 0; }\n"), None);
    }

    #[test]
    fn every_syscall_has_a_c_signature() {
        for call in jos_abi::syscall::SYSCALLS {
            let (params, result) =
                import_signature(call.name).unwrap_or_else(|| panic!("{} has no C signature", call.name));
            assert_eq!(params.len(), call.signature.params.len(), "{}", call.name);
            assert_eq!(result == "void", call.signature.results.is_empty(), "{}", call.name);
        }
    }
}
