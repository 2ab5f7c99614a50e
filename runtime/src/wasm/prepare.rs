//! Checks and rewrites done on a module's sections before wasmi sees it.
//!
//! - **Constant expressions.** wasmi evaluates and drops a nested initialiser expression
//!   (extended-const: `i32.add`, `i32.sub`, `i32.mul` and their i64 forms over constants and
//!   `global.get`) by recursion, one native call per level of nesting, so a deep one overflows the
//!   kernel stack. Every constant expression (globals, table initialisers, element and data
//!   offsets, element items) is measured here and a module with one nested deeper than
//!   [`MAX_CONST_EXPR_DEPTH`] is refused before wasmi builds it.
//! - **The start function.** wasmi runs a module's `start` function inside instantiation,
//!   synchronously and outside any fuel slice. A module with a start section is rewritten: the
//!   start section is dropped and the start function is exported under [`START_EXPORT`], which
//!   the job then calls as a resumable call before its entry (in slices, under the deadline).
//!
//! Section boundaries come from `wasmparser` (the parser wasmi itself uses); anything it cannot
//! parse is refused as malformed, as wasmi would refuse it.

use alloc::string::ToString;
use alloc::vec::Vec;

use jos_abi::AbiVersion;
use wasmparser::{DataKind, ElementItems, ElementKind, Operator, Parser, Payload, TableInit};

use super::ABI_SECTION;
use crate::job::LoadError;

/// Deepest nesting of a constant expression a module may have (a leaf such as `i32.const` is 1;
/// `(i32.add (global.get 0) (i32.const 8))`, what compilers emit, is 2). Without this bound the
/// device's 256 KiB kernel stack overflowed (a data abort on its guard page: the kernel halted)
/// at a depth between 5,000 and 5,100, in wasmi's evaluation of a global's initialiser while it
/// compiled the module (measured under QEMU, docs/runtime.md); 128 leaves a margin of 40 and
/// is far beyond anything a compiler emits.
pub const MAX_CONST_EXPR_DEPTH: u32 = 128;

/// The export name under which a module's start function is reached after `prepare` removed
/// its start section. An entry of this name is refused ([`crate::wasm::Entry::Call`]), and a
/// module that has a start function and already exports this name is refused.
pub const START_EXPORT: &str = "jos.start";

const EXPORT_SECTION: u8 = 7;
const START_SECTION: u8 = 8;

/// What [`prepare`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Prepared {
    /// The module to compile instead of the given bytes (the start section moved to an export),
    /// or `None` when the given bytes are compiled as they are.
    pub rewritten: Option<Vec<u8>>,
    /// Whether the module has a start function (exported as [`START_EXPORT`]).
    pub has_start: bool,
    /// The ABI version its `jos.abi` section states (the last one, if several), if it has one.
    pub abi: Option<AbiVersion>,
}

fn malformed(error: impl ToString) -> LoadError {
    LoadError::Malformed(error.to_string())
}

/// The nesting depth of a constant expression: leaves are 1, each binary operator one more than
/// the deeper of its operands. Operators that are not part of a constant expression are left
/// to wasmi's validator (counted as leaves here).
fn const_expr_depth(expr: &wasmparser::ConstExpr<'_>) -> Result<u32, LoadError> {
    let mut reader = expr.get_operators_reader();
    // Depths of the operands on the expression's stack (values only ever pile up by one per
    // leaf, so the stack is at most as long as the expression).
    let mut stack: Vec<u32> = Vec::new();
    let mut deepest = 0;
    loop {
        let operator = reader.read().map_err(malformed)?;
        let depth = match operator {
            Operator::End => break,
            Operator::I32Add
            | Operator::I32Sub
            | Operator::I32Mul
            | Operator::I64Add
            | Operator::I64Sub
            | Operator::I64Mul => {
                let right = stack.pop().unwrap_or(0);
                let left = stack.pop().unwrap_or(0);
                left.max(right).saturating_add(1)
            }
            _ => 1,
        };
        deepest = deepest.max(depth);
        if deepest > MAX_CONST_EXPR_DEPTH {
            return Err(LoadError::Malformed(alloc::format!(
                "a constant expression is nested deeper than {MAX_CONST_EXPR_DEPTH} levels"
            )));
        }
        stack.push(depth);
    }
    Ok(deepest)
}

