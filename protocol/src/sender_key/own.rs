//! The sender's own chain: it encrypts and signs.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use zeroize::{ZeroizeOnDrop, Zeroizing};

use super::chain::{ChainKey, MessageKeys, associated_data};
use super::codec::stored_verifying_key;
use super::message::{SenderKeyDistribution, SenderKeyMessage};
use super::{
    AD_LEN, CHAIN_ID_TOP_BIT, CircleId, EncryptError, InvalidChainId, MAX_PLAINTEXT_LEN,
    ROTATE_AFTER_MESSAGES, ROTATE_AFTER_MS, check_chain_id,
};
use crate::hpke::chacha_seal;
use crate::padding::pad;
use crate::stored::{Reader, StoredStateError, Writer};

/// A device's sender key for one (circle, epoch): the chain it encrypts
/// with and the key it signs with.
#[derive(Clone, ZeroizeOnDrop)]
pub struct SenderKeyState {
    #[zeroize(skip)]
    circle_id: CircleId,
    #[zeroize(skip)]
    epoch: u64,
    #[zeroize(skip)]
    sender_ik_sig: VerifyingKey,
    #[zeroize(skip)]
    chain_id: u32,
    #[zeroize(skip)]
    pub(super) iteration: u32,
    chain_key: ChainKey,
    signing_key: SigningKey,
    #[zeroize(skip)]
    created_at_ms: u64,
}

impl SenderKeyState {
    /// Length of [`Self::to_bytes`].
    pub const ENCODED_LEN: usize = 1 + 16 + 8 + 32 + 4 + 4 + 32 + 32 + 8;

    /// A fresh sender key for `circle_id` at `epoch`, sent by the device
    /// whose identity signing key is `sender_ik_sig`; `now_ms` is Unix time
    /// in milliseconds.
    pub fn new(
        circle_id: CircleId,
        epoch: u64,
        sender_ik_sig: VerifyingKey,
        now_ms: u64,
        rng: &mut impl CryptoRng,
    ) -> Self {
        let chain_id = rng.next_u32() & !CHAIN_ID_TOP_BIT;
        let mut ck0 = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(ck0.as_mut());
        Self {
            circle_id,
            epoch,
            sender_ik_sig,
            chain_id,
            iteration: 0,
            chain_key: ChainKey::from_bytes(&ck0),
            signing_key: SigningKey::generate(rng),
            created_at_ms: now_ms,
        }
    }

    /// A sender key from given parts, at iteration 0 (deterministic vectors).
    pub fn from_parts(
        circle_id: CircleId,
        epoch: u64,
        sender_ik_sig: VerifyingKey,
        chain_id: u32,
        ck0: &[u8; 32],
        signing_seed: &[u8; 32],
        now_ms: u64,
    ) -> Result<Self, InvalidChainId> {
        Ok(Self {
            circle_id,
            epoch,
            sender_ik_sig,
            chain_id: check_chain_id(chain_id)?,
            iteration: 0,
            chain_key: ChainKey::from_bytes(ck0),
            signing_key: SigningKey::from_bytes(signing_seed),
            created_at_ms: now_ms,
        })
    }

    /// The circle id.
    pub fn circle_id(&self) -> &CircleId {
        &self.circle_id
    }

    /// The epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The chain id.
    pub fn chain_id(&self) -> u32 {
        self.chain_id
    }

    /// The iteration the next message will use.
    pub fn iteration(&self) -> u32 {
        self.iteration
    }

    /// Messages encrypted with this key so far.
    pub fn messages_sent(&self) -> u32 {
        self.iteration
    }

    /// When this key was made (Unix milliseconds).
    pub fn created_at_ms(&self) -> u64 {
        self.created_at_ms
    }

    /// The sending device's identity signing key (part of the AD).
    pub fn sender_ik_sig(&self) -> &VerifyingKey {
        &self.sender_ik_sig
    }

    /// The public half of this chain's signing key.
    pub fn signing_public_key(&self) -> VerifyingKey {
        self.signing_key.verifying_key()
    }

    /// Whether the caller should start a new sender key: after
    /// [`ROTATE_AFTER_MESSAGES`] messages or [`ROTATE_AFTER_MS`].
    pub fn needs_rotation(&self, now_ms: u64) -> bool {
        self.iteration >= ROTATE_AFTER_MESSAGES
            || now_ms.saturating_sub(self.created_at_ms) >= ROTATE_AFTER_MS
    }

