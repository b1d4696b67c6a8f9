//! The symmetric chain: `seed_i = HMAC(CK_i, 0x01)`,
//! `CK_{i+1} = HMAC(CK_i, 0x02)`, and per-message key ‖ nonce from `seed_i`.

use ed25519_dalek::VerifyingKey;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{AD_LABEL, AD_LEN, CircleId, MESSAGE_KEYS_INFO};
use crate::encode;
use crate::kdf::{hkdf_sha256, hmac_sha256};

/// A chain key `CK_i`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(super) struct ChainKey(Box<[u8; 32]>);

impl ChainKey {
    pub(super) fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(Box::new(*bytes))
    }

    pub(super) fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// `seed_i = HMAC(CK_i, 0x01)`.
    pub(super) fn seed(&self) -> Seed {
        Seed(Box::new(*hmac_sha256(self.0.as_ref(), &[0x01])))
    }

    /// `CK_{i+1} = HMAC(CK_i, 0x02)`.
    pub(super) fn next(&self) -> Self {
        Self(Box::new(*hmac_sha256(self.0.as_ref(), &[0x02])))
    }
}

/// A message seed `seed_i`, kept for skipped iterations.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(super) struct Seed(Box<[u8; 32]>);

impl Seed {
    pub(super) fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(Box::new(*bytes))
    }

    pub(super) fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

/// The keys of one circle message: `seed_i` and
/// `key ‖ nonce = HKDF(salt = 32×0x00, ikm = seed_i,
/// info = "Hearth_v1_GroupMessageKeys", L = 44)`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MessageKeys {
    seed: Box<[u8; 32]>,
    key: Box<[u8; 32]>,
    nonce: [u8; 12],
}

impl MessageKeys {
    /// Derives key and nonce from a message seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let okm = hkdf_sha256::<44>(&[0u8; 32], seed, MESSAGE_KEYS_INFO);
        let mut key = Box::new([0u8; 32]);
        key.copy_from_slice(&okm[..32]);
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&okm[32..]);
        Self {
            seed: Box::new(*seed),
            key,
            nonce,
        }
    }

    pub(super) fn from_chain_seed(seed: &Seed) -> Self {
        Self::from_seed(seed.expose())
    }

    /// `seed_i`, for test vectors. Declassification: keep it secret.
    pub fn expose_seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// The ChaCha20-Poly1305 key, for test vectors. Declassification: keep
    /// it secret.
    pub fn expose_key(&self) -> &[u8; 32] {
        &self.key
    }

    /// The ChaCha20-Poly1305 nonce.
    pub fn nonce(&self) -> &[u8; 12] {
        &self.nonce
    }
}

impl std::fmt::Debug for MessageKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageKeys")
            .field("seed", &"<redacted>")
            .field("key", &"<redacted>")
            .field("nonce", &"<redacted>")
            .finish()
    }
}

/// `AD = "Hearth_v1_Group" ‖ circle_id (16) ‖ epoch (u64) ‖
/// Encode(IK_sig of sender device) ‖ chain_id (u32) ‖ iteration (u32)`.
pub fn associated_data(
    circle_id: &CircleId,
    epoch: u64,
    sender_ik_sig: &VerifyingKey,
    chain_id: u32,
    iteration: u32,
) -> [u8; AD_LEN] {
    let mut ad = [0u8; AD_LEN];
    let parts: [&[u8]; 6] = [
        AD_LABEL,
        circle_id,
        &epoch.to_be_bytes(),
        &encode::ed25519(sender_ik_sig.as_bytes()),
        &chain_id.to_be_bytes(),
        &iteration.to_be_bytes(),
    ];
    let mut at = 0;
    for part in parts {
        ad[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    ad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_follows_hmac_0x01_and_0x02() {
        let ck = ChainKey::from_bytes(&[1; 32]);
        assert_eq!(ck.seed().expose(), &*hmac_sha256(&[1; 32], &[1]));
        assert_eq!(ck.next().expose(), &*hmac_sha256(&[1; 32], &[2]));
        assert_ne!(ck.seed().expose(), ck.next().expose());
    }

    #[test]
    fn message_keys_split_44_bytes_of_hkdf() {
        let keys = MessageKeys::from_seed(&[5; 32]);
        let okm = hkdf_sha256::<44>(&[0; 32], &[5; 32], b"Hearth_v1_GroupMessageKeys");
        assert_eq!(keys.expose_key()[..], okm[..32]);
        assert_eq!(keys.nonce()[..], okm[32..]);
        assert_eq!(keys.expose_seed(), &[5; 32]);
    }

    #[test]
    fn associated_data_layout() {
        let ik = ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key();
        let ad = associated_data(
            &[0xcc; 16],
            0x0102_0304_0506_0708,
            &ik,
            0x0a0b_0c0d,
            0x11_2233,
        );
        assert_eq!(&ad[..15], b"Hearth_v1_Group");
        assert_eq!(&ad[15..31], &[0xcc; 16]);
        assert_eq!(&ad[31..39], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(ad[39], 0x02);
        assert_eq!(&ad[40..72], ik.as_bytes());
        assert_eq!(&ad[72..76], &[0x0a, 0x0b, 0x0c, 0x0d]);
        assert_eq!(&ad[76..80], &[0x00, 0x11, 0x22, 0x33]);
    }

    #[test]
    fn debug_redacts() {
        let shown = format!("{:?}", MessageKeys::from_seed(&[0xee; 32]));
        assert!(!shown.contains("238"));
    }
}
