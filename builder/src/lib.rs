//! The jos build pipeline: C sources or a Rust guest crate to a checked wasm module or a native
//! jos blob, ready to sign and push. `jos-cli build` is a thin layer over [`build`]; programs
//! that make guests on the fly (tests, benchmarks, a service that compiles what its users send)
//! call it directly. No terminal or command-line dependencies: the compilers' own messages go to
//! this process's stderr, and every failure is a [`BuildError`].
//!
//! - wasm: clang (`--target=wasm32`) or `cargo build --target wasm32-unknown-unknown`, then
//!   [`wasm::finish`]: every import checked against the syscall table, custom sections dropped,
//!   the memory maximum capped, the `jos.abi` section added.
//! - native: arm-none-eabi-gcc (C) or `cargo rustc --crate-type staticlib` for
//!   `armv6-none-eabihf` (Rust, built PIE with `-Zbuild-std`), linked with the SDK's `crt0.S` and
//!   `jos-native.ld`, then [`elf::convert`] into a blob.
//! - aot: the wasm module (given, or built as above) translated by wabt's wasm2c and compiled as
//!   a native blob marked AOT ([`aot`]).
//! - [`sdk`]: the C guest SDK (`jos.h` and friends), built into the crate so that a build works
//!   from any folder.
//!
//! The tools come from `scripts/setup.sh` (clang and lld, gcc-arm-none-eabi, the Rust targets).
//!
//! # Example
//! The md5 example guest as a wasm module (the output is unsigned: sign it with
//! [`jos_abi::signature::sign_wasm`] or `jos-cli sign`):
//!
//! ```
//! use jos_build::{build, BuildRequest, Format, DEFAULT_MAX_MEMORY_PAGES};
//! # let folder = tempfile::tempdir()?;
//! # let md5_c = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-examples/c/md5.c");
//! let request = BuildRequest {
//!     sources: vec![md5_c],
//!     format: Format::Wasm,
//!     output: Some(folder.path().join("md5.wasm")),
//!     max_memory_pages: DEFAULT_MAX_MEMORY_PAGES,
//!     keep_names: false,
//!     verbose: false,
//! };
//! let built = build(&request)?;
//! let module = std::fs::read(&built.path)?;
//! assert!(module.starts_with(b"\0asm"));
//! assert!(built.report.imports.contains(&"input_read"));
//! println!("{}", built.report); // sizes: code, data, imports
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `examples/build.rs` is the same as a program: `cargo run -p jos-build --example build -- FILE.c`.

pub mod aot;
pub mod elf;
pub mod sdk;
pub mod wasm;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The format to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// A WebAssembly module (imports from module `"jos"`).
    Wasm,
    /// A native ARMv6 jos blob (unsigned; `jos-cli sign` adds the trailer).
    Native,
    /// A wasm module compiled ahead of time into a native blob marked AOT (unsigned).
    Aot,
}

impl Format {
    /// The file extension of an output in this format.
    pub const fn extension(self) -> &'static str {
        match self {
            Format::Wasm => "wasm",
            Format::Native | Format::Aot => "blob",
        }
    }
}

/// What to build.
#[derive(Clone, Debug)]
pub struct BuildRequest {
    /// C files, or one Rust crate folder (or its `Cargo.toml`).
    pub sources: Vec<PathBuf>,
    /// The format.
    pub format: Format,
    /// Where to write the result; `None` means `NAME.wasm` / `NAME.blob` in the current folder.
    pub output: Option<PathBuf>,
    /// The cap on the wasm memory maximum, in 64 KiB pages.
    pub max_memory_pages: u64,
    /// Keep the wasm `name` section (function names in traps).
    pub keep_names: bool,
    /// Print every command before it runs.
    pub verbose: bool,
}

/// The default cap on wasm memory: 256 pages, 16 MiB.
pub const DEFAULT_MAX_MEMORY_PAGES: u64 = 256;