fn leb128(mut value: u32, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Appends a section with this id and content.
fn push_section(id: u8, content: &[u8], out: &mut Vec<u8>) -> Result<(), LoadError> {
    let len = u32::try_from(content.len()).map_err(|_| malformed("section too large"))?;
    out.push(id);
    leb128(len, out);
    out.extend_from_slice(content);
    Ok(())
}

/// The ABI version a `jos.abi` section states (4 bytes, little-endian `major << 16 | minor`),
/// if this runtime accepts it.
fn check_abi(data: &[u8]) -> Result<AbiVersion, LoadError> {
    let raw: [u8; 4] = data.try_into().map_err(|_| LoadError::AbiMismatch { found: None })?;
    let version = AbiVersion::from_u32(u32::from_le_bytes(raw));
    if !AbiVersion::CURRENT.accepts(version) {
        return Err(LoadError::AbiMismatch { found: Some(version.to_u32()) });
    }
    Ok(version)
}

/// Checks the constant expressions and the `jos.abi` section of `bytes` and, if it has a start
/// section, rewrites it so that the start function is an export (see the module documentation).
/// Custom sections are read here: wasmi is configured to skip them.
pub(crate) fn prepare(bytes: &[u8]) -> Result<Prepared, LoadError> {
    let mut start: Option<u32> = None;
    // The export section's entry count and where its entries begin.
    let mut exports: Option<(u32, usize)> = None;
    let mut reserved_taken = false;
    let mut abi = None;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(malformed)? {
            Payload::CustomSection(section) if section.name() == ABI_SECTION => abi = Some(check_abi(section.data())?),
            Payload::GlobalSection(reader) => {
                for global in reader {
                    const_expr_depth(&global.map_err(malformed)?.init_expr)?;
                }
            }
            Payload::TableSection(reader) => {
                for table in reader {
                    if let TableInit::Expr(expr) = table.map_err(malformed)?.init {
                        const_expr_depth(&expr)?;
                    }
                }
            }
            Payload::ElementSection(reader) => {
                for element in reader {
                    let element = element.map_err(malformed)?;
                    if let ElementKind::Active { offset_expr, .. } = &element.kind {
                        const_expr_depth(offset_expr)?;
                    }
                    if let ElementItems::Expressions(_, items) = element.items {
                        for item in items {
                            const_expr_depth(&item.map_err(malformed)?)?;
                        }
                    }
                }
            }
            Payload::DataSection(reader) => {
                for data in reader {
                    if let DataKind::Active { offset_expr, .. } = data.map_err(malformed)?.kind {
                        const_expr_depth(&offset_expr)?;
                    }
                }
            }
            Payload::ExportSection(reader) => {
                if exports.is_some() {
                    return Err(malformed("more than one export section"));
                }
                exports = Some((reader.count(), reader.original_position()));
                for export in reader {
                    // Refused below only if the module also has a start function.
                    reserved_taken |= export.map_err(malformed)?.name == START_EXPORT;
                }
            }
            Payload::StartSection { func, .. } => {
                if start.is_some() {
                    return Err(malformed("more than one start section"));
                }
                start = Some(func);
            }
            _ => {}
        }
    }
    let Some(start) = start else { return Ok(Prepared { rewritten: None, has_start: false, abi }) };
    if reserved_taken {
        return Err(malformed(alloc::format!(
            "the export name `{START_EXPORT}` is reserved for the start function of a module that has one"
        )));
    }
    Ok(Prepared { rewritten: Some(without_start(bytes, start, exports)?), has_start: true, abi })
}

