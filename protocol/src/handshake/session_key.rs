//! What a handshake yields for the Double Ratchet: the shared secret `SK` and
//! the associated data `AD` that binds both identities to every message.

use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::keys::PublicIdentity;
use crate::keys::secret::Secret;

/// Prefix of the associated data.
pub const AD_LABEL: &[u8] = b"Hearth_v1";

/// `SK`: the 32-byte secret both sides derive. Zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SessionKey(Secret<32>);

impl SessionKey {
    /// Wraps 32 secret bytes (test vectors; normally the handshake makes it).
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(Secret::new(bytes))
    }

    /// Declassifies the key, for test vectors only.
    pub fn expose_bytes(&self) -> &[u8; 32] {
        self.0.expose()
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SessionKey").field(&self.0).finish()
    }
}

/// `AD = "Hearth_v1" ‖ Encode(IK_sig_A) ‖ Encode(IK_dh_A) ‖ Encode(IK_sig_B) ‖
/// Encode(IK_dh_B)` (141 bytes), where A started the session.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AssociatedData([u8; AssociatedData::LEN]);

impl AssociatedData {
    /// Length of the layout: 9 + 4 × 33 bytes.
    pub const LEN: usize = 9 + 4 * 33;

    /// Builds the layout for a session that `initiator` started with `responder`.
    pub fn new(initiator: &PublicIdentity, responder: &PublicIdentity) -> Self {
        let mut out = [0u8; Self::LEN];
        let parts = [
            initiator.sig_key.encode(),
            initiator.dh_key.encode(),
            responder.sig_key.encode(),
            responder.dh_key.encode(),
        ];
        out[..AD_LABEL.len()].copy_from_slice(AD_LABEL);
        for (chunk, part) in out[AD_LABEL.len()..].chunks_exact_mut(33).zip(parts) {
            chunk.copy_from_slice(&part);
        }
        Self(out)
    }

    /// Wraps a stored layout (stored state and test vectors).
    pub const fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
        Self(bytes)
    }

    /// The layout's bytes.
    pub const fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }
}

impl fmt::Debug for AssociatedData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AssociatedData(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::IdentityKeyPair;

    #[test]
    fn ad_layout_is_label_then_four_encoded_keys() {
        let a = IdentityKeyPair::from_secrets(&[1; 32], &[2; 32]);
        let b = IdentityKeyPair::from_secrets(&[3; 32], &[4; 32]);
        let ad = AssociatedData::new(a.public(), b.public());
        let bytes = ad.as_bytes();
        assert_eq!(&bytes[..9], b"Hearth_v1");
        assert_eq!(bytes[9..42], a.public().sig_key.encode());
        assert_eq!(bytes[42..75], a.public().dh_key.encode());
        assert_eq!(bytes[75..108], b.public().sig_key.encode());
        assert_eq!(bytes[108..], b.public().dh_key.encode());
        assert_ne!(ad, AssociatedData::new(b.public(), a.public()));
    }

    #[test]
    fn session_key_is_redacted() {
        let key = SessionKey::from_bytes(&[0x77; 32]);
        assert_eq!(format!("{key:?}"), "SessionKey([redacted])");
    }
}
