//! A fixed-capacity text line that `core::fmt` can write into, truncating instead of failing:
//! the status screen and fault reports format into it without the heap.

use core::fmt;

/// Up to `N` bytes of UTF-8 text.
#[derive(Clone, Copy)]
pub struct Line<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Default for Line<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Line<N> {
    /// An empty line.
    pub const fn new() -> Self {
        Self { bytes: [0; N], len: 0 }
    }

    /// The text so far.
    pub fn as_str(&self) -> &str {
        // Only whole characters are ever appended, so this cannot fail; fall back to "" anyway.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }

    /// Empties the line.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Replaces the contents with `args` (truncated to `N` bytes).
    pub fn set(&mut self, args: fmt::Arguments) {
        self.clear();
        let _ = fmt::write(self, args);
    }
}

impl<const N: usize> fmt::Write for Line<N> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for character in text.chars() {
            let mut buffer = [0u8; 4];
            let encoded = character.encode_utf8(&mut buffer).as_bytes();
            if self.len + encoded.len() > N {
                break;
            }
            self.bytes[self.len..self.len + encoded.len()].copy_from_slice(encoded);
            self.len += encoded.len();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_character_boundaries() {
        let mut line = Line::<5>::new();
        line.set(format_args!("ab{}", "cdéf"));
        assert_eq!(line.as_str(), "abcd");
        line.set(format_args!("{}", 42));
        assert_eq!(line.as_str(), "42");
    }
}
