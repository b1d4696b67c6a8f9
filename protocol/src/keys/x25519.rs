//! X25519 key pairs and public keys, with the contributory check that every
//! `Hearth_v1` Diffie-Hellman output must pass.

use core::fmt;

use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::secret::Secret;
use crate::encode;

/// An X25519 public key (32 bytes, as on the wire).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct X25519PublicKey([u8; 32]);

impl X25519PublicKey {
    /// Wraps 32 bytes. Any value is accepted here; a low-order key is caught
    /// when a Diffie-Hellman with it produces the all-zero output.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// `Encode(k)`: `0x01 ‖ key`.
    pub fn encode(&self) -> [u8; 33] {
        encode::x25519(&self.0)
    }
}

impl From<[u8; 32]> for X25519PublicKey {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for X25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "X25519PublicKey(")?;
        for byte in &self.0[..8] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "…)")
    }
}

/// A Diffie-Hellman produced the all-zero output: the other public key has
/// low order, so the "shared" secret would be known to everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("X25519 output is not contributory (low-order public key)")]
pub struct NonContributory;

/// An X25519 key pair. The private key is kept as given (clamping happens
/// inside each scalar multiplication), zeroized on drop and never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct X25519KeyPair {
    private: Secret<32>,
    #[zeroize(skip)]
    public: X25519PublicKey,
}

impl X25519KeyPair {
    /// Draws a fresh key pair from `rng`.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::from_secret(Secret::random(rng))
    }

    /// Rebuilds a key pair from its 32 private bytes (for stored state and
    /// test vectors).
    pub fn from_private_bytes(private: &[u8; 32]) -> Self {
        Self::from_secret(Secret::new(private))
    }

    pub(crate) fn from_secret(private: Secret<32>) -> Self {
        let scalar = x25519_dalek::StaticSecret::from(*private.expose());
        let public = X25519PublicKey(x25519_dalek::PublicKey::from(&scalar).to_bytes());
        Self { private, public }
    }

    /// The public half.
    pub fn public_key(&self) -> &X25519PublicKey {
        &self.public
    }

    /// Declassifies the private key, for storage and test vectors only.
    pub fn expose_private_bytes(&self) -> &[u8; 32] {
        self.private.expose()
    }

    /// `DH(self, theirs)`, rejecting the all-zero output.
    pub(crate) fn agree(
        &self,
        theirs: &X25519PublicKey,
    ) -> Result<Zeroizing<[u8; 32]>, NonContributory> {
        let scalar = x25519_dalek::StaticSecret::from(*self.private.expose());
        let shared = scalar.diffie_hellman(&x25519_dalek::PublicKey::from(theirs.0));
        if !shared.was_contributory() {
            return Err(NonContributory);
        }
        Ok(Zeroizing::new(shared.to_bytes()))
    }
}

impl fmt::Debug for X25519KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X25519KeyPair")
            .field("private", &self.private)
            .field("public", &self.public)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex32(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// RFC 7748 §6.1: Alice's and Bob's key pairs and their shared secret.
    #[test]
    fn rfc7748_diffie_hellman() {
        let alice = X25519KeyPair::from_private_bytes(&unhex32(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ));
        let bob = X25519KeyPair::from_private_bytes(&unhex32(
            "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
        ));
        assert_eq!(
            alice.public_key().as_bytes(),
            &unhex32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        );
        assert_eq!(
            bob.public_key().as_bytes(),
            &unhex32("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
        );
        let shared = unhex32("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        assert_eq!(*alice.agree(bob.public_key()).unwrap(), shared);
        assert_eq!(*bob.agree(alice.public_key()).unwrap(), shared);
    }

    #[test]
    fn low_order_public_keys_are_rejected() {
        let pair = X25519KeyPair::from_private_bytes(&[0x42; 32]);
        let mut one = [0u8; 32];
        one[0] = 1;
        for low in [[0u8; 32], one] {
            assert_eq!(
                pair.agree(&X25519PublicKey::from_bytes(low)),
                Err(NonContributory)
            );
        }
    }

    #[test]
    fn debug_hides_the_private_key() {
        let pair = X25519KeyPair::from_private_bytes(&[0x42; 32]);
        let shown = format!("{pair:?}");
        assert!(shown.contains("[redacted]"), "{shown}");
        assert!(!shown.contains("4242"), "{shown}");
    }
}
