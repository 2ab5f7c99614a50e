//! The network manager's socket memory: one [`Storage`] in a static, handed out once ([`take`]).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use jos_kcore::net::manager::Storage;

struct StorageCell(UnsafeCell<Storage<'static>>);
// SAFETY: the storage is handed out once, guarded by STORAGE_TAKEN; nothing else touches it.
unsafe impl Sync for StorageCell {}

static STORAGE: StorageCell = StorageCell(UnsafeCell::new(Storage::new()));
static STORAGE_TAKEN: AtomicBool = AtomicBool::new(false);

/// The socket memory, the first time only (`None` afterwards).
pub(super) fn take() -> Option<&'static mut Storage<'static>> {
    if STORAGE_TAKEN.swap(true, Ordering::AcqRel) {
        return None;
    }
    // SAFETY: STORAGE_TAKEN was false, so this is the only reference ever made to the storage.
    Some(unsafe { &mut *STORAGE.0.get() })
}
