//! The session state, its initialisation and the sending side.

use core::fmt;
use std::collections::VecDeque;

use rand_core::CryptoRng;
use zeroize::ZeroizeOnDrop;
#[cfg(any(test, feature = "test-hooks"))]
use zeroize::Zeroizing;

use super::EncryptError;
use super::chain::{ChainKey, MessageKey, RootKey};
use super::header::{Header, RatchetMessage};
use super::skipped::SkippedKeys;
use crate::handshake::{AssociatedData, SessionKey};
use crate::keys::{NonContributory, X25519KeyPair, X25519PublicKey};

/// How many of the peer's previous ratchet keys are remembered, so that a
/// replayed message of an earlier chain is reported as a duplicate.
pub(crate) const MAX_PREVIOUS_REMOTE_KEYS: usize = 5;

/// One side of a Double Ratchet session.
///
/// Secrets are zeroized on drop and redacted in `Debug`; the state leaves the
/// session only through [`RatchetSession::to_bytes`].
#[derive(Clone)]
pub struct RatchetSession {
    pub(crate) ad: AssociatedData,
    /// `RK`.
    pub(crate) root: RootKey,
    /// `DHs`.
    pub(crate) sending_key: X25519KeyPair,
    /// `DHr`.
    pub(crate) remote_key: Option<X25519PublicKey>,
    /// `CKs`.
    pub(crate) sending_chain: Option<ChainKey>,
    /// `CKr`.
    pub(crate) receiving_chain: Option<ChainKey>,
    /// `Ns`.
    pub(crate) ns: u32,
    /// `Nr`.
    pub(crate) nr: u32,
    /// `PN`.
    pub(crate) pn: u32,
    /// Earlier `DHr` values, oldest first.
    pub(crate) previous_remote_keys: VecDeque<X25519PublicKey>,
    /// `MKSKIPPED`.
    pub(crate) skipped: SkippedKeys,
}

// Every secret field (root, chain and message keys, the ratchet private key)
// wipes itself on drop.
impl ZeroizeOnDrop for RatchetSession {}

/// The keys behind one encrypted message, for test vectors. Only with the
/// `test-hooks` feature.
#[cfg(any(test, feature = "test-hooks"))]
#[doc(hidden)]
pub struct MessageKeyTrace {
    /// `MK`.
    pub mk: Zeroizing<[u8; 32]>,
    /// The AEAD key.
    pub key: Zeroizing<[u8; 32]>,
    /// The AEAD nonce.
    pub nonce: [u8; 12],
}

#[cfg(any(test, feature = "test-hooks"))]
impl fmt::Debug for MessageKeyTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageKeyTrace([redacted])")
    }
}

impl RatchetSession {
    /// `RatchetInitAlice(SK, SPK_B)`: draws Alice's first ratchet key pair.
    pub fn init_alice<R: CryptoRng + ?Sized>(
        sk: &SessionKey,
        ad: AssociatedData,
        bob_signed_prekey: X25519PublicKey,
        rng: &mut R,
    ) -> Result<Self, NonContributory> {
        Self::init_alice_with_key(sk, ad, bob_signed_prekey, X25519KeyPair::generate(rng))
    }

    /// [`RatchetSession::init_alice`] with Alice's first ratchet key pair
    /// supplied (test vectors).
    pub fn init_alice_with_key(
        sk: &SessionKey,
        ad: AssociatedData,
        bob_signed_prekey: X25519PublicKey,
        ratchet_key: X25519KeyPair,
    ) -> Result<Self, NonContributory> {
        let dh = ratchet_key.agree(&bob_signed_prekey)?;
        let (root, sending_chain) = RootKey::new(sk.expose_bytes()).step(&dh);
        Ok(Self {
            ad,
            root,
            sending_key: ratchet_key,
            remote_key: Some(bob_signed_prekey),
            sending_chain: Some(sending_chain),
            receiving_chain: None,
            ns: 0,
            nr: 0,
            pn: 0,
            previous_remote_keys: VecDeque::new(),
            skipped: SkippedKeys::default(),
        })
    }

