//! Writes the `Hearth_v1` test vectors from fixed seeds.
//!
//! Every secret is `SHA-256("Hearth_v1 test vectors/" ‖ label)` (a 64-byte
//! ML-KEM seed is the digests of `label/d` and `label/z`), so the file is the
//! same on every machine and any value can be traced to its label. The
//! generator drives the crate's public API (with the deterministic entry
//! points of the `test-hooks` feature, which the crate's dev-dependency on
//! itself turns on for its tests and examples) and asserts every outcome it
//! records; the `vectors` test replays the written file independently.
//!
//! Shared by the `gen-vectors` example and the `vectors` test, which each
//! include this file as the module `generate` beside `schema`.

use ed25519_dalek::SigningKey;
use hearth_protocol::handshake::{AssociatedData, SessionKey, initiate_deterministic};
use hearth_protocol::keys::{
    IdentityKeyPair, OneTimePreKey, PqPreKey, PreKeyBundle, SignedPreKey, X25519KeyPair,
};
use hearth_protocol::padding::{pad, padded_len, unpad};
use hearth_protocol::ratchet::{DecryptError, FixedRatchetKeys, RatchetMessage, RatchetSession};
use hearth_protocol::sealed::{BodyKey, body_hash, seal_body_with_key, seal_header_with_ephemeral};
use hearth_protocol::sender_key::SenderKeyState;
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};

use crate::schema::{
    Event, Expect, Handshake, HandshakeAlice, HandshakeBob, Padding, Party, Ratchet, RatchetPrivs,
    Sealed, SenderKey, SenderKeyMessage, Signatures, Vectors,
};

/// Prefix of every label hashed into a fixed secret.
const SEED_PREFIX: &[u8] = b"Hearth_v1 test vectors/";

/// Ratchet key pairs prepared per side; the file lists only those installed.
const PREPARED_RATCHET_KEYS: usize = 16;

/// Messages of the first chain of the skipped-keys conversation: enough for
/// a gap of more than `MAX_SKIP` = 1000 both in `N` and in `PN`.
const GAP_CHAIN_LEN: usize = 1003;

/// `SHA-256("Hearth_v1 test vectors/" ‖ label)`.
fn fixed32(label: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(SEED_PREFIX)
        .chain_update(label.as_bytes())
        .finalize()
        .into()
}

/// `fixed32(label/d) ‖ fixed32(label/z)`.
fn fixed64(label: &str) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&fixed32(&format!("{label}/d")));
    out[32..].copy_from_slice(&fixed32(&format!("{label}/z")));
    out
}

fn h(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(bytes)
}

/// Every vector, in the order written.
pub(crate) fn generate() -> Vectors {
    let (hs_opk, secrets_opk) = handshake("handshake/0", 1, Some(101), 201);
    let (hs_plain, secrets_plain) = handshake("handshake/1", 2, None, 202);
    Vectors {
        suite: "Hearth_v1".to_owned(),
        handshakes: vec![hs_opk, hs_plain],
        ratchets: vec![
            conversation_with_every_case(&secrets_opk),
            conversation_with_skip_limits(&secrets_plain),
        ],
        sender_keys: vec![
            sender_key(
                "sender_key/0",
                0,
                &[b"", b"checking in: 7/10", &[0x41; 255], &[0x42; 256]],
            ),
            sender_key(
                "sender_key/1",
                3,
                &["Gathering on Thursday? ☕".as_bytes(), b"yes!"],
            ),
        ],
        sealed: vec![
            sealed("sealed/0", b"sender certificate | ratchet message"),
            sealed("sealed/1", &[0x5a; 600]),
        ],
        padding: [
            0, 1, 100, 254, 255, 256, 257, 511, 512, 1000, 65_534, 65_535, 65_536, 100_000,
        ]
        .into_iter()
        .map(|len| Padding {
            len,
            padded_len: padded_len(len),
        })
        .collect(),
    }
}

/// The file's text: pretty-printed JSON with a final newline.
pub(crate) fn to_json(vectors: &Vectors) -> String {
    let mut text = serde_json::to_string_pretty(vectors).expect("vectors serialize");
    text.push('\n');
    text
}

/// What a conversation built on a handshake needs.
struct SessionSecrets {
    sk: [u8; 32],
    ad: [u8; AssociatedData::LEN],
    spk_priv: [u8; 32],
}

