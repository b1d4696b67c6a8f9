//! Secret bytes: heap-allocated, zeroized on drop, compared in constant time,
//! never printed.

use core::fmt;

use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// `N` secret bytes in a box, so moves never leave copies behind.
#[derive(Clone)]
pub(crate) struct Secret<const N: usize>(Box<[u8; N]>);

impl<const N: usize> Secret<N> {
    /// Copies `bytes` into a new secret.
    pub(crate) fn new(bytes: &[u8; N]) -> Self {
        let mut boxed = Box::new([0u8; N]);
        boxed.copy_from_slice(bytes);
        Self(boxed)
    }

    /// Copies a slice of exactly `N` bytes (callers pass constant ranges of
    /// fixed-size arrays).
    pub(crate) fn copy_of(bytes: &[u8]) -> Self {
        let mut boxed = Box::new([0u8; N]);
        boxed.copy_from_slice(bytes);
        Self(boxed)
    }

    /// Fills a new secret from `rng`.
    pub(crate) fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut boxed = Box::new([0u8; N]);
        rng.fill_bytes(boxed.as_mut_slice());
        Self(boxed)
    }

    /// Takes the bytes of a zeroizing buffer (which wipes itself).
    pub(crate) fn from_zeroizing(bytes: &Zeroizing<[u8; N]>) -> Self {
        Self::new(bytes)
    }

    /// The secret bytes. Callers must not copy them anywhere that outlives
    /// the computation at hand.
    pub(crate) fn expose(&self) -> &[u8; N] {
        &self.0
    }
}

impl<const N: usize> Zeroize for Secret<N> {
    fn zeroize(&mut self) {
        self.0.as_mut_slice().zeroize();
    }
}

impl<const N: usize> Drop for Secret<N> {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl<const N: usize> ZeroizeOnDrop for Secret<N> {}

impl<const N: usize> ConstantTimeEq for Secret<N> {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.as_slice().ct_eq(other.0.as_slice())
    }
}

impl<const N: usize> PartialEq for Secret<N> {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl<const N: usize> Eq for Secret<N> {}

impl<const N: usize> fmt::Debug for Secret<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_and_eq_compares_contents() {
        let a = Secret::new(&[0xAB; 32]);
        assert_eq!(format!("{a:?}"), "[redacted]");
        assert_eq!(a, Secret::new(&[0xAB; 32]));
        assert_ne!(a, Secret::new(&[0xAC; 32]));
    }

    #[test]
    fn zeroize_wipes_the_bytes() {
        let mut a = Secret::new(&[7; 16]);
        a.zeroize();
        assert_eq!(a.expose(), &[0; 16]);
    }
}
