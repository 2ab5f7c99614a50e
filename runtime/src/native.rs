//! The native blob loader: validate, verify, place, zero bss, relocate, bind imports, sync caches.
//!
//! Everything up to the jump is here and tested on the host; the jump itself (and the deadline
//! that bounds a native job) belongs to the kernel. The steps, in order:
//! 1. [`Blob::new_checked`]: every length, offset and table entry of the header checked against the
//!    buffer (lengths past the end, overlapping sections, slots outside the image, unknown syscall
//!    ids, misaligned entry are all refused there).
//! 2. The blob's ABI version must be accepted by [`AbiVersion::CURRENT`], its architecture ARMv6.
//! 3. [`verify_blob`]: the Ed25519 trailer over the signed part, by a trusted signer with the
//!    `native` right (a wasm-only signer is refused with `NotPermitted`).
//! 4. Placement: the image is copied to the first address in the caller's region aligned to the
//!    blob's alignment, and the bss after it is zeroed to the end of the image's last page
//!    ([`LOADER_PAGE`]) only: [`LoadedBlob::loaded_len`] says how far. The rest of the bss is
//!    left as it was; the caller zeroes it before anything reads it (the kernel does it page by
//!    page when the job first touches it, so a job pays only for the memory it uses).
//! 5. Relocations: each listed image word gets the load address added.
//! 6. Imports: each slot gets `dispatch[syscall id]`, the kernel's function address: one array
//!    lookup and one store per import. An entry of 0 means the kernel does not offer that call
//!    (or withholds it from this job), and the blob is refused.
//! 7. [`CacheMaintenance::sync_code`] over the image (clean D-cache, invalidate I-cache).
//!
//! The result gives the entry address; the kernel calls it as
//! `extern "C" fn() -> i32` (hard-float AAPCS, ARM state).

use core::fmt;

use jos_abi::blob::{Arch, Blob, BlobError};
use jos_abi::signature::{verify_blob, SignatureError, TrustedSigner};
use jos_abi::syscall::SYSCALL_TABLE_LEN;
use jos_abi::{AbiVersion, ErrorCode, SyscallId};

/// What the kernel does after code is written and before it runs: on the ARM1176, clean the
/// D-cache lines of the range to the point of unification, invalidate the I-cache (and the branch
/// predictor), then a barrier.
pub trait CacheMaintenance {
    /// Makes the `len` bytes written at `address` visible to instruction fetch.
    fn sync_code(&mut self, address: usize, len: usize);
}

/// The page size the loader zeroes to: the bss is zeroed up to the end of the page (in the
/// address space) holding the image's last byte, no further.
pub const LOADER_PAGE: usize = 4096;

/// The kernel functions a blob's imports bind to, indexed by syscall id; 0 = not offered.
pub type DispatchTable = [usize; SYSCALL_TABLE_LEN];

/// Why a blob was not loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NativeError {
    /// The blob's structure is invalid (see [`BlobError`]).
    Blob(BlobError),
    /// The signature check failed (see [`SignatureError`]).
    Signature(SignatureError),
    /// The blob was built against an ABI this kernel does not accept.
    AbiMismatch(AbiVersion),
    /// The region cannot hold the blob at its alignment.
    RegionTooSmall {
        /// Bytes needed from the start of the region, alignment padding included.
        needed: usize,
        /// Bytes in the region.
        available: usize,
    },
    /// The loaded code would lie above the 32-bit address space.
    AddressOverflow,
    /// The blob imports a call the dispatch table does not offer.
    SyscallNotOffered(SyscallId),
}

impl NativeError {
    /// The ABI error code for this refusal.
    pub fn code(self) -> ErrorCode {
        match self {
            NativeError::Blob(error) => error.code(),
            NativeError::Signature(error) => error.code(),
            NativeError::AbiMismatch(_) => ErrorCode::AbiMismatch,
            NativeError::RegionTooSmall { .. } | NativeError::AddressOverflow => ErrorCode::LimitExceeded,
            NativeError::SyscallNotOffered(_) => ErrorCode::Unsupported,
        }
    }
}

impl fmt::Display for NativeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NativeError::Blob(error) => write!(f, "invalid blob: {error}"),
            NativeError::Signature(error) => write!(f, "signature: {error}"),
            NativeError::AbiMismatch(version) => {
                write!(f, "blob needs ABI {version}, device has {}", AbiVersion::CURRENT)
            }
            NativeError::RegionTooSmall { needed, available } => {
                write!(f, "blob needs {needed} bytes, region has {available}")
            }
            NativeError::AddressOverflow => f.write_str("blob would load above 4 GiB"),
            NativeError::SyscallNotOffered(id) => write!(f, "syscall {} not offered", id.syscall().name),
        }
    }
}

/// A blob placed in memory, ready to enter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadedBlob {
    /// Address of the first byte of the image.
    pub base: u32,
    /// Address of the entry point.
    pub entry: u32,
    /// Offset of the image in the region (alignment padding).
    pub offset: usize,
    /// Bytes used from `base`: image plus bss.
    pub memory_len: usize,
    /// Bytes from `base` the loader wrote: the image, then zeros up to the end of the page
    /// holding its last byte (at most `memory_len`). `memory_len - loaded_len` bytes of bss are
    /// not written: they still hold whatever the region held.
    pub loaded_len: usize,
    /// The ABI the blob was built against.
    pub abi: AbiVersion,
    /// Index in the signer list of the key that signed it; `None` from [`load_verified_at`],
    /// which does not check the signature again.
    pub signer: Option<usize>,
}