fn handshake(
    label: &str,
    spk_id: u32,
    opk_id: Option<u32>,
    pq_id: u32,
) -> (Handshake, SessionSecrets) {
    let seed = |name: &str| fixed32(&format!("{label}/{name}"));
    let alice =
        IdentityKeyPair::from_secrets(&seed("alice/ik_sig_seed"), &seed("alice/ik_dh_priv"));
    let ek = X25519KeyPair::from_private_bytes(&seed("alice/ek_priv"));
    let bob = IdentityKeyPair::from_secrets(&seed("bob/ik_sig_seed"), &seed("bob/ik_dh_priv"));
    let spk = SignedPreKey::from_private_bytes(spk_id, &bob, &seed("bob/spk_priv"));
    let opk = opk_id.map(|id| OneTimePreKey::from_private_bytes(id, &seed("bob/opk_priv")));
    let pq = PqPreKey::from_seed(
        pq_id,
        false,
        &bob,
        &fixed64(&format!("{label}/bob/pq_seed")),
    );
    let bundle = PreKeyBundle {
        identity: *bob.public(),
        signed_prekey: spk.public(),
        one_time_prekey: opk.as_ref().map(OneTimePreKey::public),
        pq_prekey: pq.public(),
    };
    let kem_m = seed("kem_m");
    let (init, transcript) =
        initiate_deterministic(&alice, &bundle, &ek, &kem_m).expect("handshake succeeds");
    let vector = Handshake {
        alice: HandshakeAlice {
            ik_sig_seed: h(alice.expose_sig_seed()),
            ik_dh_priv: h(alice.dh().expose_private_bytes()),
            ek_priv: h(ek.expose_private_bytes()),
        },
        bob: HandshakeBob {
            ik_sig_seed: h(bob.expose_sig_seed()),
            ik_dh_priv: h(bob.dh().expose_private_bytes()),
            spk_id,
            spk_priv: h(spk.key_pair().expose_private_bytes()),
            opk_id,
            opk_priv: opk.as_ref().map(|o| h(o.key_pair().expose_private_bytes())),
            pq_id,
            pq_seed: h(pq.expose_seed()),
            pq_pub: h(pq.public().key.as_bytes()),
        },
        kem_m: h(kem_m),
        kem_ct: h(init.kem_ciphertext.as_bytes()),
        kem_ss: h(*transcript.kem_ss),
        sigs: Signatures {
            ik_dh: h(bob.public().dh_signature.as_bytes()),
            spk: h(spk.public().signature.as_bytes()),
            pq: h(pq.public().signature.as_bytes()),
            alice_ik_dh: h(alice.public().dh_signature.as_bytes()),
        },
        dh: transcript.dh.iter().map(|dh| h(**dh)).collect(),
        ikm: h(transcript.ikm.as_slice()),
        sk: h(transcript.key.expose_bytes()),
        ad: h(transcript.ad.as_bytes()),
    };
    let secrets = SessionSecrets {
        sk: *transcript.key.expose_bytes(),
        ad: *transcript.ad.as_bytes(),
        spk_priv: *spk.key_pair().expose_private_bytes(),
    };
    (vector, secrets)
}

/// Two ratchet sessions driven through a script, recording every event.
struct Conversation {
    alice: RatchetSession,
    bob: RatchetSession,
    alice_prepared: Vec<[u8; 32]>,
    bob_prepared: Vec<[u8; 32]>,
    alice_keys: FixedRatchetKeys,
    bob_keys: FixedRatchetKeys,
    secrets: SessionSecrets,
    events: Vec<Event>,
    /// The message and plaintext of each encrypt event, by event index.
    sent: Vec<Option<(RatchetMessage, Vec<u8>)>>,
}

impl Conversation {
    fn new(label: &str, secrets: &SessionSecrets) -> Self {
        let prepared = |side: &str| -> Vec<[u8; 32]> {
            (0..PREPARED_RATCHET_KEYS)
                .map(|i| fixed32(&format!("{label}/{side}/ratchet_priv/{i}")))
                .collect()
        };
        let (alice_prepared, bob_prepared) = (prepared("alice"), prepared("bob"));
        let sk = SessionKey::from_bytes(&secrets.sk);
        let ad = AssociatedData::from_bytes(secrets.ad);
        let spk = X25519KeyPair::from_private_bytes(&secrets.spk_priv);
        let alice = RatchetSession::init_alice_with_key(
            &sk,
            ad,
            *spk.public_key(),
            X25519KeyPair::from_private_bytes(&alice_prepared[0]),
        )
        .expect("contributory");
        Self {
            alice,
            bob: RatchetSession::init_bob(&sk, ad, &spk),
            alice_keys: FixedRatchetKeys::new(&alice_prepared[1..]),
            bob_keys: FixedRatchetKeys::new(&bob_prepared),
            alice_prepared,
            bob_prepared,
            secrets: SessionSecrets {
                sk: secrets.sk,
                ad: secrets.ad,
                spk_priv: secrets.spk_priv,
            },
            events: Vec::new(),
            sent: Vec::new(),
        }
    }

