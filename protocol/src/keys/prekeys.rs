//! Prekeys: the signed X25519 prekey (`SPK`), one-time X25519 prekeys
//! (`OPK`, unsigned) and signed ML-KEM-768 prekeys (`PQPK`, one-time or
//! last-resort). Each carries a u32 id.

use core::fmt;

use ml_kem::{DecapsulationKey, EncapsulationKey, KeyExport, MlKem768};
use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::identity::{IdentityKeyPair, Signature};
use super::secret::Secret;
use super::x25519::{X25519KeyPair, X25519PublicKey};
use crate::encode::{self, ML_KEM_768_KEY_LEN};
use crate::stored::{Reader, StoredStateError, Writer};

/// A signed X25519 prekey with its private key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SignedPreKey {
    #[zeroize(skip)]
    id: u32,
    pair: X25519KeyPair,
    #[zeroize(skip)]
    signature: Signature,
}

/// The public half of a [`SignedPreKey`], as published in a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedPreKeyPublic {
    /// The prekey id.
    pub id: u32,
    /// `SPK`.
    pub key: X25519PublicKey,
    /// `IK_sig`'s signature over `"Hearth_v1_PrekeySig" ‖ Encode(SPK)`.
    pub signature: Signature,
}

impl SignedPreKey {
    /// Length of [`SignedPreKey::to_bytes`].
    pub const STORED_LEN: usize = 1 + 4 + 32 + 64;

    /// Draws a fresh signed prekey and signs it with `identity`.
    pub fn generate<R: CryptoRng + ?Sized>(
        id: u32,
        identity: &IdentityKeyPair,
        rng: &mut R,
    ) -> Self {
        Self::sign(id, identity, X25519KeyPair::generate(rng))
    }

    /// Rebuilds a signed prekey from its private key (test vectors).
    pub fn from_private_bytes(id: u32, identity: &IdentityKeyPair, private: &[u8; 32]) -> Self {
        Self::sign(id, identity, X25519KeyPair::from_private_bytes(private))
    }

    fn sign(id: u32, identity: &IdentityKeyPair, pair: X25519KeyPair) -> Self {
        let signature = identity.sign_prekey(&pair.public_key().encode());
        Self {
            id,
            pair,
            signature,
        }
    }

    /// The prekey id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The key pair (Bob's first ratchet key pair, too).
    pub fn key_pair(&self) -> &X25519KeyPair {
        &self.pair
    }

    /// The public half with its signature.
    pub fn public(&self) -> SignedPreKeyPublic {
        SignedPreKeyPublic {
            id: self.id,
            key: *self.pair.public_key(),
            signature: self.signature,
        }
    }

    /// Stored layout: `version ‖ id (u32) ‖ private (32) ‖ signature (64)`.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(Self::STORED_LEN);
        w.u32(self.id)
            .bytes(self.pair.expose_private_bytes())
            .bytes(self.signature.as_bytes());
        w.finish()
    }

    /// Reads [`SignedPreKey::to_bytes`]; never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoredStateError> {
        let mut r = Reader::new(bytes, Self::STORED_LEN)?;
        let id = r.u32()?;
        let private = r.secret::<32>()?;
        let signature = Signature::from_bytes(r.array()?);
        r.finish()?;
        Ok(Self {
            id,
            pair: X25519KeyPair::from_private_bytes(&private),
            signature,
        })
    }
}

impl fmt::Debug for SignedPreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedPreKey")
            .field("id", &self.id)
            .field("pair", &self.pair)
            .field("signature", &self.signature)
            .finish()
    }
}

/// A one-time X25519 prekey with its private key (unsigned).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct OneTimePreKey {
    #[zeroize(skip)]
    id: u32,
    pair: X25519KeyPair,
}

/// The public half of a [`OneTimePreKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OneTimePreKeyPublic {
    /// The prekey id.
    pub id: u32,
    /// `OPK`.
    pub key: X25519PublicKey,
}

impl OneTimePreKey {
    /// Length of [`OneTimePreKey::to_bytes`].
    pub const STORED_LEN: usize = 1 + 4 + 32;

    /// Draws a fresh one-time prekey.
    pub fn generate<R: CryptoRng + ?Sized>(id: u32, rng: &mut R) -> Self {
        Self {
            id,
            pair: X25519KeyPair::generate(rng),
        }
    }

    /// Rebuilds a one-time prekey from its private key (test vectors).
    pub fn from_private_bytes(id: u32, private: &[u8; 32]) -> Self {
        Self {
            id,
            pair: X25519KeyPair::from_private_bytes(private),
        }
    }

    /// The prekey id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The key pair.
    pub fn key_pair(&self) -> &X25519KeyPair {
        &self.pair
    }

    /// The public half.
    pub fn public(&self) -> OneTimePreKeyPublic {
        OneTimePreKeyPublic {
            id: self.id,
            key: *self.pair.public_key(),
        }
    }

