//! The layout of `hearth_v1.json` (issue 3): lowercase hex for bytes,
//! numbers for integers, `pt` always the unpadded plaintext, every `ct`
//! ciphertext ‖ 16-byte tag.
//!
//! Shared by the `gen-vectors` and `interop-decrypt` examples and the
//! `vectors` test (each includes this file as a module), so that the writer
//! and the readers agree on one definition. Field order is the order written.

use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Vectors {
    pub(crate) suite: String,
    pub(crate) handshakes: Vec<Handshake>,
    pub(crate) ratchets: Vec<Ratchet>,
    pub(crate) sender_keys: Vec<SenderKey>,
    pub(crate) sealed: Vec<Sealed>,
    pub(crate) padding: Vec<Padding>,
}

/// One PQXDH-style handshake, Alice → Bob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Handshake {
    pub(crate) alice: HandshakeAlice,
    pub(crate) bob: HandshakeBob,
    /// ML-KEM encapsulation randomness `m` (32 bytes).
    pub(crate) kem_m: String,
    pub(crate) kem_ct: String,
    pub(crate) kem_ss: String,
    pub(crate) sigs: Signatures,
    /// `DH1`, `DH2`, `DH3` and, with a one-time prekey, `DH4`.
    pub(crate) dh: Vec<String>,
    /// `32×0xFF ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4] ‖ SS`.
    pub(crate) ikm: String,
    pub(crate) sk: String,
    pub(crate) ad: String,
}

/// Alice's secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HandshakeAlice {
    pub(crate) ik_sig_seed: String,
    pub(crate) ik_dh_priv: String,
    pub(crate) ek_priv: String,
}

/// Bob's secrets and prekey ids, and his ML-KEM encapsulation key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HandshakeBob {
    pub(crate) ik_sig_seed: String,
    pub(crate) ik_dh_priv: String,
    pub(crate) spk_id: u32,
    pub(crate) spk_priv: String,
    pub(crate) opk_id: Option<u32>,
    pub(crate) opk_priv: Option<String>,
    pub(crate) pq_id: u32,
    /// 64-byte `d ‖ z` (FIPS 203 `ML-KEM.KeyGen_internal`).
    pub(crate) pq_seed: String,
    /// The encapsulation key (1,184 bytes) the seed gives.
    pub(crate) pq_pub: String,
}

/// Every signature over `"Hearth_v1_PrekeySig" ‖ Encode(key)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Signatures {
    /// Bob's `IK_sig` over his `IK_dh`.
    pub(crate) ik_dh: String,
    /// Bob's `IK_sig` over `SPK`.
    pub(crate) spk: String,
    /// Bob's `IK_sig` over `PQPK`.
    pub(crate) pq: String,
    /// Alice's `IK_sig` over her `IK_dh` (sent in the first message).
    pub(crate) alice_ik_dh: String,
}

/// One Double Ratchet conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Ratchet {
    pub(crate) sk: String,
    pub(crate) ad: String,
    pub(crate) bob_spk_priv: String,
    pub(crate) ratchet_privs: RatchetPrivs,
    pub(crate) events: Vec<Event>,
}

/// The DH ratchet private keys each side installs, in order (Alice's first
/// at `RatchetInitAlice`; Bob's first at his first DH step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RatchetPrivs {
    pub(crate) alice: Vec<String>,
    pub(crate) bob: Vec<String>,
}

/// A party of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Party {
    Alice,
    Bob,
}

/// What a decryption must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Expect {
    Ok,
    Duplicate,
    TooManySkipped,
    AuthFail,
}

/// One step of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub(crate) enum Event {
    /// `by` encrypts `pad(pt)`.
    Encrypt {
        by: Party,
        pt: String,
        header: String,
        mk: String,
        key: String,
        nonce: String,
        ct: String,
    },
    /// `by` (the receiver) decrypts the message of event `msg`, with the
    /// last byte of its `ct` flipped when `tamper` is set.
    Decrypt {
        by: Party,
        msg: usize,
        tamper: bool,
        expect: Expect,
    },
}

/// One circle sender-key chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SenderKey {
    pub(crate) circle_id: String,
    pub(crate) epoch: u64,
    pub(crate) sender_ik_sig_pub: String,
    pub(crate) chain_id: u32,
    pub(crate) ck0: String,
    pub(crate) signing_seed: String,
    pub(crate) messages: Vec<SenderKeyMessage>,
}

/// One circle message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SenderKeyMessage {
    pub(crate) iteration: u32,
    pub(crate) pt: String,
    pub(crate) seed: String,
    pub(crate) key: String,
    pub(crate) nonce: String,
    pub(crate) ad: String,
    pub(crate) ct: String,
    pub(crate) sig: String,
}

/// One sealed-sender header and body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Sealed {
    pub(crate) recipient_ik_dh_priv: String,
    pub(crate) mailbox_id: String,
    pub(crate) eph_priv: String,
    pub(crate) k: String,
    pub(crate) body_pt: String,
    pub(crate) body_ct: String,
    pub(crate) enc: String,
    pub(crate) header_ct: String,
}

/// One padding length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Padding {
    pub(crate) len: usize,
    pub(crate) padded_len: usize,
}