    /// The keys the next message will use (test vectors).
    pub fn next_message_keys(&self) -> MessageKeys {
        MessageKeys::from_chain_seed(&self.chain_key.seed())
    }

    /// The associated data of `iteration` on this chain (test vectors).
    pub fn associated_data(&self, iteration: u32) -> [u8; AD_LEN] {
        associated_data(
            &self.circle_id,
            self.epoch,
            &self.sender_ik_sig,
            self.chain_id,
            iteration,
        )
    }

    /// What members need to read this chain from the current iteration on.
    pub fn distribution(&self) -> SenderKeyDistribution {
        SenderKeyDistribution {
            circle_id: self.circle_id,
            epoch: self.epoch,
            chain_id: self.chain_id,
            iteration: self.iteration,
            chain_key: Box::new(*self.chain_key.expose()),
            signing_key: self.signing_key.verifying_key(),
        }
    }

    /// Pads, encrypts and signs `plaintext`, then advances the chain.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<SenderKeyMessage, EncryptError> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(EncryptError::PlaintextTooLong {
                len: plaintext.len(),
            });
        }
        let next_iteration = self
            .iteration
            .checked_add(1)
            .ok_or(EncryptError::ChainExhausted)?;
        let keys = self.next_message_keys();
        let ad = self.associated_data(self.iteration);
        let padded = Zeroizing::new(pad(plaintext));
        let ciphertext =
            chacha_seal(keys.expose_key(), keys.nonce(), &ad, &padded).map_err(|_| {
                EncryptError::PlaintextTooLong {
                    len: plaintext.len(),
                }
            })?;
        let mut signed = Vec::with_capacity(AD_LEN + ciphertext.len());
        signed.extend_from_slice(&ad);
        signed.extend_from_slice(&ciphertext);
        let signature = self.signing_key.sign(&signed).to_bytes();
        let message = SenderKeyMessage {
            circle_id: self.circle_id,
            epoch: self.epoch,
            chain_id: self.chain_id,
            iteration: self.iteration,
            ciphertext,
            signature,
        };
        self.chain_key = self.chain_key.next();
        self.iteration = next_iteration;
        Ok(message)
    }

    /// Versioned encoding for the client store (secret):
    /// `version ‖ circle_id ‖ epoch ‖ IK_sig ‖ chain_id ‖ iteration ‖ CK_i ‖
    /// signing seed ‖ created_at_ms`.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(Self::ENCODED_LEN);
        w.bytes(&self.circle_id)
            .bytes(&self.epoch.to_be_bytes())
            .bytes(self.sender_ik_sig.as_bytes())
            .u32(self.chain_id)
            .u32(self.iteration)
            .bytes(self.chain_key.expose())
            .bytes(self.signing_key.as_bytes())
            .bytes(&self.created_at_ms.to_be_bytes());
        w.finish()
    }

    /// Decodes [`Self::to_bytes`]; refuses any other length or version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoredStateError> {
        let mut r = Reader::new(bytes, Self::ENCODED_LEN)?;
        let circle_id = r.array()?;
        let epoch = u64::from_be_bytes(r.array()?);
        let sender_ik_sig = stored_verifying_key(&mut r, "sender_ik_sig")?;
        let chain_id =
            check_chain_id(r.u32()?).map_err(|_| StoredStateError::InvalidField("chain_id"))?;
        let iteration = r.u32()?;
        let chain_key = ChainKey::from_bytes(&*r.secret()?);
        let signing_key = SigningKey::from_bytes(&*r.secret()?);
        let created_at_ms = u64::from_be_bytes(r.array()?);
        r.finish()?;
        Ok(Self {
            circle_id,
            epoch,
            sender_ik_sig,
            chain_id,
            iteration,
            chain_key,
            signing_key,
            created_at_ms,
        })
    }
}

impl std::fmt::Debug for SenderKeyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderKeyState")
            .field("circle_id", &self.circle_id)
            .field("epoch", &self.epoch)
            .field("sender_ik_sig", &self.sender_ik_sig)
            .field("chain_id", &self.chain_id)
            .field("iteration", &self.iteration)
            .field("chain_key", &"<redacted>")
            .field("signing_key", &"<redacted>")
            .field("created_at_ms", &self.created_at_ms)
            .finish()
    }
}
