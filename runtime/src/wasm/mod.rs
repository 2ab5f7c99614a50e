//! The wasm sandbox: modules checked and compiled by wasmi, run as fuel-metered, resumable jobs.
//!
//! # Entry point convention
//! A job runs the module's exported function `run` (no parameters, one `i32` result: the exit
//! value) if it has one, else `_start` (no parameters, no results: exit value 0, as WASI
//! commands). Either may end the job early with the `exit(code)` call. `Entry::Call` instead runs
//! any exported function with numeric arguments and returns its results (`jos-cli run --call`).
//! A `start` function, if the module has one, runs first, like the rest of the job: in slices,
//! within the same fuel budget and deadline (the module is rewritten so that wasmi does not run
//! it inside instantiation, see `prepare.rs`).
//!
//! # Slices
//! [`Job::step`] runs the job for at most `slice_fuel` units of fuel (one unit is about one wasm
//! instruction) and returns [`StepOutcome::Running`] when the slice is used up or
//! [`StepOutcome::Yielded`] when the job called `yield`; the next `step` resumes where it stopped
//! (wasmi's resumable calls). When the job's
//! total fuel reaches [`Limits::fuel_budget`] it ends with [`JobStatus::OutOfFuel`].

mod cache;
pub mod cost;
mod imports;
mod prepare;

pub use cache::{module_hash, module_id, ModuleCache, ModuleHash};
pub use prepare::{MAX_CONST_EXPR_DEPTH, START_EXPORT};

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::mem;

use jos_abi::signature::{verify_wasm, TrustedSigner};
use jos_abi::AbiVersion;
use wasmi::{
    CompilationMode, Config, Engine, ExternType, Func, FuncType, Memory, Module, ResourceLimiter, ResumableCall,
    ResumableCallHostTrap, ResumableCallOutOfFuel, Store, Val, ValType,
};
use wasmi_core::LimiterError;

use crate::host::{Capabilities, HeapMeter, Host};
use crate::job::{JobError, JobResult, JobStatus, LimitKind, LoadError, LogLine, Stats, StepOutcome, TrapCode, Value};

/// The name of the custom section in which a module states its ABI version: 4 bytes,
/// little-endian, `major << 16 | minor` ([`AbiVersion::to_u32`]).
pub const ABI_SECTION: &str = "jos.abi";

/// The size of one wasm page.
pub const PAGE_BYTES: u64 = 65536;

/// Settings of a [`Sandbox`] shared by all its jobs (wasmi's engine settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SandboxConfig {
    /// Deepest wasm call nesting before a job traps with [`TrapCode::StackOverflow`].
    pub max_recursion_depth: usize,
    /// Largest value stack, in 8-byte slots, before a job traps with
    /// [`TrapCode::StackOverflow`].
    pub max_stack_slots: usize,
    /// Largest module accepted, in bytes.
    pub max_module_bytes: usize,
    /// Bytes of compiled modules the cache keeps (see [`ModuleCache`]): with a [`HeapMeter`],
    /// the heap bytes compiling each retained; without one, [`ESTIMATED_BYTES_PER_MODULE_BYTE`]
    /// times its length.
    pub cache_budget_bytes: usize,
}

impl Default for SandboxConfig {
    /// Sized for a 512 MiB board: 1000 calls deep, 1 MiB of value stack, 4 MiB modules, 32 MiB
    /// of compiled modules in the cache.
    fn default() -> Self {
        Self {
            max_recursion_depth: 1000,
            max_stack_slots: 128 * 1024,
            max_module_bytes: 4 * 1024 * 1024,
            cache_budget_bytes: 32 * 1024 * 1024,
        }
    }
}

/// The cost a cached module is charged per byte of its length when no [`HeapMeter`] measures
/// what compiling it took (typical code compiles to 2 to 7 times its size in wasmi 2.0).
pub const ESTIMATED_BYTES_PER_MODULE_BYTE: usize = 4;

/// The most heap bytes compiling one byte of a module may take, with a margin: what the
/// [`HeapMeter`] must make available before a module is compiled (compilation cannot fail
/// gracefully). Measured on the device (QEMU) with wasmi 2.0, bytes kept per module byte:
/// ordinary code about 2, element segments 13, empty data segments 16, empty functions 23,
/// `br_table` targets (one byte each) 38, the worst found; while compiling, the peak is about
/// 1.2 times what is kept (measured on the host). docs/runtime.md "Memory".
pub const MAX_BYTES_PER_MODULE_BYTE: usize = 64;

/// The limits of one job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory pages (64 KiB each) over all memories; `memory.grow` past it returns -1 and a
    /// module whose initial memory is larger is refused.
    pub max_memory_pages: u32,
    /// Elements over all tables; `table.grow` past it returns -1.
    pub max_table_elements: u32,
    /// Instances per job (the job's own module counts as one).
    pub max_instances: u32,
    /// Tables per job.
    pub max_tables: u32,
    /// Memories per job.
    pub max_memories: u32,
    /// Output bytes; a write past it returns `-LimitExceeded` and the job ends with
    /// [`JobStatus::LimitExceeded`].
    pub max_output_bytes: usize,
    /// Log bytes in all; lines past it are dropped (counted in [`Stats::logs_dropped`]). Each
    /// line is cut at `jos_abi::job::MAX_LOG_LINE_LEN` ([`crate::job::log_line`]).
    pub max_log_bytes: usize,
    /// Total fuel (about one unit per wasm instruction), including the start function.
    pub fuel_budget: u64,
    /// Wall-clock deadline after the job's creation, in microseconds of [`Host::time_us`],
    /// checked at each slice boundary.
    pub deadline_us: Option<u64>,
}

