//! The C guest SDK (`abi/include`), built into the crate so that a build works from any folder:
//! `jos.h`, `crt0.S`, `jos-rt.c` and `jos-native.ld`.

use std::path::Path;

/// `jos.h`: the system calls for C guests.
pub const JOS_H: &str = include_str!("../../abi/include/jos.h");
/// `crt0.S`: the native entry stub.
pub const CRT0_S: &str = include_str!("../../abi/include/crt0.S");
/// `jos-rt.c`: memcpy and friends for C guests.
pub const JOS_RT_C: &str = include_str!("../../abi/include/jos-rt.c");
/// `jos-native.ld`: the linker script for native blobs.
pub const JOS_NATIVE_LD: &str = include_str!("../../abi/include/jos-native.ld");

/// Writes the SDK files into `folder` (an include folder for `-I`).
pub fn write_to(folder: &Path) -> std::io::Result<()> {
    for (name, text) in [("jos.h", JOS_H), ("crt0.S", CRT0_S), ("jos-rt.c", JOS_RT_C), ("jos-native.ld", JOS_NATIVE_LD)]
    {
        std::fs::write(folder.join(name), text)?;
    }
    Ok(())
}
