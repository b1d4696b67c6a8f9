//! Criterion benchmarks of the Hearth protocol, side by side with vodozemac
//! 0.11 (Olm and Megolm) in the same process and run.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-protocol cargo bench -p hearth-protocol --bench protocol \
//!     -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Groups put comparable operations next to each other (`hearth/…` beside
//! `olm/…` or `megolm/…`); results and targets are in `docs/BENCHMARKS.md`.
//! Setup never counts: state that must be fresh comes from `iter_batched`
//! (clones, pickles or pre-generated messages), and returned state is dropped
//! outside the timed region.
//!
//! - `handshake`: our PQXDH-style handshake (Alice `initiate`, Bob `respond`,
//!   with a one-time prekey and ML-KEM-768), alone and followed by the first
//!   1 KiB ratchet message; Olm session creation (outbound session, first
//!   pre-key message, inbound session from it).
//! - `1to1_steady_1KiB`: a ratchet chain in steady state (no DH step), the
//!   sender's chain keeps advancing and the receiver decrypts each message in
//!   order, as in a real conversation.
//! - `1to1_dh_step_1KiB`: the first message of a reply, which costs a DH
//!   ratchet step (from a fixed snapshot every iteration).
//! - `circle_message_1KiB`: sender keys (which pad, encrypt and sign) against
//!   Megolm.
//! - `sealed_1KiB`: sealed sender, no vodozemac counterpart.
//! - `primitives`: the building blocks, to explain the totals above.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use hearth_protocol::handshake::{
    Initiated, ReplayCache, ResponderPreKeys, SessionInit, initiate, respond,
};
use hearth_protocol::keys::{
    IdentityKeyPair, MlKemPublicKey, OneTimePreKey, PqPreKey, PreKeyBundle, SignedPreKey,
    X25519KeyPair,
};
use hearth_protocol::padding;
use hearth_protocol::ratchet::RatchetSession;
use hearth_protocol::sealed;
use hearth_protocol::sender_key::{RemoteSenderKey, SenderKeyState};
use ml_kem::{Decapsulate, DecapsulationKey, MlKem768};
use rand::rngs::ThreadRng;
use vodozemac::megolm::{self, GroupSession, InboundGroupSession};
use vodozemac::olm::{self, Account, OlmMessage, Session};

/// The plaintext size every message benchmark uses.
const KIB: usize = 1024;
/// Messages pre-generated per batch where a benchmark needs them.
const BATCH: BatchSize = BatchSize::NumIterations(128);

fn plaintext() -> Vec<u8> {
    (0..KIB).map(|i| (i % 251) as u8).collect()
}

/// Bob's device: identity and the prekeys his bundle names.
struct Bob {
    identity: IdentityKeyPair,
    spk: SignedPreKey,
    opk: OneTimePreKey,
    pq: PqPreKey,
}

impl Bob {
    fn new(rng: &mut ThreadRng) -> Self {
        let identity = IdentityKeyPair::generate(rng);
        let spk = SignedPreKey::generate(1, &identity, rng);
        let opk = OneTimePreKey::generate(2, rng);
        let pq = PqPreKey::generate(3, false, &identity, rng);
        Self {
            identity,
            spk,
            opk,
            pq,
        }
    }

    fn bundle(&self) -> PreKeyBundle {
        PreKeyBundle {
            identity: *self.identity.public(),
            signed_prekey: self.spk.public(),
            one_time_prekey: Some(self.opk.public()),
            pq_prekey: self.pq.public(),
        }
    }

    fn prekeys(&self) -> ResponderPreKeys<'_> {
        ResponderPreKeys {
            signed_prekey: &self.spk,
            one_time_prekey: Some(&self.opk),
            pq_prekey: &self.pq,
        }
    }

    /// Bob's side of the handshake and his ratchet.
    fn accept(&self, init: &SessionInit) -> RatchetSession {
        let accepted =
            respond(&self.identity, self.prekeys(), init, &ReplayCache::new()).expect("respond");
        RatchetSession::init_bob(&accepted.key, accepted.ad, self.spk.key_pair())
    }
}