impl Default for Limits {
    /// 16 MiB of memory, 10 000 table elements, one instance, 1 MiB of output (a job run on a
    /// device gets at most `jos_abi::job::MAX_OUTPUT_LEN`: [`Limits::with_request`]), 64 KiB of
    /// logs, 10^10 fuel, no deadline.
    fn default() -> Self {
        Self {
            max_memory_pages: 256,
            max_table_elements: 10_000,
            max_instances: 1,
            max_tables: 1,
            max_memories: 1,
            max_output_bytes: 1024 * 1024,
            max_log_bytes: 64 * 1024,
            fuel_budget: 10_000_000_000,
            deadline_us: None,
        }
    }
}

impl Limits {
    /// These limits with a job's requested limits applied (a device caps the request by its
    /// policy first, with `jos_abi::job::Limits::capped_by`): the non-zero fuel and deadline
    /// (ms); memory by `jos_abi::job::Limits::memory_pages` (bytes rounded down to whole pages,
    /// at least one); output by `jos_abi::job::Limits::output_cap` (at most
    /// `jos_abi::job::MAX_OUTPUT_LEN`). The one place a request becomes sandbox limits.
    pub fn with_request(self, request: &jos_abi::job::Limits) -> Limits {
        let mut limits = self;
        if request.fuel != 0 {
            limits.fuel_budget = request.fuel;
        }
        if let Some(pages) = request.memory_pages() {
            limits.max_memory_pages = pages;
        }
        if request.deadline_ms != 0 {
            limits.deadline_us = Some(u64::from(request.deadline_ms) * 1000);
        }
        limits.max_output_bytes = request.output_cap();
        limits
    }
}

/// Which function a job runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// `run` or `_start` (see the module documentation).
    Default,
    /// An exported function with these arguments; its results land in [`JobResult::values`].
    Call {
        /// The export's name.
        name: String,
        /// The arguments, matching the function's parameters in number and type.
        args: Vec<Value>,
    },
}

/// A module that passed every load check, ready to instantiate. Cheap to clone.
#[derive(Clone, Debug)]
pub struct CompiledModule {
    module: Module,
    hash: ModuleHash,
    abi: Option<AbiVersion>,
    has_start: bool,
    cost: usize,
}

impl CompiledModule {
    /// The module's identity ([`module_id`]): the SHA-256 of its bytes after the preamble and
    /// the signature section.
    pub fn hash(&self) -> &ModuleHash {
        &self.hash
    }

    /// What the module costs in the cache: the heap bytes compiling it retained (measured by the
    /// sandbox's [`HeapMeter`]), or an estimate from its length.
    pub fn cost(&self) -> usize {
        self.cost
    }

    /// Whether the module has a start function (run as the first part of every job).
    pub fn has_start(&self) -> bool {
        self.has_start
    }

    /// The ABI version the module states in its `jos.abi` section, if it has one.
    pub fn abi(&self) -> Option<AbiVersion> {
        self.abi
    }
}

/// The wasmi configuration jos runs modules with: fuel metering on, the stack limits of `config`,
/// the proposals of WebAssembly 2.0 (minus SIMD, which is not compiled in) plus tail calls and
/// extended constant expressions, validation and translation eager: wasmi cannot resume a call
/// that runs out of fuel while lazily translating a callee (it returns a plain out-of-fuel error
/// and the job would be lost mid-way; wasmi-labs/wasmi#2032), so every function is translated
/// at load, where it costs no job fuel. Custom sections are skipped (the sandbox reads
/// `jos.abi` itself).
pub fn engine_config(config: &SandboxConfig) -> Config {
    let mut wasmi = Config::default();
    wasmi
        .consume_fuel(true)
        .set_max_recursion_depth(config.max_recursion_depth)
        .set_max_stack_height(config.max_stack_slots)
        .compilation_mode(CompilationMode::Eager)
        // Custom sections are read before wasmi sees the module (`prepare`: `jos.abi`); wasmi
        // would keep a copy of each for the module's life.
        .ignore_custom_sections(true)
        .wasm_multi_memory(false)
        .wasm_custom_page_sizes(false)
        .wasm_wide_arithmetic(false);
    wasmi
}

/// Compiles modules (through the cache) and starts jobs.
///
/// Each module is compiled into a wasmi engine of its own. wasmi's engine keeps the compiled code
/// of every module it ever compiled until the engine itself is dropped (its code map only grows),
/// so with one engine for all, evicted modules would never give their memory back. The engine
/// of a module is dropped with the module's last user (the cache entry, a running job), and its
/// memory with it. An engine costs about 600 bytes beside the code.
pub struct Sandbox {
    engine_config: Config,
    config: SandboxConfig,
    cache: ModuleCache<CompiledModule>,
    meter: Option<&'static dyn HeapMeter>,
}

impl Sandbox {
    /// A sandbox with these settings.
    pub fn new(config: SandboxConfig) -> Self {
        Self {
            engine_config: engine_config(&config),
            config,
            cache: ModuleCache::new(config.cache_budget_bytes),
            meter: None,
        }
    }

