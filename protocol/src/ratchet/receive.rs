//! The receiving side: skipped keys, the current chain, DH ratchet steps.
//!
//! Every path first computes what would change, then authenticates the
//! message, and only then commits: a failure leaves the session untouched,
//! and a DH step draws its new key pair only after authentication.

use zeroize::Zeroizing;

use super::chain::{AuthFail, ChainKey, MessageKey, RootKey};
use super::header::{Header, RatchetMessage};
use super::key_source::RatchetKeySource;
use super::skipped::SkippedKey;
use super::state::{MAX_PREVIOUS_REMOTE_KEYS, RatchetSession};
use super::{DecryptError, MAX_SKIP};
use crate::keys::X25519PublicKey;

impl From<AuthFail> for DecryptError {
    fn from(_: AuthFail) -> Self {
        Self::AuthFail
    }
}

/// A chain advanced from `Nr` to `N`: the keys skipped on the way, the key of
/// message `N` and the chain key after it.
struct Advance {
    skipped: Vec<SkippedKey>,
    message_key: MessageKey,
    next: ChainKey,
}

/// Signal's `SkipMessageKeys` bound: more than `MAX_SKIP` keys is an error.
fn check_skip(nr: u32, until: u32) -> Result<(), DecryptError> {
    if u64::from(nr) + u64::from(MAX_SKIP) < u64::from(until) {
        return Err(DecryptError::TooManySkipped);
    }
    Ok(())
}

/// Message keys `from..until` of `chain` (of the peer key `ratchet_key`) and
/// the chain key at `until`. The caller checked the bound.
fn skip_keys(
    chain: &ChainKey,
    ratchet_key: X25519PublicKey,
    from: u32,
    until: u32,
) -> (Vec<SkippedKey>, ChainKey) {
    let mut chain = chain.clone();
    let mut skipped = Vec::with_capacity(until.saturating_sub(from) as usize);
    for n in from..until {
        skipped.push(SkippedKey {
            ratchet_key,
            n,
            key: chain.message_key(),
        });
        chain = chain.next();
    }
    (skipped, chain)
}

fn advance(
    chain: &ChainKey,
    ratchet_key: X25519PublicKey,
    from: u32,
    n: u32,
) -> Result<Advance, DecryptError> {
    check_skip(from, n)?;
    let (skipped, at_n) = skip_keys(chain, ratchet_key, from, n);
    Ok(Advance {
        skipped,
        message_key: at_n.message_key(),
        next: at_n.next(),
    })
}

impl RatchetSession {
    /// Decrypts a message, returning the (still padded) plaintext. `keys`
    /// supplies the key pair installed at a DH ratchet step, drawn only once
    /// the message authenticated: pass the RNG, or [`FixedRatchetKeys`] for
    /// test vectors. On success, persist the session before acknowledging.
    ///
    /// [`FixedRatchetKeys`]: super::FixedRatchetKeys
    pub fn decrypt<K: RatchetKeySource + ?Sized>(
        &mut self,
        message: &RatchetMessage,
        keys: &mut K,
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        let header = &message.header;
        if header.n == u32::MAX {
            return Err(DecryptError::CounterOverflow);
        }
        let aad = self.aad(header);
        if let Some(index) = self.skipped.find(&header.ratchet_key, header.n) {
            let key = self.skipped.get(index).ok_or(DecryptError::Duplicate)?;
            let plaintext = key.open(&aad, &message.ciphertext)?;
            self.skipped.remove(index);
            return Ok(plaintext);
        }
        if self.remote_key == Some(header.ratchet_key) {
            return self.decrypt_in_current_chain(header, &aad, &message.ciphertext);
        }
        if self.previous_remote_keys.contains(&header.ratchet_key) {
            return Err(DecryptError::Duplicate);
        }
        self.decrypt_with_dh_step(header, &aad, &message.ciphertext, keys)
    }

    fn decrypt_in_current_chain(
        &mut self,
        header: &Header,
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        // Alice's DHr starts as SPK_B, which has no receiving chain.
        let chain = self
            .receiving_chain
            .as_ref()
            .ok_or(DecryptError::AuthFail)?;
        if header.n < self.nr {
            return Err(DecryptError::Duplicate);
        }
        let step = advance(chain, header.ratchet_key, self.nr, header.n)?;
        let plaintext = step.message_key.open(aad, ciphertext)?;
        self.skipped.extend(step.skipped);
        self.receiving_chain = Some(step.next);
        self.nr = header.n + 1;
        Ok(plaintext)
    }

    fn decrypt_with_dh_step<K: RatchetKeySource + ?Sized>(
        &mut self,
        header: &Header,
        aad: &[u8],
        ciphertext: &[u8],
        keys: &mut K,
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        // Keys left in the current receiving chain, up to the sender's PN.
        check_skip(self.nr, header.pn)?;
        let previous_chain = match (&self.receiving_chain, self.remote_key) {
            (Some(chain), Some(remote)) => skip_keys(chain, remote, self.nr, header.pn).0,
            _ => Vec::new(),
        };
        let dh = self
            .sending_key
            .agree(&header.ratchet_key)
            .map_err(|_| DecryptError::NonContributory)?;
        let (root, receiving_chain) = self.root.step(&dh);
        let step = advance(&receiving_chain, header.ratchet_key, 0, header.n)?;
        let plaintext = step.message_key.open(aad, ciphertext)?;

        // Authenticated: only now draw and install the new sending key pair.
        let sending_key = keys.next_ratchet_key().ok_or(DecryptError::NoRatchetKey)?;
        let dh = sending_key
            .agree(&header.ratchet_key)
            .map_err(|_| DecryptError::NonContributory)?;
        let (root, sending_chain) = root.step(&dh);
        self.commit_dh_step(header, root, sending_key, sending_chain, step.next);
        self.skipped.extend(previous_chain);
        self.skipped.extend(step.skipped);
        Ok(plaintext)
    }

    fn commit_dh_step(
        &mut self,
        header: &Header,
        root: RootKey,
        sending_key: crate::keys::X25519KeyPair,
        sending_chain: ChainKey,
        receiving_chain: ChainKey,
    ) {
        if let Some(old) = self.remote_key.replace(header.ratchet_key) {
            self.previous_remote_keys.push_back(old);
            if self.previous_remote_keys.len() > MAX_PREVIOUS_REMOTE_KEYS {
                self.previous_remote_keys.pop_front();
            }
        }
        self.pn = self.ns;
        self.ns = 0;
        self.nr = header.n + 1;
        self.root = root;
        self.sending_key = sending_key;
        self.sending_chain = Some(sending_chain);
        self.receiving_chain = Some(receiving_chain);
    }
}