    /// `RatchetInitBob(SK, SPK_B key pair)`.
    pub fn init_bob(sk: &SessionKey, ad: AssociatedData, signed_prekey: &X25519KeyPair) -> Self {
        Self {
            ad,
            root: RootKey::new(sk.expose_bytes()),
            sending_key: signed_prekey.clone(),
            remote_key: None,
            sending_chain: None,
            receiving_chain: None,
            ns: 0,
            nr: 0,
            pn: 0,
            previous_remote_keys: VecDeque::new(),
            skipped: SkippedKeys::default(),
        }
    }

    /// The session's associated data.
    pub fn associated_data(&self) -> &AssociatedData {
        &self.ad
    }

    /// Whether [`RatchetSession::encrypt`] can be called (false for Bob until
    /// Alice's first message decrypted).
    pub fn can_send(&self) -> bool {
        self.sending_chain.is_some() && self.ns < u32::MAX
    }

    /// Encrypts an already padded plaintext and advances the sending chain.
    /// Persist the session before the message leaves the device.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<RatchetMessage, EncryptError> {
        self.encrypt_keyed(plaintext).map(|(message, _)| message)
    }

    /// [`RatchetSession::encrypt`], also returning the message keys (test
    /// vectors only). Only with the `test-hooks` feature.
    #[cfg(any(test, feature = "test-hooks"))]
    #[doc(hidden)]
    pub fn encrypt_traced(
        &mut self,
        plaintext: &[u8],
    ) -> Result<(RatchetMessage, MessageKeyTrace), EncryptError> {
        let (message, message_key) = self.encrypt_keyed(plaintext)?;
        let keys = message_key.expand();
        let trace = MessageKeyTrace {
            mk: Zeroizing::new(*message_key.expose()),
            key: keys.key,
            nonce: keys.nonce,
        };
        Ok((message, trace))
    }

    /// [`RatchetSession::encrypt`], also returning the message key used.
    fn encrypt_keyed(
        &mut self,
        plaintext: &[u8],
    ) -> Result<(RatchetMessage, MessageKey), EncryptError> {
        let chain = self
            .sending_chain
            .as_ref()
            .ok_or(EncryptError::NoSendingChain)?;
        // N = u32::MAX is never sent, so the receiver's `Nr = N + 1` fits.
        if self.ns == u32::MAX {
            return Err(EncryptError::ChainExhausted);
        }
        let header = Header {
            ratchet_key: *self.sending_key.public_key(),
            pn: self.pn,
            n: self.ns,
        };
        let message_key = chain.message_key();
        let keys = message_key.expand();
        let ciphertext = keys.seal(&self.aad(&header), plaintext);
        self.sending_chain = Some(chain.next());
        self.ns += 1;
        Ok((RatchetMessage { header, ciphertext }, message_key))
    }

    /// `AD ‖ header`, the AEAD's associated data.
    pub(crate) fn aad(&self, header: &Header) -> [u8; AssociatedData::LEN + Header::LEN] {
        let mut out = [0u8; AssociatedData::LEN + Header::LEN];
        out[..AssociatedData::LEN].copy_from_slice(self.ad.as_bytes());
        out[AssociatedData::LEN..].copy_from_slice(&header.to_bytes());
        out
    }
}

impl fmt::Debug for RatchetSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RatchetSession")
            .field("ad", &self.ad)
            .field("root", &self.root)
            .field("sending_key", &self.sending_key)
            .field("remote_key", &self.remote_key)
            .field("sending_chain", &self.sending_chain)
            .field("receiving_chain", &self.receiving_chain)
            .field("ns", &self.ns)
            .field("nr", &self.nr)
            .field("pn", &self.pn)
            .field("previous_remote_keys", &self.previous_remote_keys.len())
            .field("skipped", &self.skipped.len())
            .finish()
    }
}
