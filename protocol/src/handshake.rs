//! The PQXDH-style handshake (DESIGN.md §5 "Handshake"), Alice → Bob.
//!
//! Alice fetches Bob's [`PreKeyBundle`] and calls [`initiate`]: it verifies
//! every signature, draws `EK_A` and the ML-KEM randomness, and returns the
//! first-message fields ([`SessionInit`]) with `SK` and `AD` for
//! [`RatchetSession::init_alice`](crate::ratchet::RatchetSession::init_alice).
//! Bob looks up the prekeys the message names and calls [`respond`], which
//! changes nothing: after the first ratchet message decrypts, the caller
//! records [`Accepted::replay_tag`] in its [`ReplayCache`] and deletes
//! [`Accepted::consumed`] prekeys, in one atomic store write.
//!
//! ```text
//! DH1 = DH(IK_dh_A, SPK_B)   DH2 = DH(EK_A, IK_dh_B)   DH3 = DH(EK_A, SPK_B)
//! DH4 = DH(EK_A, OPK_B) (if an OPK was used)   (CT, SS) = ML-KEM-768.Encaps(PQPK_B)
//! SK = HKDF(salt = 32×0x00, ikm = 32×0xFF ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4] ‖ SS,
//!           info = "Hearth_v1_X25519_SHA-256_ML-KEM-768", L = 32)
//! ```

mod replay;
mod session_key;
#[cfg(test)]
mod tests;

use core::fmt;

use ml_kem::{Decapsulate, MlKem768};
use rand_core::CryptoRng;
use zeroize::{Zeroize, Zeroizing};

use crate::kdf::hkdf_sha256;
use crate::keys::secret::Secret;
use crate::keys::{
    BundleError, IdentityKeyPair, NonContributory, OneTimePreKey, PqPreKey, PreKeyBundle,
    PublicIdentity, SignedPreKey, X25519KeyPair, X25519PublicKey,
};

pub use replay::{ReplayCache, ReplayCacheError, ReplayTag};
pub use session_key::{AD_LABEL, AssociatedData, SessionKey};

/// HKDF `info` of the handshake.
pub const HANDSHAKE_INFO: &[u8] = b"Hearth_v1_X25519_SHA-256_ML-KEM-768";

/// Length of an ML-KEM-768 ciphertext.
pub const KEM_CIPHERTEXT_LEN: usize = 1088;

/// Why a handshake failed. Nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// Alice: a signature in Bob's bundle does not verify (peer or directory
    /// misbehaved).
    #[error("invalid prekey bundle: {0}")]
    Bundle(#[from] BundleError),
    /// Bob: the signature over Alice's `IK_dh` does not verify (peer misbehaved).
    #[error("initiator's identity key signature does not verify")]
    InitiatorSignature,
    /// A Diffie-Hellman output was all zero: the peer sent a low-order key.
    #[error("a Diffie-Hellman output is not contributory")]
    NonContributory,
    /// Bob: this `(EK_A, SPK id)` was already accepted (a replay).
    #[error("first message replayed")]
    Replayed,
    /// Bob (caller misuse): the prekeys passed in are not the ones the first
    /// message names (ids differ, or a one-time prekey is missing or extra).
    #[error("prekeys do not match the ids in the first message")]
    PreKeyMismatch,
}

impl From<NonContributory> for HandshakeError {
    fn from(_: NonContributory) -> Self {
        Self::NonContributory
    }
}

/// An ML-KEM-768 ciphertext `CT` (1,088 bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct KemCiphertext(Box<[u8; KEM_CIPHERTEXT_LEN]>);

/// A ciphertext of the wrong length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ML-KEM-768 ciphertext must be 1088 bytes")]
pub struct InvalidKemCiphertext;