    /// Makes the sandbox heed the device's heap (see [`HeapMeter`]): jobs it starts cannot grow
    /// their memory, tables or value stack into what the device keeps, a module is compiled only
    /// if the worst case of what that takes ([`MAX_BYTES_PER_MODULE_BYTE`]) is available (least
    /// recently used modules are evicted first to make room), and each cached module costs the
    /// heap bytes compiling it retained.
    pub fn set_heap_meter(&mut self, meter: Option<&'static dyn HeapMeter>) {
        self.meter = meter;
    }

    /// The settings.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// The module cache.
    pub fn cache(&self) -> &ModuleCache<CompiledModule> {
        &self.cache
    }

    /// A module from the cache by its identity ([`module_id`]).
    pub fn cached(&mut self, hash: &ModuleHash) -> Option<CompiledModule> {
        self.cache.get(hash)
    }

    /// Checks and compiles `bytes` (or finds a module of the same identity, [`module_id`], in
    /// the cache): size, constant expressions ([`MAX_CONST_EXPR_DEPTH`]), wasm validity, the
    /// `jos.abi` section, and every import against the syscall table.
    pub fn compile(&mut self, bytes: &[u8]) -> Result<CompiledModule, LoadError> {
        if bytes.len() > self.config.max_module_bytes {
            return Err(LoadError::Limit(LimitKind::ModuleSize));
        }
        self.compile_as(bytes, module_id(bytes))
    }

    /// [`Sandbox::compile`] for a module whose identity is known (`hash`).
    fn compile_as(&mut self, bytes: &[u8], hash: ModuleHash) -> Result<CompiledModule, LoadError> {
        if let Some(module) = self.cache.get(&hash) {
            return Ok(module);
        }
        self.make_room(bytes.len())?;
        let prepared = prepare::prepare(bytes)?;
        let used_before = self.meter.map(|meter| meter.used());
        let engine = Engine::new(&self.engine_config);
        let module = Module::new(&engine, prepared.rewritten.as_deref().unwrap_or(bytes))
            .map_err(|error| LoadError::Malformed(error.to_string()))?;
        let (has_start, abi) = (prepared.has_start, prepared.abi);
        drop(prepared);
        let cost = match (self.meter, used_before) {
            (Some(meter), Some(before)) => meter.used().saturating_sub(before),
            _ => bytes.len().saturating_mul(ESTIMATED_BYTES_PER_MODULE_BYTE),
        };
        for import in module.imports() {
            imports::check_import(import.module(), import.name(), import.ty())?;
        }
        let compiled = CompiledModule { module, hash, abi, has_start, cost };
        self.cache.insert(hash, compiled.clone(), cost);
        Ok(compiled)
    }

    /// Evicts least recently used modules until compiling `len` more bytes is safe for the
    /// device ([`MAX_BYTES_PER_MODULE_BYTE`]); `LimitKind::DeviceMemory` if even an empty cache
    /// does not leave enough. Without a meter there is nothing to check.
    fn make_room(&mut self, len: usize) -> Result<(), LoadError> {
        let Some(meter) = self.meter else { return Ok(()) };
        let needed = len.saturating_mul(MAX_BYTES_PER_MODULE_BYTE);
        while meter.available() < needed {
            if !self.cache.evict_oldest() {
                return Err(LoadError::Limit(LimitKind::DeviceMemory));
            }
        }
        Ok(())
    }

    /// Verifies the module's `signature` section (WebAssembly tool-conventions format; the
    /// signer needs the `wasm` right) and then compiles it like [`Sandbox::compile`] (a module
    /// of the same identity in the cache is not compiled again). Returns the module and the
    /// index in `signers` of the key that signed it.
    pub fn compile_signed(
        &mut self,
        bytes: &[u8],
        signers: &[TrustedSigner],
    ) -> Result<(CompiledModule, usize), LoadError> {
        if bytes.len() > self.config.max_module_bytes {
            return Err(LoadError::Limit(LimitKind::ModuleSize));
        }
        let verified = verify_wasm(bytes, signers).map_err(LoadError::Signature)?;
        // The signed content's SHA-256 is the module's identity (`module_id`).
        Ok((self.compile_as(bytes, verified.content_hash)?, verified.signer))
    }

    /// Creates a job that runs `entry` of `module` on `host`. Instantiation happens here (the
    /// start function runs in the job's first slices); a job that cannot start is returned
    /// already finished, so the first [`Job::step`] reports why.
    pub fn start<H: Host + 'static>(
        &self,
        module: &CompiledModule,
        host: H,
        limits: Limits,
        capabilities: Capabilities,
        entry: Entry,
    ) -> Job<H> {
        Job::new(module, host, limits, capabilities, entry, self.meter)
    }

    /// Compiles and runs a job to its end in slices of `slice_fuel`; returns the result and the
    /// host.
    pub fn run<H: Host + 'static>(
        &mut self,
        bytes: &[u8],
        host: H,
        limits: Limits,
        capabilities: Capabilities,
        entry: Entry,
        slice_fuel: u64,
    ) -> (JobResult, H) {
        let module = match self.compile(bytes) {
            Ok(module) => module,
            Err(error) => return (JobResult::rejected(error), host),
        };
        let mut job = self.start(&module, host, limits, capabilities, entry);
        loop {
            if let StepOutcome::Finished(result) = job.step(slice_fuel) {
                return (result, job.into_host());
            }
        }
    }
}

