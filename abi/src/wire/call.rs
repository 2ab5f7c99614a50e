//! Typed values of an `Invoke` with a call: how arguments ride in its `i64` slots, and how the
//! function's results come back in the `JobResult`'s own `results` field (separate from the
//! job's output bytes, so a called function may also write output).
//!
//! - **Arguments**: each `i64` slot holds the value's bits as the function's parameter type reads
//!   them: an `i32` or `f32` in the low 32 bits (the `f32`'s IEEE bits), an `i64` as is, an `f64`
//!   as its IEEE bits ([`Value::to_slot`], [`Value::from_slot`]).
//! - **Results**: a list of 9-byte records, one per result: the wasm value-type byte (`0x7F`
//!   i32, `0x7E` i64, `0x7D` f32, `0x7C` f64) then the value's bits as a little-endian `u64`
//!   (32-bit values zero-extended). [`CallResults::new_checked`] refuses a length that is not a
//!   multiple of 9, an unknown type byte, or set bits above a 32-bit value; afterwards iteration
//!   cannot fail. In a JobResult the records follow a one-byte count (at most
//!   [`super::MAX_CALL_RESULTS`]); [`super::Results`] is that field's `Repr`.

use super::WireError;
pub use crate::job::Value;

/// Length of one encoded result.
pub const RESULT_LEN: usize = 9;
/// Type byte of an `i32` (the wasm value-type encoding).
pub const TYPE_I32: u8 = 0x7F;
/// Type byte of an `i64`.
pub const TYPE_I64: u8 = 0x7E;
/// Type byte of an `f32`.
pub const TYPE_F32: u8 = 0x7D;
/// Type byte of an `f64`.
pub const TYPE_F64: u8 = 0x7C;

impl Value {
    /// The wasm value-type byte.
    pub const fn type_byte(self) -> u8 {
        match self {
            Value::I32(_) => TYPE_I32,
            Value::I64(_) => TYPE_I64,
            Value::F32(_) => TYPE_F32,
            Value::F64(_) => TYPE_F64,
        }
    }

    /// The value's bits in an Invoke argument slot.
    pub fn to_slot(self) -> i64 {
        match self {
            Value::I32(value) => i64::from(value as u32),
            Value::I64(value) => value,
            Value::F32(value) => i64::from(value.to_bits()),
            Value::F64(value) => value.to_bits() as i64,
        }
    }

    /// Reads an argument slot as the parameter type `type_byte` ([`TYPE_I32`] ...); `None` for
    /// an unknown type byte.
    pub fn from_slot(type_byte: u8, slot: i64) -> Option<Self> {
        Some(match type_byte {
            TYPE_I32 => Value::I32(slot as u32 as i32),
            TYPE_I64 => Value::I64(slot),
            TYPE_F32 => Value::F32(f32::from_bits(slot as u32)),
            TYPE_F64 => Value::F64(f64::from_bits(slot as u64)),
            _ => return None,
        })
    }

    /// The value's bits as the result record carries them (32-bit values zero-extended).
    pub fn bits(self) -> u64 {
        match self {
            Value::I32(value) => u64::from(value as u32),
            Value::I64(value) => value as u64,
            Value::F32(value) => u64::from(value.to_bits()),
            Value::F64(value) => value.to_bits(),
        }
    }

    /// Writes the 9-byte result record; returns [`RESULT_LEN`].
    pub fn emit(self, buffer: &mut [u8]) -> Result<usize, WireError> {
        let out = buffer.get_mut(..RESULT_LEN).ok_or(WireError::BufferTooSmall)?;
        out[0] = self.type_byte();
        out[1..].copy_from_slice(&self.bits().to_le_bytes());
        Ok(RESULT_LEN)
    }

    /// Reads one 9-byte result record.
    pub fn parse(record: &[u8]) -> Result<Self, WireError> {
        let (&type_byte, bits) = record.split_first().ok_or(WireError::Truncated)?;
        let bits = u64::from_le_bytes(bits.try_into().map_err(|_| WireError::Truncated)?);
        let narrow = || u32::try_from(bits).map_err(|_| WireError::BadValue);
        Ok(match type_byte {
            TYPE_I32 => Value::I32(narrow()? as i32),
            TYPE_I64 => Value::I64(bits as i64),
            TYPE_F32 => Value::F32(f32::from_bits(narrow()?)),
            TYPE_F64 => Value::F64(f64::from_bits(bits)),
            _ => return Err(WireError::BadValue),
        })
    }
}

/// A checked view of encoded call results (the records of a JobResult's `results` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallResults<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> CallResults<T> {
    /// Checks the length and every record.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let bytes = buffer.as_ref();
        if bytes.len() % RESULT_LEN != 0 {
            return Err(WireError::Truncated);
        }
        for record in bytes.chunks_exact(RESULT_LEN) {
            Value::parse(record)?;
        }
        Ok(CallResults { buffer })
    }

    /// Number of results.
    pub fn len(&self) -> usize {
        self.buffer.as_ref().len() / RESULT_LEN
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The results in order.
    pub fn iter(&self) -> impl Iterator<Item = Value> + '_ {
        self.buffer.as_ref().chunks_exact(RESULT_LEN).filter_map(|record| Value::parse(record).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_golden() {
        let golden = [
            0x7F, 0xFE, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, // i32 -2
            0x7C, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F, // f64 1.5
        ];
        let results = CallResults::new_checked(&golden[..]).unwrap();
        let values: [Value; 2] = [Value::I32(-2), Value::F64(1.5)];
        assert_eq!(results.len(), 2);
        assert!(results.iter().eq(values));
        let mut emitted = [0u8; 18];
        values[0].emit(&mut emitted[..9]).unwrap();
        values[1].emit(&mut emitted[9..]).unwrap();
        assert_eq!(emitted, golden);
        assert_eq!(values[0].emit(&mut [0u8; 8]), Err(WireError::BufferTooSmall));
    }

    #[test]
    fn bad_results_are_refused() {
        assert_eq!(CallResults::new_checked(&[0x7F, 0, 0][..]), Err(WireError::Truncated));
        assert_eq!(CallResults::new_checked(&[0x7B, 0, 0, 0, 0, 0, 0, 0, 0][..]), Err(WireError::BadValue));
        // An i32 with bits above 32.
        assert_eq!(CallResults::new_checked(&[0x7F, 0, 0, 0, 0, 1, 0, 0, 0][..]), Err(WireError::BadValue));
        assert!(CallResults::new_checked(&[][..]).unwrap().is_empty());
    }

    #[test]
    fn slots_round_trip() {
        for value in [Value::I32(-7), Value::I64(-7), Value::F32(2.5), Value::F64(-0.25)] {
            assert_eq!(Value::from_slot(value.type_byte(), value.to_slot()), Some(value));
        }
        assert_eq!(Value::I32(-1).to_slot(), 0xFFFF_FFFF);
        assert_eq!(Value::from_slot(0x40, 0), None);
    }
}