fn read_word(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn write_word(bytes: &mut [u8], at: usize, value: u32) -> Option<()> {
    bytes.get_mut(at..at.checked_add(4)?)?.copy_from_slice(&value.to_le_bytes());
    Some(())
}

/// Loads `blob` into `region`, which the code will run at address `region_address`. See the
/// module documentation for the steps. On error the region may hold a partial image; it must not
/// be entered.
pub fn load_at(
    blob: &[u8],
    signers: &[TrustedSigner],
    region: &mut [u8],
    region_address: u32,
    dispatch: &DispatchTable,
    cache: &mut impl CacheMaintenance,
) -> Result<LoadedBlob, NativeError> {
    let blob = checked(blob)?;
    let verified = verify_blob(&blob, signers).map_err(NativeError::Signature)?;
    place(&blob, Some(verified.signer), region, region_address, dispatch, cache)
}

/// [`load_at`] without step 3, for a blob whose signature the caller has already verified with
/// [`verify_blob`] and kept in memory only it writes (the kernel's offload server verifies a blob
/// when it is pushed and loads it from its cache at every invoke: an Ed25519 check costs about
/// 1.7 ms on the BCM2835). Every other check is made again.
pub fn load_verified_at(
    blob: &[u8],
    region: &mut [u8],
    region_address: u32,
    dispatch: &DispatchTable,
    cache: &mut impl CacheMaintenance,
) -> Result<LoadedBlob, NativeError> {
    let blob = checked(blob)?;
    place(&blob, None, region, region_address, dispatch, cache)
}

/// Steps 1 and 2: the header checked, the ABI accepted, the architecture ARMv6.
fn checked(blob: &[u8]) -> Result<Blob<&[u8]>, NativeError> {
    let blob = Blob::new_checked(blob).map_err(NativeError::Blob)?;
    let abi = blob.abi_version();
    if !AbiVersion::CURRENT.accepts(abi) {
        return Err(NativeError::AbiMismatch(abi));
    }
    if blob.arch() != Some(Arch::Armv6) {
        return Err(NativeError::Blob(BlobError::UnknownArch));
    }
    Ok(blob)
}

/// Steps 4 to 7 for a checked (and, where required, verified) blob.
fn place(
    blob: &Blob<&[u8]>,
    signer: Option<usize>,
    region: &mut [u8],
    region_address: u32,
    dispatch: &DispatchTable,
    cache: &mut impl CacheMaintenance,
) -> Result<LoadedBlob, NativeError> {
    let abi = blob.abi_version();

    // Placement. `align` is a power of two in 4..=65536 and memory_len is at most 64 MiB (both
    // checked by new_checked), so these sums cannot overflow a u64.
    let align = u64::from(blob.align());
    let start = u64::from(region_address);
    let base = (start + align - 1) & !(align - 1);
    let offset = (base - start) as usize;
    let image_len = blob.image_len() as usize;
    let memory_len = blob.memory_len() as usize;
    let needed = offset + memory_len;
    if needed > region.len() {
        return Err(NativeError::RegionTooSmall { needed, available: region.len() });
    }
    if base + memory_len as u64 > u64::from(u32::MAX) + 1 {
        return Err(NativeError::AddressOverflow);
    }
    // Zeros up to the end of the image's last page: `base + image_len <= 2^32`, so the rounded
    // sum fits a u64.
    let loaded_end = (base + image_len as u64).next_multiple_of(LOADER_PAGE as u64);
    let loaded_len = ((loaded_end - base) as usize).min(memory_len);
    let base = base as u32;
    let memory = &mut region[offset..needed];
    memory[..image_len].copy_from_slice(blob.image());
    memory[image_len..loaded_len].fill(0);

    // Relocations: new_checked proved each is a whole, aligned word inside the image whose value
    // is at most memory_len, so base + value stays below 2^32 (checked just above).
    for at in blob.relocations() {
        let at = at as usize;
        let value = read_word(memory, at).ok_or(NativeError::Blob(BlobError::RelocationOutside))?;
        write_word(memory, at, value.wrapping_add(base)).ok_or(NativeError::Blob(BlobError::RelocationOutside))?;
    }

    // Imports: one lookup, one store each.
    for import in blob.imports() {
        let address = dispatch[import.syscall as usize];
        if address == 0 {
            return Err(NativeError::SyscallNotOffered(import.syscall));
        }
        let address = u32::try_from(address).map_err(|_| NativeError::AddressOverflow)?;
        write_word(memory, import.slot as usize, address).ok_or(NativeError::Blob(BlobError::ImportSlotOutside))?;
    }

    // Only the image holds code; the zeros need no maintenance (the D-cache serves them).
    cache.sync_code(base as usize, image_len);
    Ok(LoadedBlob { base, entry: base + blob.entry(), offset, memory_len, loaded_len, abi, signer })
}

/// [`load_at`] for code that runs where `region` is (the kernel, on a 32-bit target).
#[cfg(target_pointer_width = "32")]
pub fn load(
    blob: &[u8],
    signers: &[TrustedSigner],
    region: &mut [u8],
    dispatch: &DispatchTable,
    cache: &mut impl CacheMaintenance,
) -> Result<LoadedBlob, NativeError> {
    let address = region.as_ptr() as usize as u32;
    load_at(blob, signers, region, address, dispatch, cache)
}

/// [`load_verified_at`] for code that runs where `region` is (the kernel, on a 32-bit target).
#[cfg(target_pointer_width = "32")]
pub fn load_verified(
    blob: &[u8],
    region: &mut [u8],
    dispatch: &DispatchTable,
    cache: &mut impl CacheMaintenance,
) -> Result<LoadedBlob, NativeError> {
    let address = region.as_ptr() as usize as u32;
    load_verified_at(blob, region, address, dispatch, cache)
}