/// Tracks linear memory and enforces the job's limits on memories and tables, and the device's
/// free heap when the sandbox has a [`HeapMeter`].
struct JobLimiter {
    max_memory_bytes: usize,
    max_table_elements: usize,
    instances: usize,
    tables: usize,
    memories: usize,
    memory_bytes: usize,
    /// The capacity of the buffer wasmi holds the linear memory in (see [`JobLimiter::fresh_bytes`]).
    memory_capacity: usize,
    /// `memory_bytes` and `memory_capacity` before the growth now being tried (restored if it fails).
    before_growth: (usize, usize),
    peak_memory_bytes: usize,
    refused: Option<LimitKind>,
    meter: Option<&'static dyn HeapMeter>,
}

/// Bytes per table element wasmi allocates (a reference), rounded up.
const TABLE_ELEMENT_BYTES: usize = 16;

impl JobLimiter {
    /// The heap bytes wasmi 2.0 asks for, as one new block while the old one is still held, when
    /// a linear memory of `current` bytes grows to `desired`: its buffer is a `Vec<u8>` created
    /// with exactly the initial size and grown with `try_reserve`, which at least doubles the
    /// capacity (`wasmi_core::memory::ByteBuffer`).
    fn fresh_bytes(&self, current: usize, desired: usize) -> usize {
        if current == 0 {
            desired
        } else if desired <= self.memory_capacity {
            0
        } else {
            desired.max(self.memory_capacity.saturating_mul(2))
        }
    }

    /// Whether the device can give `bytes` more bytes to the job.
    fn device_allows(&self, bytes: usize) -> bool {
        bytes == 0 || self.meter.is_none_or(|meter| bytes <= meter.available())
    }
}

impl ResourceLimiter for JobLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> Result<bool, LimiterError> {
        let total = self.memory_bytes.saturating_sub(current).saturating_add(desired);
        if total > self.max_memory_bytes || maximum.is_some_and(|maximum| desired > maximum) {
            self.refused = Some(LimitKind::MemoryPages);
            return Ok(false);
        }
        let fresh = self.fresh_bytes(current, desired);
        if !self.device_allows(fresh) {
            self.refused = Some(LimitKind::DeviceMemory);
            return Ok(false);
        }
        self.before_growth = (self.memory_bytes, self.memory_capacity);
        if fresh != 0 {
            self.memory_capacity = fresh;
        }
        self.memory_bytes = total;
        self.peak_memory_bytes = self.peak_memory_bytes.max(total);
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: &wasmi::errors::MemoryError) -> Result<(), LimiterError> {
        // The allocation failed after all (the heap's free bytes were not in one piece).
        (self.memory_bytes, self.memory_capacity) = self.before_growth;
        self.refused = Some(LimitKind::DeviceMemory);
        Ok(())
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> Result<bool, LimiterError> {
        if desired > self.max_table_elements || maximum.is_some_and(|maximum| desired > maximum) {
            self.refused = Some(LimitKind::TableElements);
            return Ok(false);
        }
        // Like linear memory, a table is a vector grown with `try_reserve`: count it doubling.
        let fresh = desired.max(current.saturating_mul(2)).saturating_mul(TABLE_ELEMENT_BYTES);
        if !self.device_allows(fresh) {
            self.refused = Some(LimitKind::DeviceMemory);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_grow_failed(&mut self, _error: &wasmi::errors::TableError) -> Result<(), LimiterError> {
        self.refused = Some(LimitKind::DeviceMemory);
        Ok(())
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.tables
    }

    fn memories(&self) -> usize {
        self.memories
    }
}

/// What a running job's host functions see.
pub(crate) struct JobState<H> {
    pub(crate) host: H,
    pub(crate) capabilities: Capabilities,
    pub(crate) limits: Limits,
    pub(crate) output: Vec<u8>,
    pub(crate) output_overflow: bool,
    pub(crate) logs: Vec<LogLine>,
    pub(crate) log_bytes: usize,
    pub(crate) logs_dropped: u32,
    /// The job's fuel as host calls see it in the current slice.
    pub(crate) meter: imports::Meter,
    /// Work a host call left for the next slices.
    pub(crate) pending: Option<imports::Pending>,
    limiter: JobLimiter,
}

/// How a job's function results become a [`JobResult`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ResultShape {
    /// `run`: one i32, the exit value.
    Run,
    /// `_start`: nothing, exit value 0.
    Start,
    /// `call`: the values.
    Call,
}

enum Phase {
    /// The start function, then the entry, are still to be called.
    NotStarted(Func),
    OutOfFuel(ResumableCallOutOfFuel),
    Yielded(ResumableCallHostTrap),
    /// A host call has work left ([`JobState::pending`]) before it returns.
    HostWork(ResumableCallHostTrap),
    Done(JobResult),
    /// Only while a step is in progress.
    Stepping,
}

/// A wasm job: an instance in its own store, run slice by slice with [`Job::step`].
pub struct Job<H: 'static> {
    store: Store<JobState<H>>,
    phase: Phase,
    /// The entry function and its name, while the start function runs first.
    entry: Option<(Func, String)>,
    /// The job's exported memory (for host work done between slices).
    memory: Option<Memory>,
    function: String,
    shape: ResultShape,
    params: Vec<Val>,
    results: Vec<Val>,
    budget: u64,
    fuel_used: u64,
    required_fuel: u64,
    slices: u64,
    started_us: u64,
}

