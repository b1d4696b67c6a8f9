//! Where a session gets the key pair it installs at a DH ratchet step.

use std::collections::VecDeque;

use rand_core::CryptoRng;

use crate::keys::X25519KeyPair;

/// A source of ratchet key pairs. Every `CryptoRng` is one (it draws a fresh
/// pair); [`FixedRatchetKeys`] replays given private keys for test vectors.
pub trait RatchetKeySource {
    /// The next key pair to install, or `None` when a fixed list ran out.
    fn next_ratchet_key(&mut self) -> Option<X25519KeyPair>;
}

impl<R: CryptoRng + ?Sized> RatchetKeySource for R {
    fn next_ratchet_key(&mut self) -> Option<X25519KeyPair> {
        Some(X25519KeyPair::generate(self))
    }
}

/// Ratchet keys taken in order from a fixed list (test vectors only).
#[derive(Debug, Clone, Default)]
pub struct FixedRatchetKeys {
    keys: VecDeque<X25519KeyPair>,
}

impl FixedRatchetKeys {
    /// A source that hands out `privates` in order.
    pub fn new<'a>(privates: impl IntoIterator<Item = &'a [u8; 32]>) -> Self {
        Self {
            keys: privates
                .into_iter()
                .map(X25519KeyPair::from_private_bytes)
                .collect(),
        }
    }

    /// How many keys have not been handed out.
    pub fn remaining(&self) -> usize {
        self.keys.len()
    }
}

impl RatchetKeySource for FixedRatchetKeys {
    fn next_ratchet_key(&mut self) -> Option<X25519KeyPair> {
        self.keys.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_keys_come_out_in_order_then_run_out() {
        let mut keys = FixedRatchetKeys::new([&[1; 32], &[2; 32]]);
        assert_eq!(
            keys.next_ratchet_key().unwrap().expose_private_bytes(),
            &[1; 32]
        );
        assert_eq!(keys.remaining(), 1);
        assert_eq!(
            keys.next_ratchet_key().unwrap().expose_private_bytes(),
            &[2; 32]
        );
        assert!(keys.next_ratchet_key().is_none());
    }

    #[test]
    fn an_rng_draws_distinct_keys() {
        let mut rng = rand::rng();
        let a = rng.next_ratchet_key().unwrap();
        let b = rng.next_ratchet_key().unwrap();
        assert_ne!(a.public_key(), b.public_key());
    }
}
