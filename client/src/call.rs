//! `--call NAME ARGS...`: arguments typed by the exported function's signature, written as
//! wasmtime's `--invoke` takes them (decimal integers, Rust float literals such as `1.5`, `-0`,
//! `inf`, `nan`), and results printed one per line.

use jos_abi::wire::call::{Value, TYPE_F32, TYPE_F64, TYPE_I32, TYPE_I64};
use wasmparser::{Parser, Payload, TypeRef, ValType};

/// The parameter and result type bytes of an exported function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// Parameter types (wasm type bytes, `0x7F` i32 ...).
    pub params: Vec<u8>,
    /// Result types.
    pub results: Vec<u8>,
}

fn type_byte(value: ValType) -> Option<u8> {
    match value {
        ValType::I32 => Some(TYPE_I32),
        ValType::I64 => Some(TYPE_I64),
        ValType::F32 => Some(TYPE_F32),
        ValType::F64 => Some(TYPE_F64),
        _ => None,
    }
}

/// The name of a type byte.
pub fn type_name(byte: u8) -> &'static str {
    match byte {
        TYPE_I32 => "i32",
        TYPE_I64 => "i64",
        TYPE_F32 => "f32",
        TYPE_F64 => "f64",
        _ => "?",
    }
}

/// The signature of the function `name` exported by `module`. `Err` says why there is none
/// (no such export, not a function, a parameter that is not a number, module unreadable).
pub fn export_signature(module: &[u8], name: &str) -> Result<Signature, String> {
    let mut types: Vec<Option<Signature>> = Vec::new();
    let mut functions: Vec<u32> = Vec::new();
    let mut exported = None;
    for payload in Parser::new(0).parse_all(module) {
        let payload = payload.map_err(|error| format!("cannot read the module: {error}"))?;
        match payload {
            Payload::TypeSection(reader) => {
                for ty in reader.into_iter_err_on_gc_types() {
                    let ty = ty.map_err(|error| error.to_string())?;
                    let convert =
                        |list: &[ValType]| list.iter().map(|value| type_byte(*value)).collect::<Option<Vec<u8>>>();
                    types.push(match (convert(ty.params()), convert(ty.results())) {
                        (Some(params), Some(results)) => Some(Signature { params, results }),
                        _ => None,
                    });
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(|error| error.to_string())?;
                    if let TypeRef::Func(index) = import.ty {
                        functions.push(index);
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for index in reader {
                    functions.push(index.map_err(|error| error.to_string())?);
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|error| error.to_string())?;
                    if export.name == name {
                        if export.kind != wasmparser::ExternalKind::Func {
                            return Err(format!("export `{name}` is not a function"));
                        }
                        exported = Some(export.index);
                    }
                }
            }
            _ => {}
        }
    }
    let index = exported.ok_or_else(|| format!("the module exports no function `{name}`"))?;
    let type_index =
        functions.get(index as usize).ok_or_else(|| format!("export `{name}` names a missing function"))?;
    types
        .get(*type_index as usize)
        .cloned()
        .flatten()
        .ok_or_else(|| format!("`{name}` takes or returns a value that is not i32, i64, f32 or f64"))
}

/// Parses one argument as the type `type_byte`.
pub fn parse_arg(text: &str, type_byte: u8) -> Result<Value, String> {
    let bad = |kind: &str| format!("`{text}` is not a valid {kind} argument");
    Ok(match type_byte {
        // Integers are accepted in the signed and in the unsigned range, as wasmtime does.
        TYPE_I32 => Value::I32(match text.parse::<i32>() {
            Ok(value) => value,
            Err(_) => text.parse::<u32>().map_err(|_| bad("i32"))? as i32,
        }),
        TYPE_I64 => Value::I64(match text.parse::<i64>() {
            Ok(value) => value,
            Err(_) => text.parse::<u64>().map_err(|_| bad("i64"))? as i64,
        }),
        TYPE_F32 => Value::F32(text.parse::<f32>().map_err(|_| bad("f32"))?),
        TYPE_F64 => Value::F64(text.parse::<f64>().map_err(|_| bad("f64"))?),
        _ => return Err(bad("numeric")),
    })
}

/// Parses the arguments for `signature`.
pub fn parse_args(name: &str, args: &[String], signature: &Signature) -> Result<Vec<Value>, String> {
    if args.len() != signature.params.len() {
        let wanted: Vec<&str> = signature.params.iter().map(|byte| type_name(*byte)).collect();
        return Err(format!(
            "`{name}` takes {} argument(s) ({}), {} given",
            signature.params.len(),
            wanted.join(", "),
            args.len()
        ));
    }
    args.iter().zip(&signature.params).map(|(text, ty)| parse_arg(text, *ty)).collect()
}

/// Parses arguments without a signature (for `invoke HASH` when the module is not in the local
/// cache): integers as i64, other numbers as f64.
pub fn parse_args_untyped(args: &[String]) -> Result<Vec<Value>, String> {
    args.iter()
        .map(|text| match text.parse::<i64>() {
            Ok(value) => Ok(Value::I64(value)),
            Err(_) => text.parse::<f64>().map(Value::F64).map_err(|_| format!("`{text}` is not a number")),
        })
        .collect()
}

/// How a result prints: the plain number, as wasmtime prints `--invoke` results.
pub fn format_value(value: Value) -> String {
    match value {
        Value::I32(value) => value.to_string(),
        Value::I64(value) => value.to_string(),
        Value::F32(value) => value.to_string(),
        Value::F64(value) => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_follow_the_parameter_types() {
        assert_eq!(parse_arg("-3", TYPE_I32), Ok(Value::I32(-3)));
        assert_eq!(parse_arg("4294967295", TYPE_I32), Ok(Value::I32(-1)));
        assert_eq!(parse_arg("1.5", TYPE_F64), Ok(Value::F64(1.5)));
        assert_eq!(parse_arg("2", TYPE_F32), Ok(Value::F32(2.0)));
        assert!(parse_arg("1.5", TYPE_I32).is_err());
        assert!(parse_arg("4294967296", TYPE_I32).is_err());
        let signature = Signature { params: vec![TYPE_I32, TYPE_I64], results: vec![] };
        assert!(parse_args("f", &["1".into()], &signature).unwrap_err().contains("takes 2 argument(s) (i32, i64)"));
    }
}
