//! The payload's byte encoding: a bounds-checked reader and the unsigned LEB128 writers.

/// A cursor over untrusted bytes; every read is bounds-checked and returns `None` past the end.
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(crate) fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(first)
    }

    /// A one-byte varuint7.
    pub(super) fn u7(&mut self) -> Option<u8> {
        self.byte().filter(|byte| *byte < 0x80)
    }

    /// An unsigned LEB128 u32 of at most 5 bytes, without bits past 32.
    pub(crate) fn varuint(&mut self) -> Option<u32> {
        let mut value = 0u32;
        for index in 0..5 {
            let byte = self.byte()?;
            if index == 4 && byte > 0x0f {
                return None;
            }
            value |= u32::from(byte & 0x7f) << (7 * index);
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    pub(crate) fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if len > self.bytes.len() {
            return None;
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Some(taken)
    }

    /// A varuint length then that many bytes.
    pub(crate) fn vec(&mut self) -> Option<&'a [u8]> {
        let len = self.varuint()? as usize;
        self.take(len)
    }
}

/// Bytes of the unsigned LEB128 encoding of `value`.
pub(super) fn varuint_len(value: usize) -> usize {
    let mut len = 1;
    let mut value = value >> 7;
    while value != 0 {
        len += 1;
        value >>= 7;
    }
    len
}

/// Writes `value` as unsigned LEB128 at `out[*at..]`; the caller sized `out` with
/// [`varuint_len`].
pub(super) fn put_varuint(out: &mut [u8], at: &mut usize, mut value: usize) {
    loop {
        let mut byte = (value & 0x7f) as u8;
        value >>= 7;
        if value != 0 {
            byte |= 0x80;
        }
        out[*at] = byte;
        *at += 1;
        if value == 0 {
            return;
        }
    }
}

/// Writes `bytes` at `out[*at..]`; the caller sized `out`.
pub(super) fn put_bytes(out: &mut [u8], at: &mut usize, bytes: &[u8]) {
    out[*at..*at + bytes.len()].copy_from_slice(bytes);
    *at += bytes.len();
}
