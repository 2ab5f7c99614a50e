//! Kernel logic that needs no hardware, so host unit tests reach it: the memory map,
//! page-table building, allocator accounting, console text layout, the executive's schedule, the network pre-filter and echo fast path,
//! board revision decoding, UART divisors, LED blink codes, the console shell's line editor
//! ([`shell`]), the traits the drivers implement ([`drivers`]) and the USB host stack above the
//! host controller ([`usb`]).

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

#[cfg(feature = "fuzzing")]
extern crate std;

pub mod board;
pub mod console;
pub mod drivers;
pub mod executive;
pub mod font;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod heap_stats;
pub mod led;
pub mod memory_map;
pub mod net;
pub mod page_table;
pub mod shell;
pub mod text;
pub mod uart;
pub mod usb;