impl KemCiphertext {
    /// Wraps 1,088 bytes as received.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InvalidKemCiphertext> {
        let array: &[u8; KEM_CIPHERTEXT_LEN] =
            bytes.try_into().map_err(|_| InvalidKemCiphertext)?;
        Ok(Self(Box::new(*array)))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; KEM_CIPHERTEXT_LEN] {
        &self.0
    }
}

impl fmt::Debug for KemCiphertext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KemCiphertext(..)")
    }
}

/// The handshake fields of Alice's first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInit {
    /// Alice's `IK_sig`, `IK_dh` and the signature over `IK_dh`.
    pub initiator: PublicIdentity,
    /// `EK_A`.
    pub ephemeral: X25519PublicKey,
    /// Id of the signed prekey used.
    pub signed_prekey_id: u32,
    /// Id of the one-time X25519 prekey used, if any.
    pub one_time_prekey_id: Option<u32>,
    /// Id of the ML-KEM-768 prekey used.
    pub pq_prekey_id: u32,
    /// `CT`.
    pub kem_ciphertext: KemCiphertext,
}

impl SessionInit {
    /// The tag Bob's [`ReplayCache`] records for this message.
    pub fn replay_tag(&self) -> ReplayTag {
        ReplayTag {
            signed_prekey_id: self.signed_prekey_id,
            ephemeral: self.ephemeral,
        }
    }
}

/// Alice's result: the first-message fields, `SK` and `AD`.
#[derive(Debug)]
pub struct Initiated {
    /// Fields to send in the first message.
    pub init: SessionInit,
    /// `SK`.
    pub key: SessionKey,
    /// `AD`.
    pub ad: AssociatedData,
}

/// Starts a session with the device that published `bundle`.
pub fn initiate<R: CryptoRng + ?Sized>(
    identity: &IdentityKeyPair,
    bundle: &PreKeyBundle,
    rng: &mut R,
) -> Result<Initiated, HandshakeError> {
    let ephemeral = X25519KeyPair::generate(rng);
    let kem_m = Secret::<32>::random(rng);
    let (init, secrets) = initiator_secrets(identity, bundle, &ephemeral, kem_m.expose())?;
    Ok(Initiated {
        key: secrets.session_key(),
        ad: AssociatedData::new(&init.initiator, &bundle.identity),
        init,
    })
}

/// [`initiate`] with `EK_A` and the ML-KEM encapsulation randomness `m`
/// supplied, returning every intermediate value. For test vectors only:
/// reusing either input is catastrophic. Only with the `test-hooks` feature.
#[cfg(any(test, feature = "test-hooks"))]
#[doc(hidden)]
pub fn initiate_deterministic(
    identity: &IdentityKeyPair,
    bundle: &PreKeyBundle,
    ephemeral: &X25519KeyPair,
    kem_m: &[u8; 32],
) -> Result<(SessionInit, HandshakeTranscript), HandshakeError> {
    let (init, secrets) = initiator_secrets(identity, bundle, ephemeral, kem_m)?;
    let ad = AssociatedData::new(&init.initiator, &bundle.identity);
    Ok((init, HandshakeTranscript::new(secrets, ad)))
}