/// What a build produced.
#[derive(Clone, Debug)]
pub struct BuildOutput {
    /// The file written.
    pub path: PathBuf,
    /// Sizes, for the report.
    pub report: SizeReport,
}

/// Sizes of a built module or blob, in bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SizeReport {
    /// Size of what the compiler produced (wasm module or ELF file).
    pub compiled: u64,
    /// Size of the output file.
    pub total: u64,
    /// Code: the wasm code section, or the blob's text.
    pub code: u64,
    /// Initialised data: wasm data segments, or the blob's rodata + data.
    pub data: u64,
    /// Zeroed memory the blob asks for (native only).
    pub bss: u64,
    /// Custom sections kept (wasm only).
    pub custom: u64,
    /// The system calls the output imports, by name.
    pub imports: Vec<&'static str>,
    /// Relocations in the blob (native only).
    pub relocations: u64,
    /// The memory maximum in pages after capping (wasm only).
    pub memory_max_pages: Option<u64>,
}

impl fmt::Display for SizeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  compiled   {:>8} bytes", self.compiled)?;
        writeln!(f, "  output     {:>8} bytes", self.total)?;
        writeln!(f, "    code     {:>8} bytes", self.code)?;
        writeln!(f, "    data     {:>8} bytes", self.data)?;
        if self.bss > 0 {
            writeln!(f, "    bss      {:>8} bytes (zeroed on first touch)", self.bss)?;
        }
        if self.custom > 0 {
            writeln!(f, "    custom   {:>8} bytes", self.custom)?;
        }
        if let Some(pages) = self.memory_max_pages {
            writeln!(f, "  memory max {pages:>8} pages ({} KiB)", pages * 64)?;
        }
        if self.relocations > 0 {
            writeln!(f, "  relocations {:>7}", self.relocations)?;
        }
        write!(
            f,
            "  imports    {}",
            if self.imports.is_empty() { "(none)".to_string() } else { self.imports.join(", ") }
        )
    }
}

/// Why a build failed, one variant per kind (`jos-cli` gives each its own exit code).
#[derive(Debug)]
pub enum BuildError {
    /// The arguments do not describe a build.
    Usage(String),
    /// A source is missing or unreadable.
    Input {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A tool is not installed.
    ToolMissing {
        /// The program.
        tool: String,
        /// How to get it.
        hint: &'static str,
    },
    /// A compiler, linker or cargo failed (its own messages were printed).
    CompileFailed {
        /// The command, for the message.
        command: String,
        /// Its exit status.
        status: String,
        /// What to check next ("" when there is nothing specific to say).
        hint: &'static str,
    },
    /// The wasm module breaks the ABI.
    Abi(wasm::AbiError),
    /// The ELF cannot become a blob.
    Native(elf::ConvertError),
    /// Writing the output or a temporary file failed.
    Io {
        /// What was being done.
        action: String,
        /// The error.
        error: std::io::Error,
    },
}

impl BuildError {
    fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildError {
        let action = action.into();
        move |error| BuildError::Io { action, error }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Usage(message) => f.write_str(message),
            BuildError::Input { path, reason } => write!(f, "{}: {reason}", path.display()),
            BuildError::ToolMissing { tool, hint } => write!(f, "`{tool}` is not installed or not on PATH; {hint}"),
            BuildError::CompileFailed { command, status, hint } => {
                write!(f, "`{command}` failed ({status}); its messages are above")?;
                if !hint.is_empty() {
                    write!(f, ". {hint}")?;
                }
                Ok(())
            }
            BuildError::Abi(error) => write!(f, "{error}"),
            BuildError::Native(error) => write!(f, "cannot make a native blob: {error}"),
            BuildError::Io { action, error } => write!(f, "{action}: {error}"),
        }
    }
}

impl std::error::Error for BuildError {}

impl From<wasm::AbiError> for BuildError {
    fn from(error: wasm::AbiError) -> Self {
        BuildError::Abi(error)
    }
}

