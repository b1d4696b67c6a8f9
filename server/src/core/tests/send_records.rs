//! Send records: retries deduplicated within the window, a cap per mailbox,
//! expiry by whole buckets of bounded cost.

use std::collections::BTreeSet;

use super::*;
use crate::core::send::MAX_EXPIRED_RECORDS;

/// A client message id from a number (the harness's `send` has only 255).
fn message_id(n: u32) -> [u8; 16] {
    let mut id = [0xC0; 16];
    id[..4].copy_from_slice(&n.to_be_bytes());
    id
}

/// Sends message `n` to `to`; the per-recipient results.
fn send_numbered(h: &mut Harness, client: &Client, n: u32, to: &[&Owner]) -> Vec<ErrorCode> {
    send_marked(h, client, n, to, false)
}

/// Sends message `n` to `to` again, marked as a retry.
fn retry_numbered(h: &mut Harness, client: &Client, n: u32, to: &[&Owner]) -> Vec<ErrorCode> {
    send_marked(h, client, n, to, true)
}

fn send_marked(
    h: &mut Harness,
    client: &Client,
    n: u32,
    to: &[&Owner],
    retry: bool,
) -> Vec<ErrorCode> {
    let send = pb::Send {
        client_message_id: message_id(n).to_vec().into(),
        body: Bytes::from_static(b"sealed"),
        recipients: recipients_of(to, 1),
        retry,
    };
    h.send_request(client, send)
}

/// The ids of the send records the store holds.
fn stored_records(h: &Harness) -> BTreeSet<[u8; 16]> {
    h.store.send_record_ids().iter().map(|id| id.0).collect()
}

/// The send records a sweep deleted.
fn deleted_records(commit: &Commit) -> BTreeSet<[u8; 16]> {
    commit
        .batch
        .mutations
        .iter()
        .filter_map(|m| match m {
            Mutation::DeleteSendRecord(id) => Some(id.0),
            _ => None,
        })
        .collect()
}

/// Runs one sweep; the send records it forgot.
fn sweep(h: &mut Harness) -> BTreeSet<[u8; 16]> {
    let Some(commit) = h.core.poll_expired(h.now) else {
        return BTreeSet::new();
    };
    let deleted = deleted_records(&commit);
    h.finish(Outcome::Commit(commit));
    deleted
}

fn ids(range: std::ops::RangeInclusive<u32>) -> BTreeSet<[u8; 16]> {
    range.map(message_id).collect()
}

/// Width of one expiry bucket for `config`.
fn bucket_ms(config: &CoreConfig) -> Millis {
    config.send_record_ttl.as_millis() as Millis / BUCKETS_PER_WINDOW
}

#[test]
fn a_retry_late_in_the_window_is_still_deduplicated() {
    let mut h = Harness::new(open_config());
    let alice = Owner::new(1);
    let owner = h.owner_online(&alice);
    let sender = h.connect();
    assert_eq!(send_numbered(&mut h, &sender, 1, &[&alice]), [OK]);
    // Sweeps run all along; the record outlives them until its window ends.
    let window = h.config.send_record_ttl;
    for _ in 0..6 {
        h.advance(window / 7);
        assert!(sweep(&mut h).is_empty());
    }
    h.advance(window / 7 - Duration::from_secs(60));
    assert!(sweep(&mut h).is_empty());
    let sender = h.connect();
    assert_eq!(send_numbered(&mut h, &sender, 1, &[&alice]), [OK]);
    assert_eq!(h.deliveries(&owner), [0], "stored once, delivered once");
    assert_eq!(h.core.stats().envelopes, 1);
}

#[test]
fn a_mailbox_never_holds_more_send_records_than_its_cap() {
    let config = CoreConfig {
        send_records_per_mailbox: 3,
        ..open_config()
    };
    let mut h = Harness::new(config);
    let (alice, bob) = (Owner::new(1), Owner::new(2));
    h.owner_online(&alice);
    h.owner_online(&bob);
    let sender = h.connect();
    for n in 1..=10 {
        assert_eq!(send_numbered(&mut h, &sender, n, &[&alice]), [OK]);
        let held = h.core.send_records.count_for(&alice.mailbox);
        assert!(held <= 3, "alice holds {held} records after send {n}");
    }
    // The three newest are remembered, in memory only: a 1:1 send's
    // envelope is its record on disk.
    assert_eq!(h.core.send_records.count_for(&alice.mailbox), 3);
    assert!(stored_records(&h).is_empty());

    // A shared send counts against both; pushed out of alice's records, it
    // is forgotten for bob too.
    assert_eq!(
        send_numbered(&mut h, &sender, 20, &[&alice, &bob]),
        [OK, OK]
    );
    assert_eq!(h.core.send_records.count_for(&bob.mailbox), 1);
    assert_eq!(
        stored_records(&h),
        ids(20..=20),
        "a shared send's record is stored"
    );
    for n in 21..=23 {
        send_numbered(&mut h, &sender, n, &[&alice]);
    }
    assert_eq!(h.core.send_records.count_for(&bob.mailbox), 0);
    assert_eq!(h.core.send_records.count_for(&alice.mailbox), 3);
    assert!(stored_records(&h).is_empty(), "pushed out on disk too");
    h.restart();
    assert_eq!(h.core.send_records.len(), 0, "none is loaded at start");
}

