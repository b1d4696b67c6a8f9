//! Another member's chain, as a receiver holds it: it verifies and decrypts.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, VerifyingKey};
use zeroize::{ZeroizeOnDrop, Zeroizing};

use super::chain::{ChainKey, MessageKeys, Seed, associated_data};
use super::codec::stored_verifying_key;
use super::message::{SenderKeyDistribution, SenderKeyMessage};
use super::{AD_LEN, CircleId, DecryptError, MAX_FORWARD_JUMP, MAX_SKIPPED_KEYS, check_chain_id};
use crate::hpke::chacha_open;
use crate::padding::unpad;
use crate::stored::{Reader, StoredStateError, Writer};

/// A receiver's copy of another device's sender key for one (circle, epoch).
#[derive(Clone, ZeroizeOnDrop)]
pub struct RemoteSenderKey {
    #[zeroize(skip)]
    circle_id: CircleId,
    #[zeroize(skip)]
    epoch: u64,
    #[zeroize(skip)]
    sender_ik_sig: VerifyingKey,
    #[zeroize(skip)]
    chain_id: u32,
    #[zeroize(skip)]
    signing_key: VerifyingKey,
    #[zeroize(skip)]
    first_iteration: u32,
    #[zeroize(skip)]
    next_iteration: u32,
    pub(super) chain_key: ChainKey,
    /// Seeds of skipped iterations; each `Seed` zeroizes itself on drop.
    #[zeroize(skip)]
    skipped: BTreeMap<u32, Seed>,
}

/// Where a message's iteration falls relative to the receiver's chain.
enum Position {
    /// An earlier iteration whose seed was kept.
    Skipped,
    /// The next iteration or one ahead of it.
    Ahead,
}

/// The chain advanced to a message, not yet committed.
struct Advance {
    skipped: Vec<(u32, Seed)>,
    seed: Seed,
    chain_key: ChainKey,
}

/// Fixed part of [`RemoteSenderKey::to_bytes`], before the skipped seeds.
const FIXED_LEN: usize = 1 + 16 + 8 + 32 + 4 + 32 + 4 + 4 + 32 + 2;
/// One skipped seed: iteration ‖ seed.
const SKIPPED_ENTRY_LEN: usize = 4 + 32;

impl RemoteSenderKey {
    /// Largest encoding [`Self::from_bytes`] accepts.
    pub const MAX_ENCODED_LEN: usize = FIXED_LEN + MAX_SKIPPED_KEYS * SKIPPED_ENTRY_LEN;

    /// A receiver from a distribution that arrived over the pairwise session
    /// with the device whose identity signing key is `sender_ik_sig`.
    pub fn new(distribution: &SenderKeyDistribution, sender_ik_sig: VerifyingKey) -> Self {
        Self {
            circle_id: distribution.circle_id,
            epoch: distribution.epoch,
            sender_ik_sig,
            chain_id: distribution.chain_id,
            signing_key: distribution.signing_key,
            first_iteration: distribution.iteration,
            next_iteration: distribution.iteration,
            chain_key: ChainKey::from_bytes(&distribution.chain_key),
            skipped: BTreeMap::new(),
        }
    }

    /// The circle id.
    pub fn circle_id(&self) -> &CircleId {
        &self.circle_id
    }

    /// The sender's epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The chain id.
    pub fn chain_id(&self) -> u32 {
        self.chain_id
    }

    /// The first iteration this receiver can read.
    pub fn first_iteration(&self) -> u32 {
        self.first_iteration
    }

    /// The next iteration in order.
    pub fn next_iteration(&self) -> u32 {
        self.next_iteration
    }

    /// How many skipped seeds are stored.
    pub fn skipped_count(&self) -> usize {
        self.skipped.len()
    }

    /// Verifies, then decrypts a message of this chain. On any error the
    /// state is unchanged.
    pub fn decrypt(&mut self, message: &SenderKeyMessage) -> Result<Vec<u8>, DecryptError> {
        if (message.circle_id, message.epoch, message.chain_id)
            != (self.circle_id, self.epoch, self.chain_id)
        {
            return Err(DecryptError::ChainMismatch);
        }
        let iteration = message.iteration;
        let position = self.locate(iteration)?;
        let ad = associated_data(
            &self.circle_id,
            self.epoch,
            &self.sender_ik_sig,
            self.chain_id,
            iteration,
        );
        self.verify(&ad, message)?;
        match position {
            Position::Skipped => {
                let seed = self
                    .skipped
                    .get(&iteration)
                    .ok_or(DecryptError::Duplicate { iteration })?;
                let plaintext = open(seed, &ad, &message.ciphertext)?;
                self.skipped.remove(&iteration);
                Ok(plaintext)
            }
            Position::Ahead => {
                let advance = self.advance_to(iteration);
                let plaintext = open(&advance.seed, &ad, &message.ciphertext)?;
                self.commit(advance, iteration);
                Ok(plaintext)
            }
        }
    }

    fn locate(&self, iteration: u32) -> Result<Position, DecryptError> {
        if iteration < self.first_iteration {
            return Err(DecryptError::BeforeFirstIteration {
                iteration,
                first: self.first_iteration,
            });
        }
        if iteration < self.next_iteration {
            return if self.skipped.contains_key(&iteration) {
                Ok(Position::Skipped)
            } else {
                Err(DecryptError::Duplicate { iteration })
            };
        }
        // A sender never uses u32::MAX: its successor would not fit.
        if iteration - self.next_iteration > MAX_FORWARD_JUMP || iteration == u32::MAX {
            return Err(DecryptError::TooFarAhead {
                iteration,
                next: self.next_iteration,
            });
        }
        Ok(Position::Ahead)
    }

