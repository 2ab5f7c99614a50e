//! Example jobs for jos. Guest sources sit in this folder by example name; this host crate lists
//! them for the tests and the CLI.

/// The folder that holds the example guests.
pub fn examples_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}
