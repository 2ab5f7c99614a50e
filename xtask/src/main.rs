//! `cargo xtask`: the developer workflows of the jos repository.
//!
//! ```text
//! cargo xtask kernel [--features F]     build the kernel ELF (release) and print its path; the
//!                                       normal kernel also gives build/kernel.img (raw, 0x8000)
//! cargo xtask kernel --wasm-dispatch M  the same with another wasmi dispatch (portable, indirect,
//!                                       portable-indirect: the default, auto, auto-indirect),
//!                                       kept as build/jos-kernel-wasm-M.elf
//! cargo xtask qemu [--machine M]        build and boot the kernel in QEMU, console on stdio
//! cargo xtask demo                      README command 1: emu start, push md5 and a filter, emu stop
//! cargo xtask test                      README command 2: every host and QEMU test
//! cargo xtask bench [--quick|--full]    jos next to Linux on QEMU (docs/benchmarks.md)
//! ```
//! Set-up (Debian packages, rustup components) is `scripts/setup.sh`, which the README's two
//! commands run first.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::Parser;

/// Developer workflows of the jos repository.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
enum Task {
    /// Build the kernel ELF (release) and print its path; the normal kernel also gives
    /// build/kernel.img (raw, 0x8000).
    Kernel {
        /// Kernel cargo features.
        #[arg(long, default_value = "")]
        features: String,
        /// wasmi's dispatch (docs/runtime.md "Dispatch features"): `portable` (the loop),
        /// `indirect` (tail calls, 16-bit slots), `portable-indirect` (the default), `auto` (tail
        /// calls on ARM), `auto-indirect`. A non-default mode is kept as
        /// build/jos-kernel-wasm-MODE.elf.
        #[arg(long, value_name = "MODE", value_parser = WASM_DISPATCH.map(|(mode, _)| mode))]
        wasm_dispatch: Option<String>,
    },
    /// Build and boot the kernel in QEMU, console on stdio.
    Qemu {
        /// The emulated board.
        #[arg(long, default_value = "raspi0", value_parser = ["raspi0", "raspi1ap"])]
        machine: String,
    },
    /// README command 1: emu start, push md5 and a filter, emu stop.
    Demo,
    /// README command 2: every host and QEMU test, then `lint`.
    Test,
    /// rustfmt, clippy and rustdoc with warnings as errors, for every cargo workspace (host,
    /// kernel, fuzz).
    Lint,
    /// jos next to Linux on QEMU (docs/benchmarks.md); the arguments go to jos-bench
    /// (--quick, --full, --replot, ...).
    Bench {
        /// jos-bench's arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let result = match Task::parse() {
        Task::Kernel { features, wasm_dispatch } => match wasm_dispatch {
            Some(mode) => build_kernel_dispatch(&mode, &features),
            None => build_kernel(&features),
        }
        .map(|path| println!("{}", path.display())),
        Task::Qemu { machine } => build_kernel("").and_then(|elf| qemu_interactive(&elf, &machine)),
        Task::Demo => demo(),
        Task::Test => test(),
        Task::Lint => lint(),
        Task::Bench { args } => bench(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the repository").into()
}

/// Where the kernel ELF for a feature set is kept, so that every variant survives the others'
/// builds and the tests can find them all.
pub fn kernel_artifact(features: &str) -> PathBuf {
    let name = if features.is_empty() { "jos-kernel.elf".to_string() } else { format!("jos-kernel-{features}.elf") };
    root().join("build").join(name)
}

fn run(command: &mut Command) -> Result<(), String> {
    let status = command.status().map_err(|e| format!("cannot start {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed with {status}"))
    }
}

fn build_kernel(features: &str) -> Result<PathBuf, String> {
    let kernel_dir = root().join("kernel");
    let mut cargo = Command::new(env!("CARGO"));
    // build-std needs nightly cargo features; the pinned stable toolchain accepts them with this.
    cargo.current_dir(&kernel_dir).env("RUSTC_BOOTSTRAP", "1").args(["build", "--release", "--quiet"]);
    if !features.is_empty() {
        cargo.args(["--features", features]);
    }
    run(&mut cargo)?;
    let built = kernel_dir.join("target/armv6-none-eabihf/release/jos-kernel");
    let artifact = kernel_artifact(features);
    std::fs::create_dir_all(artifact.parent().expect("artifact has a folder")).map_err(|e| e.to_string())?;
    std::fs::copy(&built, &artifact).map_err(|e| format!("copy {}: {e}", built.display()))?;
    if features.is_empty() {
        let elf = std::fs::read(&artifact).map_err(|e| format!("read {}: {e}", artifact.display()))?;
        let image = raw_image(&elf).map_err(|e| format!("{}: cannot make kernel.img: {e}", artifact.display()))?;
        let path = root().join("build/kernel.img");
        std::fs::write(&path, image).map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    Ok(artifact)
}

/// The `--wasm-dispatch` modes and the kernel features each turns on (with the default ones off).
const WASM_DISPATCH: [(&str, &str); 5] = [
    ("portable", "wasm-portable"),
    ("indirect", "wasm-indirect"),
    ("portable-indirect", "wasm-portable,wasm-indirect"),
    ("auto", "wasm-auto"),
    ("auto-indirect", "wasm-auto,wasm-indirect"),
];

/// Builds the kernel with wasmi dispatch `mode` (plus `features`) as
/// build/jos-kernel-wasm-MODE.elf; the default mode with no other feature is the normal kernel.
fn build_kernel_dispatch(mode: &str, features: &str) -> Result<PathBuf, String> {
    let (_, dispatch) =
        WASM_DISPATCH.iter().find(|(name, _)| *name == mode).ok_or_else(|| format!("unknown dispatch {mode}"))?;
    if mode == "portable-indirect" && features.is_empty() {
        return build_kernel("");
    }
    let all = if features.is_empty() { (*dispatch).to_string() } else { format!("{dispatch},{features}") };
    let kernel_dir = root().join("kernel");
    let mut cargo = Command::new(env!("CARGO"));
    cargo.current_dir(&kernel_dir).env("RUSTC_BOOTSTRAP", "1").args([
        "build",
        "--release",
        "--quiet",
        "--no-default-features",
        "--features",
        &all,
    ]);
    run(&mut cargo)?;
    let built = kernel_dir.join("target/armv6-none-eabihf/release/jos-kernel");
    let suffix = if features.is_empty() { String::new() } else { format!("-{features}") };
    let artifact = root().join("build").join(format!("jos-kernel-wasm-{mode}{suffix}.elf"));
    std::fs::create_dir_all(artifact.parent().expect("artifact has a folder")).map_err(|e| e.to_string())?;
    std::fs::copy(&built, &artifact).map_err(|e| format!("copy {}: {e}", built.display()))?;
    Ok(artifact)
}

/// Where the Pi firmware loads `kernel.img` on a Pi 1 or Zero (config.txt `kernel_address`'s
/// default), and so where the kernel is linked.
const LOAD_ADDRESS: u64 = 0x8000;

/// The kernel ELF as the raw binary the Pi firmware loads at [`LOAD_ADDRESS`] and enters at its
/// first byte: the file contents of every loadable segment at its address, gaps zero-filled.
///
/// Nothing may depend on ELF loading, so this refuses an ELF whose entry is not the load
/// address, a segment whose load address (LMA, p_paddr) differs from its run address (VMA,
/// p_vaddr: `.data` would need copying), a loadable segment below the load address, and any
/// memory past the file contents other than `.bss` (zeroed by `_start` between `__bss_start`
/// and `__bss_end`) and `.stacks` (never read before written).
fn raw_image(elf: &[u8]) -> Result<Vec<u8>, String> {
    use object::read::elf::{ElfFile32, FileHeader, ProgramHeader, SectionHeader};
    use object::{Object, ObjectSymbol};
    let file = ElfFile32::<object::Endianness>::parse(elf).map_err(|e| format!("not a 32-bit ELF: {e}"))?;
    let endian = file.endian();
    let header = file.elf_header();
    if u64::from(header.e_entry(endian)) != LOAD_ADDRESS {
        return Err(format!("entry {:#x} is not the load address {LOAD_ADDRESS:#x}", header.e_entry(endian)));
    }
    let mut segments: Vec<(u64, &[u8], u64)> = Vec::new();
    for segment in file.elf_program_headers() {
        if segment.p_type(endian) != object::elf::PT_LOAD {
            continue;
        }
        let (vaddr, paddr) = (u64::from(segment.p_vaddr(endian)), u64::from(segment.p_paddr(endian)));
        let (filesz, memsz) = (u64::from(segment.p_filesz(endian)), u64::from(segment.p_memsz(endian)));
        if vaddr != paddr {
            return Err(format!("segment at {vaddr:#x} has load address {paddr:#x}: the image would need copying"));
        }
        if vaddr < LOAD_ADDRESS && memsz > 0 {
            return Err(format!("segment at {vaddr:#x} lies below the load address {LOAD_ADDRESS:#x}"));
        }
        let bytes = segment.data(endian, elf).map_err(|_| format!("segment at {vaddr:#x} is outside the file"))?;
        segments.push((vaddr, bytes, memsz.max(filesz)));
    }
    segments.sort_by_key(|(address, _, _)| *address);
    if segments.first().map(|(address, _, _)| *address) != Some(LOAD_ADDRESS) {
        return Err(format!("no loadable segment starts at {LOAD_ADDRESS:#x}"));
    }
    // Memory past the file contents must be .bss (which _start zeroes) or .stacks.
    let symbol = |name: &str| file.symbols().find(|s| s.name() == Ok(name)).map(|s| s.address());
    let (bss_start, bss_end) = match (symbol("__bss_start"), symbol("__bss_end")) {
        (Some(start), Some(end)) => (start, end),
        _ => return Err("no __bss_start/__bss_end symbols (the boot code zeroes .bss between them)".into()),
    };
    for section in file.elf_section_table().iter() {
        let flags = section.sh_flags(endian).0;
        if section.sh_type(endian) != object::elf::SHT_NOBITS || flags & object::elf::SHF_ALLOC.0 == 0 {
            continue;
        }
        let name = file.elf_section_table().section_name(endian, section).unwrap_or_default();
        let (start, size) = (u64::from(section.sh_addr(endian)), u64::from(section.sh_size(endian)));
        match name {
            b".bss" if start >= bss_start && start + size <= bss_end => {}
            b".stacks" => {}
            _ => {
                return Err(format!(
                    "section {} ({start:#x}+{size:#x}) is not in the file and not zeroed by _start",
                    String::from_utf8_lossy(name)
                ))
            }
        }
    }
    let mut image = Vec::new();
    let mut end = LOAD_ADDRESS;
    for (address, bytes, memsz) in &segments {
        if *address < end {
            return Err(format!("segments overlap at {address:#x}"));
        }
        if !bytes.is_empty() {
            image.resize((address - LOAD_ADDRESS) as usize, 0);
            image.extend_from_slice(bytes);
        }
        end = address + memsz;
    }
    Ok(image)
}

fn qemu_interactive(elf: &Path, machine: &str) -> Result<(), String> {
    run(Command::new(root().join("scripts/qemu-run")).env("JOS_MACHINE", machine).arg(elf))
}

/// README command 1: build the kernel, jos-cli and the examples, boot the emulated device with
/// `jos-cli emu start`, push the md5 example as wasm and as native and the image filter, print
/// each result, then `jos-cli emu stop` (also when a step fails).
fn demo() -> Result<(), String> {
    let elf = build_kernel("")?;
    run(Command::new(env!("CARGO")).current_dir(root()).args([
        "build",
        "--quiet",
        "--release",
        "--package",
        "jos-cli",
    ]))?;
    let cli = root().join("target/release/jos-cli");
    let work = root().join("build/demo");
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    // A JOS_HOME of its own: the demo never touches the user's keys or devices.
    let home = work.join("home");
    let jos = |args: &[&str]| -> Command {
        let mut command = Command::new(&cli);
        command.current_dir(&work).env("JOS_HOME", &home).args(args);
        command
    };
    let examples = root().join("guest-examples/c");
    let md5 = examples.join("md5.c").display().to_string();
    let filter = examples.join("imagefilter.c").display().to_string();
    println!("== jos-cli build: md5 (wasm, native) and the image filter (wasm) ==");
    run(&mut jos(&["build", &md5, "--format", "wasm", "-o", "md5.wasm"]))?;
    run(&mut jos(&["build", &md5, "--format", "native", "-o", "md5.blob"]))?;
    run(&mut jos(&["build", &filter, "--format", "wasm", "-o", "imagefilter.wasm"]))?;
    std::fs::write(work.join("md5-input.txt"), "1000 jon").map_err(|e| e.to_string())?;
    std::fs::write(work.join("picture.ppm"), demo_picture()).map_err(|e| e.to_string())?;
    println!("== jos-cli emu start: provision, boot jos on QEMU raspi0, wait for discovery ==");
    let _ = jos(&["emu", "stop"]).output();
    run(&mut jos(&["emu", "start", "--kernel", &elf.display().to_string()]))?;
    let pushes = (|| -> Result<(), String> {
        println!(
            "== jos-cli push md5.wasm: MD5 of \"jon\" computed 1000 times (host: 006cb570acdab0e0bfc8e3dcb7bb4edf) =="
        );
        run(&mut jos(&["push", "md5.wasm", "--input", "md5-input.txt"]))?;
        println!("== jos-cli push md5.blob --native ==");
        run(&mut jos(&["push", "md5.blob", "--native", "--input", "md5-input.txt"]))?;
        println!("== jos-cli push imagefilter.wasm: a 64x64 picture to grayscale (output: build/demo/gray.ppm) ==");
        let output =
            jos(&["push", "imagefilter.wasm", "--input", "picture.ppm"]).output().map_err(|e| e.to_string())?;
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        if !output.status.success() {
            return Err(format!("push imagefilter.wasm failed with {}", output.status));
        }
        std::fs::write(work.join("gray.ppm"), &output.stdout).map_err(|e| e.to_string())?;
        let header: String = String::from_utf8_lossy(&output.stdout[..output.stdout.len().min(13)])
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        println!("{} bytes, header {header}", output.stdout.len());
        Ok(())
    })();
    println!("== jos-cli emu stop ==");
    run(&mut jos(&["emu", "stop"]))?;
    pushes
}

/// A 64x64 colour gradient as a binary PPM.
fn demo_picture() -> Vec<u8> {
    let mut bytes = b"P6\n64 64\n255\n".to_vec();
    for y in 0..64u8 {
        for x in 0..64u8 {
            bytes.extend_from_slice(&[x * 4, y * 4, 128]);
        }
    }
    bytes
}

fn test() -> Result<(), String> {
    // The tail-call dispatch kernel for tests/tests/hardening_jobs.rs (its stack guard), then
    // the normal kernel, which serves every other QEMU test (deliberate faults are console
    // commands).
    build_kernel_dispatch("indirect", "")?;
    build_kernel("")?;
    // Host unit tests and the QEMU tests (crate jos-tests) in one cargo invocation; every test
    // binary runs even after one fails, so a run reports all its failures at once.
    let tests = run(Command::new(env!("CARGO")).current_dir(root()).env("JOS_BUILD_DIR", root().join("build")).args([
        "test",
        "--workspace",
        "--release",
        "--no-fail-fast",
    ]));
    // The tidiness checks run even after a failing test, so one run reports both.
    let lints = lint();
    tests.and(lints)
}

/// The checks that keep the code tidy, for each cargo workspace: the host workspace, the kernel
/// (its own workspace, built for the ARM target with build-std) and the fuzz targets.
fn lint() -> Result<(), String> {
    let cargo = |folder: &str| {
        let mut command = Command::new(env!("CARGO"));
        command.current_dir(root().join(folder)).env("RUSTDOCFLAGS", "-D warnings");
        if folder != "." {
            // The kernel's build-std and the fuzz workspace's sanitizer flags need this on the
            // pinned stable toolchain (as `build_kernel` and `cargo fuzz` do).
            command.env("RUSTC_BOOTSTRAP", "1");
        }
        command
    };
    let mut failed = Vec::new();
    for folder in [".", "kernel", "fuzz"] {
        let checks: [&[&str]; 3] = [
            &["fmt", "--all", "--check"],
            &["clippy", "--workspace", "--all-targets", "--release", "--", "-D", "warnings"],
            &["doc", "--workspace", "--no-deps", "--release"],
        ];
        for args in checks {
            // The kernel is one binary crate for a target without a test harness.
            let args: Vec<&str> = if folder == "kernel" {
                args.iter().copied().filter(|a| *a != "--all-targets").collect()
            } else {
                args.to_vec()
            };
            if let Err(message) = run(cargo(folder).args(&args)) {
                failed.push(message);
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("\n"))
    }
}

/// Builds the kernel and the Linux baseline (`bench/linux/mkinitrd.sh`), then runs `jos-bench`,
/// which writes `bench-results.json` and `docs/img/*.png`.
fn bench(args: &[String]) -> Result<(), String> {
    build_kernel("")?;
    run(&mut Command::new(root().join("bench/linux/mkinitrd.sh")))?;
    run(Command::new(env!("CARGO"))
        .current_dir(root())
        .env("JOS_BUILD_DIR", root().join("build"))
        .args(["run", "--quiet", "--release", "--package", "jos-tests", "--bin", "jos-bench", "--"])
        .args(args))
}
