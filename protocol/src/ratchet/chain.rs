//! The ratchet's key derivations and the per-message AEAD.
//!
//! ```text
//! KDF_RK(rk, dh) = HKDF(salt = rk, ikm = dh, info = "Hearth_v1_Ratchet", L = 64) → rk ‖ ck
//! KDF_CK(ck):   MK = HMAC(ck, 0x01), next ck = HMAC(ck, 0x02)
//! key ‖ nonce = HKDF(salt = 32×0x00, ikm = MK, info = "Hearth_v1_MessageKeys", L = 44)
//! ct = ChaCha20-Poly1305(key, nonce, plaintext, aad = AD ‖ header)   (ciphertext ‖ 16-byte tag)
//! ```

use core::fmt;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::kdf::{hkdf_sha256, hmac_sha256};
use crate::keys::secret::Secret;

/// HKDF `info` of the root chain.
pub const RATCHET_INFO: &[u8] = b"Hearth_v1_Ratchet";
/// HKDF `info` that expands a message key into key ‖ nonce.
pub const MESSAGE_KEYS_INFO: &[u8] = b"Hearth_v1_MessageKeys";

/// The root key `RK`.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub(crate) struct RootKey(Secret<32>);

impl RootKey {
    pub(crate) fn new(bytes: &[u8; 32]) -> Self {
        Self(Secret::new(bytes))
    }

    pub(crate) fn expose(&self) -> &[u8; 32] {
        self.0.expose()
    }

    /// `KDF_RK(rk, dh)` → (next root key, chain key).
    pub(crate) fn step(&self, dh: &[u8; 32]) -> (RootKey, ChainKey) {
        let okm = hkdf_sha256::<64>(self.0.expose(), dh, RATCHET_INFO);
        (
            RootKey(Secret::copy_of(&okm[..32])),
            ChainKey(Secret::copy_of(&okm[32..])),
        )
    }
}

/// A sending or receiving chain key `CK`.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub(crate) struct ChainKey(Secret<32>);

impl ChainKey {
    pub(crate) fn new(bytes: &[u8; 32]) -> Self {
        Self(Secret::new(bytes))
    }

    pub(crate) fn expose(&self) -> &[u8; 32] {
        self.0.expose()
    }

    /// `MK = HMAC(ck, 0x01)`.
    pub(crate) fn message_key(&self) -> MessageKey {
        MessageKey(Secret::from_zeroizing(&hmac_sha256(
            self.0.expose(),
            &[0x01],
        )))
    }

    /// Next chain key `HMAC(ck, 0x02)`.
    pub(crate) fn next(&self) -> ChainKey {
        ChainKey(Secret::from_zeroizing(&hmac_sha256(
            self.0.expose(),
            &[0x02],
        )))
    }
}

/// A message key `MK`.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageKey(Secret<32>);

/// The AEAD key and nonce a message key expands to.
pub(crate) struct AeadKeys {
    pub(crate) key: Zeroizing<[u8; 32]>,
    pub(crate) nonce: [u8; 12],
}

/// The message failed to authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AuthFail;

impl MessageKey {
    pub(crate) fn new(bytes: &[u8; 32]) -> Self {
        Self(Secret::new(bytes))
    }

    pub(crate) fn expose(&self) -> &[u8; 32] {
        self.0.expose()
    }

    /// `key ‖ nonce = HKDF(salt = 32×0x00, ikm = MK, info = "Hearth_v1_MessageKeys", L = 44)`.
    pub(crate) fn expand(&self) -> AeadKeys {
        let okm = hkdf_sha256::<44>(&[0u8; 32], self.0.expose(), MESSAGE_KEYS_INFO);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&okm[..32]);
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&okm[32..]);
        AeadKeys { key, nonce }
    }

    /// Encrypts `plaintext`: ciphertext ‖ 16-byte tag.
    #[cfg(test)]
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        self.expand().seal(aad, plaintext)
    }

    /// Decrypts and authenticates `ciphertext` (ciphertext ‖ tag).
    pub(crate) fn open(
        &self,
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, AuthFail> {
        let keys = self.expand();
        let cipher = ChaCha20Poly1305::new(&(*keys.key).into());
        let payload = Payload {
            msg: ciphertext,
            aad,
        };
        cipher
            .decrypt(&keys.nonce.into(), payload)
            .map(Zeroizing::new)
            .map_err(|_| AuthFail)
    }
}