/// Alice's ratchet from her handshake result.
fn alice_ratchet(
    initiated: &Initiated,
    bundle: &PreKeyBundle,
    rng: &mut ThreadRng,
) -> RatchetSession {
    RatchetSession::init_alice(&initiated.key, initiated.ad, bundle.signed_prekey.key, rng)
        .expect("init_alice")
}

/// A Hearth session pair after A→B, B→A, A→B: both sides have done a DH
/// ratchet step, Alice sends in her second chain and Bob has just received
/// it (his next message starts a new chain).
fn hearth_pair(rng: &mut ThreadRng) -> (RatchetSession, RatchetSession) {
    let alice_id = IdentityKeyPair::generate(rng);
    let bob = Bob::new(rng);
    let bundle = bob.bundle();
    let initiated = initiate(&alice_id, &bundle, rng).expect("initiate");
    let mut alice = alice_ratchet(&initiated, &bundle, rng);
    let mut bob = bob.accept(&initiated.init);
    let pt = padding::pad(&plaintext());
    let m = alice.encrypt(&pt).expect("encrypt");
    bob.decrypt(&m, rng).expect("decrypt");
    let m = bob.encrypt(&pt).expect("encrypt");
    alice.decrypt(&m, rng).expect("decrypt");
    let m = alice.encrypt(&pt).expect("encrypt");
    bob.decrypt(&m, rng).expect("decrypt");
    (alice, bob)
}

fn olm_account_with_key() -> (Account, vodozemac::Curve25519PublicKey) {
    let mut account = Account::new();
    let otk = account.generate_one_time_keys(1).created[0];
    (account, otk)
}

/// An Olm session pair in the same shape as [`hearth_pair`]: A→B (pre-key
/// message), B→A, A→B, so Alice sends normal messages.
fn olm_pair() -> (Session, Session) {
    let config = olm::SessionConfig::version_1();
    let alice_account = Account::new();
    let (mut bob_account, otk) = olm_account_with_key();
    let mut alice = alice_account
        .create_outbound_session(config, bob_account.curve25519_key(), otk)
        .expect("outbound session");
    let OlmMessage::PreKey(first) = alice.encrypt(plaintext()).expect("encrypt") else {
        unreachable!("the first message is a pre-key message")
    };
    let mut bob = bob_account
        .create_inbound_session(config, alice_account.curve25519_key(), &first)
        .expect("inbound session")
        .session;
    let m = bob.encrypt(plaintext()).expect("encrypt");
    alice.decrypt(&m).expect("decrypt");
    let m = alice.encrypt(plaintext()).expect("encrypt");
    assert!(matches!(m, OlmMessage::Normal(_)));
    bob.decrypt(&m).expect("decrypt");
    (alice, bob)
}