    /// `by` encrypts `pad(pt)`; returns the event index.
    fn send(&mut self, by: Party, pt: &[u8]) -> usize {
        let session = match by {
            Party::Alice => &mut self.alice,
            Party::Bob => &mut self.bob,
        };
        let (message, trace) = session.encrypt_traced(&pad(pt)).expect("can send");
        self.events.push(Event::Encrypt {
            by,
            pt: h(pt),
            header: h(message.header.to_bytes()),
            mk: h(*trace.mk),
            key: h(*trace.key),
            nonce: h(trace.nonce),
            ct: h(&message.ciphertext),
        });
        self.sent.push(Some((message, pt.to_vec())));
        self.events.len() - 1
    }

    /// `by` decrypts the message of event `msg` and must get `expect`.
    fn deliver(&mut self, by: Party, msg: usize, tamper: bool, expect: Expect) {
        let (mut message, pt) = self.sent[msg].clone().expect("an encrypt event");
        if tamper {
            let last = message.ciphertext.len() - 1;
            message.ciphertext[last] ^= 0x01;
        }
        let (session, keys) = match by {
            Party::Alice => (&mut self.alice, &mut self.alice_keys),
            Party::Bob => (&mut self.bob, &mut self.bob_keys),
        };
        let got = match session.decrypt(&message, keys) {
            Ok(padded) => {
                assert_eq!(
                    unpad(&padded).expect("padded"),
                    pt.as_slice(),
                    "event {msg}"
                );
                Expect::Ok
            }
            Err(DecryptError::Duplicate) => Expect::Duplicate,
            Err(DecryptError::TooManySkipped) => Expect::TooManySkipped,
            Err(DecryptError::AuthFail) => Expect::AuthFail,
            Err(other) => panic!("event {}: unexpected {other:?}", self.events.len()),
        };
        assert_eq!(
            got,
            expect,
            "decrypt event {} of message {msg}",
            self.events.len()
        );
        self.events.push(Event::Decrypt {
            by,
            msg,
            tamper,
            expect,
        });
        self.sent.push(None);
    }

    fn finish(self) -> Ratchet {
        let alice_used = self.alice_prepared.len() - self.alice_keys.remaining();
        let bob_used = self.bob_prepared.len() - self.bob_keys.remaining();
        Ratchet {
            sk: h(self.secrets.sk),
            ad: h(self.secrets.ad),
            bob_spk_priv: h(self.secrets.spk_priv),
            ratchet_privs: RatchetPrivs {
                alice: self.alice_prepared[..alice_used].iter().map(h).collect(),
                bob: self.bob_prepared[..bob_used].iter().map(h).collect(),
            },
            events: self.events,
        }
    }
}

/// Out-of-order delivery, duplicates, tampering (also on a message that
/// would step the DH ratchet), padding boundaries, and eight DH steps.
fn conversation_with_every_case(secrets: &SessionSecrets) -> Ratchet {
    use Expect::{AuthFail, Duplicate, Ok};
    use Party::{Alice, Bob};
    let mut c = Conversation::new("ratchet/0", secrets);
    let a0 = c.send(Alice, "Hi Bob — it's Alice. 👋".as_bytes());
    let a1 = c.send(Alice, b"");
    let a2 = c.send(Alice, &[0x61; 255]);
    c.deliver(Bob, a1, false, Ok); // out of order: Bob's first DH step
    c.deliver(Bob, a0, false, Ok); // from the skipped keys
    c.deliver(Bob, a0, false, Duplicate);
    c.deliver(Bob, a2, true, AuthFail);
    c.deliver(Bob, a2, false, Ok);
    let b0 = c.send(Bob, &[0x62; 256]);
    let b1 = c.send(Bob, b"second reply");
    c.deliver(Alice, b1, false, Ok); // Alice's first DH step, b0 skipped
    let a3 = c.send(Alice, b"new chain");
    c.deliver(Bob, a3, true, AuthFail); // a DH step that must draw nothing
    c.deliver(Bob, a3, false, Ok);
    c.deliver(Alice, b0, false, Ok); // skipped key of Bob's previous chain
    let b2 = c.send(Bob, b"b2");
    c.deliver(Alice, b2, false, Ok);
    let a4 = c.send(Alice, b"a4");
    let a5 = c.send(Alice, b"a5");
    c.deliver(Bob, a5, false, Ok);
    let b3 = c.send(Bob, b"b3");
    c.deliver(Alice, b3, false, Ok);
    c.deliver(Bob, a4, false, Ok); // late: a skipped key of Bob's receiving chain
    c.deliver(Bob, a4, false, Duplicate);
    let a6 = c.send(Alice, b"a6");
    c.deliver(Bob, a6, false, Ok);
    c.deliver(Alice, b3, false, Duplicate);
    let b4 = c.send(Bob, b"b4");
    c.deliver(Alice, b4, false, Ok);
    c.finish()
}

