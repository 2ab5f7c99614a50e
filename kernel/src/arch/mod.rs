//! Architecture support. jos runs on one core, the ARM1176JZF-S (ARMv6K); everything
//! architecture-specific lives in `arm1176/` and is re-exported here.

pub mod arm1176;

pub use arm1176::*;
