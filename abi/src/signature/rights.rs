//! Signer rights: what a trusted key may sign and what the code it signs may use.

use super::{ContentType, PUBLIC_KEY_LEN};

bitflags::bitflags! {
    /// What a trusted signer may sign, and what the code it signs may use: a bitset.
    ///
    /// Bits 0-1 say which formats the signer may sign ([`WASM`](Self::WASM),
    /// [`NATIVE`](Self::NATIVE)); bits 2-4 are the capabilities a job signed by it is granted
    /// ([`NETWORK`](Self::NETWORK), [`SCREEN`](Self::SCREEN), [`GPIO`](Self::GPIO)). Other bits are
    /// refused by [`from_bits`](Self::from_bits). Layout: `docs/formats.md`; trust model:
    /// `docs/security.md`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct SignerRights: u32 {
        /// May sign wasm modules.
        const WASM = 1;
        /// May sign native blobs (code that runs at kernel level).
        const NATIVE = 2;
        /// Code it signs may use UDP sockets (`udp_bind`, `udp_send`, `udp_recv`, `udp_close`) on
        /// the ports the device policy grants.
        const NETWORK = 4;
        /// Code it signs may print on the status screen (`screen_print`).
        const SCREEN = 8;
        /// Code it signs may drive and read GPIO pins (`gpio_write`, `gpio_read`).
        const GPIO = 16;
        /// Both formats, no capabilities (what a signer had before capabilities existed).
        const FORMATS = Self::WASM.bits() | Self::NATIVE.bits();
        /// Every right: both formats and every capability.
        const ALL = Self::FORMATS.bits() | Self::NETWORK.bits() | Self::SCREEN.bits() | Self::GPIO.bits();
    }
}

impl SignerRights {
    /// No rights.
    pub const NONE: SignerRights = SignerRights::empty();

    /// The right a content type needs.
    pub const fn for_content(content: ContentType) -> SignerRights {
        match content {
            ContentType::WasmModule => SignerRights::WASM,
            ContentType::NativeBlob => SignerRights::NATIVE,
        }
    }
}

/// A key the device trusts to sign code, with its rights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TrustedSigner {
    /// The Ed25519 public key.
    pub public_key: [u8; PUBLIC_KEY_LEN],
    /// What it may sign.
    pub rights: SignerRights,
}
