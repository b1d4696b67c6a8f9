//! Replays a vector file through the public API, independently of the
//! generator: each receiver decrypts each message and must get the recorded
//! outcome, with the state unchanged after every failure; every signature
//! verifies; sealed headers open. Derived values (DH outputs, HKDF and HMAC
//! outputs, AEAD ciphertexts, layouts) are recomputed here with the primitive
//! crates directly, not with the crate under test.
//!
//! Shared by the `vectors` test and the `interop-decrypt` example (which
//! replays conversations that the Python `doubleratchet` package produced).

use std::fmt::Display;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use hearth_protocol::handshake::{
    AssociatedData, KemCiphertext, ReplayCache, ResponderPreKeys, SessionInit, SessionKey,
    initiate_deterministic, respond,
};
use hearth_protocol::keys::{
    Ed25519PublicKey, IdentityKeyPair, OneTimePreKey, PqPreKey, PreKeyBundle, PublicIdentity,
    SignedPreKey, X25519KeyPair,
};
use hearth_protocol::padding::{pad, padded_len, unpad};
use hearth_protocol::ratchet::{DecryptError, FixedRatchetKeys, RatchetMessage, RatchetSession};
use hearth_protocol::sealed::{open_body, open_header};
use hearth_protocol::sender_key::{RemoteSenderKey, SenderKeyDistribution, SenderKeyMessage};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};

use crate::schema::{self, Event, Expect, Party, Vectors};

/// How many checks passed, and what each failed one found.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) passed: usize,
    pub(crate) failures: Vec<String>,
}

impl Report {
    fn record(&mut self, name: impl Display, result: Result<(), String>) {
        match result {
            Ok(()) => self.passed += 1,
            Err(why) => self.failures.push(format!("{name}: {why}")),
        }
    }
}

macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!($($why)+));
        }
    };
}

type Checked<T = ()> = Result<T, String>;

fn bytes(field: &str, text: &str) -> Checked<Vec<u8>> {
    hex::decode(text).map_err(|e| format!("{field}: not hex ({e})"))
}

fn array<const N: usize>(field: &str, text: &str) -> Checked<[u8; N]> {
    let raw = bytes(field, text)?;
    let len = raw.len();
    raw.try_into()
        .map_err(|_| format!("{field}: {len} bytes, expected {N}"))
}