    /// Stored layout: `version ‖ id (u32) ‖ private (32)`.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(Self::STORED_LEN);
        w.u32(self.id).bytes(self.pair.expose_private_bytes());
        w.finish()
    }

    /// Reads [`OneTimePreKey::to_bytes`]; never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoredStateError> {
        let mut r = Reader::new(bytes, Self::STORED_LEN)?;
        let id = r.u32()?;
        let private = r.secret::<32>()?;
        r.finish()?;
        Ok(Self::from_private_bytes(id, &private))
    }
}

impl fmt::Debug for OneTimePreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneTimePreKey")
            .field("id", &self.id)
            .field("pair", &self.pair)
            .finish()
    }
}

/// An ML-KEM-768 encapsulation key, parsed and checked (FIPS 203 modulus check).
#[derive(Clone, PartialEq, Eq)]
pub struct MlKemPublicKey {
    bytes: Box<[u8; ML_KEM_768_KEY_LEN]>,
    key: Box<EncapsulationKey<MlKem768>>,
}

/// The bytes are not a valid ML-KEM-768 encapsulation key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid ML-KEM-768 encapsulation key")]
pub struct InvalidKemKey;

impl MlKemPublicKey {
    /// Parses 1,184 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InvalidKemKey> {
        let array = ml_kem::array::Array::try_from(bytes).map_err(|_| InvalidKemKey)?;
        let key = EncapsulationKey::<MlKem768>::new(&array).map_err(|_| InvalidKemKey)?;
        Ok(Self::from_key(key))
    }

    fn from_key(key: EncapsulationKey<MlKem768>) -> Self {
        let mut bytes = Box::new([0u8; ML_KEM_768_KEY_LEN]);
        bytes.copy_from_slice(&key.to_bytes());
        Self {
            bytes,
            key: Box::new(key),
        }
    }

    /// The 1,184 raw bytes.
    pub fn as_bytes(&self) -> &[u8; ML_KEM_768_KEY_LEN] {
        &self.bytes
    }

    /// `Encode(k)`: `0x03 ‖ key`.
    pub fn encode(&self) -> Vec<u8> {
        encode::ml_kem_768(&self.bytes)
    }

    pub(crate) fn key(&self) -> &EncapsulationKey<MlKem768> {
        &self.key
    }
}

impl fmt::Debug for MlKemPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MlKemPublicKey(")?;
        for byte in &self.bytes[..8] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "…)")
    }
}

/// A signed ML-KEM-768 prekey with its decapsulation key.
#[derive(Clone)]
pub struct PqPreKey {
    id: u32,
    last_resort: bool,
    seed: Secret<64>,
    decapsulation: Box<DecapsulationKey<MlKem768>>,
    public: MlKemPublicKey,
    signature: Signature,
}

/// The public half of a [`PqPreKey`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PqPreKeyPublic {
    /// The prekey id.
    pub id: u32,
    /// `PQPK`.
    pub key: MlKemPublicKey,
    /// `IK_sig`'s signature over `"Hearth_v1_PrekeySig" ‖ Encode(PQPK)`.
    pub signature: Signature,
    /// Whether this is the last-resort key (kept after use) rather than a
    /// one-time key. Not covered by the signature.
    pub last_resort: bool,
}

impl PqPreKey {
    /// Length of [`PqPreKey::to_bytes`].
    pub const STORED_LEN: usize = 1 + 4 + 1 + 64 + 64;

    /// Draws a fresh ML-KEM-768 prekey and signs it with `identity`.
    pub fn generate<R: CryptoRng + ?Sized>(
        id: u32,
        last_resort: bool,
        identity: &IdentityKeyPair,
        rng: &mut R,
    ) -> Self {
        Self::from_secret(id, last_resort, identity, Secret::random(rng))
    }

    /// Rebuilds an ML-KEM-768 prekey from its 64-byte seed `d ‖ z` (FIPS 203
    /// `ML-KEM.KeyGen_internal(d, z)`), for stored state and test vectors.
    pub fn from_seed(
        id: u32,
        last_resort: bool,
        identity: &IdentityKeyPair,
        seed: &[u8; 64],
    ) -> Self {
        Self::from_secret(id, last_resort, identity, Secret::new(seed))
    }

    fn from_secret(
        id: u32,
        last_resort: bool,
        identity: &IdentityKeyPair,
        seed: Secret<64>,
    ) -> Self {
        let decapsulation = Box::new(DecapsulationKey::<MlKem768>::from_seed(
            (*seed.expose()).into(),
        ));
        let public = MlKemPublicKey::from_key(decapsulation.encapsulation_key().clone());
        let signature = identity.sign_prekey(&public.encode());
        Self {
            id,
            last_resort,
            seed,
            decapsulation,
            public,
            signature,
        }
    }

    /// The prekey id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Whether this is the last-resort key.
    pub fn is_last_resort(&self) -> bool {
        self.last_resort
    }

    /// Declassifies the 64-byte seed, for test vectors only.
    pub fn expose_seed(&self) -> &[u8; 64] {
        self.seed.expose()
    }

    pub(crate) fn decapsulation_key(&self) -> &DecapsulationKey<MlKem768> {
        &self.decapsulation
    }

