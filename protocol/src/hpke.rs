//! HPKE base mode (RFC 9180) for the one suite Hearth uses:
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305.
//!
//! Written on x25519-dalek, hkdf and chacha20poly1305. The sender's ephemeral
//! private key is used exactly as given (no `DeriveKeyPair`), so test vectors
//! can be replayed. Only single-shot use is offered: one message per context,
//! at sequence number 0; the export interface is not needed.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use hkdf::Hkdf;
use rand_core::CryptoRng;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::kdf::hmac_sha256;

/// KEM id of DHKEM(X25519, HKDF-SHA256).
pub const KEM_ID: u16 = 0x0020;
/// KDF id of HKDF-SHA256.
pub const KDF_ID: u16 = 0x0001;
/// AEAD id of ChaCha20-Poly1305.
pub const AEAD_ID: u16 = 0x0003;
/// Length of the encapsulated key `enc` (an X25519 public key).
pub const ENC_LEN: usize = 32;
/// Length of the AEAD tag appended to every ciphertext.
pub const TAG_LEN: usize = 16;
/// Length of the AEAD key.
pub const KEY_LEN: usize = 32;
/// Length of the AEAD nonce.
pub const NONCE_LEN: usize = 12;

const VERSION_LABEL: &[u8] = b"HPKE-v1";
const MODE_BASE: u8 = 0x00;
/// `"KEM" ‖ I2OSP(kem_id, 2)`.
const KEM_SUITE_ID: [u8; 5] = [b'K', b'E', b'M', 0x00, 0x20];
/// `"HPKE" ‖ I2OSP(kem_id, 2) ‖ I2OSP(kdf_id, 2) ‖ I2OSP(aead_id, 2)`.
const HPKE_SUITE_ID: [u8; 10] = [b'H', b'P', b'K', b'E', 0x00, 0x20, 0x00, 0x01, 0x00, 0x03];

/// Why an HPKE operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HpkeError {
    /// The X25519 result was all zeros: the other side's public key (the
    /// recipient's key when sealing, `enc` when opening) has low order.
    #[error("X25519 result is not contributory")]
    NonContributory,
    /// The ciphertext did not authenticate under this key, info and aad.
    #[error("HPKE ciphertext does not authenticate")]
    Decrypt,
    /// The plaintext is longer than ChaCha20-Poly1305 can encrypt.
    #[error("plaintext is too long for ChaCha20-Poly1305")]
    TooLong,
}

/// The KEM shared secret (`shared_secret` in RFC 9180).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SharedSecret(Box<[u8; 32]>);

impl SharedSecret {
    /// The secret bytes, for test vectors. Declassification: keep the result
    /// secret.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSecret(<redacted>)")
    }
}

/// `LabeledExtract(salt, label, ikm)`: HKDF-Extract is HMAC(salt, ·).
fn labeled_extract(suite_id: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut labeled_ikm = Zeroizing::new(Vec::with_capacity(
        VERSION_LABEL.len() + suite_id.len() + label.len() + ikm.len(),
    ));
    for part in [VERSION_LABEL, suite_id, label, ikm] {
        labeled_ikm.extend_from_slice(part);
    }
    hmac_sha256(salt, &labeled_ikm)
}

/// `LabeledExpand(prk, label, info, L)` for `L` ≤ 32.
fn labeled_expand<const L: usize>(
    suite_id: &[u8],
    prk: &[u8; 32],
    label: &[u8],
    info: &[u8],
) -> Zeroizing<[u8; L]> {
    const { assert!(L <= 32) };
    #[allow(
        clippy::cast_possible_truncation,
        reason = "L ≤ 32 is checked at compile time"
    )]
    let length = (L as u16).to_be_bytes();
    let mut out = Zeroizing::new([0u8; L]);
    #[allow(
        clippy::expect_used,
        reason = "a 32-byte PRK and L ≤ 32 are always valid for HKDF"
    )]
    Hkdf::<Sha256>::from_prk(prk)
        .expect("PRK is one hash long")
        .expand_multi_info(
            &[&length, VERSION_LABEL, suite_id, label, info],
            out.as_mut(),
        )
        .expect("output length is at most one hash long");
    out
}

/// X25519 that refuses the all-zero (non-contributory) result.
fn dh(secret: &StaticSecret, public: &PublicKey) -> Result<Zeroizing<[u8; 32]>, HpkeError> {
    let shared = secret.diffie_hellman(public);
    if !shared.was_contributory() {
        return Err(HpkeError::NonContributory);
    }
    Ok(Zeroizing::new(shared.to_bytes()))
}