    fn verify(&self, ad: &[u8; AD_LEN], message: &SenderKeyMessage) -> Result<(), DecryptError> {
        let mut signed = Vec::with_capacity(AD_LEN + message.ciphertext.len());
        signed.extend_from_slice(ad);
        signed.extend_from_slice(&message.ciphertext);
        self.signing_key
            .verify_strict(&signed, &Signature::from_bytes(&message.signature))
            .map_err(|_| DecryptError::BadSignature)
    }

    /// Derives the chain up to `iteration` without touching `self`.
    fn advance_to(&self, iteration: u32) -> Advance {
        let mut chain_key = self.chain_key.clone();
        let mut skipped = Vec::new();
        for skipped_iteration in self.next_iteration..iteration {
            skipped.push((skipped_iteration, chain_key.seed()));
            chain_key = chain_key.next();
        }
        Advance {
            skipped,
            seed: chain_key.seed(),
            chain_key: chain_key.next(),
        }
    }

    fn commit(&mut self, advance: Advance, iteration: u32) {
        self.skipped.extend(advance.skipped);
        while self.skipped.len() > MAX_SKIPPED_KEYS {
            self.skipped.pop_first();
        }
        self.chain_key = advance.chain_key;
        // `locate` refused u32::MAX, so this does not saturate.
        self.next_iteration = iteration.saturating_add(1);
    }

    /// Versioned encoding for the client store (secret):
    /// `version ‖ circle_id ‖ epoch ‖ IK_sig ‖ chain_id ‖ signing key ‖
    /// first ‖ next ‖ CK_next ‖ count (u16) ‖ (iteration ‖ seed)*`.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(FIXED_LEN + self.skipped.len() * SKIPPED_ENTRY_LEN);
        w.bytes(&self.circle_id)
            .bytes(&self.epoch.to_be_bytes())
            .bytes(self.sender_ik_sig.as_bytes())
            .u32(self.chain_id)
            .bytes(self.signing_key.as_bytes())
            .u32(self.first_iteration)
            .u32(self.next_iteration)
            .bytes(self.chain_key.expose());
        // At most MAX_SKIPPED_KEYS (2,000) entries, which fits in a u16.
        let count = u16::try_from(self.skipped.len()).unwrap_or(u16::MAX);
        w.u16(count);
        for (iteration, seed) in self.skipped.iter().take(usize::from(count)) {
            w.u32(*iteration).bytes(seed.expose());
        }
        w.finish()
    }

    /// Decodes [`Self::to_bytes`], refusing inputs over
    /// [`Self::MAX_ENCODED_LEN`] and inconsistent iterations.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoredStateError> {
        let mut r = Reader::new(bytes, Self::MAX_ENCODED_LEN)?;
        let circle_id = r.array()?;
        let epoch = u64::from_be_bytes(r.array()?);
        let sender_ik_sig = stored_verifying_key(&mut r, "sender_ik_sig")?;
        let chain_id =
            check_chain_id(r.u32()?).map_err(|_| StoredStateError::InvalidField("chain_id"))?;
        let signing_key = stored_verifying_key(&mut r, "signing_key")?;
        let first_iteration = r.u32()?;
        let next_iteration = r.u32()?;
        if first_iteration > next_iteration {
            return Err(StoredStateError::InvalidField("next_iteration"));
        }
        let chain_key = ChainKey::from_bytes(&*r.secret()?);
        let skipped = read_skipped(&mut r, first_iteration, next_iteration)?;
        r.finish()?;
        Ok(Self {
            circle_id,
            epoch,
            sender_ik_sig,
            chain_id,
            signing_key,
            first_iteration,
            next_iteration,
            chain_key,
            skipped,
        })
    }
}

/// Reads the skipped seeds: strictly increasing iterations in
/// `first..next`, at most [`MAX_SKIPPED_KEYS`] of them.
fn read_skipped(
    r: &mut Reader<'_>,
    first: u32,
    next: u32,
) -> Result<BTreeMap<u32, Seed>, StoredStateError> {
    let count = usize::from(r.u16()?);
    if count > MAX_SKIPPED_KEYS {
        return Err(StoredStateError::InvalidField("skipped"));
    }
    let mut skipped = BTreeMap::new();
    let mut lowest_allowed = first;
    for _ in 0..count {
        let iteration = r.u32()?;
        if iteration < lowest_allowed || iteration >= next {
            return Err(StoredStateError::InvalidField("skipped"));
        }
        skipped.insert(iteration, Seed::from_bytes(&*r.secret()?));
        lowest_allowed = iteration.saturating_add(1);
    }
    Ok(skipped)
}

/// Decrypts and unpads one message under the keys of `seed`.
fn open(seed: &Seed, ad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, DecryptError> {
    let keys = MessageKeys::from_chain_seed(seed);
    let padded = Zeroizing::new(
        chacha_open(keys.expose_key(), keys.nonce(), ad, ciphertext)
            .map_err(|_| DecryptError::Decrypt)?,
    );
    let plaintext = unpad(&padded).map_err(|_| DecryptError::BadPadding)?;
    Ok(plaintext.to_vec())
}

impl std::fmt::Debug for RemoteSenderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSenderKey")
            .field("circle_id", &self.circle_id)
            .field("epoch", &self.epoch)
            .field("sender_ik_sig", &self.sender_ik_sig)
            .field("chain_id", &self.chain_id)
            .field("signing_key", &self.signing_key)
            .field("first_iteration", &self.first_iteration)
            .field("next_iteration", &self.next_iteration)
            .field("chain_key", &"<redacted>")
            .field("skipped", &format_args!("<{} seeds>", self.skipped.len()))
            .finish()
    }
}
