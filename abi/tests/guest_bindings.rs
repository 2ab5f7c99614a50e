//! The guest bindings written by hand, `abi/guest/src/raw.rs` (Rust) and `abi/include/jos.h`
//! (C), checked against the syscall table `jos_abi::syscall::SYSCALLS`, the single source: every
//! call with the table's id, name, number of parameters and result type, nothing more, and the
//! header's ABI version, error codes and log levels. A call added to, renumbered in or removed
//! from one side only fails here.

use std::collections::BTreeMap;

use jos_abi::syscall::{AbiVersion, LogLevel, ValueType, SYSCALLS};
use jos_abi::ErrorCode;

/// What a binding declares of a call: its id, its parameter count and its result.
#[derive(Debug, PartialEq, Eq)]
struct Binding {
    id: u32,
    params: usize,
    result: Option<ValueType>,
}

/// The table's view of every call, by name.
fn table() -> BTreeMap<String, Binding> {
    SYSCALLS
        .iter()
        .map(|call| {
            let binding = Binding {
                id: call.id as u32,
                params: call.signature.params.len(),
                result: call.signature.results.first().copied(),
            };
            (call.name.to_string(), binding)
        })
        .collect()
}

fn source(path: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// A C or Rust type as the wasm value type it lowers to on wasm32 (pointers and `usize` are
/// 32-bit there); `None` for "no result".
fn value_type(ty: &str) -> Option<ValueType> {
    match ty.trim() {
        "()" | "void" => None,
        "i64" | "jos_i64" => Some(ValueType::I64),
        "i32" | "u32" | "usize" | "int" | "jos_u32" | "jos_size" => Some(ValueType::I32),
        pointer if pointer.contains('*') => Some(ValueType::I32),
        other => panic!("a binding uses the type `{other}`, which this check does not know"),
    }
}

/// Parses the `syscalls!` invocation of raw.rs: `ID ".jos_imports" NAME(ARGS) -> RET;`.
fn rust_bindings() -> BTreeMap<String, Binding> {
    let text = source("guest/src/raw.rs");
    let body = text.split("\nsyscalls! {").nth(1).expect("raw.rs invokes syscalls!");
    let mut bindings = BTreeMap::new();
    for line in body.lines().map(str::trim).filter(|line| line.contains("\".jos_imports\"")) {
        let (id, rest) = line.split_once(' ').unwrap();
        let rest = rest.trim_start_matches("\".jos_imports\"").trim();
        let (name, rest) = rest.split_once('(').unwrap();
        let (args, rest) = rest.split_once(')').unwrap();
        let result = rest.trim().trim_start_matches("->").trim_end_matches(';');
        let params = args.split(',').filter(|arg| !arg.trim().is_empty()).map(|arg| arg.split(':').nth(1).unwrap());
        params.clone().for_each(|ty| assert_eq!(value_type(ty), Some(ValueType::I32), "{line}: a 32-bit parameter"));
        let binding = Binding { id: id.parse().unwrap(), params: params.count(), result: value_type(result) };
        let name = name.trim().trim_start_matches("r#");
        assert!(bindings.insert(name.to_string(), binding).is_none(), "raw.rs declares {name} twice");
    }
    bindings
}

/// Parses jos.h: `JOS__CALLn(ID, NAME, RET, T1, ...)` lines, and `exit` (declared apart as it
/// does not return: `JOS__SLOT(8, ...)`, a `void` function of one `int`).
fn c_bindings() -> BTreeMap<String, Binding> {
    let text = source("include/jos.h");
    let mut bindings = BTreeMap::new();
    for line in text.lines().filter(|line| line.starts_with("JOS__CALL")) {
        let (macro_name, rest) = line.split_once('(').unwrap();
        let fields: Vec<&str> = rest.trim_end().trim_end_matches(')').split(',').map(str::trim).collect();
        let arity: usize = macro_name.trim_start_matches("JOS__CALL").parse().unwrap();
        assert_eq!(fields.len(), 3 + arity, "{line}: JOS__CALL{arity} takes {arity} parameter types");
        fields[3..]
            .iter()
            .for_each(|ty| assert_eq!(value_type(ty), Some(ValueType::I32), "{line}: a 32-bit parameter"));
        let binding = Binding { id: fields[0].parse().unwrap(), params: arity, result: value_type(fields[2]) };
        assert!(bindings.insert(fields[1].to_string(), binding).is_none(), "jos.h declares {} twice", fields[1]);
    }
    // The macros' own `JOS__SLOT(id, jos__fn)` take the id as a parameter; exit's is a number.
    let slot = text.split("JOS__SLOT(").filter_map(|rest| rest.split_once(", jos__fn);")).map(|(id, _)| id.trim());
    let exit_ids: Vec<&str> = slot.filter(|id| id.parse::<u32>().is_ok()).collect();
    assert_eq!(exit_ids.len(), 1, "jos.h declares exit through one JOS__SLOT outside the JOS__CALL macros");
    assert!(text.contains("JOS__IMPORT(exit) void jos__import_exit(int);"), "exit: a void function of one int");
    bindings.insert("exit".to_string(), Binding { id: exit_ids[0].parse().unwrap(), params: 1, result: None });
    bindings
}

/// The value of `#define NAME VALUE` in jos.h.
fn define(text: &str, name: &str) -> u32 {
    let prefix = format!("#define {name} ");
    let line = text.lines().find(|line| line.starts_with(&prefix)).unwrap_or_else(|| panic!("jos.h lacks {name}"));
    line[prefix.len()..].split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn rust_guest_bindings_match_the_syscall_table() {
    assert_eq!(rust_bindings(), table());
}

#[test]
fn c_header_matches_the_syscall_table() {
    assert_eq!(c_bindings(), table());
    let text = source("include/jos.h");
    assert_eq!(define(&text, "JOS_ABI_MAJOR"), u32::from(AbiVersion::CURRENT.major));
    assert_eq!(define(&text, "JOS_ABI_MINOR"), u32::from(AbiVersion::CURRENT.minor));
    for (name, level) in
        [("ERROR", LogLevel::Error), ("WARN", LogLevel::Warn), ("INFO", LogLevel::Info), ("DEBUG", LogLevel::Debug)]
    {
        assert_eq!(define(&text, &format!("JOS_LOG_{name}")), level as u32, "JOS_LOG_{name}");
    }
    // Every error code the header names is the ErrorCode of that number.
    for line in text.lines().filter(|line| line.starts_with("#define JOS_E")) {
        let name = line.split_whitespace().nth(1).unwrap();
        let code = define(&text, name);
        assert!(ErrorCode::try_from(code).is_ok(), "{name} = {code} is no jos_abi::ErrorCode");
    }
}

#[test]
fn the_checks_see_a_drift() {
    // The parsers are not vacuous: a table with one call renumbered differs.
    let mut bindings = rust_bindings();
    bindings.get_mut("log").unwrap().id = 40;
    assert_ne!(bindings, table());
    let mut bindings = c_bindings();
    bindings.remove("gpio_read");
    assert_ne!(bindings, table());
    assert!(table().len() >= 15);
}
