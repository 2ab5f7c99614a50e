//! Kernel logic that needs no hardware, so host unit tests reach it: the memory map,
//! page-table building, allocator accounting, console text layout, the executive's schedule.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
