//! The error a system call returns: a code from `jos_abi::ErrorCode`, or one this SDK does not
//! know (a newer device).

use core::fmt;

use jos_abi::ErrorCode;

/// A failed system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Error {
    code: u32,
}

/// The result of a system call wrapper.
pub type Result<T> = core::result::Result<T, Error>;

impl Error {
    /// An error with a known code.
    pub const fn new(code: ErrorCode) -> Self {
        Self { code: code as u32 }
    }

    /// Splits a raw `i32` result: non-negative values are returned, negative ones are errors.
    pub fn check(value: i32) -> Result<u32> {
        if value >= 0 {
            Ok(value.unsigned_abs())
        } else {
            Err(Self { code: value.unsigned_abs() })
        }
    }

    /// The numeric code (`ErrorCode as u32`).
    pub const fn code(self) -> u32 {
        self.code
    }

    /// The code as an `ErrorCode`, if this SDK knows it.
    pub fn kind(self) -> Option<ErrorCode> {
        ErrorCode::try_from(self.code).ok()
    }

    /// The value a job can exit with for this error: `-(code)`.
    pub fn to_return(self) -> i32 {
        0i32.saturating_sub_unsigned(self.code)
    }
}

impl From<ErrorCode> for Error {
    fn from(code: ErrorCode) -> Self {
        Self::new(code)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind() {
            Some(kind) => write!(f, "{kind} (code {})", self.code),
            None => write!(f, "error code {}", self.code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_splits_results() {
        assert_eq!(Error::check(0), Ok(0));
        assert_eq!(Error::check(7), Ok(7));
        let error = Error::check(ErrorCode::WouldBlock.to_return()).unwrap_err();
        assert_eq!(error.kind(), Some(ErrorCode::WouldBlock));
        assert_eq!(error.to_return(), -5);
        let unknown = Error::check(-999).unwrap_err();
        assert_eq!((unknown.kind(), unknown.code()), (None, 999));
        assert_eq!(Error::check(i32::MIN).unwrap_err().to_return(), i32::MIN);
    }
}
