//! Little-endian cursors shared by the wire and config codecs: every read and write is
//! bounds-checked and reports failure instead of panicking.

/// Reads little-endian fields from untrusted bytes; `None` past the end.
#[derive(Clone, Copy, Debug)]
pub struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `bytes`.
    pub const fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes }
    }

    /// The bytes not read yet.
    pub const fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    /// Whether everything was read.
    pub const fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The next `len` bytes.
    pub fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if len > self.bytes.len() {
            return None;
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Some(taken)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    /// A byte.
    pub fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    /// A little-endian u16.
    pub fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.array()?))
    }

    /// A little-endian u32.
    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.array()?))
    }

    /// A little-endian u64.
    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.array()?))
    }

    /// A little-endian i64.
    pub fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.array()?))
    }
}

/// Writes little-endian fields; `None` when the buffer is full.
#[derive(Debug)]
pub struct Writer<'a> {
    buffer: &'a mut [u8],
    at: usize,
}

impl<'a> Writer<'a> {
    /// A writer at the start of `buffer`.
    pub fn new(buffer: &'a mut [u8]) -> Self {
        Writer { buffer, at: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.at
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.at == 0
    }

    /// Appends bytes.
    pub fn bytes(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.at.checked_add(bytes.len())?;
        self.buffer.get_mut(self.at..end)?.copy_from_slice(bytes);
        self.at = end;
        Some(())
    }

    /// Appends a byte.
    pub fn u8(&mut self, value: u8) -> Option<()> {
        self.bytes(&[value])
    }

    /// Appends a little-endian u16.
    pub fn u16(&mut self, value: u16) -> Option<()> {
        self.bytes(&value.to_le_bytes())
    }

    /// Appends a little-endian u32.
    pub fn u32(&mut self, value: u32) -> Option<()> {
        self.bytes(&value.to_le_bytes())
    }

    /// Appends a little-endian u64.
    pub fn u64(&mut self, value: u64) -> Option<()> {
        self.bytes(&value.to_le_bytes())
    }

    /// Appends a little-endian i64.
    pub fn i64(&mut self, value: i64) -> Option<()> {
        self.bytes(&value.to_le_bytes())
    }
}

/// A fixed-size record in a list that is either still encoded (validated) or in memory.
pub trait Record: Copy {
    /// Encoded size.
    const LEN: usize;
    /// Decodes exactly `LEN` bytes; `None` if invalid.
    fn decode(bytes: &[u8]) -> Option<Self>;
    /// Encodes into a writer.
    fn encode(&self, writer: &mut Writer<'_>) -> Option<()>;
}

impl Record for [u8; 32] {
    const LEN: usize = 32;

    fn decode(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok()
    }

    fn encode(&self, writer: &mut Writer<'_>) -> Option<()> {
        writer.bytes(self)
    }
}

/// A list of [`Record`]s: encoded bytes from a checked parse, or a slice to emit. Equality
/// compares the records, whatever the storage.
#[derive(Clone, Copy)]
pub struct List<'a, T: Record> {
    storage: Storage<'a, T>,
}

#[derive(Clone, Copy)]
enum Storage<'a, T> {
    Encoded(&'a [u8]),
    Decoded(&'a [T]),
}

impl<'a, T: Record> List<'a, T> {
    /// A list over records in memory.
    pub const fn from_slice(records: &'a [T]) -> Self {
        List { storage: Storage::Decoded(records) }
    }

    /// Wraps `count` encoded records after checking that each decodes.
    pub(crate) fn checked(bytes: &'a [u8]) -> Option<Self> {
        if !bytes.len().is_multiple_of(T::LEN) || bytes.chunks_exact(T::LEN).any(|chunk| T::decode(chunk).is_none()) {
            return None;
        }
        Some(List { storage: Storage::Encoded(bytes) })
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        match self.storage {
            Storage::Encoded(bytes) => bytes.len() / T::LEN,
            Storage::Decoded(records) => records.len(),
        }
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Record `index`.
    pub fn get(&self, index: usize) -> Option<T> {
        match self.storage {
            Storage::Encoded(bytes) => {
                let start = index.checked_mul(T::LEN)?;
                T::decode(bytes.get(start..start.checked_add(T::LEN)?)?)
            }
            Storage::Decoded(records) => records.get(index).copied(),
        }
    }

    /// Wraps encoded records that the caller has already validated (each decodes); a record
    /// that does not decode only ends iteration early.
    pub(crate) const fn validated(bytes: &'a [u8]) -> Self {
        List { storage: Storage::Encoded(bytes) }
    }

    /// The records in order.
    pub fn iter(&self) -> ListIter<'a, T> {
        ListIter { list: *self, index: 0 }
    }

    /// Writes every record.
    pub(crate) fn encode(&self, writer: &mut Writer<'_>) -> Option<()> {
        self.iter().try_for_each(|record| record.encode(writer))
    }
}

impl<'a, T: Record> IntoIterator for List<'a, T> {
    type Item = T;
    type IntoIter = ListIter<'a, T>;

    fn into_iter(self) -> ListIter<'a, T> {
        self.iter()
    }
}

/// Iterator over a [`List`].
#[derive(Clone)]
pub struct ListIter<'a, T: Record> {
    list: List<'a, T>,
    index: usize,
}

impl<T: Record> Iterator for ListIter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        let record = self.list.get(self.index)?;
        self.index += 1;
        Some(record)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.list.len().saturating_sub(self.index);
        (left, Some(left))
    }
}

impl<T: Record + PartialEq> PartialEq for List<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<T: Record + Eq> Eq for List<'_, T> {}

impl<T: Record + core::fmt::Debug> core::fmt::Debug for List<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_and_writer_stop_at_the_end() {
        let mut buffer = [0u8; 7];
        let mut writer = Writer::new(&mut buffer);
        assert_eq!(writer.u32(0x0403_0201), Some(()));
        assert_eq!(writer.u16(0x0605), Some(()));
        assert_eq!(writer.u16(0), None, "no room for two bytes");
        assert_eq!(writer.u8(7), Some(()));
        assert_eq!(writer.len(), 7);
        assert_eq!(buffer, [1, 2, 3, 4, 5, 6, 7]);

        let mut cursor = Cursor::new(&buffer);
        assert_eq!(cursor.u32(), Some(0x0403_0201));
        assert_eq!(cursor.u64(), None);
        assert_eq!(cursor.u16(), Some(0x0605));
        assert_eq!(cursor.take(2), None);
        assert_eq!(cursor.u8(), Some(7));
        assert!(cursor.is_empty());
    }

    #[test]
    fn lists_compare_by_records() {
        let keys = [[1u8; 32], [2u8; 32]];
        let mut encoded = [0u8; 64];
        let mut writer = Writer::new(&mut encoded);
        List::from_slice(&keys).encode(&mut writer).unwrap();
        let parsed = List::<[u8; 32]>::checked(&encoded).unwrap();
        assert_eq!(parsed, List::from_slice(&keys));
        assert_eq!(parsed.get(1), Some([2u8; 32]));
        assert_eq!(parsed.get(2), None);
        assert!(List::<[u8; 32]>::checked(&encoded[..63]).is_none());
    }
}