/// Alice's side of the handshake with `EK_A` and the ML-KEM randomness `m`
/// given: the first-message fields and the shared secrets.
fn initiator_secrets(
    identity: &IdentityKeyPair,
    bundle: &PreKeyBundle,
    ephemeral: &X25519KeyPair,
    kem_m: &[u8; 32],
) -> Result<(SessionInit, SharedSecrets), HandshakeError> {
    bundle.validate()?;
    let spk = &bundle.signed_prekey.key;
    let mut dh = vec![
        identity.dh().agree(spk)?,
        ephemeral.agree(&bundle.identity.dh_key)?,
        ephemeral.agree(spk)?,
    ];
    if let Some(opk) = &bundle.one_time_prekey {
        dh.push(ephemeral.agree(&opk.key)?);
    }
    let mut m = ml_kem::B32::from(*kem_m);
    let (ct, mut ss) = bundle.pq_prekey.key.key().encapsulate_deterministic(&m);
    m.as_mut_slice().zeroize();
    let kem_ss = Zeroizing::new(ss.into());
    ss.as_mut_slice().zeroize();
    let mut ct_bytes = Box::new([0u8; KEM_CIPHERTEXT_LEN]);
    ct_bytes.copy_from_slice(&ct);
    let init = SessionInit {
        initiator: *identity.public(),
        ephemeral: *ephemeral.public_key(),
        signed_prekey_id: bundle.signed_prekey.id,
        one_time_prekey_id: bundle.one_time_prekey.map(|opk| opk.id),
        pq_prekey_id: bundle.pq_prekey.id,
        kem_ciphertext: KemCiphertext(ct_bytes),
    };
    Ok((init, SharedSecrets { dh, kem_ss }))
}

/// Bob's private prekeys named by a first message, looked up by the caller
/// from [`SessionInit`]'s ids.
#[derive(Debug, Clone, Copy)]
pub struct ResponderPreKeys<'a> {
    /// The signed prekey with id `signed_prekey_id`.
    pub signed_prekey: &'a SignedPreKey,
    /// The one-time prekey with id `one_time_prekey_id`, when the message
    /// names one.
    pub one_time_prekey: Option<&'a OneTimePreKey>,
    /// The ML-KEM prekey with id `pq_prekey_id`.
    pub pq_prekey: &'a PqPreKey,
}

/// One-time prekeys a handshake used up: delete them once the session is
/// stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumedPreKeys {
    /// The one-time X25519 prekey, if one was used.
    pub one_time_prekey: Option<u32>,
    /// The ML-KEM prekey, unless it was the last-resort one (which stays).
    pub pq_prekey: Option<u32>,
}

/// Bob's result. Nothing is recorded yet: see the [module docs](self).
#[derive(Debug)]
#[must_use = "record the replay tag and delete the consumed prekeys once the session is stored"]
pub struct Accepted {
    /// `SK`.
    pub key: SessionKey,
    /// `AD`.
    pub ad: AssociatedData,
    /// Prekeys to delete.
    pub consumed: ConsumedPreKeys,
    /// The tag to [`ReplayCache::record`].
    pub replay_tag: ReplayTag,
}

/// Accepts Alice's first message with Bob's `identity` and the `prekeys` it
/// names. Reads `replay` but does not change it.
pub fn respond(
    identity: &IdentityKeyPair,
    prekeys: ResponderPreKeys<'_>,
    init: &SessionInit,
    replay: &ReplayCache,
) -> Result<Accepted, HandshakeError> {
    check_prekey_ids(&prekeys, init)?;
    let replay_tag = init.replay_tag();
    if replay.contains(&replay_tag) {
        return Err(HandshakeError::Replayed);
    }
    init.initiator
        .verify()
        .map_err(|_| HandshakeError::InitiatorSignature)?;
    let spk = prekeys.signed_prekey.key_pair();
    let mut dh = vec![
        spk.agree(&init.initiator.dh_key)?,
        identity.dh().agree(&init.ephemeral)?,
        spk.agree(&init.ephemeral)?,
    ];
    if let Some(opk) = prekeys.one_time_prekey {
        dh.push(opk.key_pair().agree(&init.ephemeral)?);
    }
    let kem_ss = decapsulate(prekeys.pq_prekey, &init.kem_ciphertext);
    let ad = AssociatedData::new(&init.initiator, identity.public());
    let key = SharedSecrets { dh, kem_ss }.session_key();
    let pq = prekeys.pq_prekey;
    Ok(Accepted {
        key,
        ad,
        consumed: ConsumedPreKeys {
            one_time_prekey: init.one_time_prekey_id,
            pq_prekey: (!pq.is_last_resort()).then_some(pq.id()),
        },
        replay_tag,
    })
}