fn hkdf<const N: usize>(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .expect("short HKDF output");
    out
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn chacha(key: &[u8], nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let key: [u8; 32] = key.try_into().expect("32-byte key");
    let nonce: [u8; 12] = nonce.try_into().expect("12-byte nonce");
    ChaCha20Poly1305::new(&key.into())
        .encrypt(
            &nonce.into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("short plaintext")
}

fn x25519_public(private: &[u8; 32]) -> [u8; 32] {
    PublicKey::from(&StaticSecret::from(*private)).to_bytes()
}

fn x25519(private: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
    StaticSecret::from(*private)
        .diffie_hellman(&PublicKey::from(*public))
        .to_bytes()
}

/// `"Hearth_v1_PrekeySig" ‖ type ‖ key`, verified strictly.
fn check_prekey_sig(signer: &VerifyingKey, key_type: u8, key: &[u8], sig: &str) -> Checked {
    let sig = Signature::from_bytes(&array::<64>("sig", sig)?);
    let message = [b"Hearth_v1_PrekeySig".as_slice(), &[key_type], key].concat();
    signer
        .verify_strict(&message, &sig)
        .map_err(|_| format!("signature over key type {key_type} does not verify"))
}

/// Every section, each vector or event one check.
pub(crate) fn replay_all(vectors: &Vectors) -> Report {
    let mut report = Report::default();
    report.record("suite", {
        let suite = &vectors.suite;
        if suite == "Hearth_v1" {
            Ok(())
        } else {
            Err(format!("suite is {suite}"))
        }
    });
    for (i, v) in vectors.handshakes.iter().enumerate() {
        report.record(format!("handshakes[{i}]"), replay_handshake(v));
    }
    for (i, v) in vectors.ratchets.iter().enumerate() {
        replay_ratchet(&format!("ratchets[{i}]"), v, &mut report);
    }
    for (i, v) in vectors.sender_keys.iter().enumerate() {
        replay_sender_key(&format!("sender_keys[{i}]"), v, &mut report);
    }
    for (i, v) in vectors.sealed.iter().enumerate() {
        report.record(format!("sealed[{i}]"), replay_sealed(v));
    }
    for (i, v) in vectors.padding.iter().enumerate() {
        report.record(format!("padding[{i}]"), replay_padding(v));
    }
    report
}

fn replay_handshake(v: &schema::Handshake) -> Checked {
    let alice = IdentityKeyPair::from_secrets(
        &array("alice.ik_sig_seed", &v.alice.ik_sig_seed)?,
        &array("alice.ik_dh_priv", &v.alice.ik_dh_priv)?,
    );
    let ek = X25519KeyPair::from_private_bytes(&array("alice.ek_priv", &v.alice.ek_priv)?);
    let bob_sig_seed = array("bob.ik_sig_seed", &v.bob.ik_sig_seed)?;
    let bob =
        IdentityKeyPair::from_secrets(&bob_sig_seed, &array("bob.ik_dh_priv", &v.bob.ik_dh_priv)?);
    let spk_priv = array("bob.spk_priv", &v.bob.spk_priv)?;
    let spk = SignedPreKey::from_private_bytes(v.bob.spk_id, &bob, &spk_priv);
    let opk_priv = match &v.bob.opk_priv {
        Some(text) => Some(array::<32>("bob.opk_priv", text)?),
        None => None,
    };
    ensure!(
        opk_priv.is_some() == v.bob.opk_id.is_some(),
        "opk_id and opk_priv disagree"
    );
    let opk = v
        .bob
        .opk_id
        .zip(opk_priv)
        .map(|(id, p)| OneTimePreKey::from_private_bytes(id, &p));
    let pq = PqPreKey::from_seed(
        v.bob.pq_id,
        false,
        &bob,
        &array("bob.pq_seed", &v.bob.pq_seed)?,
    );
    ensure!(
        pq.public().key.as_bytes().as_slice() == bytes("pq_pub", &v.bob.pq_pub)?,
        "pq_pub differs"
    );

    // Signatures, checked with ed25519-dalek against keys derived here.
    let bob_signer = SigningKey::from_bytes(&bob_sig_seed).verifying_key();
    let bob_dh_pub = x25519_public(&array("bob.ik_dh_priv", &v.bob.ik_dh_priv)?);
    check_prekey_sig(&bob_signer, 0x01, &bob_dh_pub, &v.sigs.ik_dh)?;
    check_prekey_sig(&bob_signer, 0x01, &x25519_public(&spk_priv), &v.sigs.spk)?;
    check_prekey_sig(
        &bob_signer,
        0x03,
        &bytes("pq_pub", &v.bob.pq_pub)?,
        &v.sigs.pq,
    )?;
    let alice_signer =
        SigningKey::from_bytes(&array("alice.ik_sig_seed", &v.alice.ik_sig_seed)?).verifying_key();
    let alice_dh_priv = array("alice.ik_dh_priv", &v.alice.ik_dh_priv)?;
    check_prekey_sig(
        &alice_signer,
        0x01,
        &x25519_public(&alice_dh_priv),
        &v.sigs.alice_ik_dh,
    )?;

    // DH outputs, ikm, SK and AD, recomputed from the private keys.
    let ek_priv = array("alice.ek_priv", &v.alice.ek_priv)?;
    let spk_pub = x25519_public(&spk_priv);
    let mut dh = vec![
        x25519(&alice_dh_priv, &spk_pub),
        x25519(&ek_priv, &bob_dh_pub),
        x25519(&ek_priv, &spk_pub),
    ];
    if let Some(p) = opk_priv {
        dh.push(x25519(&ek_priv, &x25519_public(&p)));
    }
    let listed: Vec<String> = dh.iter().map(hex::encode).collect();
    ensure!(listed == v.dh, "dh differs: {listed:?}");
    let kem_ss = array::<32>("kem_ss", &v.kem_ss)?;
    let ikm = [vec![0xFF; 32], dh.concat(), kem_ss.to_vec()].concat();
    ensure!(ikm == bytes("ikm", &v.ikm)?, "ikm differs");
    let sk: [u8; 32] = hkdf(&[0; 32], &ikm, b"Hearth_v1_X25519_SHA-256_ML-KEM-768");
    ensure!(sk == array::<32>("sk", &v.sk)?, "sk differs");
    let ad = [
        b"Hearth_v1".as_slice(),
        &[0x02],
        alice_signer.as_bytes(),
        &[0x01],
        &x25519_public(&alice_dh_priv),
        &[0x02],
        bob_signer.as_bytes(),
        &[0x01],
        &bob_dh_pub,
    ]
    .concat();
    ensure!(ad == bytes("ad", &v.ad)?, "ad differs");

    // Alice through the API, with the recorded EK and m.
    let bundle = PreKeyBundle {
        identity: *bob.public(),
        signed_prekey: spk.public(),
        one_time_prekey: opk.as_ref().map(OneTimePreKey::public),
        pq_prekey: pq.public(),
    };
    bundle.validate().map_err(|e| format!("bundle: {e}"))?;
    let (init, transcript) =
        initiate_deterministic(&alice, &bundle, &ek, &array("kem_m", &v.kem_m)?)
            .map_err(|e| format!("initiate: {e}"))?;
    ensure!(
        init.kem_ciphertext.as_bytes().as_slice() == bytes("kem_ct", &v.kem_ct)?,
        "kem_ct differs"
    );
    ensure!(*transcript.kem_ss == kem_ss, "Alice's kem_ss differs");
    ensure!(transcript.key.expose_bytes() == &sk, "Alice's SK differs");

    // Bob through the API, from the first-message fields as recorded.
    let received = SessionInit {
        initiator: PublicIdentity {
            sig_key: Ed25519PublicKey::from_bytes(alice_signer.to_bytes()),
            dh_key: x25519_public(&alice_dh_priv).into(),
            dh_signature: hearth_protocol::keys::Signature::from_bytes(array(
                "sigs.alice_ik_dh",
                &v.sigs.alice_ik_dh,
            )?),
        },
        ephemeral: x25519_public(&ek_priv).into(),
        signed_prekey_id: v.bob.spk_id,
        one_time_prekey_id: v.bob.opk_id,
        pq_prekey_id: v.bob.pq_id,
        kem_ciphertext: KemCiphertext::from_bytes(&bytes("kem_ct", &v.kem_ct)?)
            .map_err(|e| format!("kem_ct: {e}"))?,
    };
    let prekeys = ResponderPreKeys {
        signed_prekey: &spk,
        one_time_prekey: opk.as_ref(),
        pq_prekey: &pq,
    };
    let accepted = respond(&bob, prekeys, &received, &ReplayCache::new())
        .map_err(|e| format!("respond: {e}"))?;
    ensure!(accepted.key.expose_bytes() == &sk, "Bob's SK differs");
    ensure!(accepted.ad.as_bytes().as_slice() == ad, "Bob's AD differs");
    Ok(())
}

/// Both sides of a recorded conversation, replayed event by event.
struct Sides {
    alice: RatchetSession,
    bob: RatchetSession,
    alice_keys: FixedRatchetKeys,
    bob_keys: FixedRatchetKeys,
    ad: Vec<u8>,
}

impl Sides {
    fn new(v: &schema::Ratchet) -> Checked<Self> {
        let sk = SessionKey::from_bytes(&array("sk", &v.sk)?);
        let ad_bytes = array::<{ AssociatedData::LEN }>("ad", &v.ad)?;
        let ad = AssociatedData::from_bytes(ad_bytes);
        let spk = X25519KeyPair::from_private_bytes(&array("bob_spk_priv", &v.bob_spk_priv)?);
        let keys = |side: &str, list: &[String]| -> Checked<Vec<[u8; 32]>> {
            list.iter()
                .map(|k| array(&format!("ratchet_privs.{side}"), k))
                .collect()
        };
        let alice_privs = keys("alice", &v.ratchet_privs.alice)?;
        let bob_privs = keys("bob", &v.ratchet_privs.bob)?;
        let (first, rest) = alice_privs
            .split_first()
            .ok_or("ratchet_privs.alice is empty")?;
        let alice = RatchetSession::init_alice_with_key(
            &sk,
            ad,
            *spk.public_key(),
            X25519KeyPair::from_private_bytes(first),
        )
        .map_err(|e| format!("init_alice: {e}"))?;
        Ok(Self {
            alice,
            bob: RatchetSession::init_bob(&sk, ad, &spk),
            alice_keys: FixedRatchetKeys::new(rest),
            bob_keys: FixedRatchetKeys::new(&bob_privs),
            ad: ad_bytes.to_vec(),
        })
    }

    fn side(&mut self, party: Party) -> (&mut RatchetSession, &mut FixedRatchetKeys) {
        match party {
            Party::Alice => (&mut self.alice, &mut self.alice_keys),
            Party::Bob => (&mut self.bob, &mut self.bob_keys),
        }
    }
}

fn replay_ratchet(name: &str, v: &schema::Ratchet, report: &mut Report) {
    let mut sides = match Sides::new(v) {
        Ok(sides) => sides,
        Err(why) => return report.record(name, Err(why)),
    };
    for (i, event) in v.events.iter().enumerate() {
        let result = match event {
            Event::Encrypt { .. } => replay_encrypt(&mut sides, event),
            Event::Decrypt {
                by,
                msg,
                tamper,
                expect,
            } => replay_decrypt(&mut sides, &v.events, *by, *msg, *tamper, *expect),
        };
        report.record(format!("{name}.events[{i}]"), result);
    }
    let unused = (sides.alice_keys.remaining(), sides.bob_keys.remaining());
    report.record(
        format!("{name}.ratchet_privs"),
        if unused == (0, 0) {
            Ok(())
        } else {
            Err(format!("keys never installed (alice, bob): {unused:?}"))
        },
    );
}

/// The recorded message of encrypt event `index` by the peer of `receiver`.
fn recorded_message(
    events: &[Event],
    index: usize,
    receiver: Party,
) -> Checked<(RatchetMessage, Vec<u8>)> {
    match events.get(index) {
        Some(Event::Encrypt {
            by, pt, header, ct, ..
        }) if *by != receiver => {
            let message = RatchetMessage::from_parts(&bytes("header", header)?, bytes("ct", ct)?)
                .map_err(|e| format!("header: {e}"))?;
            Ok((message, bytes("pt", pt)?))
        }
        _ => Err(format!("msg {index} is not an encrypt event by the peer")),
    }
}

fn replay_encrypt(sides: &mut Sides, event: &Event) -> Checked {
    let Event::Encrypt {
        by,
        pt,
        header,
        mk,
        key,
        nonce,
        ct,
    } = event
    else {
        return Err("not an encrypt event".to_owned());
    };
    let padded = pad(&bytes("pt", pt)?);
    // Independently: key ‖ nonce from MK, and the AEAD over AD ‖ header.
    let okm: [u8; 44] = hkdf(&[0; 32], &bytes("mk", mk)?, b"Hearth_v1_MessageKeys");
    ensure!(
        hex::encode(&okm[..32]) == *key && hex::encode(&okm[32..]) == *nonce,
        "key ‖ nonce is not HKDF(MK)"
    );
    let aad = [sides.ad.clone(), bytes("header", header)?].concat();
    ensure!(
        hex::encode(chacha(&okm[..32], &okm[32..], &aad, &padded)) == *ct,
        "ct is not the AEAD of pad(pt)"
    );
    // Through the API: the sender produces the same bytes.
    let (session, _) = sides.side(*by);
    let (message, trace) = session
        .encrypt_traced(&padded)
        .map_err(|e| format!("encrypt: {e}"))?;
    ensure!(
        hex::encode(message.header.to_bytes()) == *header,
        "header differs"
    );
    ensure!(hex::encode(*trace.mk) == *mk, "mk differs");
    ensure!(hex::encode(&message.ciphertext) == *ct, "ct differs");
    Ok(())
}

fn replay_decrypt(
    sides: &mut Sides,
    events: &[Event],
    by: Party,
    msg: usize,
    tamper: bool,
    expect: Expect,
) -> Checked {
    let (mut message, pt) = recorded_message(events, msg, by)?;
    if tamper {
        let last = message.ciphertext.last_mut().ok_or("empty ct")?;
        *last ^= 0x01;
    }
    let (session, keys) = sides.side(by);
    let before = (session.to_bytes(), keys.remaining());
    let got = match session.decrypt(&message, keys) {
        Ok(padded) => {
            let plaintext = unpad(&padded).map_err(|e| format!("unpad: {e}"))?;
            ensure!(plaintext == pt.as_slice(), "plaintext differs");
            Expect::Ok
        }
        Err(DecryptError::Duplicate) => Expect::Duplicate,
        Err(DecryptError::TooManySkipped) => Expect::TooManySkipped,
        Err(DecryptError::AuthFail) => Expect::AuthFail,
        Err(other) => return Err(format!("unexpected error {other:?}")),
    };
    ensure!(got == expect, "expected {expect:?}, got {got:?}");
    if got != Expect::Ok {
        let after = (session.to_bytes(), keys.remaining());
        ensure!(after == before, "a failed decryption changed the state");
    }
    Ok(())
}

fn replay_sender_key(name: &str, v: &schema::SenderKey, report: &mut Report) {
    let mut remote = match sender_key_receiver(v) {
        Ok(remote) => remote,
        Err(why) => return report.record(name, Err(why)),
    };
    // Independent chain: CK_{i+1} = HMAC(CK_i, 0x02), seed_i = HMAC(CK_i, 0x01).
    let mut seeds = Vec::new();
    if let Ok(mut ck) = array::<32>("ck0", &v.ck0) {
        for _ in 0..=v.messages.iter().map(|m| m.iteration).max().unwrap_or(0) {
            seeds.push(hmac(&ck, &[0x01]));
            ck = hmac(&ck, &[0x02]);
        }
    }
    // Last first, so that earlier iterations come from the skipped keys.
    for (i, m) in v.messages.iter().enumerate().rev() {
        let result = replay_sender_key_message(v, m, &seeds, &mut remote);
        report.record(format!("{name}.messages[{i}]"), result);
    }
}

fn sender_key_receiver(v: &schema::SenderKey) -> Checked<RemoteSenderKey> {
    let signing = SigningKey::from_bytes(&array("signing_seed", &v.signing_seed)?).verifying_key();
    let distribution = [
        vec![0x01],
        bytes("circle_id", &v.circle_id)?,
        v.epoch.to_be_bytes().to_vec(),
        v.chain_id.to_be_bytes().to_vec(),
        0u32.to_be_bytes().to_vec(),
        bytes("ck0", &v.ck0)?,
        signing.to_bytes().to_vec(),
    ]
    .concat();
    let distribution = SenderKeyDistribution::from_bytes(&distribution)
        .map_err(|e| format!("distribution: {e}"))?;
    let sender = VerifyingKey::from_bytes(&array("sender_ik_sig_pub", &v.sender_ik_sig_pub)?)
        .map_err(|e| format!("sender_ik_sig_pub: {e}"))?;
    Ok(RemoteSenderKey::new(&distribution, sender))
}

fn replay_sender_key_message(
    v: &schema::SenderKey,
    m: &schema::SenderKeyMessage,
    seeds: &[[u8; 32]],
    remote: &mut RemoteSenderKey,
) -> Checked {
    let seed = seeds.get(m.iteration as usize).ok_or("no chain key")?;
    ensure!(hex::encode(seed) == m.seed, "seed is not HMAC(CK_i, 0x01)");
    let okm: [u8; 44] = hkdf(&[0; 32], seed, b"Hearth_v1_GroupMessageKeys");
    ensure!(
        hex::encode(&okm[..32]) == m.key && hex::encode(&okm[32..]) == m.nonce,
        "key ‖ nonce differ"
    );
    let ad = [
        b"Hearth_v1_Group".as_slice(),
        &bytes("circle_id", &v.circle_id)?,
        &v.epoch.to_be_bytes(),
        &[0x02],
        &bytes("sender_ik_sig_pub", &v.sender_ik_sig_pub)?,
        &v.chain_id.to_be_bytes(),
        &m.iteration.to_be_bytes(),
    ]
    .concat();
    ensure!(hex::encode(&ad) == m.ad, "ad differs");
    let pt = bytes("pt", &m.pt)?;
    let ct = bytes("ct", &m.ct)?;
    ensure!(
        chacha(&okm[..32], &okm[32..], &ad, &pad(&pt)) == ct,
        "ct is not the AEAD of pad(pt)"
    );
    let signing = SigningKey::from_bytes(&array("signing_seed", &v.signing_seed)?).verifying_key();
    let sig = array::<64>("sig", &m.sig)?;
    signing
        .verify_strict(&[ad.as_slice(), &ct].concat(), &Signature::from_bytes(&sig))
        .map_err(|_| "sig does not verify over AD ‖ ct".to_owned())?;
    let wire = [
        vec![0x01],
        bytes("circle_id", &v.circle_id)?,
        v.epoch.to_be_bytes().to_vec(),
        v.chain_id.to_be_bytes().to_vec(),
        m.iteration.to_be_bytes().to_vec(),
        ct,
        sig.to_vec(),
    ]
    .concat();
    let message = SenderKeyMessage::from_bytes(&wire).map_err(|e| format!("decode: {e}"))?;
    let plaintext = remote
        .decrypt(&message)
        .map_err(|e| format!("decrypt: {e}"))?;
    ensure!(plaintext == pt, "plaintext differs");
    Ok(())
}

fn replay_sealed(v: &schema::Sealed) -> Checked {
    let recipient = StaticSecret::from(array::<32>(
        "recipient_ik_dh_priv",
        &v.recipient_ik_dh_priv,
    )?);
    let mailbox = array::<32>("mailbox_id", &v.mailbox_id)?;
    ensure!(
        x25519_public(&array("eph_priv", &v.eph_priv)?).to_vec() == bytes("enc", &v.enc)?,
        "enc is not the ephemeral public key"
    );
    let body_ct = bytes("body_ct", &v.body_ct)?;
    let body_pt = bytes("body_pt", &v.body_pt)?;
    ensure!(
        chacha(&bytes("k", &v.k)?, &[0; 12], b"Hearth_v1_Body", &body_pt) == body_ct,
        "body_ct differs"
    );
    let header = [bytes("enc", &v.enc)?, bytes("header_ct", &v.header_ct)?].concat();
    let (k, hash) =
        open_header(&recipient, &mailbox, &header).map_err(|e| format!("open_header: {e}"))?;
    ensure!(hex::encode(k.expose()) == v.k, "k differs");
    ensure!(
        hash == <[u8; 32]>::from(Sha256::digest(&body_ct)),
        "hash is not SHA-256(body_ct)"
    );
    let opened = open_body(&k, &hash, &body_ct).map_err(|e| format!("open_body: {e}"))?;
    ensure!(opened == body_pt, "body plaintext differs");
    Ok(())
}

fn replay_padding(v: &schema::Padding) -> Checked {
    // Independently: 256, then powers of two to 64 KiB, then multiples of 64 KiB.
    let need = v.len + 1;
    let expected = if need <= 256 {
        256
    } else if need <= 65_536 {
        need.next_power_of_two()
    } else {
        need.div_ceil(65_536) * 65_536
    };
    ensure!(v.padded_len == expected, "padded_len should be {expected}");
    ensure!(
        padded_len(v.len) == expected,
        "padded_len() gives {}",
        padded_len(v.len)
    );
    let plaintext = vec![0xA5; v.len];
    let padded = pad(&plaintext);
    ensure!(
        padded.len() == expected,
        "pad() gives {} bytes",
        padded.len()
    );
    ensure!(
        padded[v.len] == 0x80 && padded[v.len + 1..].iter().all(|&b| b == 0),
        "bad padding bytes"
    );
    ensure!(
        unpad(&padded) == Ok(plaintext.as_slice()),
        "unpad does not invert pad"
    );
    Ok(())
}