/// The `MAX_SKIP` boundaries: a gap of 1001 in `PN` and in `N` is refused
/// with the state unchanged, a gap of exactly 1000 is allowed.
fn conversation_with_skip_limits(secrets: &SessionSecrets) -> Ratchet {
    use Expect::{Duplicate, Ok, TooManySkipped};
    use Party::{Alice, Bob};
    let mut c = Conversation::new("ratchet/1", secrets);
    let chain: Vec<usize> = (0..GAP_CHAIN_LEN)
        .map(|i| {
            let pt = if i == 0 {
                b"start of a long chain".to_vec()
            } else {
                Vec::new()
            };
            c.send(Alice, &pt)
        })
        .collect();
    c.deliver(Bob, chain[0], false, Ok); // Bob's Nr = 1
    let b0 = c.send(Bob, b"ack");
    c.deliver(Alice, b0, false, Ok);
    let c0 = c.send(Alice, b"next chain, PN = 1003");
    c.deliver(Bob, c0, false, TooManySkipped); // Nr 1 + 1000 < PN 1003
    c.deliver(Bob, chain[1002], false, TooManySkipped); // 1 + 1000 < N 1002
    c.deliver(Bob, chain[1001], false, Ok); // skips exactly 1000
    c.deliver(Bob, chain[1], false, Ok);
    c.deliver(Bob, chain[1], false, Duplicate);
    c.deliver(Bob, c0, false, Ok); // now 1002 + 1000 >= 1003
    c.deliver(Bob, chain[1002], false, Ok); // skipped key of the previous chain
    let b1 = c.send(Bob, b"caught up");
    c.deliver(Alice, b1, false, Ok);
    c.finish()
}

fn sender_key(label: &str, epoch: u64, pts: &[&[u8]]) -> SenderKey {
    let seed = |name: &str| fixed32(&format!("{label}/{name}"));
    let mut circle_id = [0u8; 16];
    circle_id.copy_from_slice(&seed("circle_id")[..16]);
    let sender_ik_sig = SigningKey::from_bytes(&seed("sender_ik_sig_seed")).verifying_key();
    let chain_word = seed("chain_id");
    let chain_id = u32::from_be_bytes([chain_word[0], chain_word[1], chain_word[2], chain_word[3]])
        & 0x7fff_ffff;
    let (ck0, signing_seed) = (seed("ck0"), seed("signing_seed"));
    let mut state = SenderKeyState::from_parts(
        circle_id,
        epoch,
        sender_ik_sig,
        chain_id,
        &ck0,
        &signing_seed,
        0,
    )
    .expect("top bit clear");
    let messages = pts
        .iter()
        .map(|pt| {
            let keys = state.next_message_keys();
            let ad = state.associated_data(state.iteration());
            let message = state.encrypt(pt).expect("encrypts");
            SenderKeyMessage {
                iteration: message.iteration(),
                pt: h(pt),
                seed: h(keys.expose_seed()),
                key: h(keys.expose_key()),
                nonce: h(keys.nonce()),
                ad: h(ad),
                ct: h(message.ciphertext()),
                sig: h(message.signature()),
            }
        })
        .collect();
    SenderKey {
        circle_id: h(circle_id),
        epoch,
        sender_ik_sig_pub: h(sender_ik_sig.as_bytes()),
        chain_id,
        ck0: h(ck0),
        signing_seed: h(signing_seed),
        messages,
    }
}

fn sealed(label: &str, body_pt: &[u8]) -> Sealed {
    let seed = |name: &str| fixed32(&format!("{label}/{name}"));
    let recipient = StaticSecret::from(seed("recipient_ik_dh_priv"));
    let mailbox_id = seed("mailbox_id");
    let ephemeral = StaticSecret::from(seed("eph_priv"));
    let k = BodyKey::from_bytes(seed("k"));
    let body_ct = seal_body_with_key(&k, body_pt).expect("body seals");
    let header = seal_header_with_ephemeral(
        &k,
        &body_hash(&body_ct),
        &PublicKey::from(&recipient),
        &mailbox_id,
        &ephemeral,
    )
    .expect("header seals");
    Sealed {
        recipient_ik_dh_priv: h(recipient.to_bytes()),
        mailbox_id: h(mailbox_id),
        eph_priv: h(ephemeral.to_bytes()),
        k: h(k.expose()),
        body_pt: h(body_pt),
        body_ct: h(&body_ct),
        enc: h(header.enc()),
        header_ct: h(header.ciphertext()),
    }
}