/// DHKEM's `ExtractAndExpand(dh, kem_context)`.
fn extract_and_expand(dh: &[u8; 32], enc: &[u8; 32], pk_r: &[u8; 32]) -> SharedSecret {
    let eae_prk = labeled_extract(&KEM_SUITE_ID, b"", b"eae_prk", dh);
    let mut kem_context = [0u8; 64];
    kem_context[..32].copy_from_slice(enc);
    kem_context[32..].copy_from_slice(pk_r);
    let secret = labeled_expand::<32>(&KEM_SUITE_ID, &eae_prk, b"shared_secret", &kem_context);
    SharedSecret(Box::new(*secret))
}

/// DHKEM `Encap(pkR)` with the ephemeral private key `sk_e` used exactly as
/// given. Returns `enc` (the ephemeral public key) and the shared secret.
pub fn encap(
    pk_r: &PublicKey,
    sk_e: &StaticSecret,
) -> Result<([u8; ENC_LEN], SharedSecret), HpkeError> {
    let dh = dh(sk_e, pk_r)?;
    let enc = PublicKey::from(sk_e).to_bytes();
    Ok((enc, extract_and_expand(&dh, &enc, pk_r.as_bytes())))
}

/// DHKEM `Decap(enc, skR)`.
pub fn decap(enc: &[u8; ENC_LEN], sk_r: &StaticSecret) -> Result<SharedSecret, HpkeError> {
    let dh = dh(sk_r, &PublicKey::from(*enc))?;
    let pk_r = PublicKey::from(sk_r);
    Ok(extract_and_expand(&dh, enc, pk_r.as_bytes()))
}

/// An HPKE context after `KeySchedule` in mode_base, good for exactly one
/// message (sequence number 0, so the nonce is `base_nonce`).
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Context {
    key: Box<[u8; KEY_LEN]>,
    base_nonce: [u8; NONCE_LEN],
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("key", &"<redacted>")
            .field("base_nonce", &"<redacted>")
            .finish()
    }
}

impl Context {
    /// `KeySchedule(mode_base, shared_secret, info, psk = "", psk_id = "")`.
    pub fn base(shared_secret: &SharedSecret, info: &[u8]) -> Self {
        let psk_id_hash = labeled_extract(&HPKE_SUITE_ID, b"", b"psk_id_hash", b"");
        let info_hash = labeled_extract(&HPKE_SUITE_ID, b"", b"info_hash", info);
        let mut context = [0u8; 65];
        context[0] = MODE_BASE;
        context[1..33].copy_from_slice(psk_id_hash.as_ref());
        context[33..].copy_from_slice(info_hash.as_ref());
        let secret = labeled_extract(&HPKE_SUITE_ID, shared_secret.expose(), b"secret", b"");
        let key = labeled_expand::<KEY_LEN>(&HPKE_SUITE_ID, &secret, b"key", &context);
        let nonce = labeled_expand::<NONCE_LEN>(&HPKE_SUITE_ID, &secret, b"base_nonce", &context);
        Self {
            key: Box::new(*key),
            base_nonce: *nonce,
        }
    }

