//! What travels: circle messages and sender-key distributions.

use ed25519_dalek::VerifyingKey;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::codec::Reader;
use super::{CircleId, DecodeError, MAX_PADDED_LEN, VERSION};
use crate::hpke::TAG_LEN;
use crate::padding::is_padded_len;

/// Length of an Ed25519 signature.
const SIG_LEN: usize = 64;
/// version ‖ circle_id ‖ epoch ‖ chain_id ‖ iteration.
const MESSAGE_HEADER_LEN: usize = 1 + 16 + 8 + 4 + 4;

/// A circle message: `version ‖ circle_id (16) ‖ epoch (u64) ‖ chain_id (u32)
/// ‖ iteration (u32) ‖ ct (padded plaintext + 16-byte tag) ‖ sig (64)`.
#[derive(Clone, PartialEq, Eq)]
pub struct SenderKeyMessage {
    pub(super) circle_id: CircleId,
    pub(super) epoch: u64,
    pub(super) chain_id: u32,
    pub(super) iteration: u32,
    pub(super) ciphertext: Vec<u8>,
    pub(super) signature: [u8; SIG_LEN],
}

impl SenderKeyMessage {
    /// Largest encoded message.
    pub const MAX_LEN: usize = MESSAGE_HEADER_LEN + MAX_PADDED_LEN + TAG_LEN + SIG_LEN;

    /// The circle id.
    pub fn circle_id(&self) -> &CircleId {
        &self.circle_id
    }

    /// The sender's epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The sender's chain id.
    pub fn chain_id(&self) -> u32 {
        self.chain_id
    }

    /// The iteration that encrypted this message.
    pub fn iteration(&self) -> u32 {
        self.iteration
    }

    /// Ciphertext ‖ tag.
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }

    /// Ed25519 signature over `AD ‖ ct`.
    pub fn signature(&self) -> &[u8; SIG_LEN] {
        &self.signature
    }

    /// The wire encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MESSAGE_HEADER_LEN + self.ciphertext.len() + SIG_LEN);
        out.push(VERSION);
        out.extend_from_slice(&self.circle_id);
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.chain_id.to_be_bytes());
        out.extend_from_slice(&self.iteration.to_be_bytes());
        out.extend_from_slice(&self.ciphertext);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes the wire encoding, refusing anything over [`Self::MAX_LEN`]
    /// and ciphertexts whose length no padded plaintext gives.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > Self::MAX_LEN {
            return Err(DecodeError::WrongLength { len: bytes.len() });
        }
        let mut r = Reader::versioned(bytes)?;
        let circle_id = r.array()?;
        let epoch = r.u64()?;
        let chain_id = r.chain_id()?;
        let iteration = r.u32()?;
        let rest = r.rest();
        let ct_len = rest
            .len()
            .checked_sub(SIG_LEN)
            .ok_or(DecodeError::WrongLength { len: bytes.len() })?;
        let padded = ct_len.checked_sub(TAG_LEN);
        if !padded.is_some_and(|p| is_padded_len(p) && p <= MAX_PADDED_LEN) {
            return Err(DecodeError::BadCiphertextLength { len: ct_len });
        }
        let (ciphertext, signature) = rest.split_at(ct_len);
        let mut sig = [0u8; SIG_LEN];
        sig.copy_from_slice(signature);
        Ok(Self {
            circle_id,
            epoch,
            chain_id,
            iteration,
            ciphertext: ciphertext.to_vec(),
            signature: sig,
        })
    }
}

impl std::fmt::Debug for SenderKeyMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderKeyMessage")
            .field("circle_id", &self.circle_id)
            .field("epoch", &self.epoch)
            .field("chain_id", &self.chain_id)
            .field("iteration", &self.iteration)
            .field(
                "ciphertext",
                &format_args!("<{} bytes>", self.ciphertext.len()),
            )
            .field("signature", &format_args!("<{SIG_LEN} bytes>"))
            .finish()
    }
}

/// What a sender hands to each member device over the pairwise sessions:
/// `version ‖ circle_id (16) ‖ epoch (u64) ‖ chain_id (u32) ‖ iteration (u32)
/// ‖ CK_iteration (32) ‖ signing public key (32)`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SenderKeyDistribution {
    pub(super) circle_id: CircleId,
    pub(super) epoch: u64,
    pub(super) chain_id: u32,
    pub(super) iteration: u32,
    pub(super) chain_key: Box<[u8; 32]>,
    #[zeroize(skip)]
    pub(super) signing_key: VerifyingKey,
}

impl SenderKeyDistribution {
    /// Length of the encoding.
    pub const LEN: usize = 1 + 16 + 8 + 4 + 4 + 32 + 32;

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

    /// The iteration whose chain key this carries: the first the receiver
    /// can read.
    pub fn iteration(&self) -> u32 {
        self.iteration
    }

    /// `CK_iteration`, for test vectors. Declassification: keep it secret.
    pub fn expose_chain_key(&self) -> &[u8; 32] {
        &self.chain_key
    }

    /// The sender's signing public key for this chain.
    pub fn signing_key(&self) -> &VerifyingKey {
        &self.signing_key
    }

    /// The encoding (secret: it carries a chain key).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(Self::LEN));
        out.push(VERSION);
        out.extend_from_slice(&self.circle_id);
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.chain_id.to_be_bytes());
        out.extend_from_slice(&self.iteration.to_be_bytes());
        out.extend_from_slice(self.chain_key.as_ref());
        out.extend_from_slice(self.signing_key.as_bytes());
        out
    }

    /// Decodes exactly [`Self::LEN`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() != Self::LEN {
            return Err(DecodeError::WrongLength { len: bytes.len() });
        }
        let mut r = Reader::versioned(bytes)?;
        let circle_id = r.array()?;
        let epoch = r.u64()?;
        let chain_id = r.chain_id()?;
        let iteration = r.u32()?;
        let mut chain_key = Box::new([0u8; 32]);
        chain_key.copy_from_slice(r.take(32)?);
        let signing_key = r.verifying_key()?;
        r.finish()?;
        Ok(Self {
            circle_id,
            epoch,
            chain_id,
            iteration,
            chain_key,
            signing_key,
        })
    }
}

impl std::fmt::Debug for SenderKeyDistribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderKeyDistribution")
            .field("circle_id", &self.circle_id)
            .field("epoch", &self.epoch)
            .field("chain_id", &self.chain_id)
            .field("iteration", &self.iteration)
            .field("chain_key", &"<redacted>")
            .field("signing_key", &self.signing_key)
            .finish()
    }
}