/// A copy of `bytes` (which [`prepare`] parsed) without its start section and with the start
/// function `start` exported as [`START_EXPORT`]; `exports` is the export section's count and
/// where its entries begin, if it has one. Sections are copied byte for byte otherwise: each
/// one's header begins where the previous one's content ended.
fn without_start(bytes: &[u8], start: u32, exports: Option<(u32, usize)>) -> Result<Vec<u8>, LoadError> {
    let mut out = Vec::new();
    out.try_reserve_exact(bytes.len() + START_EXPORT.len() + 16)
        .map_err(|_| malformed("no memory to prepare the module"))?;
    // The new export entry: name, kind 0 (function), index.
    let mut entry = Vec::new();
    leb128(START_EXPORT.len() as u32, &mut entry);
    entry.extend_from_slice(START_EXPORT.as_bytes());
    entry.push(0);
    leb128(start, &mut entry);
    let export_section = |count: u32, entries: &[u8], out: &mut Vec<u8>| -> Result<(), LoadError> {
        let mut content = Vec::new();
        leb128(count.checked_add(1).ok_or_else(|| malformed("too many exports"))?, &mut content);
        content.extend_from_slice(entries);
        content.extend_from_slice(&entry);
        push_section(EXPORT_SECTION, &content, out)
    };
    let mut end_of_previous = 0;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(malformed)?;
        if let Payload::Version { range, .. } = &payload {
            out.extend_from_slice(&bytes[range.clone()]);
            end_of_previous = range.end;
            continue;
        }
        let Some((id, content)) = payload.as_section() else { continue };
        match id {
            EXPORT_SECTION => {
                let (count, entries_at) = exports.unwrap_or((0, content.start));
                let entries = bytes.get(entries_at..content.end).ok_or_else(|| malformed("export section"))?;
                export_section(count, entries, &mut out)?;
            }
            // Export sections come right before the start section: one that was missing goes
            // where the start section was.
            START_SECTION if exports.is_none() => export_section(0, &[], &mut out)?,
            START_SECTION => {}
            _ => out.extend_from_slice(bytes.get(end_of_previous..content.end).ok_or_else(|| malformed("section"))?),
        }
        end_of_previous = content.end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wasm(text: &str) -> Vec<u8> {
        wat::parse_str(text).unwrap()
    }

    #[test]
    fn modules_without_start_are_kept() {
        let bytes = wasm(
            r#"(module (global i32 (i32.add (i32.const 1) (i32.const 2))) (func (export "run") (result i32) (i32.const 1)))"#,
        );
        assert_eq!(prepare(&bytes).unwrap(), Prepared { rewritten: None, has_start: false, abi: None });
    }

    #[test]
    fn start_becomes_an_export() {
        for text in [
            r#"(module (func $s) (func (export "run") (result i32) (i32.const 1)) (start $s))"#,
            r#"(module (func $s) (start $s))"#,
            r#"(module (import "jos" "yield" (func $y (result i32))) (func $s (drop (call $y))) (start $s) (@custom "after" "x"))"#,
        ] {
            let bytes = wasm(text);
            let prepared = prepare(&bytes).unwrap();
            assert!(prepared.has_start);
            let rewritten = prepared.rewritten.unwrap();
            let mut found_start = false;
            let mut exported = false;
            for payload in Parser::new(0).parse_all(&rewritten) {
                match payload.unwrap() {
                    Payload::StartSection { .. } => found_start = true,
                    Payload::ExportSection(reader) => {
                        exported = reader.into_iter().any(|export| export.unwrap().name == START_EXPORT)
                    }
                    _ => {}
                }
            }
            assert!(!found_start && exported, "{text}");
            wasmparser::Validator::new().validate_all(&rewritten).unwrap();
        }
    }

    #[test]
    fn reserved_export_is_refused_only_with_a_start() {
        let clash = wasm(r#"(module (func $s) (export "jos.start" (func $s)) (start $s))"#);
        assert!(matches!(prepare(&clash), Err(LoadError::Malformed(_))));
        let fine = wasm(r#"(module (func $s) (export "jos.start" (func $s)))"#);
        assert_eq!(prepare(&fine).unwrap().rewritten, None);
    }

    fn nested(depth: u32) -> String {
        let mut expr = String::from("(i32.const 1)");
        for _ in 1..depth {
            expr = alloc::format!("(i32.add {expr} (i32.const 1))");
        }
        expr
    }

    #[test]
    fn const_expression_depth_is_bounded() {
        let at_bound = wasm(&alloc::format!("(module (global i32 {}))", nested(MAX_CONST_EXPR_DEPTH)));
        assert!(prepare(&at_bound).is_ok());
        for place in [
            "(global i32 EXPR)",
            "(memory 1) (data (offset EXPR) \"x\")",
            "(table 10 funcref) (func $f) (elem (offset EXPR) func $f)",
        ] {
            let text = alloc::format!("(module {})", place.replace("EXPR", &nested(MAX_CONST_EXPR_DEPTH + 1)));
            assert!(matches!(prepare(&wasm(&text)), Err(LoadError::Malformed(_))), "{place}");
        }
    }
}
