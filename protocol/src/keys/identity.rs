//! Device identity: `IK_sig` (Ed25519) and `IK_dh` (X25519), with `IK_dh`
//! signed by `IK_sig` over `"Hearth_v1_PrekeySig" ‖ Encode(IK_dh)`.

use core::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::secret::Secret;
use super::x25519::{X25519KeyPair, X25519PublicKey};
use crate::encode;
use crate::stored::{Reader, StoredStateError, Writer};

/// Prefix of every prekey signature (including the one over `IK_dh`).
pub const PREKEY_SIG_LABEL: &[u8] = b"Hearth_v1_PrekeySig";

/// An Ed25519 signature (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature([u8; 64]);

impl Signature {
    /// Wraps 64 bytes as received.
    pub const fn from_bytes(bytes: [u8; 64]) -> Self {
        Self(bytes)
    }

    /// The 64 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature(")?;
        for byte in &self.0[..8] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "…)")
    }
}

/// A signature failed `verify_strict` (or the key is not a valid point).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Ed25519 signature does not verify")]
pub struct BadSignature;

/// An Ed25519 public key (32 bytes, as on the wire).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ed25519PublicKey([u8; 32]);

impl Ed25519PublicKey {
    /// Wraps 32 bytes; they are checked to be a valid point when used.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// `Encode(k)`: `0x02 ‖ key`.
    pub fn encode(&self) -> [u8; 33] {
        encode::ed25519(&self.0)
    }

    /// Verifies `signature` over `message` with `verify_strict` (rejects
    /// small-order keys and non-canonical signatures).
    pub fn verify_strict(&self, message: &[u8], signature: &Signature) -> Result<(), BadSignature> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| BadSignature)?;
        let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_strict(message, &signature)
            .map_err(|_| BadSignature)
    }
}

impl fmt::Debug for Ed25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ed25519PublicKey(")?;
        for byte in &self.0[..8] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "…)")
    }
}

/// `"Hearth_v1_PrekeySig" ‖ encoded`, the message of every prekey signature.
pub(crate) fn prekey_sig_message(encoded_key: &[u8]) -> Vec<u8> {
    [PREKEY_SIG_LABEL, encoded_key].concat()
}

/// The public identity of a device, as published and as sent in a first
/// message: both identity keys and the signature over `IK_dh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicIdentity {
    /// `IK_sig`.
    pub sig_key: Ed25519PublicKey,
    /// `IK_dh`.
    pub dh_key: X25519PublicKey,
    /// `IK_sig`'s signature over `"Hearth_v1_PrekeySig" ‖ Encode(IK_dh)`.
    pub dh_signature: Signature,
}

impl PublicIdentity {
    /// Checks the signature over `IK_dh`.
    pub fn verify(&self) -> Result<(), BadSignature> {
        let message = prekey_sig_message(&self.dh_key.encode());
        self.sig_key.verify_strict(&message, &self.dh_signature)
    }
}

/// A device's identity key pairs. Secrets are zeroized on drop and never
/// printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct IdentityKeyPair {
    sig_seed: Secret<32>,
    dh: X25519KeyPair,
    #[zeroize(skip)]
    public: PublicIdentity,
}

impl IdentityKeyPair {
    /// Length of [`IdentityKeyPair::to_bytes`].
    pub const STORED_LEN: usize = 1 + 32 + 32;

