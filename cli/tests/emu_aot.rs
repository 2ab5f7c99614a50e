//! Ahead-of-time compiled wasm on the emulated device (one QEMU boot, `jos-cli emu start`), as a
//! user meets it: `jos-cli push FILE.wasm --aot` compiles, signs and pushes the blob; the device
//! runs it as a native job in user mode.
//!
//! - A representative subset of the spec's semantics, as small modules whose `run` writes what it
//!   computes into its output: integer arithmetic over edge operands (i32 and i64, division,
//!   shifts, rotations, bit counts, extensions), floats (f32 and f64 over zeros, subnormals,
//!   infinities, canonical and signalling NaNs: arithmetic, min/max, rounding, conversions,
//!   bit-exact neg/abs/copysign/load/store), memory bounds (the last byte of each width, offsets,
//!   `memory.grow` to and past the module's maximum, `memory.fill`/`copy`), `call_indirect` over a
//!   table of several types. Each prints the same bytes through the host interpreter
//!   (`run --local`), the device's interpreter (`push`) and the device's AOT blob (`push --aot`),
//!   and the device names the engine in `stats.engine`.
//! - Traps (unreachable, division by zero, integer overflow, invalid conversion, out-of-bounds
//!   loads and stores, `call_indirect` out of the table, on a null entry and with a wrong type,
//!   unbounded recursion) end with status Trap (exit 12) both ways on the device, the AOT one with
//!   wasm's reason in its log.
//! - Hostile wasm through AOT: out-of-bounds loads and stores, `memory.grow` past the cap,
//!   unbounded recursion, recursion with frames too big for the job stack, an endless loop (ended
//!   by the deadline), huge output: each ends with its status, and after each the device still
//!   answers discovery and runs a normal job (an AOT echo of its input, invoked by hash).

#[path = "support/kernel.rs"]
mod kernel;
#[path = "support/output.rs"]
mod output;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output};

use output::{assert_exit, assert_success, json, text};

const JOS_CLI: &str = env!("CARGO_BIN_EXE_jos-cli");

/// A user's `$JOS_HOME` (`home/`) and files; the emulator is stopped when this is dropped.
struct Emu {
    dir: tempfile::TempDir,
}

impl Emu {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(JOS_CLI)
            .args(args)
            .current_dir(self.dir.path())
            .env("JOS_HOME", self.path("home"))
            .env_remove("XDG_CONFIG_HOME")
            .output()
            .expect("run jos-cli")
    }

    /// Writes `wat` as `NAME.wasm`; returns the file name.
    fn module(&self, name: &str, wat: &str) -> String {
        let file = format!("{name}.wasm");
        let bytes = wat::parse_str(wat).unwrap_or_else(|error| panic!("{name}: {error}"));
        std::fs::write(self.path(&file), bytes).unwrap();
        file
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        let _ = self.run(&["emu", "stop"]);
    }
}

/// The helpers every semantics module shares: `$i32`/`$i64` append a value to the results at
/// `$p` (from address 0), `$f32`/`$f64` append a float's bits, `$r32`/`$r64` a float result
/// with any NaN reduced to its exponent and quiet bit (wasm leaves a NaN result's sign and
/// payload to the implementation), and `run` writes the results out and returns their length.
/// Operands are read from memory (data segments at 49152 and 53248), so no compiler folds them;
/// results stay below 32 KiB, the output cap.
const PRELUDE: &str = r#"
  (import "jos" "output_write" (func $write (param i32 i32) (result i32)))
  (global $p (mut i32) (i32.const 0))
  (func $i32 (param i32)
    (i32.store (global.get $p) (local.get 0))
    (global.set $p (i32.add (global.get $p) (i32.const 4))))
  (func $i64 (param i64)
    (i64.store (global.get $p) (local.get 0))
    (global.set $p (i32.add (global.get $p) (i32.const 8))))
  (func $f32 (param f32) (call $i32 (i32.reinterpret_f32 (local.get 0))))
  (func $f64 (param f64) (call $i64 (i64.reinterpret_f64 (local.get 0))))
  (func $r32 (param f32)
    (if (f32.ne (local.get 0) (local.get 0))
      (then (call $i32 (i32.and (i32.reinterpret_f32 (local.get 0)) (i32.const 0x7fc00000))))
      (else (call $f32 (local.get 0)))))
  (func $r64 (param f64)
    (if (f64.ne (local.get 0) (local.get 0))
      (then (call $i64 (i64.and (i64.reinterpret_f64 (local.get 0)) (i64.const 0x7ff8000000000000))))
      (else (call $f64 (local.get 0)))))
  (func (export "run") (result i32)
    (call $compute)
    (drop (call $write (i32.const 0) (global.get $p)))
    (global.get $p))