    /// The AEAD key, for test vectors. Declassification: keep it secret.
    pub fn expose_key(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    /// The base nonce, for test vectors.
    pub fn base_nonce(&self) -> &[u8; NONCE_LEN] {
        &self.base_nonce
    }

    /// Seals `plaintext` at sequence number 0; consumes the context so that
    /// the nonce is never reused. Returns ciphertext ‖ tag.
    pub fn seal(self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, HpkeError> {
        chacha_seal(&self.key, &self.base_nonce, aad, plaintext).map_err(|_| HpkeError::TooLong)
    }

    /// Opens ciphertext ‖ tag sealed at sequence number 0.
    pub fn open(self, aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, HpkeError> {
        chacha_open(&self.key, &self.base_nonce, aad, ciphertext).map_err(|_| HpkeError::Decrypt)
    }
}

/// Single-shot `SealBase` with the ephemeral private key `sk_e` used as
/// given: returns `enc` and ciphertext ‖ tag.
pub fn seal_base(
    pk_r: &PublicKey,
    sk_e: &StaticSecret,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<([u8; ENC_LEN], Vec<u8>), HpkeError> {
    let (enc, shared_secret) = encap(pk_r, sk_e)?;
    let ciphertext = Context::base(&shared_secret, info).seal(aad, plaintext)?;
    Ok((enc, ciphertext))
}

/// Single-shot `SealBase` with a fresh ephemeral key drawn from `rng`.
pub fn seal_base_random(
    pk_r: &PublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<([u8; ENC_LEN], Vec<u8>), HpkeError> {
    let sk_e = StaticSecret::random_from_rng(rng);
    seal_base(pk_r, &sk_e, info, aad, plaintext)
}

/// Single-shot `OpenBase`.
pub fn open_base(
    enc: &[u8; ENC_LEN],
    sk_r: &StaticSecret,
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, HpkeError> {
    let shared_secret = decap(enc, sk_r)?;
    Context::base(&shared_secret, info).open(aad, ciphertext)
}

/// ChaCha20-Poly1305 encryption: returns ciphertext ‖ tag. Fails only for
/// plaintexts over 256 GiB.
pub(crate) fn chacha_seal(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, chacha20poly1305::Error> {
    ChaCha20Poly1305::new(key.into()).encrypt(
        nonce.into(),
        Payload {
            msg: plaintext,
            aad,
        },
    )
}

/// ChaCha20-Poly1305 decryption of ciphertext ‖ tag.
pub(crate) fn chacha_open(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, chacha20poly1305::Error> {
    ChaCha20Poly1305::new(key.into()).decrypt(
        nonce.into(),
        Payload {
            msg: ciphertext,
            aad,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> StaticSecret {
        StaticSecret::from([byte; 32])
    }

    #[test]
    fn seal_then_open_round_trips() {
        let sk_r = secret(7);
        let pk_r = PublicKey::from(&sk_r);
        let (enc, ct) = seal_base(&pk_r, &secret(9), b"info", b"aad", b"hello").unwrap();
        assert_eq!(ct.len(), 5 + TAG_LEN);
        assert_eq!(
            open_base(&enc, &sk_r, b"info", b"aad", &ct).unwrap(),
            b"hello"
        );
    }

    #[test]
    fn info_aad_key_and_ciphertext_are_all_bound() {
        let sk_r = secret(7);
        let pk_r = PublicKey::from(&sk_r);
        let (enc, ct) = seal_base(&pk_r, &secret(9), b"info", b"aad", b"hello").unwrap();
        assert_eq!(
            open_base(&enc, &sk_r, b"other", b"aad", &ct),
            Err(HpkeError::Decrypt)
        );
        assert_eq!(
            open_base(&enc, &sk_r, b"info", b"other", &ct),
            Err(HpkeError::Decrypt)
        );
        assert_eq!(
            open_base(&enc, &secret(8), b"info", b"aad", &ct),
            Err(HpkeError::Decrypt)
        );
        let mut tampered = ct.clone();
        tampered[0] ^= 1;
        assert_eq!(
            open_base(&enc, &sk_r, b"info", b"aad", &tampered),
            Err(HpkeError::Decrypt)
        );
        let mut other_enc = enc;
        other_enc[0] ^= 1;
        assert!(open_base(&other_enc, &sk_r, b"info", b"aad", &ct).is_err());
        assert_eq!(
            open_base(&enc, &sk_r, b"info", b"aad", &ct[..4]),
            Err(HpkeError::Decrypt)
        );
    }

    #[test]
    fn low_order_keys_are_refused_on_both_sides() {
        // The identity and a point of order 8 on Curve25519 (RFC 7748 §6.1's
        // check): both give an all-zero X25519 output.
        let order_8 =
            hex::decode("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
                .unwrap();
        for bad in [[0u8; 32], <[u8; 32]>::try_from(order_8.as_slice()).unwrap()] {
            let low = PublicKey::from(bad);
            assert_eq!(
                seal_base(&low, &secret(9), b"", b"", b"x").unwrap_err(),
                HpkeError::NonContributory
            );
            assert_eq!(
                decap(&bad, &secret(7)).unwrap_err(),
                HpkeError::NonContributory
            );
        }
    }

    #[test]
    fn random_ephemeral_keys_differ() {
        let sk_r = secret(7);
        let pk_r = PublicKey::from(&sk_r);
        let mut rng = rand::rng();
        let (enc1, ct1) = seal_base_random(&pk_r, b"", b"", b"x", &mut rng).unwrap();
        let (enc2, _) = seal_base_random(&pk_r, b"", b"", b"x", &mut rng).unwrap();
        assert_ne!(enc1, enc2);
        assert_eq!(open_base(&enc1, &sk_r, b"", b"", &ct1).unwrap(), b"x");
    }

    #[test]
    fn debug_redacts_secrets() {
        let (_, ss) = encap(&PublicKey::from(&secret(7)), &secret(9)).unwrap();
        let context = Context::base(&ss, b"");
        let shown = format!("{ss:?} {context:?}");
        assert!(!shown.contains(&format!("{:?}", ss.expose())));
        assert!(shown.contains("redacted"));
    }
}
