//! The native loader on the host: every step up to the jump, with well-formed and hostile blobs.

use jos_abi::blob::{field, Arch, BlobError, BlobFlags, BlobRepr, Import, Table};
use jos_abi::signature::{public_key, sign_blob, SignatureError, SignerRights, TrustedSigner};
use jos_abi::syscall::SYSCALL_TABLE_LEN;
use jos_abi::{AbiVersion, ErrorCode, SyscallId};
use jos_runtime::native::{load_at, load_verified_at, CacheMaintenance, DispatchTable, LoadedBlob, NativeError};

const DEVELOPER: [u8; 32] = [7; 32];
const WASM_ONLY: [u8; 32] = [8; 32];
const STRANGER: [u8; 32] = [9; 32];
const OUTPUT_WRITE_ADDRESS: usize = 0x0000_8a40;
const LOG_ADDRESS: usize = 0x0000_8b00;
const REGION_ADDRESS: u32 = 0x0010_0004;

fn signers() -> [TrustedSigner; 2] {
    [
        TrustedSigner { public_key: public_key(&WASM_ONLY), rights: SignerRights::WASM },
        TrustedSigner { public_key: public_key(&DEVELOPER), rights: SignerRights::NATIVE },
    ]
}

fn dispatch() -> DispatchTable {
    let mut table = [0usize; SYSCALL_TABLE_LEN];
    table[SyscallId::OutputWrite as usize] = OUTPUT_WRITE_ADDRESS;
    table[SyscallId::Log as usize] = LOG_ADDRESS;
    table
}

#[derive(Default)]
struct RecordingCache(Vec<(usize, usize)>);

impl CacheMaintenance for RecordingCache {
    fn sync_code(&mut self, address: usize, len: usize) {
        self.0.push((address, len));
    }
}

// text: mov r0, #0 | import slot (output_write) | bx lr | relocated pointer to rodata (16)
const TEXT: [u8; 16] = [0x00, 0x00, 0xa0, 0xe3, 0, 0, 0, 0, 0x1e, 0xff, 0x2f, 0xe1, 16, 0, 0, 0];
const RODATA: &[u8] = b"jos!";
// data: a relocated pointer to itself (20), then an import slot (log)
const DATA: [u8; 8] = [20, 0, 0, 0, 0, 0, 0, 0];
const IMPORTS: [Import; 2] =
    [Import { slot: 4, syscall: SyscallId::OutputWrite }, Import { slot: 24, syscall: SyscallId::Log }];
const RELOCATIONS: [u32; 2] = [12, 20];

fn repr() -> BlobRepr<'static> {
    BlobRepr {
        abi_version: AbiVersion::CURRENT,
        arch: Arch::Armv6,
        flags: BlobFlags::NONE,
        entry: 0,
        text: &TEXT,
        rodata: RODATA,
        data: &DATA,
        bss_len: 8,
        align: 16,
        imports: Table::from_slice(&IMPORTS),
        relocations: Table::from_slice(&RELOCATIONS),
        wasm_source: None,
    }
}

fn unsigned(repr: &BlobRepr<'_>) -> Vec<u8> {
    let mut bytes = vec![0; repr.buffer_len()];
    repr.emit(&mut bytes).expect("emits");
    bytes
}

fn signed(repr: &BlobRepr<'_>, seed: &[u8; 32]) -> Vec<u8> {
    sign_blob(&unsigned(repr), seed, true).expect("valid blob signs")
}

fn set_field(bytes: &mut [u8], offset: usize, value: u32) {
    bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
}

fn field_of(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap())
}

fn load(blob: &[u8], region: &mut [u8]) -> Result<LoadedBlob, NativeError> {
    load_at(blob, &signers(), region, REGION_ADDRESS, &dispatch(), &mut RecordingCache::default())
}

#[track_caller]
fn assert_refused(blob: &[u8], expected: NativeError) {
    let mut region = vec![0xaa; 256];
    assert_eq!(load(blob, &mut region), Err(expected));
}