    /// The public half with its signature.
    pub fn public(&self) -> PqPreKeyPublic {
        PqPreKeyPublic {
            id: self.id,
            key: self.public.clone(),
            signature: self.signature,
            last_resort: self.last_resort,
        }
    }

    /// Stored layout: `version ‖ id (u32) ‖ last_resort (u8) ‖ seed (64) ‖
    /// signature (64)`.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(Self::STORED_LEN);
        w.u32(self.id)
            .bool(self.last_resort)
            .bytes(self.seed.expose());
        w.bytes(self.signature.as_bytes());
        w.finish()
    }

    /// Reads [`PqPreKey::to_bytes`]; never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoredStateError> {
        let mut r = Reader::new(bytes, Self::STORED_LEN)?;
        let id = r.u32()?;
        let last_resort = r.bool("last-resort flag")?;
        let seed = Secret::from_zeroizing(&r.secret::<64>()?);
        let signature = Signature::from_bytes(r.array()?);
        r.finish()?;
        let decapsulation = Box::new(DecapsulationKey::<MlKem768>::from_seed(
            (*seed.expose()).into(),
        ));
        let public = MlKemPublicKey::from_key(decapsulation.encapsulation_key().clone());
        Ok(Self {
            id,
            last_resort,
            seed,
            decapsulation,
            public,
            signature,
        })
    }
}

impl Zeroize for PqPreKey {
    fn zeroize(&mut self) {
        // The decapsulation key wipes itself on drop (ml-kem's `zeroize` feature).
        self.seed.zeroize();
    }
}

impl ZeroizeOnDrop for PqPreKey {}

impl fmt::Debug for PqPreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PqPreKey")
            .field("id", &self.id)
            .field("last_resort", &self.last_resort)
            .field("seed", &self.seed)
            .field("decapsulation", &"[redacted]")
            .field("public", &self.public)
            .field("signature", &self.signature)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::identity::BadSignature;

    fn identity() -> IdentityKeyPair {
        IdentityKeyPair::from_secrets(&[1; 32], &[2; 32])
    }

    fn verify(
        identity: &IdentityKeyPair,
        encoded: &[u8],
        sig: &Signature,
    ) -> Result<(), BadSignature> {
        let message = crate::keys::identity::prekey_sig_message(encoded);
        identity.public().sig_key.verify_strict(&message, sig)
    }

    #[test]
    fn signed_prekey_signature_covers_encoded_key() {
        let id = identity();
        let spk = SignedPreKey::from_private_bytes(7, &id, &[3; 32]).public();
        assert_eq!(spk.id, 7);
        assert_eq!(verify(&id, &spk.key.encode(), &spk.signature), Ok(()));
        assert_eq!(
            verify(&id, spk.key.as_bytes(), &spk.signature),
            Err(BadSignature)
        );
    }

    #[test]
    fn pq_prekey_from_seed_is_deterministic_and_signed() {
        let id = identity();
        let a = PqPreKey::from_seed(9, false, &id, &[4; 64]).public();
        let b = PqPreKey::from_seed(9, false, &id, &[4; 64]).public();
        assert_eq!(a, b);
        assert_eq!(verify(&id, &a.key.encode(), &a.signature), Ok(()));
        assert_eq!(MlKemPublicKey::from_bytes(a.key.as_bytes()).unwrap(), a.key);
    }

    #[test]
    fn invalid_kem_keys_are_rejected() {
        assert_eq!(
            MlKemPublicKey::from_bytes(&[0; 10]).err(),
            Some(InvalidKemKey)
        );
        // Coefficients of 0xFFF exceed the modulus q = 3329.
        assert_eq!(
            MlKemPublicKey::from_bytes(&[0xFF; 1184]).err(),
            Some(InvalidKemKey)
        );
    }

    #[test]
    fn stored_prekeys_round_trip() {
        let id = identity();
        let spk = SignedPreKey::from_private_bytes(7, &id, &[3; 32]);
        assert_eq!(
            SignedPreKey::from_bytes(&spk.to_bytes()).unwrap().public(),
            spk.public()
        );
        let opk = OneTimePreKey::from_private_bytes(8, &[5; 32]);
        assert_eq!(
            OneTimePreKey::from_bytes(&opk.to_bytes()).unwrap().public(),
            opk.public()
        );
        let pq = PqPreKey::from_seed(9, true, &id, &[4; 64]);
        let back = PqPreKey::from_bytes(&pq.to_bytes()).unwrap();
        assert_eq!(
            (back.public(), back.expose_seed()),
            (pq.public(), pq.expose_seed())
        );
        let mut bad = pq.to_bytes().to_vec();
        bad[5] = 2;
        assert_eq!(
            PqPreKey::from_bytes(&bad).err(),
            Some(StoredStateError::InvalidField("last-resort flag"))
        );
    }

    #[test]
    fn debug_hides_pq_seed() {
        let pq = PqPreKey::from_seed(9, true, &identity(), &[0x4d; 64]);
        let shown = format!("{pq:?}");
        assert!(
            !shown.contains("4d4d4d") && !shown.contains("77, 77"),
            "{shown}"
        );
    }
}
