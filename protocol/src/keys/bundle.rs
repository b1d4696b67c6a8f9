//! Prekey bundles: what Alice fetches from the relay's directory to start a
//! session with one of Bob's devices.

use super::identity::{PublicIdentity, prekey_sig_message};
use super::prekeys::{OneTimePreKeyPublic, PqPreKeyPublic, SignedPreKeyPublic};

/// A signature in a bundle does not verify: the bundle was not published by
/// the holder of its `IK_sig` (or was corrupted). The peer or the directory
/// misbehaved; never start a session from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The signature over `IK_dh` is invalid (or `IK_sig` is not a valid key).
    #[error("bundle identity key signature does not verify")]
    IdentitySignature,
    /// The signature over the signed prekey is invalid.
    #[error("bundle signed prekey signature does not verify")]
    SignedPreKeySignature,
    /// The signature over the ML-KEM prekey is invalid.
    #[error("bundle ML-KEM prekey signature does not verify")]
    PqPreKeySignature,
}

/// The public keys of one device, as published in the prekey directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreKeyBundle {
    /// Bob's identity keys and the signature over `IK_dh`.
    pub identity: PublicIdentity,
    /// `SPK_B` with its id and signature.
    pub signed_prekey: SignedPreKeyPublic,
    /// `OPK_B`, if the directory still had one.
    pub one_time_prekey: Option<OneTimePreKeyPublic>,
    /// `PQPK_B` (one-time or last-resort) with its id and signature.
    pub pq_prekey: PqPreKeyPublic,
}

impl PreKeyBundle {
    /// Verifies every signature with `verify_strict` under the bundle's
    /// `IK_sig`. Whether that `IK_sig` is the one the user expects is the
    /// caller's trust decision (safety numbers), not checked here.
    pub fn validate(&self) -> Result<(), BundleError> {
        self.identity
            .verify()
            .map_err(|_| BundleError::IdentitySignature)?;
        let sig_key = &self.identity.sig_key;
        let spk = &self.signed_prekey;
        sig_key
            .verify_strict(&prekey_sig_message(&spk.key.encode()), &spk.signature)
            .map_err(|_| BundleError::SignedPreKeySignature)?;
        let pq = &self.pq_prekey;
        sig_key
            .verify_strict(&prekey_sig_message(&pq.key.encode()), &pq.signature)
            .map_err(|_| BundleError::PqPreKeySignature)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{IdentityKeyPair, OneTimePreKey, PqPreKey, Signature, SignedPreKey};

    fn bundle() -> PreKeyBundle {
        let id = IdentityKeyPair::from_secrets(&[1; 32], &[2; 32]);
        PreKeyBundle {
            identity: *id.public(),
            signed_prekey: SignedPreKey::from_private_bytes(1, &id, &[3; 32]).public(),
            one_time_prekey: Some(OneTimePreKey::from_private_bytes(2, &[4; 32]).public()),
            pq_prekey: PqPreKey::from_seed(3, false, &id, &[5; 64]).public(),
        }
    }

    fn flip(sig: &Signature) -> Signature {
        let mut bytes = *sig.as_bytes();
        bytes[0] ^= 1;
        Signature::from_bytes(bytes)
    }

    #[test]
    fn valid_bundle_passes() {
        assert_eq!(bundle().validate(), Ok(()));
    }

    #[test]
    fn each_bad_signature_is_named() {
        let mut b = bundle();
        b.identity.dh_signature = flip(&b.identity.dh_signature);
        assert_eq!(b.validate(), Err(BundleError::IdentitySignature));
        let mut b = bundle();
        b.signed_prekey.signature = flip(&b.signed_prekey.signature);
        assert_eq!(b.validate(), Err(BundleError::SignedPreKeySignature));
        let mut b = bundle();
        b.pq_prekey.signature = flip(&b.pq_prekey.signature);
        assert_eq!(b.validate(), Err(BundleError::PqPreKeySignature));
    }

    #[test]
    fn keys_signed_by_another_identity_are_rejected() {
        let other = IdentityKeyPair::from_secrets(&[9; 32], &[2; 32]);
        let mut b = bundle();
        b.signed_prekey = SignedPreKey::from_private_bytes(1, &other, &[3; 32]).public();
        assert_eq!(b.validate(), Err(BundleError::SignedPreKeySignature));
    }
}