fn zero(ty: ValType) -> Val {
    Val::default_for_ty(ty)
}

fn to_val(value: Value) -> Val {
    match value {
        Value::I32(v) => Val::I32(v),
        Value::I64(v) => Val::I64(v),
        Value::F32(v) => Val::F32(v.into()),
        Value::F64(v) => Val::F64(v.into()),
    }
}

/// An i64 argument slot read as a parameter of type `ty` (`jos_abi::job::Value`):
/// i32 and f32 from the low 32 bits, f64 from the IEEE bits.
fn from_slot(bits: i64, ty: &ValType) -> Val {
    match ty {
        ValType::I32 => Val::I32(bits as u32 as i32),
        ValType::F32 => Val::F32(f32::from_bits(bits as u32).into()),
        ValType::F64 => Val::F64(f64::from_bits(bits as u64).into()),
        _ => Val::I64(bits),
    }
}

fn from_val(value: &Val) -> Option<Value> {
    Some(match value {
        Val::I32(v) => Value::I32(*v),
        Val::I64(v) => Value::I64(*v),
        Val::F32(v) => Value::F32(v.to_float()),
        Val::F64(v) => Value::F64(v.to_float()),
        _ => return None,
    })
}

fn is_numeric(ty: &ValType) -> bool {
    matches!(ty, ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64)
}

fn trap_code(code: wasmi::TrapCode) -> TrapCode {
    use wasmi::TrapCode as W;
    match code {
        W::UnreachableCodeReached => TrapCode::Unreachable,
        W::MemoryOutOfBounds => TrapCode::MemoryOutOfBounds,
        W::TableOutOfBounds => TrapCode::TableOutOfBounds,
        W::IndirectCallToNull => TrapCode::IndirectCallToNull,
        W::IntegerDivisionByZero => TrapCode::IntegerDivisionByZero,
        W::IntegerOverflow => TrapCode::IntegerOverflow,
        W::BadConversionToInteger => TrapCode::BadConversionToInteger,
        W::StackOverflow => TrapCode::StackOverflow,
        W::BadSignature => TrapCode::BadSignature,
        W::GrowthOperationLimited => TrapCode::GrowthOperationLimited,
        _ => TrapCode::Other,
    }
}

/// Finds the function `entry` names and checks its type.
fn resolve_entry(
    module: &Module,
    has_start: bool,
    entry: &Entry,
) -> Result<(String, ResultShape, Vec<Val>), LoadError> {
    let func_type = |name: &str| -> Option<FuncType> {
        match module.get_export(name) {
            Some(ExternType::Func(ty)) => Some(ty),
            _ => None,
        }
    };
    match entry {
        Entry::Default => {
            if let Some(ty) = func_type("run") {
                if !ty.params().is_empty() || ty.results() != [ValType::I32] {
                    return Err(LoadError::EntrySignature("run must take nothing and return i32".into()));
                }
                Ok(("run".into(), ResultShape::Run, Vec::new()))
            } else if let Some(ty) = func_type("_start") {
                if !ty.params().is_empty() || !ty.results().is_empty() {
                    return Err(LoadError::EntrySignature("_start must take and return nothing".into()));
                }
                Ok(("_start".into(), ResultShape::Start, Vec::new()))
            } else {
                Err(LoadError::MissingEntry("run or _start".into()))
            }
        }
        Entry::Call { name, args } => {
            // The start function is not an entry (when the module has one, it already runs first).
            if name == START_EXPORT && has_start {
                return Err(LoadError::MissingEntry(name.clone()));
            }
            let ty = func_type(name).ok_or_else(|| LoadError::MissingEntry(name.clone()))?;
            if !ty.params().iter().chain(ty.results()).all(is_numeric) {
                return Err(LoadError::EntrySignature(alloc::format!("{name} has non-numeric parameters or results")));
            }
            // An offload Invoke carries each argument as an i64 slot holding the value's bits
            // (`jos_abi::wire::call`): an `I64` argument takes the parameter's type.
            let params: Vec<Val> = args
                .iter()
                .enumerate()
                .map(|(index, value)| match (value, ty.params().get(index)) {
                    (Value::I64(bits), Some(param)) => from_slot(*bits, param),
                    _ => to_val(*value),
                })
                .collect();
            let types_match =
                params.len() == ty.params().len() && params.iter().zip(ty.params()).all(|(v, t)| v.ty() == *t);
            if !types_match {
                return Err(LoadError::BadArguments(alloc::format!(
                    "{name} takes {} argument(s) of types {:?}",
                    ty.params().len(),
                    ty.params()
                )));
            }
            Ok((name.clone(), ResultShape::Call, params))
        }
    }
}

