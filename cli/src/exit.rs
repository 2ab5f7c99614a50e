//! Process exit codes of `jos-cli`, one per kind of failure; `docs/cli.md` lists them.

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
}

impl Exit {
    /// Every code, for documentation tests.
    pub const ALL: [Exit; 8] = [
        Exit::Success,
        Exit::Failure,
        Exit::Usage,
        Exit::Input,
        Exit::ToolMissing,
        Exit::CompileFailed,
        Exit::AbiViolation,
        Exit::NativeUnsupported,
    ];

    /// The numeric process exit code.
    pub const fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}