fn handshake(c: &mut Criterion) {
    let mut rng = rand::rng();
    let alice_id = IdentityKeyPair::generate(&mut rng);
    let bob = Bob::new(&mut rng);
    let bundle = bob.bundle();
    let init = initiate(&alice_id, &bundle, &mut rng)
        .expect("initiate")
        .init;
    let replay = ReplayCache::new();
    let pt = plaintext();
    let mut g = c.benchmark_group("handshake");

    g.bench_function("hearth/initiate", |b| {
        b.iter(|| initiate(&alice_id, black_box(&bundle), &mut rng).expect("initiate"))
    });
    g.bench_function("hearth/respond", |b| {
        b.iter(|| {
            respond(&bob.identity, bob.prekeys(), black_box(&init), &replay).expect("respond")
        })
    });
    g.bench_function("hearth/initiate+respond", |b| {
        b.iter(|| {
            let initiated = initiate(&alice_id, black_box(&bundle), &mut rng).expect("initiate");
            let accepted =
                respond(&bob.identity, bob.prekeys(), &initiated.init, &replay).expect("respond");
            (initiated, accepted)
        })
    });
    g.bench_function("hearth/initiate+respond+first_message", |b| {
        b.iter(|| {
            let initiated = initiate(&alice_id, black_box(&bundle), &mut rng).expect("initiate");
            let mut alice = alice_ratchet(&initiated, &bundle, &mut rng);
            let message = alice.encrypt(&padding::pad(&pt)).expect("encrypt");
            let mut bob_session = bob.accept(&initiated.init);
            let padded = bob_session.decrypt(&message, &mut rng).expect("decrypt");
            assert_eq!(padding::unpad(&padded).map(<[u8]>::len), Ok(KIB));
            (alice, bob_session)
        })
    });

    let config = olm::SessionConfig::version_1();
    let alice_account = Account::new();
    g.bench_function("olm/outbound+inbound+first_message", |b| {
        b.iter_batched(
            olm_account_with_key,
            |(mut bob_account, otk)| {
                let mut alice = alice_account
                    .create_outbound_session(config, bob_account.curve25519_key(), otk)
                    .expect("outbound session");
                let OlmMessage::PreKey(first) = alice.encrypt(&pt).expect("encrypt") else {
                    unreachable!("the first message is a pre-key message")
                };
                let inbound = bob_account
                    .create_inbound_session(config, alice_account.curve25519_key(), &first)
                    .expect("inbound session");
                assert_eq!(inbound.plaintext.len(), KIB);
                (alice, inbound, bob_account)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn one_to_one_steady(c: &mut Criterion) {
    let mut rng = rand::rng();
    let pt = plaintext();
    let mut g = c.benchmark_group("1to1_steady_1KiB");

    // Encrypt only: the receiver falls behind, so each measurement below
    // starts from a fresh pair.
    let (mut alice, _) = hearth_pair(&mut rng);
    g.bench_function("hearth/encrypt", |b| {
        b.iter(|| alice.encrypt(black_box(&pt)).expect("encrypt"))
    });
    let (mut alice, mut bob) = hearth_pair(&mut rng);
    g.bench_function("hearth/decrypt", |b| {
        b.iter_batched(
            || alice.encrypt(&pt).expect("encrypt"),
            |m| bob.decrypt(&m, &mut rng).expect("decrypt"),
            BATCH,
        )
    });
    g.bench_function("hearth/encrypt+decrypt", |b| {
        b.iter(|| {
            let m = alice.encrypt(black_box(&pt)).expect("encrypt");
            bob.decrypt(&m, &mut rng).expect("decrypt")
        })
    });
    // What a client does: pad 1 KiB to 2 KiB, encrypt, decrypt, unpad.
    g.bench_function("hearth/pad+encrypt+decrypt+unpad", |b| {
        b.iter(|| {
            let m = alice
                .encrypt(&padding::pad(black_box(&pt)))
                .expect("encrypt");
            let out = bob.decrypt(&m, &mut rng).expect("decrypt");
            padding::unpad(&out).expect("unpad").len()
        })
    });

    let (mut alice, _) = olm_pair();
    g.bench_function("olm/encrypt", |b| {
        b.iter(|| alice.encrypt(black_box(&pt)).expect("encrypt"))
    });
    let (mut alice, mut bob) = olm_pair();
    g.bench_function("olm/decrypt", |b| {
        b.iter_batched(
            || alice.encrypt(&pt).expect("encrypt"),
            |m| bob.decrypt(&m).expect("decrypt"),
            BATCH,
        )
    });
    g.bench_function("olm/encrypt+decrypt", |b| {
        b.iter(|| {
            let m = alice.encrypt(black_box(&pt)).expect("encrypt");
            bob.decrypt(&m).expect("decrypt")
        })
    });
    g.finish();
}

fn one_to_one_dh_step(c: &mut Criterion) {
    let mut rng = rand::rng();
    let pt = plaintext();
    let mut g = c.benchmark_group("1to1_dh_step_1KiB");

    // Bob replies (first message of his new chain); Alice's decrypt performs
    // the DH ratchet step. Every iteration starts from the same snapshot.
    let (alice, bob) = hearth_pair(&mut rng);
    g.bench_function("hearth/encrypt+decrypt", |b| {
        b.iter_batched(
            || (alice.clone(), bob.clone()),
            |(mut alice, mut bob)| {
                let m = bob.encrypt(black_box(&pt)).expect("encrypt");
                let out = alice.decrypt(&m, &mut rng).expect("decrypt");
                (alice, bob, out)
            },
            BatchSize::SmallInput,
        )
    });

    // Olm does the same work split differently: Bob's encrypt draws the new
    // ratchet key and does one DH, Alice's decrypt the other.
    let (alice, bob) = olm_pair();
    g.bench_function("olm/encrypt+decrypt", |b| {
        b.iter_batched(
            || {
                (
                    Session::from_pickle(alice.pickle()),
                    Session::from_pickle(bob.pickle()),
                )
            },
            |(mut alice, mut bob)| {
                let m = bob.encrypt(black_box(&pt)).expect("encrypt");
                let out = alice.decrypt(&m).expect("decrypt");
                (alice, bob, out)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn circle_message(c: &mut Criterion) {
    let mut rng = rand::rng();
    let pt = plaintext();
    let sender_ik_sig = SigningKey::generate(&mut rng).verifying_key();
    let mut g = c.benchmark_group("circle_message_1KiB");

    // `SenderKeyState::encrypt` pads (1 KiB → 2 KiB) as a client would, and
    // `RemoteSenderKey::decrypt` unpads.
    let mut own = SenderKeyState::new([9; 16], 0, sender_ik_sig, 0, &mut rng);
    g.bench_function("hearth/encrypt+sign", |b| {
        b.iter(|| own.encrypt(black_box(&pt)).expect("encrypt"))
    });
    let mut remote = RemoteSenderKey::new(&own.distribution(), sender_ik_sig);
    g.bench_function("hearth/verify+decrypt", |b| {
        b.iter_batched(
            || own.encrypt(&pt).expect("encrypt"),
            |m| remote.decrypt(&m).expect("decrypt"),
            BATCH,
        )
    });
    g.bench_function("hearth/encrypt+sign+verify+decrypt", |b| {
        b.iter(|| {
            let m = own.encrypt(black_box(&pt)).expect("encrypt");
            remote.decrypt(&m).expect("decrypt")
        })
    });
    // Sub-bench: the same with 1 B less, which pads to 1 KiB instead of
    // 2 KiB, to isolate what the padding bucket costs.
    let short = &pt[..KIB - 1];
    g.bench_function(
        "hearth/encrypt+sign+verify+decrypt(1023B, pads to 1KiB)",
        |b| {
            b.iter(|| {
                let m = own.encrypt(black_box(short)).expect("encrypt");
                remote.decrypt(&m).expect("decrypt")
            })
        },
    );

    let config = megolm::SessionConfig::version_1();
    let mut group = GroupSession::new(config);
    g.bench_function("megolm/encrypt", |b| {
        b.iter(|| group.encrypt(black_box(&pt)))
    });
    let mut inbound = InboundGroupSession::new(&group.session_key(), config);
    g.bench_function("megolm/decrypt", |b| {
        b.iter_batched(
            || group.encrypt(&pt),
            |m| inbound.decrypt(&m).expect("decrypt"),
            BATCH,
        )
    });
    g.bench_function("megolm/encrypt+decrypt", |b| {
        b.iter(|| {
            let m = group.encrypt(black_box(&pt));
            inbound.decrypt(&m).expect("decrypt")
        })
    });
    g.finish();
}

fn sealed_sender(c: &mut Criterion) {
    let mut rng = rand::rng();
    let inner = plaintext();
    let device = x25519_dalek::StaticSecret::random_from_rng(&mut rng);
    let device_public = x25519_dalek::PublicKey::from(&device);
    let mailbox = [7u8; sealed::MAILBOX_ID_LEN];
    let (key, body) = sealed::seal_body(&inner, &mut rng).expect("seal body");
    let hash = sealed::body_hash(&body);
    let header =
        sealed::seal_header(&key, &hash, &device_public, &mailbox, &mut rng).expect("seal header");
    let mut g = c.benchmark_group("sealed_1KiB");

    g.bench_function("hearth/seal(body+1 header)", |b| {
        b.iter(|| {
            let (key, body) = sealed::seal_body(black_box(&inner), &mut rng).expect("seal body");
            let hash = sealed::body_hash(&body);
            let header = sealed::seal_header(&key, &hash, &device_public, &mailbox, &mut rng)
                .expect("seal header");
            (body, header)
        })
    });
    g.bench_function("hearth/seal_header(each extra recipient)", |b| {
        b.iter(|| {
            sealed::seal_header(&key, black_box(&hash), &device_public, &mailbox, &mut rng)
                .expect("seal header")
        })
    });
    g.bench_function("hearth/open(header+body)", |b| {
        b.iter(|| {
            let (key, hash) = sealed::open_header(&device, &mailbox, black_box(header.as_bytes()))
                .expect("open header");
            sealed::open_body(&key, &hash, black_box(&body)).expect("open body")
        })
    });
    g.finish();
}

fn primitives(c: &mut Criterion) {
    let mut rng = rand::rng();
    let bob = Bob::new(&mut rng);
    let bundle = bob.bundle();
    let ours = x25519_dalek::StaticSecret::random_from_rng(&mut rng);
    let theirs =
        x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::random_from_rng(&mut rng));
    let seed = [5u8; 64];
    let dk = DecapsulationKey::<MlKem768>::from_seed(seed.into());
    let ek = dk.encapsulation_key().clone();
    let m = ml_kem::B32::from([7u8; 32]);
    let (ct, _) = ek.encapsulate_deterministic(&m);
    let ek_bytes = *bundle.pq_prekey.key.as_bytes();
    let mut g = c.benchmark_group("primitives");

    g.bench_function("x25519/generate", |b| {
        b.iter(|| X25519KeyPair::generate(&mut rng))
    });
    g.bench_function("x25519/agree", |b| {
        b.iter(|| {
            let shared = ours.diffie_hellman(black_box(&theirs));
            assert!(shared.was_contributory());
            shared
        })
    });
    g.bench_function("ed25519/verify_strict(IK_dh signature)", |b| {
        b.iter(|| black_box(&bundle.identity).verify().expect("verify"))
    });
    g.bench_function("bundle/validate(3 signatures)", |b| {
        b.iter(|| black_box(&bundle).validate().expect("valid"))
    });
    g.bench_function("ml-kem-768/encapsulate", |b| {
        b.iter(|| ek.encapsulate_deterministic(black_box(&m)))
    });
    g.bench_function("ml-kem-768/decapsulate", |b| {
        b.iter(|| dk.decapsulate(black_box(&ct)))
    });
    g.bench_function("ml-kem-768/keygen_from_seed", |b| {
        b.iter(|| DecapsulationKey::<MlKem768>::from_seed(black_box(seed).into()))
    });
    g.bench_function("ml-kem-768/parse_encapsulation_key", |b| {
        b.iter(|| MlKemPublicKey::from_bytes(black_box(&ek_bytes)).expect("valid key"))
    });
    g.finish();
}

criterion_group!(
    benches,
    handshake,
    one_to_one_steady,
    one_to_one_dh_step,
    circle_message,
    sealed_sender,
    primitives
);
criterion_main!(benches);