impl<H: Host + 'static> Job<H> {
    fn new(
        module: &CompiledModule,
        host: H,
        limits: Limits,
        capabilities: Capabilities,
        entry: Entry,
        meter: Option<&'static dyn HeapMeter>,
    ) -> Self {
        let started_us = host.time_us();
        let limiter = JobLimiter {
            max_memory_bytes: (u64::from(limits.max_memory_pages) * PAGE_BYTES).try_into().unwrap_or(usize::MAX),
            max_table_elements: limits.max_table_elements as usize,
            instances: limits.max_instances as usize,
            tables: limits.max_tables as usize,
            memories: limits.max_memories as usize,
            memory_bytes: 0,
            memory_capacity: 0,
            before_growth: (0, 0),
            peak_memory_bytes: 0,
            refused: None,
            meter,
        };
        let state = JobState {
            host,
            capabilities,
            limits,
            output: Vec::new(),
            output_overflow: false,
            logs: Vec::new(),
            log_bytes: 0,
            logs_dropped: 0,
            meter: imports::Meter::default(),
            pending: None,
            limiter,
        };
        // The store uses the module's own engine (see `Sandbox`).
        let mut store = Store::new(module.module.engine(), state);
        store.limiter(|state| &mut state.limiter);
        let mut job = Job {
            store,
            phase: Phase::Stepping,
            entry: None,
            memory: None,
            function: String::new(),
            shape: ResultShape::Run,
            params: Vec::new(),
            results: Vec::new(),
            budget: limits.fuel_budget,
            fuel_used: 0,
            required_fuel: 0,
            slices: 0,
            started_us,
        };
        // Instantiating allocates the instance's functions, globals, segments and tables, which
        // cannot fail gracefully: at most twice what compiling the module kept (measured as
        // its cost when the sandbox has a meter), so that much must be available.
        if meter.is_some_and(|meter| meter.available() < module.cost.saturating_mul(2)) {
            job.phase = Phase::Done(job.reject(LoadError::Limit(LimitKind::DeviceMemory)));
            return job;
        }
        job.phase = match job.instantiate(module, &entry) {
            Ok(func) => Phase::NotStarted(func),
            Err(result) => Phase::Done(result),
        };
        job
    }

    /// Instantiates the module (its start function does not run here: [`prepare`] made it an
    /// export) and returns the first function to call: the start function if there is one,
    /// else the entry.
    #[allow(clippy::result_large_err, reason = "called once per job; the error is the job's final result")]
    fn instantiate(&mut self, compiled: &CompiledModule, entry: &Entry) -> Result<Func, JobResult> {
        let module = &compiled.module;
        let (function, shape, params) =
            resolve_entry(module, compiled.has_start, entry).map_err(|error| self.reject(error))?;
        let linker = imports::link::<H>(module.engine(), module).map_err(|error| self.reject(error))?;
        let instantiated = linker.instantiate_and_start(&mut self.store, module);
        let instance = match instantiated {
            Ok(instance) => instance,
            Err(error) => {
                if let Some(kind) = self.store.data().limiter.refused {
                    return Err(self.reject(LoadError::Limit(kind)));
                }
                return Err(self.reject(LoadError::Instantiation(error.to_string())));
            }
        };
        let func = instance
            .get_func(&self.store, &function)
            .ok_or_else(|| self.reject(LoadError::MissingEntry(function.clone())))?;
        self.results = func.ty(&self.store).results().iter().copied().map(zero).collect();
        self.memory = instance.get_memory(&self.store, "memory");
        self.shape = shape;
        self.params = params;
        if compiled.has_start {
            let start = instance
                .get_func(&self.store, START_EXPORT)
                .ok_or_else(|| self.reject(LoadError::Instantiation("start function not found".into())))?;
            // Traps name `start` until the start function returns (then the entry's name).
            self.function = "start".into();
            self.entry = Some((func, function));
            return Ok(start);
        }
        self.function = function;
        Ok(func)
    }

    fn reject(&mut self, error: LoadError) -> JobResult {
        let mut result = JobResult::rejected(error);
        result.stats = self.stats();
        result
    }

    fn stats(&self) -> Stats {
        let state = self.store.data();
        let time_us = state.host.time_us().saturating_sub(self.started_us);
        Stats {
            fuel_used: self.fuel_used,
            time_us,
            // True of a job run in one go; a caller that interleaves the job's slices with other
            // work (the offload server) reports the sum of its slices instead.
            cpu_us: time_us,
            peak_memory_bytes: state.limiter.peak_memory_bytes as u64,
            slices: self.slices,
            logs_dropped: state.logs_dropped,
            // wasm jobs are measured in fuel; no cycle counter is read per slice.
            cycles: 0,
            engine: crate::job::Engine::WasmInterpreter,
        }
    }

    fn finish(&mut self, status: JobStatus, error: Option<JobError>, exit_value: Option<i32>) -> JobResult {
        let (status, error) = match status {
            JobStatus::Ok if self.store.data().output_overflow => {
                (JobStatus::LimitExceeded, Some(JobError::Limit(LimitKind::Output)))
            }
            _ => (status, error),
        };
        let values = match (status, self.shape) {
            (JobStatus::Ok, ResultShape::Call) if exit_value.is_none() => {
                self.results.iter().filter_map(from_val).collect()
            }
            _ => Vec::new(),
        };
        let stats = self.stats();
        let state = self.store.data_mut();
        JobResult {
            status,
            error,
            exit_value: if status == JobStatus::Ok { exit_value } else { None },
            values,
            output: mem::take(&mut state.output),
            logs: mem::take(&mut state.logs),
            stats,
        }
    }

    fn finish_ok(&mut self) -> JobResult {
        let exit_value = match self.shape {
            ResultShape::Run => match self.results.first() {
                Some(Val::I32(value)) => Some(*value),
                _ => None,
            },
            ResultShape::Start => Some(0),
            ResultShape::Call => None,
        };
        self.finish(JobStatus::Ok, None, exit_value)
    }

    /// Maps a wasmi error that ended the call to a result.
    fn finish_with_error(&mut self, error: wasmi::Error) -> JobResult {
        if let Some(code) = error.i32_exit_status() {
            return self.finish(JobStatus::Ok, None, Some(code));
        }
        match error.as_trap_code() {
            // The value stack could not grow: the device's heap, not a bug of the job.
            Some(wasmi::TrapCode::OutOfSystemMemory) => {
                self.finish(JobStatus::LimitExceeded, Some(JobError::Limit(LimitKind::DeviceMemory)), None)
            }
            Some(wasmi::TrapCode::OutOfFuel) => {
                self.fuel_used = self.budget;
                self.finish(JobStatus::OutOfFuel, Some(JobError::OutOfFuel { budget: self.budget }), None)
            }
            Some(code) => {
                let error = JobError::Trap { code: trap_code(code), function: self.function.clone() };
                self.finish(JobStatus::Trap, Some(error), None)
            }
            None => self.finish(JobStatus::Trap, Some(JobError::Host(error.to_string())), None),
        }
    }

    /// Runs the job for at most `slice_fuel` fuel (at least what the next instruction needs,
    /// at most what is left of the budget). Returns [`StepOutcome::Running`] if the slice's fuel
    /// ran out, [`StepOutcome::Yielded`] if the job called `yield`, [`StepOutcome::Finished`]
    /// when it ended (also on every later call).
    pub fn step(&mut self, slice_fuel: u64) -> StepOutcome {
        let phase = mem::replace(&mut self.phase, Phase::Stepping);
        if let Phase::Done(result) = phase {
            self.phase = Phase::Done(result.clone());
            return StepOutcome::Finished(result);
        }
        let result = self.step_phase(phase, slice_fuel);
        match result {
            Some(result) => {
                self.phase = Phase::Done(result.clone());
                StepOutcome::Finished(result)
            }
            None => {
                self.store.data_mut().host.on_yield();
                if matches!(self.phase, Phase::Yielded(_)) {
                    StepOutcome::Yielded
                } else {
                    StepOutcome::Running
                }
            }
        }
    }

    fn step_phase(&mut self, phase: Phase, slice_fuel: u64) -> Option<JobResult> {
        let now = self.store.data().host.time_us();
        if let Some(limit_us) = self.store.data().limits.deadline_us {
            if now.saturating_sub(self.started_us) > limit_us {
                return Some(self.finish(JobStatus::Deadline, Some(JobError::Deadline { limit_us }), None));
            }
        }
        let left = self.budget.saturating_sub(self.fuel_used);
        if left == 0 || left < self.required_fuel {
            self.fuel_used = self.budget;
            return Some(self.finish(JobStatus::OutOfFuel, Some(JobError::OutOfFuel { budget: self.budget }), None));
        }
        let given = slice_fuel.max(self.required_fuel).max(1).min(left);
        if let Err(error) = self.store.set_fuel(given) {
            return Some(self.finish(JobStatus::Trap, Some(JobError::Host(error.to_string())), None));
        }
        self.store.data_mut().meter = imports::Meter { left_at_slice: left, given, extra: 0 };
        self.slices += 1;
        // The start function takes and returns nothing.
        let in_start = self.entry.is_some();
        let (params, results): (&[Val], &mut [Val]) =
            if in_start { (&[], &mut []) } else { (&self.params, &mut self.results) };
        let outcome = match phase {
            Phase::NotStarted(func) => func.call_resumable(&mut self.store, params, results),
            Phase::OutOfFuel(call) => call.resume(&mut self.store, results),
            Phase::Yielded(call) => call.resume(&mut self.store, &[Val::I32(0)], results),
            Phase::HostWork(call) => match Self::host_work(&mut self.store, self.memory) {
                Some(value) => call.resume(&mut self.store, &[Val::I32(value)], results),
                None => {
                    self.account(given);
                    self.required_fuel = 0;
                    self.phase = Phase::HostWork(call);
                    return None;
                }
            },
            Phase::Done(_) | Phase::Stepping => unreachable!("step handles these"),
        };
        self.account(given);
        match outcome {
            Ok(ResumableCall::Finished) if in_start => {
                // The start function returned: the entry runs from the next slice on.
                let (func, name) = self.entry.take().expect("in_start");
                self.function = name;
                self.required_fuel = 0;
                self.phase = Phase::NotStarted(func);
                None
            }
            Ok(ResumableCall::Finished) => Some(self.finish_ok()),
            Ok(ResumableCall::OutOfFuel(call)) => {
                self.required_fuel = call.required_fuel();
                if self.fuel_used >= self.budget || self.budget - self.fuel_used < self.required_fuel {
                    self.fuel_used = self.budget;
                    return Some(self.finish(
                        JobStatus::OutOfFuel,
                        Some(JobError::OutOfFuel { budget: self.budget }),
                        None,
                    ));
                }
                self.phase = Phase::OutOfFuel(call);
                None
            }
            Ok(ResumableCall::HostTrap(call)) => {
                let error = call.host_error();
                if error.downcast_ref::<imports::YieldSignal>().is_some() {
                    self.required_fuel = 0;
                    self.phase = Phase::Yielded(call);
                    None
                } else if error.downcast_ref::<imports::HostWork>().is_some() {
                    self.required_fuel = 0;
                    self.phase = Phase::HostWork(call);
                    None
                } else {
                    Some(self.finish_with_error(call.into_host_error()))
                }
            }
            Err(error) => Some(self.finish_with_error(error)),
        }
    }

    /// Ends the job with `Trap` ([`TrapCode::StackOverflow`]) after its platform cut a slice
    /// short because the native stack the interpreter ran on was exhausted (the kernel runs each
    /// slice on a stack of its own above a guard page, docs/runtime.md "Dispatch features"). The
    /// interrupted slice's state is abandoned, never resumed: the result keeps the output and
    /// logs written so far, plus an error line saying why; later [`Job::step`] calls give it again.
    pub fn end_stack_exhausted(&mut self) -> JobResult {
        let error = JobError::Trap { code: TrapCode::StackOverflow, function: self.function.clone() };
        let mut result = self.finish(JobStatus::Trap, Some(error), None);
        result.logs.push(crate::job::log_line(
            jos_abi::syscall::LogLevel::Error,
            b"native stack exhausted: the interpreter's frames reached the job stack's guard page",
        ));
        self.phase = Phase::Done(result.clone());
        result
    }

    /// Adds what the slice used (the store's fuel and what host calls charged beyond it) to
    /// the job's fuel.
    fn account(&mut self, given: u64) {
        let remaining = self.store.get_fuel().unwrap_or(0);
        let extra = mem::take(&mut self.store.data_mut().meter.extra);
        self.fuel_used =
            self.fuel_used.saturating_add(given.saturating_sub(remaining)).saturating_add(extra).min(self.budget);
    }

    /// Does the part of the pending host work ([`JobState::pending`]) the slice's fuel pays for
    /// (at least one byte, so that it always moves on); returns the call's result once it is
    /// done. Its whole cost was found affordable when the call was made.
    fn host_work(store: &mut Store<JobState<H>>, memory: Option<Memory>) -> Option<i32> {
        let fuel = store.get_fuel().unwrap_or(0);
        let Some(memory) = memory else { return Some(jos_abi::ErrorCode::BadAddress.to_return()) };
        let (bytes, state) = memory.data_and_store_mut(&mut *store);
        let Some(imports::Pending::Random { at, end }) = state.pending.take() else { return Some(0) };
        let end = end.min(bytes.len());
        let count =
            usize::try_from(fuel / cost::RANDOM_PER_BYTE).unwrap_or(usize::MAX).max(1).min(end.saturating_sub(at));
        let charged = count as u64 * cost::RANDOM_PER_BYTE;
        let from_store = charged.min(fuel);
        state.meter.extra += charged - from_store;
        let filled = state.host.random(&mut bytes[at..at + count]);
        let done = match filled {
            Err(code) => Some(code.to_return()),
            Ok(()) if at + count >= end => Some(0),
            Ok(()) => {
                state.pending = Some(imports::Pending::Random { at: at + count, end });
                None
            }
        };
        // Cannot fail: fuel metering is on for every job.
        let _ = store.set_fuel(fuel - from_store);
        done
    }

    /// Fuel used so far.
    pub fn fuel_used(&self) -> u64 {
        self.fuel_used
    }

    /// The host, for inspection while the job runs.
    pub fn host(&self) -> &H {
        &self.store.data().host
    }

    /// Ends the job and gives the host back.
    pub fn into_host(self) -> H {
        self.store.into_data().host
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_limits_are_sane() {
        let limits = Limits::default();
        assert!(jos_abi::job::MAX_LOG_LINE_LEN <= limits.max_log_bytes);
        assert_eq!(limits.max_instances, 1);
        let config = SandboxConfig::default();
        assert!(config.max_module_bytes <= config.cache_budget_bytes);
    }

    #[test]
    fn requests_apply_non_zero_fields_by_the_job_rules() {
        let base = Limits::default();
        // Zero fields keep the sandbox's limits, but a job run for a request never outputs more
        // than a result carries.
        let output = jos_abi::job::MAX_OUTPUT_LEN;
        assert_eq!(base.with_request(&jos_abi::job::Limits::default()), Limits { max_output_bytes: output, ..base });
        let request = jos_abi::job::Limits { fuel: 5, memory: 2 * 65536 - 1, deadline_ms: 3, output: 1 << 20 };
        let limits = base.with_request(&request);
        assert_eq!(limits.fuel_budget, 5);
        assert_eq!(limits.max_memory_pages, 1);
        assert_eq!(limits.deadline_us, Some(3000));
        assert_eq!(limits.max_output_bytes, jos_abi::job::MAX_OUTPUT_LEN);
        assert_eq!(limits.max_log_bytes, base.max_log_bytes);
    }

    #[test]
    fn wasmi_trap_codes_map_one_to_one() {
        use wasmi::TrapCode as W;
        assert_eq!(trap_code(W::UnreachableCodeReached), TrapCode::Unreachable);
        assert_eq!(trap_code(W::StackOverflow), TrapCode::StackOverflow);
        assert_eq!(trap_code(W::BadSignature), TrapCode::BadSignature);
        assert_eq!(trap_code(W::IntegerDivisionByZero) as u32, 5);
    }
}
