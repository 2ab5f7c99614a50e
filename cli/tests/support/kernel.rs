//! Where the CLI tests that boot the emulated device find the kernel (included with `#[path]`).

use std::path::{Path, PathBuf};

/// `jos-kernel.elf` in `$JOS_BUILD_DIR` (set by `cargo xtask test`) or the repository's `build/`.
pub fn kernel() -> PathBuf {
    let build = std::env::var_os("JOS_BUILD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../build"));
    let path = build.join("jos-kernel.elf");
    assert!(path.exists(), "{} is missing: run the tests through `cargo xtask test`", path.display());
    path
}