fn check_prekey_ids(
    prekeys: &ResponderPreKeys<'_>,
    init: &SessionInit,
) -> Result<(), HandshakeError> {
    let opk_ok = match (prekeys.one_time_prekey, init.one_time_prekey_id) {
        (Some(opk), Some(id)) => opk.id() == id,
        (None, None) => true,
        _ => false,
    };
    let ids_ok = prekeys.signed_prekey.id() == init.signed_prekey_id
        && prekeys.pq_prekey.id() == init.pq_prekey_id;
    if opk_ok && ids_ok {
        Ok(())
    } else {
        Err(HandshakeError::PreKeyMismatch)
    }
}

fn decapsulate(pq: &PqPreKey, ct: &KemCiphertext) -> Zeroizing<[u8; 32]> {
    let ct = ml_kem::Ciphertext::<MlKem768>::from(*ct.as_bytes());
    // Implicit rejection: a forged CT yields an unrelated secret, so SK differs
    // and the first message fails to authenticate.
    let mut ss = pq.decapsulation_key().decapsulate(&ct);
    let out = Zeroizing::new(ss.into());
    ss.as_mut_slice().zeroize();
    out
}

/// The secrets both sides compute: the Diffie-Hellman outputs and the
/// ML-KEM shared secret, zeroized on drop.
struct SharedSecrets {
    /// `DH1`, `DH2`, `DH3` and, with a one-time prekey, `DH4`.
    dh: Vec<Zeroizing<[u8; 32]>>,
    /// `SS`.
    kem_ss: Zeroizing<[u8; 32]>,
}

impl SharedSecrets {
    /// `32×0xFF ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4] ‖ SS`.
    fn ikm(&self) -> Zeroizing<Vec<u8>> {
        let mut ikm = Zeroizing::new(Vec::with_capacity(32 * (2 + self.dh.len())));
        ikm.extend_from_slice(&[0xFF; 32]);
        for output in &self.dh {
            ikm.extend_from_slice(output.as_ref());
        }
        ikm.extend_from_slice(self.kem_ss.as_ref());
        ikm
    }

    /// `SK`.
    fn session_key(&self) -> SessionKey {
        let sk = hkdf_sha256::<32>(&[0u8; 32], &self.ikm(), HANDSHAKE_INFO);
        SessionKey::from_bytes(&sk)
    }
}

/// Every intermediate value of a handshake, for test vectors. Holds secrets:
/// zeroized on drop, redacted in `Debug`. Only with the `test-hooks` feature.
#[cfg(any(test, feature = "test-hooks"))]
#[doc(hidden)]
pub struct HandshakeTranscript {
    /// `DH1`, `DH2`, `DH3` and, with a one-time prekey, `DH4`.
    pub dh: Vec<Zeroizing<[u8; 32]>>,
    /// `SS`.
    pub kem_ss: Zeroizing<[u8; 32]>,
    /// `32×0xFF ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4] ‖ SS`.
    pub ikm: Zeroizing<Vec<u8>>,
    /// `SK`.
    pub key: SessionKey,
    /// `AD`.
    pub ad: AssociatedData,
}

#[cfg(any(test, feature = "test-hooks"))]
impl HandshakeTranscript {
    fn new(secrets: SharedSecrets, ad: AssociatedData) -> Self {
        let ikm = secrets.ikm();
        let key = secrets.session_key();
        let SharedSecrets { dh, kem_ss } = secrets;
        Self {
            dh,
            kem_ss,
            ikm,
            key,
            ad,
        }
    }
}

#[cfg(any(test, feature = "test-hooks"))]
impl fmt::Debug for HandshakeTranscript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandshakeTranscript")
            .field("dh", &"[redacted]")
            .field("kem_ss", &"[redacted]")
            .field("ikm", &"[redacted]")
            .field("key", &self.key)
            .field("ad", &self.ad)
            .finish()
    }
}
