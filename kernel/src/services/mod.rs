//! Kernel services built on the drivers: logging and fault/panic reports (the debug manager),
//! the cyclic executive, the screen and its status panel, and the boot self-test.

pub mod executive;
pub mod fault;
pub mod fleet;
pub mod jobio;
pub mod led;
pub mod log;
pub mod native;
pub mod net;
pub mod offload;
pub mod screen;
pub mod selftest;
pub mod shell;
pub mod status;
pub mod wasm_stack;
