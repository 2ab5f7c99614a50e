//! An interrupt-safe lock for the single-core kernel: the closure runs with IRQs masked, so the
//! main loop and interrupt handlers never see each other's half-done updates.

use core::cell::{Cell, UnsafeCell};

/// A value shared between the main loop and interrupt handlers.
pub struct IrqLock<T> {
    busy: Cell<bool>,
    value: UnsafeCell<T>,
}

// SAFETY: one core; every access goes through `lock`/`try_lock`, which mask IRQs and refuse
// re-entry, so at most one `&mut T` exists at a time.
unsafe impl<T: Send> Sync for IrqLock<T> {}

impl<T> IrqLock<T> {
    /// Wraps `value`.
    pub const fn new(value: T) -> Self {
        Self { busy: Cell::new(false), value: UnsafeCell::new(value) }
    }

    /// Runs `f` on the value with IRQs masked.
    ///
    /// # Panics
    /// When called again from inside `f` (re-entry would alias the value).
    pub fn lock<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        match self.try_lock(f) {
            Some(result) => result,
            None => panic!("IrqLock re-entered"),
        }
    }

    /// Like [`lock`](Self::lock), but returns `None` instead of panicking when the lock is
    /// already held (for the panic and fault paths).
    pub fn try_lock<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        // A wasm slice near the end of its stack ends here, before the lock is held (a lock
        // held by abandoned frames would stay held).
        crate::services::wasm_stack::probe();
        let saved = crate::arch::disable_interrupts();
        if self.busy.replace(true) {
            crate::arch::restore_interrupts(saved);
            return None;
        }
        // SAFETY: `busy` was false and IRQs are masked: nothing else holds a reference.
        let result = f(unsafe { &mut *self.value.get() });
        self.busy.set(false);
        crate::arch::restore_interrupts(saved);
        Some(result)
    }
}
