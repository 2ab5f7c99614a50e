//! The kernel image's layout as the linker script (kernel/link.ld) placed it: image bounds and
//! the per-mode stacks, the native job's stack and the wasm interpreter's stack with their guard
//! pages.

extern "C" {
    static __kernel_start: u8;
    static __text_end: u8;
    static __user_stubs_start: u8;
    static __user_stubs_end: u8;
    static __rw_start: u8;
    static __data_end: u8;
    static __bss_start: u8;
    static __bss_end: u8;
    static __kernel_end: u8;
    static __und_stack_bottom: u8;
    static __und_stack_top: u8;
    static __abt_stack_bottom: u8;
    static __abt_stack_top: u8;
    static __fiq_stack_bottom: u8;
    static __fiq_stack_top: u8;
    static __irq_stack_bottom: u8;
    static __irq_stack_top: u8;
    static __svc_stack_bottom: u8;
    static __svc_stack_top: u8;
    static __job_stack_bottom: u8;
    static __job_stack_top: u8;
    static __wasm_stack_bottom: u8;
    static __wasm_stack_top: u8;
}

macro_rules! symbol {
    ($name:ident) => {
        // Only the address of the linker-defined symbol is taken; it is never read.
        core::ptr::addr_of!($name) as usize
    };
}

/// Size of the unmapped guard page under each stack.
pub const GUARD_SIZE: usize = 4096;

/// First byte of the image (the load address).
pub fn kernel_start() -> usize {
    symbol!(__kernel_start)
}

/// End of the code (page-aligned): `[kernel_start, text_end)` is code, the stub page included.
pub fn text_end() -> usize {
    symbol!(__text_end)
}

/// The page of system-call stubs `[start, end)` (the only kernel page user mode may touch).
pub fn user_stubs() -> (usize, usize) {
    (symbol!(__user_stubs_start), symbol!(__user_stubs_end))
}

/// Start of the writable data (page-aligned): `[text_end, rw_start)` is read-only data.
pub fn rw_start() -> usize {
    symbol!(__rw_start)
}

/// The native job's stack `[bottom, top)` (user read/write; its guard page is below `bottom`).
pub fn job_stack() -> (usize, usize) {
    (symbol!(__job_stack_bottom), symbol!(__job_stack_top))
}

/// The wasm interpreter's stack `[bottom, top)` (kernel read/write; its guard page is below
/// `bottom`): every slice of a wasm job runs on it (`services::wasm_stack`).
pub fn wasm_stack() -> (usize, usize) {
    (symbol!(__wasm_stack_bottom), symbol!(__wasm_stack_top))
}

/// End of the loaded image (code, read-only data, data): what the loader copies.
pub fn image_end() -> usize {
    symbol!(__data_end)
}

/// `.bss` bounds.
pub fn bss() -> (usize, usize) {
    (symbol!(__bss_start), symbol!(__bss_end))
}

/// End of everything the kernel occupies (image, bss, stacks).
pub fn kernel_end() -> usize {
    symbol!(__kernel_end)
}

/// The per-mode stacks, the native job's stack and the wasm interpreter's as
/// `(name, bottom, top)`.
pub fn stacks() -> [(&'static str, usize, usize); 7] {
    [
        ("und", symbol!(__und_stack_bottom), symbol!(__und_stack_top)),
        ("abt", symbol!(__abt_stack_bottom), symbol!(__abt_stack_top)),
        ("fiq", symbol!(__fiq_stack_bottom), symbol!(__fiq_stack_top)),
        ("irq", symbol!(__irq_stack_bottom), symbol!(__irq_stack_top)),
        ("svc", symbol!(__svc_stack_bottom), symbol!(__svc_stack_top)),
        ("job", symbol!(__job_stack_bottom), symbol!(__job_stack_top)),
        ("wasm", symbol!(__wasm_stack_bottom), symbol!(__wasm_stack_top)),
    ]
}

/// The guard pages `[start, end)`, one under each stack.
pub fn guard_pages() -> [(usize, usize); 7] {
    stacks().map(|(_, bottom, _)| (bottom - GUARD_SIZE, bottom))
}

/// The stack `address` lies in, if any, as `(name, bottom, top)`.
pub fn stack_containing(address: usize) -> Option<(&'static str, usize, usize)> {
    stacks().into_iter().find(|&(_, bottom, top)| address >= bottom && address < top)
}
