//! Executes a jos job independent of the board: the wasm sandbox and the native blob loader.

#![cfg_attr(not(test), no_std)]

extern crate alloc;