"#;

/// A data segment at `at` holding `values` little-endian, `width` bytes each.
fn data(at: u32, values: &[u64], width: usize) -> String {
    let mut text = format!("(data (i32.const {at}) \"");
    for value in values {
        for byte in &value.to_le_bytes()[..width] {
            let _ = write!(text, "\\{byte:02x}");
        }
    }
    text + "\")"
}

const I32_OPERANDS: [u32; 12] =
    [0, 1, 0xffff_ffff, 0x8000_0000, 0x7fff_ffff, 7, 0xffff_fff9, 31, 32, 33, 0x1234_5678, 0xf0f0_f0f0];
const I64_OPERANDS: [u64; 12] =
    [0, 1, u64::MAX, 1 << 63, i64::MAX as u64, 7, -7i64 as u64, 63, 64, 65, 0x1234_5678_9abc_def0, 0xffff_ffff];

/// `ty` (i32 or i64) over every pair of edge operands, and the conversions between widths.
fn integers(ty: &str) -> String {
    let mut wat = String::from("(module");
    wat += PRELUDE;
    wat += "(memory (export \"memory\") 1 1)";
    wat += &data(49152, &I32_OPERANDS.map(u64::from), 4);
    wat += &data(53248, &I64_OPERANDS, 8);
    let (width, min, count, base) = match ty {
        "i32" => (4, "0x80000000", I32_OPERANDS.len(), 49152),
        _ => (8, "0x8000000000000000", I64_OPERANDS.len(), 53248),
    };
    {
        let _ = write!(
            wat,
            r#"
  (func $bin_{ty} (param $a {ty}) (param $b {ty})
    (call ${ty} ({ty}.add (local.get $a) (local.get $b)))
    (call ${ty} ({ty}.sub (local.get $a) (local.get $b)))
    (call ${ty} ({ty}.mul (local.get $a) (local.get $b)))
    (call ${ty} ({ty}.and (local.get $a) (local.get $b)))
    (call ${ty} ({ty}.or (local.get $a) (local.get $b)))
    (call ${ty} ({ty}.xor (local.get $a) (local.get $b)))
    (call ${ty} ({ty}.shl (local.get $a) (local.get $b)))
    (call ${ty} ({ty}.shr_s (local.get $a) (local.get $b)))
    (call ${ty} ({ty}.shr_u (local.get $a) (local.get $b)))
    (call ${ty} ({ty}.rotl (local.get $a) (local.get $b)))
    (call ${ty} ({ty}.rotr (local.get $a) (local.get $b)))
    (call $i32 ({ty}.lt_s (local.get $a) (local.get $b)))
    (call $i32 ({ty}.lt_u (local.get $a) (local.get $b)))
    (call $i32 ({ty}.ge_s (local.get $a) (local.get $b)))
    (call $i32 ({ty}.ge_u (local.get $a) (local.get $b)))
    (call $i32 ({ty}.eq (local.get $a) (local.get $b)))
    (if ({ty}.ne (local.get $b) ({ty}.const 0))
      (then
        (call ${ty} ({ty}.div_u (local.get $a) (local.get $b)))
        (call ${ty} ({ty}.rem_u (local.get $a) (local.get $b)))
        (call ${ty} ({ty}.rem_s (local.get $a) (local.get $b)))
        (if (i32.eqz (i32.and ({ty}.eq (local.get $a) ({ty}.const {min})) ({ty}.eq (local.get $b) ({ty}.const -1))))
          (then (call ${ty} ({ty}.div_s (local.get $a) (local.get $b))))))))
  (func $un_{ty} (param $a {ty})
    (call ${ty} ({ty}.clz (local.get $a)))
    (call ${ty} ({ty}.ctz (local.get $a)))
    (call ${ty} ({ty}.popcnt (local.get $a)))
    (call $i32 ({ty}.eqz (local.get $a)))
    (call ${ty} ({ty}.extend8_s (local.get $a)))
    (call ${ty} ({ty}.extend16_s (local.get $a)))
    (call $r32 (f32.convert_{ty}_s (local.get $a)))
    (call $r32 (f32.convert_{ty}_u (local.get $a)))
    (call $r64 (f64.convert_{ty}_s (local.get $a)))
    (call $r64 (f64.convert_{ty}_u (local.get $a))))
  (func $all_{ty} (local $i i32) (local $j i32)
    (loop $rows
      (call $un_{ty} ({ty}.load (i32.add (i32.const {base}) (i32.mul (local.get $i) (i32.const {width})))))
      (local.set $j (i32.const 0))
      (loop $columns
        (call $bin_{ty}
          ({ty}.load (i32.add (i32.const {base}) (i32.mul (local.get $i) (i32.const {width}))))
          ({ty}.load (i32.add (i32.const {base}) (i32.mul (local.get $j) (i32.const {width})))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br_if $columns (i32.lt_u (local.get $j) (i32.const {count}))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $rows (i32.lt_u (local.get $i) (i32.const {count})))))"#
        );
    }
    wat += &format!(
        r#"
  (func $widths (param $a i64)
    (call $i64 (i64.extend32_s (local.get $a)))
    (call $i32 (i32.wrap_i64 (local.get $a)))
    (call $i64 (i64.extend_i32_s (i32.wrap_i64 (local.get $a))))
    (call $i64 (i64.extend_i32_u (i32.wrap_i64 (local.get $a)))))
  (func $compute (local $i i32)
    (call $all_{ty})
    (loop $each
      (call $widths (i64.load (i32.add (i32.const 53248) (i32.mul (local.get $i) (i32.const 8)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $each (i32.lt_u (local.get $i) (i32.const 12))))))"#
    );
    wat
}

const F32_OPERANDS: [u32; 16] = [
    0x0000_0000, // 0
    0x8000_0000, // -0
    0x3f80_0000, // 1
    0xbfc0_0000, // -1.5
    0x3dcc_cccd, // 0.1
    0x7f7f_ffff, // the largest finite
    0x0000_0001, // the smallest subnormal
    0x007f_ffff, // the largest subnormal
    0x0080_0000, // the smallest normal
    0x7f80_0000, // inf
    0xff80_0000, // -inf
    0x7fc0_0000, // canonical NaN
    0x7fa0_0001, // signalling NaN
    0xffc0_0001, // negative NaN with a payload
    0x4020_0000, // 2.5
    0x4b80_0001, // 16777218
];
const F64_OPERANDS: [u64; 16] = [
    0,
    1 << 63,
    0x3ff0_0000_0000_0000,
    0xbff8_0000_0000_0000,
    0x3fb9_9999_9999_999a,
    0x7fef_ffff_ffff_ffff,
    0x0000_0000_0000_0001,
    0x000f_ffff_ffff_ffff,
    0x0010_0000_0000_0000,
    0x7ff0_0000_0000_0000,
    0xfff0_0000_0000_0000,
    0x7ff8_0000_0000_0000,
    0x7ff4_0000_0000_0001,
    0xfff8_0000_0000_0001,
    0x4004_0000_0000_0000,
    0x4340_0000_0000_0001,
];

/// `ty` (f32 or f64) over every pair of edge operands (NaN results reduced, bit operations exact).
fn floats(ty: &str) -> String {
    let mut wat = String::from("(module");
    wat += PRELUDE;
    wat += "(memory (export \"memory\") 1 1)";
    wat += &data(49152, &F32_OPERANDS.map(u64::from), 4);
    wat += &data(53248, &F64_OPERANDS, 8);
    let (bits, width, base, other) = match ty {
        "f32" => ("i32", 4, 49152, "f64"),
        _ => ("i64", 8, 53248, "f32"),
    };
    {
        let r = if ty == "f32" { "r32" } else { "r64" };
        let exact = if ty == "f32" { "f32" } else { "f64" };
        let convert = if ty == "f32" { "f64.promote_f32" } else { "f32.demote_f64" };
        let other_r = if other == "f32" { "r32" } else { "r64" };
        let _ = write!(
            wat,
            r#"
  (func $bin_{ty} (param $a {ty}) (param $b {ty})
    (call ${r} ({ty}.add (local.get $a) (local.get $b)))
    (call ${r} ({ty}.sub (local.get $a) (local.get $b)))
    (call ${r} ({ty}.mul (local.get $a) (local.get $b)))
    (call ${r} ({ty}.div (local.get $a) (local.get $b)))
    (call ${r} ({ty}.min (local.get $a) (local.get $b)))
    (call ${r} ({ty}.max (local.get $a) (local.get $b)))
    (call ${exact} ({ty}.copysign (local.get $a) (local.get $b)))
    (call $i32 ({ty}.eq (local.get $a) (local.get $b)))
    (call $i32 ({ty}.lt (local.get $a) (local.get $b)))
    (call $i32 ({ty}.ge (local.get $a) (local.get $b))))
  (func $un_{ty} (param $a {ty})
    (call ${exact} ({ty}.neg (local.get $a)))
    (call ${exact} ({ty}.abs (local.get $a)))
    (call ${r} ({ty}.ceil (local.get $a)))
    (call ${r} ({ty}.floor (local.get $a)))
    (call ${r} ({ty}.trunc (local.get $a)))
    (call ${r} ({ty}.nearest (local.get $a)))
    (call ${r} ({ty}.sqrt (local.get $a)))
    (call ${other_r} ({convert} (local.get $a)))
    (call $i32 (i32.trunc_sat_{ty}_s (local.get $a)))
    (call $i32 (i32.trunc_sat_{ty}_u (local.get $a)))
    (call $i64 (i64.trunc_sat_{ty}_s (local.get $a)))
    (call $i64 (i64.trunc_sat_{ty}_u (local.get $a)))
    ;; a store and a load keep every bit, a signalling NaN's too
    ({ty}.store (i32.const 40000) (local.get $a))
    (call ${bits} ({bits}.load (i32.const 40000)))
    (call ${exact} ({ty}.load (i32.const 40000))))
  (func $all_{ty} (local $i i32) (local $j i32)
    (loop $rows
      (call $un_{ty} ({ty}.load (i32.add (i32.const {base}) (i32.mul (local.get $i) (i32.const {width})))))
      (local.set $j (i32.const 0))
      (loop $columns
        (call $bin_{ty}
          ({ty}.load (i32.add (i32.const {base}) (i32.mul (local.get $i) (i32.const {width}))))
          ({ty}.load (i32.add (i32.const {base}) (i32.mul (local.get $j) (i32.const {width})))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br_if $columns (i32.lt_u (local.get $j) (i32.const 16))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $rows (i32.lt_u (local.get $i) (i32.const 16)))))"#
        );
    }
    wat + &format!("\n  (func $compute (call $all_{ty})))")
}

/// Loads and stores at the edges of memory, growth to and past the maximum, fill and copy.
const MEMORY: &str = r#"
  (module
  {PRELUDE}
  (memory (export "memory") 1 3)
  (data (i32.const 65528) "\01\02\03\04\05\06\07\08")
  (func $compute
    (call $i32 (i32.load8_u (i32.const 65535)))
    (call $i32 (i32.load8_s (i32.const 65535)))
    (call $i32 (i32.load16_u (i32.const 65534)))
    (call $i32 (i32.load (i32.const 65532)))
    (call $i64 (i64.load (i32.const 65528)))
    (call $i32 (i32.load offset=65530 (i32.const 2)))
    (call $i64 (i64.load32_s offset=65000 (i32.const 532)))
    (i32.store16 (i32.const 65534) (i32.const 0xbeef))
    (call $i32 (i32.load (i32.const 65532)))
    (call $i32 (memory.size))
    (call $i32 (memory.grow (i32.const 0)))
    (call $i32 (memory.grow (i32.const 1)))
    (call $i32 (memory.size))
    ;; the new page is zero and in bounds
    (call $i64 (i64.load (i32.const 131064)))
    (i64.store (i32.const 131064) (i64.const 0x1122334455667788))
    (call $i64 (i64.load (i32.const 131064)))
    (call $i32 (memory.grow (i32.const 2)))
    (call $i32 (memory.grow (i32.const 1)))
    (call $i32 (memory.grow (i32.const 1)))
    (call $i32 (memory.grow (i32.const -1)))
    (call $i32 (memory.size))
    (call $i32 (i32.load (i32.const 196604)))
    (memory.fill (i32.const 60000) (i32.const 0xa5) (i32.const 100))
    (memory.copy (i32.const 60050) (i32.const 65526) (i32.const 10))
    (memory.copy (i32.const 60002) (i32.const 60000) (i32.const 60))
    (call $i64 (i64.load (i32.const 60000)))
    (call $i64 (i64.load (i32.const 60048)))
    (call $i64 (i64.load (i32.const 60056)))
    (call $i64 (i64.load (i32.const 60096))))
  )"#;

/// `call_indirect` over a table holding functions of three types, recursion through it.
const CALL_INDIRECT: &str = r#"
  (module
  {PRELUDE}
  (memory (export "memory") 1 1)
  (type $binary (func (param i32 i32) (result i32)))
  (type $unary (func (param i32) (result i32)))
  (type $wide (func (param i64) (result i64)))
  (table 8 funcref)
  (elem (i32.const 0) $add $sub $mul $negate $square $fact)
  (func $add (type $binary) (i32.add (local.get 0) (local.get 1)))
  (func $sub (type $binary) (i32.sub (local.get 0) (local.get 1)))
  (func $mul (type $binary) (i32.mul (local.get 0) (local.get 1)))
  (func $negate (type $unary) (i32.sub (i32.const 0) (local.get 0)))
  (func $square (type $wide) (i64.mul (local.get 0) (local.get 0)))
  (func $fact (type $wide)
    (if (result i64) (i64.le_u (local.get 0) (i64.const 1))
      (then (i64.const 1))
      (else (i64.mul (local.get 0)
        (call_indirect (type $wide) (i64.sub (local.get 0) (i64.const 1)) (i32.const 5))))))
  (func $compute (local $i i32)
    (loop $each
      (call $i32 (call_indirect (type $binary) (i32.const 1000) (i32.const -7) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $each (i32.lt_u (local.get $i) (i32.const 3))))
    (call $i32 (call_indirect (type $unary) (i32.const 42) (i32.const 3)))
    (call $i64 (call_indirect (type $wide) (i64.const 0x1_0000_0001) (i32.const 4)))
    (call $i64 (call_indirect (type $wide) (i64.const 20) (i32.const 5)))
    (call $i32 (table.size)))
  )"#;

/// Modules whose `run` traps, and the reason the AOT runtime logs.
fn trapping() -> Vec<(&'static str, String, &'static str)> {
    let module = |body: &str| {
        format!(
            r#"(module (memory (export "memory") 1 1)
              (type $unary (func (param i32) (result i32)))
              (table 4 funcref) (elem (i32.const 0) $id $long)
              (func $id (type $unary) (local.get 0))
              (func $long (param i64) (result i64) (local.get 0))
              (func $deep (param i32) (result i32) (i32.add (call $deep (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
              (global $g (mut f64) (f64.const nan))
              (func (export "run") (result i32) {body}))"#
        )
    };
    vec![
        ("unreachable", module("unreachable"), "unreachable executed"),
        (
            "div-zero",
            module("(i32.div_s (i32.const 1) (i32.sub (memory.size) (i32.const 1)))"),
            "integer divide by zero",
        ),
        (
            "rem-zero",
            module("(i64.rem_u (i64.const 5) (i64.extend_i32_u (i32.sub (memory.size) (i32.const 1)))) i32.wrap_i64"),
            "integer divide by zero",
        ),
        (
            "overflow",
            module("(i32.div_s (i32.const 0x80000000) (i32.sub (i32.const 0) (memory.size)))"),
            "integer overflow",
        ),
        ("nan-to-int", module("(i32.trunc_f64_s (global.get $g))"), "invalid conversion to integer"),
        (
            "too-big-to-int",
            module("(i32.trunc_f64_u (f64.mul (f64.convert_i32_u (memory.size)) (f64.const 5e9)))"),
            "integer overflow",
        ),
        ("load-past-end", module("(i32.load (i32.const 65533))"), "out of bounds memory access"),
        (
            "store-past-end",
            module("(i64.store (i32.const 65529) (i64.const 1)) (i32.const 0)"),
            "out of bounds memory access",
        ),
        ("offset-wraps", module("(i32.load offset=4294967295 (i32.const 1))"), "out of bounds memory access"),
        ("indirect-past-table", module("(call_indirect (type $unary) (i32.const 1) (i32.const 4))"), ""),
        ("indirect-null", module("(call_indirect (type $unary) (i32.const 1) (i32.const 2))"), "indirect call"),
        ("indirect-type", module("(call_indirect (type $unary) (i32.const 1) (i32.const 1))"), "indirect call"),
        ("recursion", module("(call $deep (i32.const 0))"), "call stack exhausted"),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// `push` (the device's interpreter) or `push --aot` of `file` with `extra` options: the JSON
/// report, after checking the exit code and the engine.
fn push(emu: &Emu, file: &str, aot: bool, extra: &[&str], exit: i32) -> serde_json::Value {
    let mut args = vec!["push", file, "--json"];
    if aot {
        args.push("--aot");
    }
    args.extend_from_slice(extra);
    let output = emu.run(&args);
    assert_exit(&output, exit);
    let report = json(&output);
    let engine = if aot { "aot" } else { "wasm" };
    assert_eq!(report["stats"]["engine"], engine, "{file}: {}", text(&output));
    report
}

/// The log lines of a report, joined.
fn logs(report: &serde_json::Value) -> String {
    report["logs"].as_array().map_or(String::new(), |lines| {
        lines.iter().filter_map(|line| line["text"].as_str()).collect::<Vec<_>>().join(" | ")
    })
}

/// The device still serves after a hostile job: it answers discovery, and a normal AOT job
/// (`echo_hash`, invoked from the cache) echoes its input.
fn still_serving(emu: &Emu, discovery: &str, echo_hash: &str, after: &str) {
    let output = emu.run(&["discover", "--address", discovery, "--json"]);
    assert_success(&output);
    assert_eq!(json(&output)["devices"][0]["name"], "emu", "after {after}: {}", text(&output));
    let input = format!("still here after {after}");
    std::fs::write(emu.path("echo.input"), &input).unwrap();
    let output = emu.run(&["invoke", echo_hash, "--input", "echo.input", "--json"]);
    assert_success(&output);
    let report = json(&output);
    assert_eq!(report["output_hex"].as_str(), Some(hex(input.as_bytes()).as_str()), "after {after}: {report}");
    assert_eq!(report["stats"]["engine"], "aot", "after {after}");
}

#[test]
fn aot_blobs_on_the_emulated_device_keep_wasm_semantics_and_the_device_serving() {
    let emu =
        Emu { dir: tempfile::Builder::new().prefix("jos-emu-aot").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap() };
    assert_success(&emu.run(&["keygen"]));
    std::fs::create_dir_all(emu.path("home/emu")).unwrap();
    assert_success(&emu.run(&[
        "provision",
        "--name",
        "emu",
        "--dhcp",
        "--signer",
        "self:wasm,native",
        "-o",
        "home/emu/config.bin",
    ]));
    // Every module is written (and so checked by the wat parser) before the device boots.
    let semantics: Vec<(&str, String)> = [
        ("i32", integers("i32")),
        ("i64", integers("i64")),
        ("f32", floats("f32")),
        ("f64", floats("f64")),
        ("memory", MEMORY.replace("{PRELUDE}", PRELUDE)),
        ("call-indirect", CALL_INDIRECT.replace("{PRELUDE}", PRELUDE)),
    ]
    .into_iter()
    .map(|(name, wat)| (name, emu.module(name, &wat)))
    .collect();
    let traps: Vec<(&str, String, &str)> = trapping()
        .into_iter()
        .map(|(name, wat, reason)| (name, emu.module(&format!("trap-{name}"), &wat), reason))
        .collect();
    let kernel = kernel::kernel();
    let output = emu.run(&["emu", "start", "--kernel", kernel.to_str().unwrap(), "--json"]);
    assert_success(&output);
    let discovery = json(&output)["discovery"].as_str().unwrap().to_string();

    // Semantics: the host's interpreter, the device's interpreter and the device's AOT blob print
    // the same bytes.
    for (name, file) in &semantics {
        let local = emu.run(&["run", "--local", file, "--json"]);
        assert_success(&local);
        let local = json(&local);
        let wasm = push(&emu, file, false, &[], 0);
        let aot = push(&emu, file, true, &[], 0);
        let length = local["exit_value"].as_i64().unwrap();
        assert!(length > 16, "{name}: only {length} bytes of results");
        assert_eq!(local["output_hex"].as_str().map(|hex| hex.len() as i64), Some(2 * length), "{name}");
        assert_eq!(wasm["output_hex"], local["output_hex"], "{name}: the device's interpreter differs from the host's");
        assert_eq!(
            aot["output_hex"], local["output_hex"],
            "{name}: the device's AOT blob differs from the interpreter"
        );
        assert_eq!(aot["exit_value"], local["exit_value"], "{name}");
    }

    // Traps: status Trap both ways; the AOT blob logs wasm's reason.
    for (name, file, reason) in &traps {
        let local = emu.run(&["run", "--local", file, "--json"]);
        assert_exit(&local, 12);
        let wasm = push(&emu, file, false, &[], 12);
        assert_eq!(wasm["status"], "trap", "{name}: {wasm}");
        let aot = push(&emu, file, true, &[], 12);
        assert_eq!(aot["status"], "trap", "{name}: {aot}");
        let lines = logs(&aot);
        assert!(lines.contains("wasm trap: ") && lines.contains(reason), "{name}: AOT logs {lines}");
    }

    // Hostile modules through AOT; after each the device answers discovery and runs a normal job.
    let echo = emu.module(
        "echo",
        r#"(module
          (import "jos" "input_len" (func $input_len (result i32)))
          (import "jos" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
          (import "jos" "output_write" (func $output_write (param i32 i32) (result i32)))
          (memory (export "memory") 1 1)
          (func (export "run") (result i32)
            (drop (call $output_write (i32.const 0) (call $input_read (i32.const 0) (call $input_len) (i32.const 0))))
            (i32.const 0)))"#,
    );
    let pushed = push(&emu, &echo, true, &[], 0);
    let echo_hash = pushed["hash"].as_str().unwrap().to_string();
    still_serving(&emu, &discovery, &echo_hash, "the first push");

    let hostile = |name: &str, head: &str, body: &str| {
        emu.module(
            &format!("hostile-{name}"),
            &format!(
                r#"(module
                  (import "jos" "output_write" (func $write (param i32 i32) (result i32)))
                  (memory (export "memory") 1)
                  {head}
                  (func (export "run") (result i32) {body}))"#
            ),
        )
    };
    let cases: Vec<(&str, String, &[&str], i32, &str)> = vec![
        ("load", hostile("load", "", "(i32.load (i32.const 65535))"), &[], 12, "out of bounds memory access"),
        ("store", hostile("store", "", "(i32.store8 (i32.const -1) (i32.const 1)) (i32.const 0)"), &[], 12, "out of bounds memory access"),
        (
            "recursion",
            hostile("recursion", "(func $deep (param i32) (result i32) (call $deep (i32.add (local.get 0) (i32.const 1))))", "(call $deep (i32.const 0))"),
            &[],
            12,
            "call stack exhausted",
        ),
        // 300 f64 locals kept live across the call: frames of kilobytes, so the 256 KiB job stack
        // ends before the 1000-call depth limit, at its guard page.
        ("big-frames", hostile("big-frames", &big_frames(), "(i32.trunc_f64_s (call $big (f64.const 1)))"), &[], 12, "fault"),
        (
            "flood",
            hostile("flood", "", "(block $done (loop $more (br_if $done (i32.lt_s (call $write (i32.const 0) (i32.const 1024)) (i32.const 0))) (br $more))) (i32.const 0)"),
            &[],
            14,
            "",
        ),
        ("spin", hostile("spin", "", "(loop $forever (br $forever)) (i32.const 0)"), &["--timeout", "2000"], 15, ""),
        (
            "grow",
            hostile(
                "grow",
                "(func $count (param i32) (result i32) (loop $again (if (i32.ne (memory.grow (i32.const 1)) (i32.const -1)) (then (local.set 0 (i32.add (local.get 0) (i32.const 1))) (br $again)))) local.get 0)",
                "(i32.add (call $count (i32.const 0)) (memory.grow (i32.const 1000)))",
            ),
            &[],
            0,
            "",
        ),
    ];
    for (name, file, extra, exit, reason) in cases {
        let report = push(&emu, &file, true, extra, exit);
        let status = match exit {
            12 => "trap",
            14 => "limit-exceeded",
            15 => "deadline",
            _ => "ok",
        };
        assert_eq!(report["status"], status, "{name}: {report}");
        assert!(logs(&report).contains(reason), "{name}: {}", logs(&report));
        match name {
            // Exactly the 32 KiB output cap is kept.
            "flood" => assert_eq!(report["output_hex"].as_str().map(str::len), Some(2 * 32 * 1024), "{name}"),
            // push --aot caps memory at 240 pages: 239 grown one by one, then 1000 more refused (-1).
            "grow" => assert_eq!(report["exit_value"], 238, "{name}: {report}"),
            _ => {}
        }
        still_serving(&emu, &discovery, &echo_hash, name);
    }

    let output = emu.run(&["emu", "stop", "--json"]);
    assert_success(&output);
    assert_eq!(json(&output)["stopped"], true);
}

/// `$big`: a function with 300 f64 locals, all live across its recursive call.
fn big_frames() -> String {
    let count = 300;
    let mut wat = String::from("(func $big (param $x f64) (result f64)");
    for index in 0..count {
        let _ = write!(wat, " (local $l{index} f64)");
    }
    for index in 0..count {
        let _ = write!(wat, " (local.set $l{index} (f64.add (local.get $x) (f64.const {index})))");
    }
    wat += " (local.set $x (call $big (local.get $x)))";
    for index in 0..count {
        let _ = write!(wat, " (local.set $x (f64.add (local.get $x) (local.get $l{index})))");
    }
    wat + " (local.get $x))"
}