impl From<elf::ConvertError> for BuildError {
    fn from(error: elf::ConvertError) -> Self {
        BuildError::Native(error)
    }
}

/// The kind of source, found from the paths given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// C files (and, for native builds, assembly `.S` files).
    C(Vec<PathBuf>),
    /// A Rust guest crate, by its manifest.
    Rust(PathBuf),
}

impl Source {
    /// Classifies the sources: one folder with a `Cargo.toml` (or the manifest itself) is a Rust
    /// crate; otherwise every path must be an existing `.c` or `.S` file.
    pub fn detect(sources: &[PathBuf]) -> Result<Source, BuildError> {
        let [first, rest @ ..] = sources else {
            return Err(BuildError::Usage("give at least one source: C files or a Rust crate folder".into()));
        };
        let manifest = if first.is_dir() { first.join("Cargo.toml") } else { first.clone() };
        if manifest.file_name().is_some_and(|name| name == "Cargo.toml") {
            if !manifest.is_file() {
                return Err(BuildError::Input {
                    path: first.clone(),
                    reason: "a folder without Cargo.toml: give C files or a Rust crate folder".into(),
                });
            }
            if !rest.is_empty() {
                return Err(BuildError::Usage("a Rust crate is built on its own: give one crate folder".into()));
            }
            return Ok(Source::Rust(manifest));
        }
        for path in sources {
            if !path.is_file() {
                return Err(BuildError::Input { path: path.clone(), reason: "no such file".into() });
            }
            let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !matches!(extension, "c" | "S") {
                return Err(BuildError::Input {
                    path: path.clone(),
                    reason: "not a C source (.c), an assembly file (.S) or a Rust crate folder".into(),
                });
            }
        }
        Ok(Source::C(sources.to_vec()))
    }
}

/// Builds what `request` asks for and writes the output file.
pub fn build(request: &BuildRequest) -> Result<BuildOutput, BuildError> {
    if request.format == Format::Aot {
        return aot::build(request);
    }
    let source = Source::detect(&request.sources)?;
    let scratch =
        tempfile::Builder::new().prefix("jos-build-").tempdir().map_err(BuildError::io("create a temporary folder"))?;
    sdk::write_to(scratch.path()).map_err(BuildError::io("write the SDK files"))?;
    let context = Context { scratch: scratch.path(), verbose: request.verbose };
    let (name, bytes, report) = match (request.format, &source) {
        (Format::Wasm, Source::C(files)) => {
            let module = context.clang_wasm(files)?;
            let (bytes, report) = wasm::finish(&module, &wasm::Options::from(request))?;
            (stem(&files[0]), bytes, report)
        }
        (Format::Wasm, Source::Rust(manifest)) => {
            let (name, path) = context.cargo(manifest, Format::Wasm)?;
            let module = std::fs::read(&path).map_err(BuildError::io(format!("read {}", path.display())))?;
            let (bytes, report) = wasm::finish(&module, &wasm::Options::from(request))?;
            (name, bytes, report)
        }
        (Format::Native, Source::C(files)) => {
            let elf = context.gcc_native(files.iter().map(|file| file.as_os_str().to_owned()).collect(), true)?;
            let (bytes, report) = elf::convert(&elf)?;
            (stem(&files[0]), bytes, report)
        }
        (Format::Native, Source::Rust(manifest)) => {
            let (name, archive) = context.cargo(manifest, Format::Native)?;
            let elf = context.gcc_native(vec![archive.into_os_string()], false)?;
            let (bytes, report) = elf::convert(&elf)?;
            (name, bytes, report)
        }
        (Format::Aot, _) => return aot::build(request),
    };
    let path =
        request.output.clone().unwrap_or_else(|| PathBuf::from(format!("{name}.{}", request.format.extension())));
    std::fs::write(&path, &bytes).map_err(BuildError::io(format!("write {}", path.display())))?;
    Ok(BuildOutput { path, report })
}

fn stem(path: &Path) -> String {
    path.file_stem().map_or_else(|| "guest".into(), |stem| stem.to_string_lossy().into_owned())
}

