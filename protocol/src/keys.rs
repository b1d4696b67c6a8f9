//! Device keys (DESIGN.md §5 "Device keys"): the identity key pairs, signed
//! and one-time X25519 prekeys, signed ML-KEM-768 prekeys, and the prekey
//! bundle a device publishes.
//!
//! Every key can be drawn from a `CryptoRng` or rebuilt from its private
//! bytes (Ed25519 32-byte seed, X25519 32-byte private key, ML-KEM 64-byte
//! `d ‖ z` seed) so that test vectors replay exactly. Private halves are
//! zeroized on drop, redacted in `Debug`, and leave only through the
//! explicitly named `expose_*` calls and the stored layouts (`to_bytes`).
//!
//! ```
//! use hearth_protocol::keys::{IdentityKeyPair, PqPreKey, PreKeyBundle, SignedPreKey};
//!
//! let mut rng = rand::rng();
//! let bob = IdentityKeyPair::generate(&mut rng);
//! let spk = SignedPreKey::generate(1, &bob, &mut rng);
//! let pq = PqPreKey::generate(1, true, &bob, &mut rng);
//! let bundle = PreKeyBundle {
//!     identity: *bob.public(),
//!     signed_prekey: spk.public(),
//!     one_time_prekey: None,
//!     pq_prekey: pq.public(),
//! };
//! assert!(bundle.validate().is_ok());
//! ```

mod bundle;
mod identity;
mod prekeys;
pub(crate) mod secret;
mod x25519;

pub use bundle::{BundleError, PreKeyBundle};
pub use identity::{
    BadSignature, Ed25519PublicKey, IdentityKeyPair, PREKEY_SIG_LABEL, PublicIdentity, Signature,
};
pub use prekeys::{
    InvalidKemKey, MlKemPublicKey, OneTimePreKey, OneTimePreKeyPublic, PqPreKey, PqPreKeyPublic,
    SignedPreKey, SignedPreKeyPublic,
};
pub use x25519::{NonContributory, X25519KeyPair, X25519PublicKey};