    /// Draws a fresh identity from `rng`.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let sig_seed = Secret::random(rng);
        let dh = X25519KeyPair::generate(rng);
        Self::assemble(sig_seed, dh)
    }

    /// Rebuilds an identity from the Ed25519 seed and the X25519 private key
    /// (for stored state and test vectors). Ed25519 signing is deterministic,
    /// so the signature over `IK_dh` comes out the same every time.
    pub fn from_secrets(sig_seed: &[u8; 32], dh_private: &[u8; 32]) -> Self {
        Self::assemble(
            Secret::new(sig_seed),
            X25519KeyPair::from_private_bytes(dh_private),
        )
    }

    fn assemble(sig_seed: Secret<32>, dh: X25519KeyPair) -> Self {
        let signing = SigningKey::from_bytes(sig_seed.expose());
        let sig_key = Ed25519PublicKey(signing.verifying_key().to_bytes());
        let message = prekey_sig_message(&dh.public_key().encode());
        let dh_signature = Signature(signing.sign(&message).to_bytes());
        let public = PublicIdentity {
            sig_key,
            dh_key: *dh.public_key(),
            dh_signature,
        };
        Self {
            sig_seed,
            dh,
            public,
        }
    }

    /// The public identity (both keys and the signature over `IK_dh`).
    pub fn public(&self) -> &PublicIdentity {
        &self.public
    }

    /// The X25519 identity key pair `IK_dh`.
    pub fn dh(&self) -> &X25519KeyPair {
        &self.dh
    }

    /// Declassifies the Ed25519 seed, for storage and test vectors only.
    pub fn expose_sig_seed(&self) -> &[u8; 32] {
        self.sig_seed.expose()
    }

    /// Signs `"Hearth_v1_PrekeySig" ‖ encoded_key`.
    pub(crate) fn sign_prekey(&self, encoded_key: &[u8]) -> Signature {
        let signing = SigningKey::from_bytes(self.sig_seed.expose());
        Signature(signing.sign(&prekey_sig_message(encoded_key)).to_bytes())
    }

    /// Stored layout: `version ‖ IK_sig seed (32) ‖ IK_dh private (32)`.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(Self::STORED_LEN);
        w.bytes(self.sig_seed.expose())
            .bytes(self.dh.expose_private_bytes());
        w.finish()
    }

    /// Reads [`IdentityKeyPair::to_bytes`]; never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoredStateError> {
        let mut r = Reader::new(bytes, Self::STORED_LEN)?;
        let sig_seed = r.secret::<32>()?;
        let dh_private = r.secret::<32>()?;
        r.finish()?;
        Ok(Self::from_secrets(&sig_seed, &dh_private))
    }
}

impl fmt::Debug for IdentityKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityKeyPair")
            .field("sig_seed", &self.sig_seed)
            .field("dh", &self.dh)
            .field("public", &self.public)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// RFC 8032 §7.1, test 2 (one-byte message), checked with verify_strict.
    #[test]
    fn rfc8032_test_2() {
        let seed: [u8; 32] =
            unhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
                .try_into()
                .unwrap();
        let signing = SigningKey::from_bytes(&seed);
        let public = Ed25519PublicKey(signing.verifying_key().to_bytes());
        assert_eq!(
            public.as_bytes().as_slice(),
            unhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
        );
        let sig = Signature(signing.sign(&[0x72]).to_bytes());
        assert_eq!(
            sig.as_bytes().as_slice(),
            unhex(
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
                 085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
            )
        );
        assert_eq!(public.verify_strict(&[0x72], &sig), Ok(()));
        assert_eq!(public.verify_strict(&[0x73], &sig), Err(BadSignature));
    }

    #[test]
    fn identity_signs_its_dh_key() {
        let id = IdentityKeyPair::from_secrets(&[1; 32], &[2; 32]);
        assert_eq!(id.public().verify(), Ok(()));
        let mut forged = *id.public();
        forged.dh_key = X25519PublicKey::from_bytes([9; 32]);
        assert_eq!(forged.verify(), Err(BadSignature));
    }

    #[test]
    fn stored_identity_round_trips() {
        let id = IdentityKeyPair::from_secrets(&[1; 32], &[2; 32]);
        let bytes = id.to_bytes();
        assert_eq!(bytes.len(), IdentityKeyPair::STORED_LEN);
        let back = IdentityKeyPair::from_bytes(&bytes).unwrap();
        assert_eq!(back.public(), id.public());
        assert_eq!(back.dh(), id.dh());
        assert_eq!(
            IdentityKeyPair::from_bytes(&bytes[..64]).err(),
            Some(StoredStateError::Truncated)
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let id = IdentityKeyPair::from_secrets(&[0x5a; 32], &[0x5b; 32]);
        let shown = format!("{id:?}");
        assert!(
            !shown.contains("5a5a") && !shown.contains("90, 90"),
            "{shown}"
        );
    }
}
