//! Error codes shared by system calls, the wire protocol and job results.

use core::fmt;

/// An error code. Values are fixed and non-zero; a system call returns `-(code as i32)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ErrorCode {
    /// An argument is out of range or malformed.
    InvalidArgument = 1,
    /// A pointer and length fall outside the job's memory.
    BadAddress = 2,
    /// A limit (output size, memory, fuel, queue, module size) was reached.
    LimitExceeded = 3,
    /// The job lacks the capability for this call.
    PermissionDenied = 4,
    /// Nothing available yet; try again.
    WouldBlock = 5,
    /// The resource (socket, module hash, pin) does not exist.
    NotFound = 6,
    /// The device is busy (job queue full).
    Busy = 7,
    /// The call is not implemented on this device.
    Unsupported = 8,
    /// A format could not be parsed (module, blob, message).
    Malformed = 9,
    /// A signature is missing or does not verify.
    BadSignature = 10,
    /// The signer is not trusted for this format.
    UntrustedSigner = 11,
    /// The module needs an ABI this device does not provide.
    AbiMismatch = 12,
    /// An I/O failure on the device (network, hardware).
    Io = 13,
    /// A resource is already in use (port taken).
    InUse = 14,
}

impl ErrorCode {
    /// Every code, for tables and tests.
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::InvalidArgument,
        ErrorCode::BadAddress,
        ErrorCode::LimitExceeded,
        ErrorCode::PermissionDenied,
        ErrorCode::WouldBlock,
        ErrorCode::NotFound,
        ErrorCode::Busy,
        ErrorCode::Unsupported,
        ErrorCode::Malformed,
        ErrorCode::BadSignature,
        ErrorCode::UntrustedSigner,
        ErrorCode::AbiMismatch,
        ErrorCode::Io,
        ErrorCode::InUse,
    ];

    /// The value a system call returns for this error.
    pub const fn to_return(self) -> i32 {
        -(self as i32)
    }

    /// A short lower-case description.
    pub const fn message(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "invalid argument",
            ErrorCode::BadAddress => "address outside the job's memory",
            ErrorCode::LimitExceeded => "limit exceeded",
            ErrorCode::PermissionDenied => "permission denied",
            ErrorCode::WouldBlock => "would block",
            ErrorCode::NotFound => "not found",
            ErrorCode::Busy => "device busy",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::Malformed => "malformed input",
            ErrorCode::BadSignature => "bad signature",
            ErrorCode::UntrustedSigner => "untrusted signer",
            ErrorCode::AbiMismatch => "ABI version mismatch",
            ErrorCode::Io => "I/O error",
            ErrorCode::InUse => "in use",
        }
    }
}

impl TryFrom<u32> for ErrorCode {
    type Error = u32;

    fn try_from(value: u32) -> Result<Self, u32> {
        ErrorCode::ALL.iter().copied().find(|code| *code as u32 == value).ok_or(value)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_fixed_non_zero_and_round_trip() {
        for (index, code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(*code as u32, index as u32 + 1);
            assert_eq!(ErrorCode::try_from(*code as u32), Ok(*code));
            assert!(code.to_return() < 0);
        }
        assert_eq!(ErrorCode::try_from(0), Err(0));
        assert_eq!(ErrorCode::try_from(15), Err(15));
    }
}