/// The flags arm-none-eabi-gcc compiles and links native guests with. `-ffreestanding` keeps GCC
/// from assuming a libc, and `-ftree-loop-distribute-patterns` then lets it turn fill and copy
/// loops back into calls to the SDK's word-at-a-time `memset` and `memcpy` (`jos-rt.c`).
pub const NATIVE_CFLAGS: &[&str] = &[
    "-mcpu=arm1176jzf-s",
    "-mfloat-abi=hard",
    "-mfpu=vfp",
    "-marm",
    "-fPIE",
    "-fno-plt",
    "-nostdlib",
    "-ffreestanding",
    "-ftree-loop-distribute-patterns",
    "-fno-common",
    "-O2",
    "-ffunction-sections",
    "-fdata-sections",
];

/// The flags clang compiles wasm guests with. The device interprets wasm (wasmi), paying a
/// dispatch for every instruction, so loops with a known trip count are unrolled far more than
/// `-O3` does (`-unroll-threshold=3000`): MD5's 64 rounds become straight code with constant
/// shifts and table entries, 5.1x less fuel and 3.6x less device time (docs/runtime.md, "wasm
/// speed on the board"). Native blobs keep `-O2` ([`NATIVE_CFLAGS`]). `-mbulk-memory` without
/// `-ffreestanding` makes fill and copy loops single `memory.fill`/`memory.copy` instructions,
/// which the interpreter runs at native speed.
pub const WASM_CFLAGS: &[&str] = &[
    "--target=wasm32",
    "-mbulk-memory",
    "-nostdlib",
    "-O3",
    "-mllvm",
    "-unroll-threshold=3000",
    "-Wl,--no-entry",
    "-Wl,--export=run",
];

struct Context<'a> {
    scratch: &'a Path,
    verbose: bool,
}