fn word(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

#[test]
fn loads_places_relocates_binds_and_syncs() {
    let blob = signed(&repr(), &DEVELOPER);
    let mut region = vec![0xaa; 256];
    let mut cache = RecordingCache::default();
    let loaded = load_at(&blob, &signers(), &mut region, REGION_ADDRESS, &dispatch(), &mut cache).expect("loads");
    let base = 0x0010_0010;
    assert_eq!(
        loaded,
        LoadedBlob {
            base,
            entry: base,
            offset: 12,
            memory_len: 36,
            loaded_len: 36,
            abi: AbiVersion::CURRENT,
            signer: Some(1)
        }
    );
    let memory = &region[12..12 + 36];
    assert_eq!(word(memory, 0), 0xe3a0_0000, "code copied");
    assert_eq!(word(memory, 4), OUTPUT_WRITE_ADDRESS as u32, "import slot bound");
    assert_eq!(word(memory, 8), 0xe12f_ff1e);
    assert_eq!(word(memory, 12), base + 16, "relocated pointer to rodata");
    assert_eq!(&memory[16..20], b"jos!");
    assert_eq!(word(memory, 20), base + 20, "relocated pointer in data");
    assert_eq!(word(memory, 24), LOG_ADDRESS as u32, "import slot in data bound");
    assert_eq!(&memory[28..36], &[0; 8], "bss zeroed");
    assert!(region[..12].iter().all(|b| *b == 0xaa), "alignment padding untouched");
    assert!(region[48..].iter().all(|b| *b == 0xaa), "past the blob untouched");
    assert_eq!(cache.0, vec![(base as usize, 28)], "one cache sync over the image");
}

/// A blob whose bss runs over several pages: the loader zeroes it only to the end of the page
/// holding the image's last byte and says so (`loaded_len`); the rest of the bss keeps what the
/// region held (the kernel zeroes it when the job first touches it).
#[test]
fn bss_is_zeroed_only_to_the_end_of_the_images_last_page() {
    let mut repr = repr();
    repr.bss_len = 3 * 4096 + 100;
    let blob = signed(&repr, &DEVELOPER);
    let memory_len = 28 + 3 * 4096 + 100;
    let mut region = vec![0xaa; 12 + memory_len + 64];
    let mut cache = RecordingCache::default();
    let loaded = load_at(&blob, &signers(), &mut region, REGION_ADDRESS, &dispatch(), &mut cache).expect("loads");
    let base = 0x0010_0010usize;
    // The image's last byte is at 0x0010_002b: its page ends at 0x0010_1000.
    assert_eq!(loaded.memory_len, memory_len);
    assert_eq!(loaded.loaded_len, 0x0010_1000 - base);
    let memory = &region[12..12 + memory_len];
    assert_eq!(word(memory, 24), LOG_ADDRESS as u32, "image written");
    assert!(memory[28..loaded.loaded_len].iter().all(|b| *b == 0), "bss zeroed to the page end");
    assert!(memory[loaded.loaded_len..].iter().all(|b| *b == 0xaa), "the rest of the bss is not written");
    assert!(region[12 + memory_len..].iter().all(|b| *b == 0xaa), "past the blob untouched");
    assert_eq!(cache.0, vec![(base, 28)], "the cache synced over the image only");

    // An image ending exactly on a page boundary: nothing of the bss is written.
    repr.align = 4;
    let blob = signed(&repr, &DEVELOPER);
    let region_address = 0x0010_1000 - 28;
    let mut region = vec![0xaa; memory_len + 64];
    let loaded = load_at(&blob, &signers(), &mut region, region_address, &dispatch(), &mut cache).expect("loads");
    assert_eq!((loaded.offset, loaded.loaded_len), (0, 28));
    assert!(region[28..].iter().all(|b| *b == 0xaa));
}

/// The kernel loads blobs its server verified at push with `load_verified_at`: the same image
/// as `load_at`, no signature check, every structural check still made.
#[test]
fn load_verified_places_the_same_image_and_still_checks_the_structure() {
    let blob = signed(&repr(), &DEVELOPER);
    let mut checked_region = vec![0xaa; 256];
    let mut verified_region = vec![0xaa; 256];
    let mut cache = RecordingCache::default();
    let first = load_at(&blob, &signers(), &mut checked_region, REGION_ADDRESS, &dispatch(), &mut cache).unwrap();
    let second = load_verified_at(&blob, &mut verified_region, REGION_ADDRESS, &dispatch(), &mut cache).unwrap();
    assert_eq!(LoadedBlob { signer: Some(1), ..second }, first);
    assert_eq!(second.signer, None);
    assert_eq!(checked_region, verified_region);

    // Unsigned: refused by load_at, placed by load_verified_at (the caller verified it before).
    let unsigned = unsigned(&repr());
    assert!(load_at(&unsigned, &signers(), &mut checked_region, REGION_ADDRESS, &dispatch(), &mut cache).is_err());
    assert!(load_verified_at(&unsigned, &mut verified_region, REGION_ADDRESS, &dispatch(), &mut cache).is_ok());

    // Structure is still checked: a truncated blob and an unknown syscall id are refused.
    let truncated = &blob[..blob.len() / 2];
    assert!(matches!(
        load_verified_at(truncated, &mut verified_region, REGION_ADDRESS, &dispatch(), &mut cache),
        Err(NativeError::Blob(_))
    ));
    assert!(matches!(
        load_verified_at(&blob, &mut verified_region, REGION_ADDRESS, &[0; SYSCALL_TABLE_LEN], &mut cache),
        Err(NativeError::SyscallNotOffered(_))
    ));
}

#[test]
fn entry_offset_and_alignment_are_honoured() {
    let mut repr = repr();
    repr.entry = 8;
    repr.align = 256;
    let blob = signed(&repr, &DEVELOPER);
    let mut region = vec![0; 1024];
    let loaded = load(&blob, &mut region).expect("loads");
    assert_eq!(loaded.base, 0x0010_0100);
    assert_eq!(loaded.offset, 0xfc);
    assert_eq!(loaded.entry, 0x0010_0108);
}

#[test]
fn lengths_past_the_end_are_refused() {
    let blob = signed(&repr(), &DEVELOPER);
    assert_refused(&blob[..40], NativeError::Blob(BlobError::Truncated));
    let mut long = blob.clone();
    let len = long.len() as u32;
    set_field(&mut long, field::SIGNED_LEN, len + 1);
    assert_refused(&long, NativeError::Blob(BlobError::SignedLenOutOfBounds));
    let mut image = blob.clone();
    let text = field_of(&image, field::TEXT_LEN);
    set_field(&mut image, field::TEXT_LEN, text + 0x1000);
    set_field(&mut image, field::IMAGE_LEN, field_of(&blob, field::IMAGE_LEN) + 0x1000);
    assert_refused(&image, NativeError::Blob(BlobError::ImageOutOfBounds));
    let mut imports = blob.clone();
    set_field(&mut imports, field::IMPORT_COUNT, 1000);
    assert_refused(&imports, NativeError::Blob(BlobError::ImportTableOutOfBounds));
    let mut huge = blob;
    set_field(&mut huge, field::BSS_LEN, u32::MAX - 8);
    assert_refused(&huge, NativeError::Blob(BlobError::MemoryTooLarge));
}

#[test]
fn overlapping_sections_are_refused() {
    let mut blob = signed(&repr(), &DEVELOPER);
    // Point the import table into the image.
    set_field(&mut blob, field::IMPORT_OFFSET, jos_abi::blob::HEADER_LEN as u32 + 8);
    assert_refused(&blob, NativeError::Blob(BlobError::Overlap));
}

#[test]
fn import_slot_outside_the_image_is_refused() {
    let imports = [Import { slot: 4, syscall: SyscallId::OutputWrite }, Import { slot: 28, syscall: SyscallId::Log }]; // 28..32 is bss, not image
    let mut repr = repr();
    repr.imports = Table::from_slice(&imports);
    assert_refused(&signed_or_unsigned(&repr), NativeError::Blob(BlobError::ImportSlotOutside));
    let misaligned = [Import { slot: 6, syscall: SyscallId::OutputWrite }];
    repr.imports = Table::from_slice(&misaligned);
    assert_refused(&signed_or_unsigned(&repr), NativeError::Blob(BlobError::ImportSlotMisaligned));
}

#[test]
fn unknown_syscall_id_is_refused() {
    let mut blob = unsigned(&repr());
    let table = field_of(&blob, field::IMPORT_OFFSET) as usize;
    set_field(&mut blob, table + 4, 9); // id 9 is not in the table
    assert_refused(&blob, NativeError::Blob(BlobError::UnknownSyscall));
    set_field(&mut blob, table + 4, SYSCALL_TABLE_LEN as u32 + 100);
    assert_refused(&blob, NativeError::Blob(BlobError::UnknownSyscall));
}

#[test]
fn misaligned_or_outside_entry_is_refused() {
    let mut repr = repr();
    repr.entry = 2;
    assert_refused(&signed_or_unsigned(&repr), NativeError::Blob(BlobError::MisalignedEntry));
    repr.entry = 16; // first byte of rodata: not text
    assert_refused(&signed_or_unsigned(&repr), NativeError::Blob(BlobError::EntryOutsideText));
}

fn signed_or_unsigned(repr: &BlobRepr<'_>) -> Vec<u8> {
    // Structural errors are found before the signature; sign_blob would refuse these blobs.
    unsigned(repr)
}

#[test]
fn bad_signatures_are_refused() {
    let blob = signed(&repr(), &DEVELOPER);
    assert_refused(&unsigned(&repr()), NativeError::Signature(SignatureError::Missing));
    // Signature over different bytes: change one byte of rodata after signing.
    let mut changed = blob.clone();
    let image = field_of(&changed, field::IMAGE_OFFSET) as usize;
    changed[image + 17] ^= 1;
    assert_refused(&changed, NativeError::Signature(SignatureError::ContentMismatch));
    // Damaged signature bytes (the last byte of the trailer is the signature's last byte).
    let mut damaged = blob.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0x80;
    assert_refused(&damaged, NativeError::Signature(SignatureError::BadSignature));
    // Signed by a key the device does not know.
    assert_refused(&signed(&repr(), &STRANGER), NativeError::Signature(SignatureError::UnknownKey));
    // Trailer that is not a signature payload.
    let mut garbage = unsigned(&repr());
    garbage.extend_from_slice(&[0xff; 16]);
    let result = load(&garbage, &mut [0; 256]);
    assert!(matches!(result, Err(NativeError::Signature(_))), "{result:?}");
}

#[test]
fn wasm_only_signer_is_refused() {
    let error = NativeError::Signature(SignatureError::NotPermitted);
    assert_refused(&signed(&repr(), &WASM_ONLY), error);
    assert_eq!(error.code(), ErrorCode::UntrustedSigner);
}

#[test]
fn newer_abi_is_refused() {
    let mut repr = repr();
    repr.abi_version = AbiVersion { major: 2, minor: 0 };
    let error = NativeError::AbiMismatch(AbiVersion { major: 2, minor: 0 });
    assert_refused(&signed(&repr, &DEVELOPER), error);
    repr.abi_version = AbiVersion { major: 1, minor: AbiVersion::CURRENT.minor + 1 };
    assert!(matches!(load(&signed(&repr, &DEVELOPER), &mut [0; 256]), Err(NativeError::AbiMismatch(_))));
}

#[test]
fn small_region_and_missing_calls_are_refused() {
    let blob = signed(&repr(), &DEVELOPER);
    let mut small = vec![0; 47]; // 12 bytes of padding + 36 needed
    assert_eq!(load(&blob, &mut small), Err(NativeError::RegionTooSmall { needed: 48, available: 47 }));
    let mut region = vec![0; 48];
    assert!(load(&blob, &mut region).is_ok());

    let mut table = dispatch();
    table[SyscallId::Log as usize] = 0;
    let result = load_at(&blob, &signers(), &mut [0; 256], REGION_ADDRESS, &table, &mut RecordingCache::default());
    assert_eq!(result, Err(NativeError::SyscallNotOffered(SyscallId::Log)));

    let result = load_at(&blob, &signers(), &mut [0; 256], 0xffff_fff0, &dispatch(), &mut RecordingCache::default());
    assert_eq!(result, Err(NativeError::AddressOverflow));
}

#[test]
fn nothing_is_synced_when_loading_fails() {
    let mut cache = RecordingCache::default();
    let blob = signed(&repr(), &STRANGER);
    assert!(load_at(&blob, &signers(), &mut [0; 256], REGION_ADDRESS, &dispatch(), &mut cache).is_err());
    assert!(cache.0.is_empty());
}
