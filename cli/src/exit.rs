//! Process exit codes of `jos-cli`, one per kind of failure; `docs/cli.md` lists them. The
//! libraries' errors ([`ClientError`], [`BuildError`]) and job statuses map onto them here.

use jos_abi::wire::JobStatus;
use jos_build::BuildError;
use jos_client::ClientError;

/// What a `jos-cli` run ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Exit {
    /// Everything worked.
    Success = 0,
    /// An unexpected failure (a bug, or an I/O error writing results).
    Failure = 1,
    /// The command line is wrong (clap's own code for usage errors).
    Usage = 2,
    /// An input file or folder is missing, unreadable or of an unknown kind.
    Input = 3,
    /// A tool the command needs (clang, arm-none-eabi-gcc, cargo) is not installed.
    ToolMissing = 4,
    /// The compiler or linker reported errors (shown above the message).
    CompileFailed = 5,
    /// The module breaks the jos ABI: an import that is not a jos system call, a wrong
    /// signature, a missing `run` export, memory over the cap.
    AbiViolation = 6,
    /// The ELF cannot be expressed as a native jos blob (relocation type, TLS, writable code,
    /// undefined symbol, section outside the image).
    NativeUnsupported = 7,
    /// No device answered, or the connection to it failed or dropped, or the device closed it (or
    /// did not answer) before the handshake finished.
    Unreachable = 8,
    /// The device is not in the trust store, its advert signature is bad, or its keys differ from
    /// the pinned ones.
    Untrusted = 9,
    /// The device answered the handshake `PermissionDenied`: this client's key is not in its
    /// configuration.
    NotAuthorized = 10,
    /// The device (or the local runtime) refused the module: signature, signer rights, ABI
    /// version, format, malformed module or blob.
    Rejected = 11,
    /// The job trapped (wasm trap or native fault).
    Trap = 12,
    /// The job used its whole fuel budget.
    OutOfFuel = 13,
    /// The job or request went past a limit (memory, output, module size, input size).
    LimitExceeded = 14,
    /// A native job ran past its deadline (or a wasm job past its wall-clock limit).
    Deadline = 15,
    /// The device's job queue is full, or it has no session free for this connection.
    Busy = 16,
    /// `invoke`: the device has no module with that hash (push it again).
    NotCached = 17,
    /// A device reported the job aborted from outside. jos devices abort a job only when its
    /// client's connection is gone, so no client receives this from a jos device today; the code
    /// stays for the wire status (`JobStatus::Aborted`).
    Aborted = 18,
    /// The device broke the protocol (malformed message, failed decryption, unexpected reply).
    Protocol = 19,
    /// The device stopped answering within the timeout.
    Timeout = 20,
    /// A key, device or setting the command needs is missing (run `jos-cli keygen`, `provision`,
    /// `emu start`).
    NotSetUp = 21,
    /// The command would overwrite something (a key, an output file) without `--force`.
    Exists = 22,
    /// `verify`: the signature is missing, bad, or by a key that is not trusted.
    BadSignature = 23,
    /// The emulator could not be started, reached or stopped (QEMU missing, kernel missing,
    /// emulator not running).
    Emulator = 24,
}

impl Exit {
    /// Every code, for documentation tests.
    pub const ALL: [Exit; 25] = [
        Exit::Success,
        Exit::Failure,
        Exit::Usage,
        Exit::Input,
        Exit::ToolMissing,
        Exit::CompileFailed,
        Exit::AbiViolation,
        Exit::NativeUnsupported,
        Exit::Unreachable,
        Exit::Untrusted,
        Exit::NotAuthorized,
        Exit::Rejected,
        Exit::Trap,
        Exit::OutOfFuel,
        Exit::LimitExceeded,
        Exit::Deadline,
        Exit::Busy,
        Exit::NotCached,
        Exit::Aborted,
        Exit::Protocol,
        Exit::Timeout,
        Exit::NotSetUp,
        Exit::Exists,
        Exit::BadSignature,
        Exit::Emulator,
    ];

    /// The numeric process exit code.
    pub const fn code(self) -> u8 {
        self as u8
    }
}

impl Exit {
    /// The exit code for a client failure.
    pub fn from_client(error: &ClientError) -> Exit {
        match error {
            ClientError::Unreachable(_) | ClientError::NoSession(_) => Exit::Unreachable,
            ClientError::Untrusted(_) => Exit::Untrusted,
            ClientError::NotAuthorized(_) => Exit::NotAuthorized,
            ClientError::Rejected(..) => Exit::Rejected,
            ClientError::Limit(_) => Exit::LimitExceeded,
            ClientError::Busy(_) => Exit::Busy,
            ClientError::NotCached(_) => Exit::NotCached,
            ClientError::Protocol(_) => Exit::Protocol,
            ClientError::Timeout(_) => Exit::Timeout,
            ClientError::Setup(_) => Exit::NotSetUp,
            ClientError::Io(_) => Exit::Failure,
        }
    }

    /// The exit code for a build failure.
    pub fn from_build(error: &BuildError) -> Exit {
        match error {
            BuildError::Usage(_) => Exit::Usage,
            BuildError::Input { .. } => Exit::Input,
            BuildError::ToolMissing { .. } => Exit::ToolMissing,
            BuildError::CompileFailed { .. } => Exit::CompileFailed,
            BuildError::Abi(_) => Exit::AbiViolation,
            BuildError::Native(_) => Exit::NativeUnsupported,
            BuildError::Io { .. } => Exit::Failure,
        }
    }

    /// The exit code for a finished job's status.
    pub fn from_status(status: JobStatus) -> Exit {
        match status {
            JobStatus::Ok => Exit::Success,
            JobStatus::Trap => Exit::Trap,
            JobStatus::OutOfFuel => Exit::OutOfFuel,
            JobStatus::LimitExceeded => Exit::LimitExceeded,
            JobStatus::Rejected => Exit::Rejected,
            JobStatus::Deadline => Exit::Deadline,
            JobStatus::Aborted => Exit::Aborted,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}
