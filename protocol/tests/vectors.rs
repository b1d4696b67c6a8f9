//! The `Hearth_v1` test vectors (`tests/vectors/hearth_v1.json`).
//!
//! Two independent checks: regenerating the vectors must give the committed
//! file byte for byte (so it is never stale), and replaying the committed file
//! through the public API must reproduce every recorded outcome (so a wrong
//! generator cannot bless its own output). Regenerate the file with
//! `cargo run -p hearth-protocol --example gen-vectors`.

#[path = "vectors/generate.rs"]
mod generate;
#[path = "vectors/replay.rs"]
mod replay;
#[path = "vectors/schema.rs"]
mod schema;

use schema::{Event, Expect, Vectors};

const VECTORS_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/hearth_v1.json");

fn committed_text() -> String {
    std::fs::read_to_string(VECTORS_PATH).expect("the committed vectors file is readable")
}

fn committed() -> Vectors {
    serde_json::from_str(&committed_text()).expect("the committed vectors parse")
}

#[test]
fn regenerated_vectors_equal_the_committed_file() {
    let regenerated = generate::to_json(&generate::generate());
    assert!(
        regenerated == committed_text(),
        "tests/vectors/hearth_v1.json is stale: run `cargo run -p hearth-protocol --example gen-vectors`"
    );
}

#[test]
fn committed_vectors_replay_through_the_public_api() {
    let vectors = committed();
    let report = replay::replay_all(&vectors);
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
    let events: usize = vectors.ratchets.iter().map(|r| r.events.len() + 1).sum();
    let circle_messages: usize = vectors.sender_keys.iter().map(|s| s.messages.len()).sum();
    let checks = 1
        + vectors.handshakes.len()
        + events
        + circle_messages
        + vectors.sealed.len()
        + vectors.padding.len();
    assert_eq!(report.passed, checks);
}

/// Issue 3: every section has vectors, and together they cover the cases
/// other implementations must get right.
#[test]
fn committed_vectors_cover_every_required_case() {
    let v = committed();
    assert!(!v.sender_keys.is_empty() && !v.sealed.is_empty() && !v.padding.is_empty());
    let opks: Vec<bool> = v
        .handshakes
        .iter()
        .map(|h| h.bob.opk_id.is_some())
        .collect();
    assert!(
        opks.contains(&true) && opks.contains(&false),
        "handshakes with and without OPK"
    );

    let decrypts = v.ratchets.iter().flat_map(|r| {
        r.events.iter().filter_map(move |e| match e {
            Event::Decrypt {
                msg,
                tamper,
                expect,
                ..
            } => Some((r, *msg, *tamper, *expect)),
            Event::Encrypt { .. } => None,
        })
    });
    let (mut out_of_order, mut seen) = (false, std::collections::HashSet::new());
    for (r, msg, tamper, expect) in decrypts {
        seen.insert(expect);
        assert_eq!(
            tamper,
            expect == Expect::AuthFail,
            "only tampered messages fail to authenticate"
        );
        out_of_order |= expect == Expect::Ok && delivered_later_first(r, msg);
    }
    for expect in [
        Expect::Ok,
        Expect::Duplicate,
        Expect::TooManySkipped,
        Expect::AuthFail,
    ] {
        assert!(seen.contains(&expect), "no decrypt expects {expect:?}");
    }
    assert!(out_of_order, "no message is delivered after a later one");
    let dh_steps: usize = v
        .ratchets
        .iter()
        .map(|r| r.ratchet_privs.alice.len() - 1 + r.ratchet_privs.bob.len())
        .sum();
    assert!(dh_steps >= 3, "only {dh_steps} DH ratchet steps");
}

fn sender(event: &Event) -> Option<&schema::Party> {
    match event {
        Event::Encrypt { by, .. } => Some(by),
        Event::Decrypt { .. } => None,
    }
}

/// Whether a message sent after `msg` by the same sender was successfully
/// delivered before `msg` was.
fn delivered_later_first(r: &schema::Ratchet, msg: usize) -> bool {
    let first_delivery = r
        .events
        .iter()
        .position(|e| matches!(e, Event::Decrypt { msg: m, expect: Expect::Ok, .. } if *m == msg));
    r.events.iter().enumerate().any(|(at, e)| match e {
        Event::Decrypt {
            msg: m,
            expect: Expect::Ok,
            ..
        } => {
            *m > msg
                && sender(&r.events[*m]) == sender(&r.events[msg])
                && first_delivery.is_some_and(|first| at < first)
        }
        _ => false,
    })
}

/// The replay is not vacuous: each kind of wrong value in a vector is caught.
#[test]
fn replay_rejects_corrupted_vectors() {
    let v = committed();
    type Edit = dyn Fn(&mut Vectors);
    let only = |edit: &Edit| {
        let mut one = Vectors {
            suite: v.suite.clone(),
            handshakes: vec![v.handshakes[0].clone()],
            ratchets: vec![v.ratchets[0].clone()],
            sender_keys: vec![v.sender_keys[0].clone()],
            sealed: vec![v.sealed[0].clone()],
            padding: vec![v.padding[0].clone()],
        };
        assert!(replay::replay_all(&one).failures.is_empty());
        edit(&mut one);
        replay::replay_all(&one).failures
    };
    let corruptions: [(&str, &Edit); 7] = [
        ("kem_ss", &|v| flip(&mut v.handshakes[0].kem_ss)),
        ("alice_ik_dh signature", &|v| {
            flip(&mut v.handshakes[0].sigs.alice_ik_dh)
        }),
        ("ratchet expectation", &|v| {
            for event in &mut v.ratchets[0].events {
                if let Event::Decrypt { expect, .. } = event
                    && *expect == Expect::Duplicate
                {
                    *expect = Expect::Ok;
                }
            }
        }),
        ("unused ratchet key", &|v| {
            v.ratchets[0].ratchet_privs.bob.push("11".repeat(32));
        }),
        ("circle signature", &|v| {
            flip(&mut v.sender_keys[0].messages[0].sig)
        }),
        ("sealed header", &|v| flip(&mut v.sealed[0].header_ct)),
        ("padded length", &|v| v.padding[0].padded_len += 1),
    ];
    for (what, edit) in corruptions {
        assert!(!only(edit).is_empty(), "a corrupted {what} replays cleanly");
    }
}

/// Changes the last hex digit of `text`.
fn flip(text: &mut String) {
    let last = if text.ends_with('0') { '1' } else { '0' };
    text.pop();
    text.push(last);
}