impl Context<'_> {
    fn run(&self, command: &mut Command, tool: &str, hint: &'static str) -> Result<Vec<u8>, BuildError> {
        if self.verbose {
            eprintln!("+ {command:?}");
        }
        let output = command.stdin(Stdio::null()).stderr(Stdio::inherit()).output().map_err(|error| {
            if error.kind() == std::io::ErrorKind::NotFound {
                BuildError::ToolMissing { tool: tool.into(), hint }
            } else {
                BuildError::Io { action: format!("start {tool}"), error }
            }
        })?;
        if !output.status.success() {
            return Err(BuildError::CompileFailed {
                command: tool.into(),
                status: output.status.to_string(),
                hint: "",
            });
        }
        Ok(output.stdout)
    }

    fn clang_wasm(&self, files: &[PathBuf]) -> Result<Vec<u8>, BuildError> {
        let out = self.scratch.join("guest.wasm");
        let mut clang = Command::new("clang");
        clang
            .args(WASM_CFLAGS)
            .arg("-I")
            .arg(self.scratch)
            .arg("-o")
            .arg(&out)
            .args(files)
            .arg(self.scratch.join("jos-rt.c"));
        self.run(&mut clang, "clang", "run scripts/setup.sh, or install Debian's clang and lld")?;
        std::fs::read(&out).map_err(BuildError::io("read clang's output"))
    }

    /// Compiles (C) and links a native ELF with the SDK's crt0 and linker script.
    fn gcc_native(&self, inputs: Vec<OsString>, with_runtime: bool) -> Result<Vec<u8>, BuildError> {
        let out = self.scratch.join("guest.elf");
        let mut gcc = Command::new("arm-none-eabi-gcc");
        gcc.args(NATIVE_CFLAGS)
            .arg("-I")
            .arg(self.scratch)
            .args(["-pie", "-Wl,--no-dynamic-linker", "-Wl,--gc-sections", "-Wl,-z,noexecstack", "-T"])
            .arg(self.scratch.join("jos-native.ld"))
            .arg("-o")
            .arg(&out)
            .arg(self.scratch.join("crt0.S"))
            .args(inputs);
        if with_runtime {
            gcc.arg(self.scratch.join("jos-rt.c"));
        }
        gcc.arg("-lgcc");
        self.run(&mut gcc, "arm-none-eabi-gcc", "run scripts/setup.sh, or install Debian's gcc-arm-none-eabi")?;
        std::fs::read(&out).map_err(BuildError::io("read the linked ELF"))
    }

    /// Builds a Rust guest crate with cargo; returns the crate name and the artifact (a `.wasm`
    /// for wasm, a `.a` static library for native).
    fn cargo(&self, manifest: &Path, format: Format) -> Result<(String, PathBuf), BuildError> {
        let cargo_program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cargo = Command::new(&cargo_program);
        // Run where the crate is, so its rust-toolchain.toml and .cargo/config.toml apply.
        let folder = manifest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        cargo.current_dir(folder);
        let manifest =
            manifest.canonicalize().map_err(|e| BuildError::Input { path: manifest.into(), reason: e.to_string() })?;
        // An outer cargo (`cargo test`, `cargo run`) must not leak its settings into the guest build.
        for variable in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "RUSTC_WORKSPACE_WRAPPER"] {
            cargo.env_remove(variable);
        }
        let wanted_extension = match format {
            Format::Wasm | Format::Aot => {
                cargo.args(["build", "--release", "--target", "wasm32-unknown-unknown"]);
                "wasm"
            }
            Format::Native => {
                cargo
                    .args(["rustc", "--release", "--target", "armv6-none-eabihf", "--crate-type", "staticlib"])
                    .args(["-Zbuild-std=core,compiler_builtins", "-Zbuild-std-features=compiler-builtins-mem"])
                    .env("RUSTC_BOOTSTRAP", "1")
                    .env("CARGO_ENCODED_RUSTFLAGS", "-Crelocation-model=pie\u{1f}-Ctarget-cpu=arm1176jzf-s");
                "a"
            }
        };
        cargo.arg("--manifest-path").arg(&manifest).arg("--message-format=json-render-diagnostics");
        let compile_hint = match format {
            Format::Wasm | Format::Aot => {
                "If cargo cannot find `core`, add the target: `rustup target add wasm32-unknown-unknown`"
            }
            Format::Native => {
                "Native Rust guests build `core` from source: `rustup component add rust-src`; the crate must be \
                 no_std with a [lib] target"
            }
        };
        let stdout = self.run(&mut cargo, "cargo", "install Rust with rustup (https://rustup.rs)").map_err(
            |error| match error {
                BuildError::CompileFailed { command, status, .. } => {
                    BuildError::CompileFailed { command, status, hint: compile_hint }
                }
                other => other,
            },
        )?;
        for line in stdout.split(|byte| *byte == b'\n') {
            let Ok(message) = serde_json::from_slice::<serde_json::Value>(line) else { continue };
            if message["reason"] != "compiler-artifact" {
                continue;
            }
            let same_crate = message["manifest_path"].as_str().is_some_and(|path| Path::new(path) == manifest);
            if !same_crate {
                continue;
            }
            let name = message["target"]["name"].as_str().unwrap_or("guest").to_string();
            let artifact = message["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|value| value.as_str())
                .map(PathBuf::from)
                .find(|path| path.extension().is_some_and(|e| e == wanted_extension));
            if let Some(artifact) = artifact {
                return Ok((name, artifact));
            }
        }
        let kind = match format {
            Format::Wasm | Format::Aot => "a .wasm file: is the crate's lib crate-type \"cdylib\"?",
            Format::Native => "a static library (.a): does the crate have a [lib] target?",
        };
        Err(BuildError::Input { path: manifest, reason: format!("cargo built no {kind}") })
    }
}

impl From<&BuildRequest> for wasm::Options {
    fn from(request: &BuildRequest) -> Self {
        wasm::Options { max_memory_pages: request.max_memory_pages, keep_names: request.keep_names }
    }
}
