//! Example jobs for jos, and where to find them. The guests are not host code: C sources sit in
//! `c/`, Rust guest crates in `rust/` (their own cargo workspace, built for wasm32 and
//! armv6-none-eabihf by `jos-cli build`). This crate lists them for the tests and tools.

use std::path::PathBuf;

/// A source language of an example.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Language {
    /// A C file in `c/`, built with jos.h.
    C,
    /// A Rust crate in `rust/`, built with jos-guest.
    Rust,
}

/// One example job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Example {
    /// Its name: `c/NAME.c` and `rust/NAME/`.
    pub name: &'static str,
    /// What it does, and its input and output.
    pub summary: &'static str,
    /// Whether it needs the `Network` capability.
    pub network: bool,
}

/// Every example; each exists in C and in Rust and builds as wasm and as native.
pub const EXAMPLES: &[Example] = &[
    Example {
        name: "md5",
        summary: "MD5 of a string N times (input \"N[ STRING]\" or u32 LE N + string; default \"jon\"); prints the hex digest",
        network: false,
    },
    Example { name: "sha256", summary: "SHA-256 of the input; prints the hex digest", network: false },
    Example { name: "fib", summary: "fib(N) for N in decimal (default 50, at most 93)", network: false },
    Example {
        name: "echo",
        summary: "UDP echo on a granted port (input \"PORT [COUNT]\"); stops after COUNT datagrams or on \"quit\"",
        network: true,
    },
    Example {
        name: "imagefilter",
        summary: "grayscale of a binary PPM (P6, up to 128 x 128) from the input, as P6 on the output",
        network: false,
    },
];

/// Every language an example exists in.
pub const LANGUAGES: [Language; 2] = [Language::C, Language::Rust];

/// The folder that holds the examples (`c/` and `rust/`).
pub fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Example {
    /// The example by name.
    pub fn named(name: &str) -> Option<&'static Example> {
        EXAMPLES.iter().find(|example| example.name == name)
    }

    /// What to hand `jos-cli build` for this example in `language`: the C file or the crate folder.
    pub fn source(&self, language: Language) -> PathBuf {
        match language {
            Language::C => examples_dir().join("c").join(format!("{}.c", self.name)),
            Language::Rust => examples_dir().join("rust").join(self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_source_exists_and_every_source_is_listed() {
        for example in EXAMPLES {
            assert!(example.source(Language::C).is_file(), "{}", example.name);
            assert!(example.source(Language::Rust).join("Cargo.toml").is_file(), "{}", example.name);
        }
        let c_files = std::fs::read_dir(examples_dir().join("c")).unwrap().count();
        assert_eq!(c_files, EXAMPLES.len());
        let workspace = std::fs::read_to_string(examples_dir().join("rust/Cargo.toml")).unwrap();
        for example in EXAMPLES {
            assert!(workspace.contains(&format!("\"{}\"", example.name)), "{} not a workspace member", example.name);
        }
    }
}