#[test]
fn a_retry_of_a_record_pushed_out_stores_a_copy_and_a_kept_one_does_not() {
    let config = CoreConfig {
        send_records_per_mailbox: 2,
        ..open_config()
    };
    let mut h = Harness::new(config);
    let alice = Owner::new(1);
    h.owner_online(&alice);
    let sender = h.connect();
    for n in 1..=3 {
        send_numbered(&mut h, &sender, n, &[&alice]);
    }
    assert_eq!(h.core.stats().envelopes, 3);
    assert_eq!(send_numbered(&mut h, &sender, 3, &[&alice]), [OK]);
    assert_eq!(
        h.core.stats().envelopes,
        3,
        "a remembered send is not stored twice"
    );
    // Message 2 was pushed out too, but a retry marked as one finds its
    // envelope in the mailbox and stores nothing.
    assert_eq!(retry_numbered(&mut h, &sender, 2, &[&alice]), [OK]);
    assert_eq!(h.core.stats().envelopes, 3);
    // Message 1 was pushed out by message 3: its late unmarked retry is
    // stored again (the recipient's client drops the copy by its message id).
    assert_eq!(send_numbered(&mut h, &sender, 1, &[&alice]), [OK]);
    assert_eq!(h.core.stats().envelopes, 4);
}

#[test]
fn old_send_records_expire_and_leave_the_store() {
    let mut h = Harness::new(open_config());
    let (alice, bob) = (Owner::new(1), Owner::new(2));
    h.owner_online(&alice);
    h.owner_online(&bob);
    let sender = h.connect();
    send_numbered(&mut h, &sender, 1, &[&alice, &bob]);
    send_numbered(&mut h, &sender, 2, &[&alice, &bob]);
    h.restart();
    let bucket = bucket_ms(&h.config);
    h.advance(h.config.send_record_ttl + Duration::from_millis(bucket));
    // Not loaded at start: the core's sweep does not know them, the scan
    // of the store finds them.
    assert!(sweep(&mut h).is_empty());
    let expired = h.store.expired_send_records(h.now, 10).unwrap();
    assert_eq!(expired.len(), 2);
    let commit = h.core.handle_expired_send_records(expired).unwrap();
    assert_eq!(deleted_records(&commit), ids(1..=2));
    h.finish(Outcome::Commit(commit));
    assert!(stored_records(&h).is_empty());
    assert_eq!(h.core.send_records.len(), 0);
    // Forgotten: a retry now is a new send.
    let sender = h.connect();
    send_numbered(&mut h, &sender, 1, &[&alice]);
    assert_eq!(h.store.envelope_count(), 5);
}

#[test]
fn expiry_forgets_only_the_aged_bucket_and_never_early() {
    let mut h = Harness::new(open_config());
    let (alice, bob) = (Owner::new(1), Owner::new(2));
    h.owner_online(&alice);
    h.owner_online(&bob);
    let sender = h.connect();
    let width = bucket_ms(&h.config);
    let ttl = h.config.send_record_ttl.as_millis() as Millis;
    // Start so that the first group expires at the start of a bucket.
    h.now = (h.now + ttl).div_ceil(width) * width - ttl;
    for n in 1..=5 {
        send_numbered(&mut h, &sender, n, &[&alice, &bob]);
    }
    h.advance(Duration::from_millis(2 * width));
    for n in 6..=10 {
        send_numbered(&mut h, &sender, n, &[&alice, &bob]);
    }
    // The first group expires at the start of its bucket: one bucket later
    // the whole bucket has expired. Not a millisecond before.
    let first_bucket_end = h.now - 2 * width + ttl + width;
    h.now = first_bucket_end - 1;
    assert!(sweep(&mut h).is_empty());
    h.now = first_bucket_end;
    assert_eq!(sweep(&mut h), ids(1..=5), "exactly the aged bucket");
    // The store scan finds only those too, and the core leaves them to its
    // own sweep (they are in memory).
    let expired = h.store.expired_send_records(h.now, 100).unwrap();
    assert!(expired.is_empty(), "already deleted");
    assert_eq!(stored_records(&h), ids(6..=10));
    assert!(sweep(&mut h).is_empty(), "nothing more has aged");
    h.advance(Duration::from_millis(2 * width));
    assert_eq!(sweep(&mut h), ids(6..=10));
}

#[test]
fn one_sweep_forgets_a_bounded_number_of_records() {
    let mut h = Harness::new(open_config());
    let alice = Owner::new(1);
    h.owner_online(&alice);
    let sender = h.connect();
    let total = MAX_EXPIRED_RECORDS as u32 + 10;
    for n in 0..total {
        // Within the connection's request rate.
        h.advance(Duration::from_millis(1));
        assert_eq!(send_numbered(&mut h, &sender, n, &[&alice]), [OK]);
    }
    let width = bucket_ms(&h.config);
    h.advance(h.config.send_record_ttl + Duration::from_millis(width));
    // 1:1 records live in memory only: forgetting them writes nothing, but
    // one sweep still forgets a bounded number and asks to be called again.
    let commit = h.core.poll_expired(h.now).expect("records expired");
    assert!(commit.batch.is_empty());
    h.finish(Outcome::Commit(commit));
    assert_eq!(h.core.send_records.len(), 10);
    assert!(sweep(&mut h).is_empty());
    assert_eq!(h.core.send_records.len(), 0, "the rest on the next call");
    assert!(h.core.poll_expired(h.now).is_none());
}