impl AeadKeys {
    /// Encrypts `plaintext`: ciphertext ‖ 16-byte tag.
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let cipher = ChaCha20Poly1305::new(&(*self.key).into());
        let payload = Payload {
            msg: plaintext,
            aad,
        };
        // ChaCha20-Poly1305 only fails beyond 2^38 bytes; messages are far
        // smaller (frames are limited to 256 KiB).
        #[allow(clippy::expect_used, reason = "encryption fails only beyond 256 GiB")]
        cipher
            .encrypt(&self.nonce.into(), payload)
            .expect("message within the AEAD limit")
    }
}

macro_rules! redacted_debug {
    ($($name:ident),*) => {$(
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.0).finish()
            }
        }
    )*};
}
redacted_debug!(RootKey, ChainKey, MessageKey);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_step_is_hmac_with_one_and_two() {
        let ck = ChainKey::new(&[7; 32]);
        assert_eq!(ck.message_key().expose(), &*hmac_sha256(&[7; 32], &[1]));
        assert_eq!(ck.next().expose(), &*hmac_sha256(&[7; 32], &[2]));
    }

    #[test]
    fn root_step_splits_64_bytes_of_hkdf() {
        let (root, chain) = RootKey::new(&[1; 32]).step(&[2; 32]);
        let okm = hkdf_sha256::<64>(&[1; 32], &[2; 32], b"Hearth_v1_Ratchet");
        assert_eq!(root.expose()[..], okm[..32]);
        assert_eq!(chain.expose()[..], okm[32..]);
    }

    #[test]
    fn message_keys_expand_to_key_and_nonce() {
        let keys = MessageKey::new(&[3; 32]).expand();
        let okm = hkdf_sha256::<44>(&[0; 32], &[3; 32], b"Hearth_v1_MessageKeys");
        assert_eq!(keys.key[..], okm[..32]);
        assert_eq!(keys.nonce[..], okm[32..]);
    }

    /// RFC 8439 §2.8.2: the AEAD this module uses, with the RFC's key and nonce.
    #[test]
    fn rfc8439_aead_vector() {
        let key: [u8; 32] =
            hex::decode("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
                .unwrap()
                .try_into()
                .unwrap();
        let nonce: [u8; 12] = hex::decode("070000004041424344454647")
            .unwrap()
            .try_into()
            .unwrap();
        let aad = hex::decode("50515253c0c1c2c3c4c5c6c7").unwrap();
        let pt = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let cipher = ChaCha20Poly1305::new(&key.into());
        let ct = cipher
            .encrypt(&nonce.into(), Payload { msg: pt, aad: &aad })
            .unwrap();
        assert_eq!(
            hex::encode(&ct[ct.len() - 16..]),
            "1ae10b594f09e26a7e902ecbd0600691"
        );
        assert_eq!(hex::encode(&ct[..16]), "d31a8d34648e60db7b86afbc53ef7ec2");
    }

    #[test]
    fn open_rejects_tampering_and_wrong_aad() {
        let mk = MessageKey::new(&[4; 32]);
        let ct = mk.seal(b"aad", b"hello");
        assert_eq!(ct.len(), 5 + 16);
        assert_eq!(&**mk.open(b"aad", &ct).unwrap(), b"hello");
        assert_eq!(mk.open(b"aad!", &ct), Err(AuthFail));
        let mut bad = ct.clone();
        bad[20] ^= 1;
        assert_eq!(mk.open(b"aad", &bad), Err(AuthFail));
        assert_eq!(mk.open(b"aad", &ct[..15]), Err(AuthFail));
    }
}
