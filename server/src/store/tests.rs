//! Conformance suite: every [`MailboxStore`] must pass these checks, with the
//! same observable results. Each check runs against a fresh [`MemoryStore`]
//! and a fresh [`FjallStore`] (which is then reopened and must load the same
//! snapshot again).

use ::fjall::{Database, KeyspaceCreateOptions, PersistMode};
use bytes::Bytes;
use proptest::prelude::*;
use tempfile::TempDir;

use super::fjall::{self as keyspaces, FjallStore};
use super::memory::MemoryStore;
use super::*;

// ---- fixtures -----------------------------------------------------------

fn mailbox(n: u8) -> MailboxId {
    MailboxId([n; 32])
}

fn token(n: u8) -> TokenHash {
    TokenHash([n; 32])
}

fn message_id(n: u8) -> ClientMessageId {
    ClientMessageId([n; 16])
}

fn record(n: u8) -> MailboxRecord {
    MailboxRecord {
        key: [n; 32],
        created_at: 1_700_000_000_000 + u64::from(n),
        reserved_seq: u64::from(n) * 10,
    }
}

/// An envelope of a shared body.
fn envelope(body: u64, header: &'static [u8]) -> EnvelopeRecord {
    EnvelopeRecord {
        meta: EnvelopeMeta {
            body: BodyRef::Shared(BodyId(body)),
            stored_at: 1_000 + body,
            expires_at: 9_000 + body,
            size: 512 + u32::try_from(header.len()).unwrap(),
        },
        sealed_header: Bytes::from_static(header),
        body: None,
    }
}

/// An envelope holding its body, of the send `message_id(n)`.
fn inline_envelope(n: u8, header: &'static [u8], body: &'static [u8]) -> EnvelopeRecord {
    EnvelopeRecord {
        meta: EnvelopeMeta {
            body: BodyRef::Inline(message_id(n)),
            stored_at: 2_000 + u64::from(n),
            expires_at: 8_000 + u64::from(n),
            size: u32::try_from(header.len() + body.len()).unwrap(),
        },
        sealed_header: Bytes::from_static(header),
        body: Some(Bytes::from_static(body)),
    }
}

/// An envelope of the body with the highest id.
fn top_body_envelope() -> EnvelopeRecord {
    let mut record = envelope(0, b"");
    record.meta.body = BodyRef::Shared(BodyId(u64::MAX));
    record
}

fn put_envelope(mailbox: MailboxId, seq: u64, record: EnvelopeRecord) -> Mutation {
    Mutation::PutEnvelope {
        mailbox,
        seq,
        record,
    }
}

fn put_body(id: u64, bytes: &'static [u8], refs: u32) -> Mutation {
    Mutation::PutBody {
        id: BodyId(id),
        bytes: Bytes::from_static(bytes),
        refs,
    }
}

fn commit(store: &dyn MailboxStore, mutations: Vec<Mutation>) {
    store.commit(&[Batch { mutations }]).unwrap();
}

/// Everything a store answers about the fixtures' key domain: the start-up
/// snapshot, the envelope index of mailboxes 0–4 and send records 0–4.
type Everything = (Snapshot, Vec<MailboxIndex>, Vec<Option<SendRecord>>);

fn everything(store: &dyn MailboxStore) -> Everything {
    let indexes = (0..5)
        .map(|n| store.load_mailbox(&mailbox(n)).unwrap())
        .collect();
    let records = (0..5)
        .map(|n| store.read_send_record(&message_id(n)).unwrap())
        .collect();
    (store.load().unwrap(), indexes, records)
}

/// The seqs of a mailbox's stored envelopes.
fn seqs(store: &dyn MailboxStore, n: u8) -> Vec<u64> {
    let index = store.load_mailbox(&mailbox(n)).unwrap();
    index.envelopes.iter().map(|(seq, _)| *seq).collect()
}

fn temp_fjall() -> (TempDir, FjallStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = FjallStore::open(dir.path()).unwrap();
    (dir, store)
}

// ---- conformance checks ---------------------------------------------------

fn empty_store_holds_nothing(store: &dyn MailboxStore) {
    assert_eq!(store.load().unwrap(), Snapshot::default());
    assert_eq!(
        store.load_mailbox(&mailbox(1)).unwrap(),
        MailboxIndex::default()
    );
    assert_eq!(store.read_send_record(&message_id(1)).unwrap(), None);
    assert_eq!(store.read_envelope(&mailbox(1), 0).unwrap(), None);
    assert_eq!(store.read_body(BodyId(0)).unwrap(), None);
    assert_eq!(store.read_signed_bundle(&mailbox(1)).unwrap(), None);
    assert_eq!(store.read_last_resort(&mailbox(1)).unwrap(), None);
    let prekey = store.read_prekey(&mailbox(1), PrekeyKind::OneTimePq, 0);
    assert_eq!(prekey.unwrap(), None);
}

fn mailboxes_are_stored_and_updated(store: &dyn MailboxStore) {
    commit(
        store,
        vec![
            Mutation::PutMailbox(mailbox(2), record(2)),
            Mutation::PutMailbox(mailbox(1), record(1)),
        ],
    );
    let updated = MailboxRecord {
        reserved_seq: 99,
        ..record(1)
    };
    commit(
        store,
        vec![Mutation::PutMailbox(mailbox(1), updated.clone())],
    );
    let loaded = store.load().unwrap().mailboxes;
    assert_eq!(loaded, vec![(mailbox(1), updated), (mailbox(2), record(2))]);
}

fn send_tokens_are_added_and_revoked(store: &dyn MailboxStore) {
    commit(
        store,
        vec![
            Mutation::PutSendToken(mailbox(1), token(2)),
            Mutation::PutSendToken(mailbox(1), token(1)),
            Mutation::PutSendToken(mailbox(0), token(9)),
            Mutation::PutSendToken(mailbox(1), token(2)),
        ],
    );
    let tokens = store.load().unwrap().send_tokens;
    let expected = [(0, 9), (1, 1), (1, 2)].map(|(m, t)| (mailbox(m), token(t)));
    assert_eq!(tokens, expected);
    commit(
        store,
        vec![
            Mutation::DeleteSendToken(mailbox(1), token(1)),
            Mutation::DeleteSendToken(mailbox(7), token(7)),
        ],
    );
    let tokens = store.load().unwrap().send_tokens;
    assert_eq!(tokens, [(mailbox(0), token(9)), (mailbox(1), token(2))]);
}

fn envelopes_load_in_mailbox_then_seq_order(store: &dyn MailboxStore) {
    // 256 sorts after 2 only if seqs are big-endian in the key.
    commit(
        store,
        vec![
            put_envelope(mailbox(2), 0, envelope(5, b"c")),
            put_envelope(mailbox(1), 256, envelope(1, b"header-256")),
            put_envelope(mailbox(1), 2, envelope(1, b"")),
            put_envelope(mailbox(1), u64::MAX, envelope(3, b"last")),
        ],
    );
    let order: Vec<_> = [0, 1, 2, 3]
        .into_iter()
        .flat_map(|m| {
            let index = store.load_mailbox(&mailbox(m)).unwrap();
            index
                .envelopes
                .into_iter()
                .map(move |(seq, meta)| (mailbox(m), seq, meta.body))
        })
        .collect();
    let expected = [(1, 2, 1), (1, 256, 1), (1, u64::MAX, 3), (2, 0, 5)]
        .map(|(m, seq, body)| (mailbox(m), seq, BodyRef::Shared(BodyId(body))));
    assert_eq!(order, expected);
    let read = store.read_envelope(&mailbox(1), 256).unwrap();
    assert_eq!(read, Some(envelope(1, b"header-256")));
    let first = store.load_mailbox(&mailbox(1)).unwrap().envelopes[0];
    assert_eq!(first, (2, envelope(1, b"").meta));
    assert_eq!(store.read_envelope(&mailbox(1), 3).unwrap(), None);
    assert_eq!(store.read_envelope(&mailbox(2), 256).unwrap(), None);
}

fn inline_envelopes_are_one_record(store: &dyn MailboxStore) {
    commit(
        store,
        vec![
            put_envelope(mailbox(1), 7, inline_envelope(1, b"header", b"the body")),
            put_envelope(mailbox(1), 8, inline_envelope(2, b"", b"")),
        ],
    );
    let read = store.read_envelope(&mailbox(1), 7).unwrap();
    assert_eq!(read, Some(inline_envelope(1, b"header", b"the body")));
    let read = store.read_envelope(&mailbox(1), 8).unwrap();
    assert_eq!(read, Some(inline_envelope(2, b"", b"")));
    let index = store.load_mailbox(&mailbox(1)).unwrap();
    let metas: Vec<_> = index.envelopes.iter().map(|e| e.1).collect();
    assert_eq!(
        metas,
        [
            inline_envelope(1, b"header", b"the body").meta,
            inline_envelope(2, b"", b"").meta
        ]
    );
    assert!(index.body_refs.is_empty(), "no body of its own");
    assert_eq!(store.load().unwrap().next_body, 0);
    commit(store, vec![Mutation::DeleteEnvelope(mailbox(1), 7)]);
    assert_eq!(store.read_envelope(&mailbox(1), 7).unwrap(), None);
}

fn deleted_envelopes_are_gone(store: &dyn MailboxStore) {
    commit(
        store,
        vec![
            put_envelope(mailbox(1), 1, envelope(1, b"one")),
            put_envelope(mailbox(1), 2, envelope(1, b"two")),
        ],
    );
    commit(store, vec![Mutation::DeleteEnvelope(mailbox(1), 1)]);
    assert_eq!(store.read_envelope(&mailbox(1), 1).unwrap(), None);
    assert_eq!(
        store.read_envelope(&mailbox(1), 2).unwrap(),
        Some(envelope(1, b"two"))
    );
    assert_eq!(seqs(store, 1), [2]);
}

fn bodies_are_reference_counted(store: &dyn MailboxStore) {
    let large = Bytes::from(vec![0xA5; 256 * 1024]);
    commit(
        store,
        vec![
            put_body(1, b"shared body", 3),
            put_body(2, b"", 1),
            Mutation::PutBody {
                id: BodyId(u64::MAX),
                bytes: large.clone(),
                refs: 1,
            },
        ],
    );
    assert_eq!(
        store.read_body(BodyId(1)).unwrap().as_deref(),
        Some(&b"shared body"[..])
    );
    assert_eq!(
        store.read_body(BodyId(2)).unwrap().as_deref(),
        Some(&b""[..])
    );
    assert_eq!(store.read_body(BodyId(u64::MAX)).unwrap(), Some(large));
    commit(
        store,
        vec![
            Mutation::SetBodyRefs(BodyId(1), 1),
            put_envelope(mailbox(1), 1, envelope(1, b"")),
            put_envelope(mailbox(1), 2, envelope(2, b"")),
            put_envelope(mailbox(1), 3, envelope(2, b"")),
            put_envelope(mailbox(2), 1, top_body_envelope()),
            put_envelope(mailbox(2), 2, envelope(7, b"no body")),
        ],
    );
    let refs = store.load_mailbox(&mailbox(1)).unwrap().body_refs;
    assert_eq!(refs, [(BodyId(1), 1), (BodyId(2), 1)], "each body once");
    let refs = store.load_mailbox(&mailbox(2)).unwrap().body_refs;
    assert_eq!(refs, [(BodyId(u64::MAX), 1)], "a missing count is left out");
    assert!(store.read_body(BodyId(1)).unwrap().is_some());
    assert_eq!(store.load().unwrap().next_body, u64::MAX, "saturates");
    commit(
        store,
        vec![
            Mutation::DeleteBody(BodyId(1)),
            Mutation::DeleteBody(BodyId(u64::MAX)),
        ],
    );
    assert_eq!(store.read_body(BodyId(1)).unwrap(), None);
    assert_eq!(store.read_body(BodyId(u64::MAX)).unwrap(), None);
    assert_eq!(
        store.load_mailbox(&mailbox(1)).unwrap().body_refs,
        [(BodyId(2), 1)]
    );
    assert_eq!(
        store.load().unwrap().next_body,
        3,
        "one past the highest body"
    );
}

fn bundles_are_replaced(store: &dyn MailboxStore) {
    commit(
        store,
        vec![
            Mutation::PutSignedBundle(mailbox(1), Bytes::from_static(b"bundle v1")),
            Mutation::PutLastResort(mailbox(1), Bytes::from_static(b"last resort")),
            Mutation::PutSignedBundle(mailbox(0), Bytes::from_static(b"other")),
        ],
    );
    commit(
        store,
        vec![Mutation::PutSignedBundle(
            mailbox(1),
            Bytes::from_static(b"bundle v2"),
        )],
    );
    let bundle = store.read_signed_bundle(&mailbox(1)).unwrap();
    assert_eq!(bundle.as_deref(), Some(&b"bundle v2"[..]));
    let last_resort = store.read_last_resort(&mailbox(1)).unwrap();
    assert_eq!(last_resort.as_deref(), Some(&b"last resort"[..]));
    assert_eq!(store.read_last_resort(&mailbox(0)).unwrap(), None);
    let snapshot = store.load().unwrap();
    assert_eq!(snapshot.signed_bundles, [mailbox(0), mailbox(1)]);
    assert_eq!(snapshot.last_resorts, [mailbox(1)]);
}

fn prekeys_queue_in_key_order(store: &dyn MailboxStore) {
    use PrekeyKind::{OneTimePq as Pq, OneTimeX25519 as X};
    commit(
        store,
        vec![
            Mutation::PutPrekey(mailbox(1), Pq, 1, Bytes::from_static(b"pq 1")),
            Mutation::PutPrekey(mailbox(1), X, 300, Bytes::from_static(b"x 300")),
            Mutation::PutPrekey(mailbox(1), X, 2, Bytes::from_static(b"x 2")),
            Mutation::PutPrekey(mailbox(0), Pq, 7, Bytes::from_static(b"pq 7")),
        ],
    );
    let expected = [(0, Pq, 7), (1, X, 2), (1, X, 300), (1, Pq, 1)]
        .map(|(m, kind, index)| (mailbox(m), kind, index));
    assert_eq!(store.load().unwrap().prekeys, expected);
    assert_eq!(
        store.read_prekey(&mailbox(1), X, 300).unwrap().as_deref(),
        Some(&b"x 300"[..])
    );
    assert_eq!(store.read_prekey(&mailbox(1), Pq, 300).unwrap(), None);
    commit(store, vec![Mutation::DeletePrekey(mailbox(1), X, 2)]);
    assert_eq!(store.read_prekey(&mailbox(1), X, 2).unwrap(), None);
    assert_eq!(store.load().unwrap().prekeys.len(), 3);
}

fn send_records_are_remembered_and_forgotten(store: &dyn MailboxStore) {
    let first = SendRecord {
        expires_at: 5_000,
        results: vec![0, -1, 7, i32::MAX, i32::MIN],
    };
    let empty = SendRecord {
        expires_at: 6_000,
        results: Vec::new(),
    };
    commit(
        store,
        vec![
            Mutation::PutSendRecord(message_id(2), empty.clone()),
            Mutation::PutSendRecord(message_id(1), first.clone()),
        ],
    );
    assert_eq!(store.read_send_record(&message_id(1)).unwrap(), Some(first));
    assert_eq!(
        store.read_send_record(&message_id(2)).unwrap(),
        Some(empty.clone())
    );
    commit(store, vec![Mutation::DeleteSendRecord(message_id(1))]);
    assert_eq!(store.read_send_record(&message_id(1)).unwrap(), None);
    assert_eq!(store.read_send_record(&message_id(2)).unwrap(), Some(empty));
}

fn registration_uses_are_overwritten(store: &dyn MailboxStore) {
    commit(
        store,
        vec![
            Mutation::PutRegistrationUses(token(3), 1),
            Mutation::PutRegistrationUses(token(2), 5),
        ],
    );
    commit(store, vec![Mutation::PutRegistrationUses(token(3), 2)]);
    let uses = store.load().unwrap().registration_uses;
    assert_eq!(uses, [(token(2), 5), (token(3), 2)]);
}

/// Every record type put and then deleted, in one batch and across two
/// batches of one commit.
fn put_then_delete(n: u8) -> (Vec<Mutation>, Vec<Mutation>) {
    let m = mailbox(n);
    let kind = PrekeyKind::OneTimeX25519;
    let puts = vec![
        Mutation::PutSendToken(m, token(n)),
        put_body(u64::from(n), b"body", 2),
        put_envelope(m, 4, envelope(u64::from(n), b"hdr")),
        Mutation::PutPrekey(m, kind, 4, Bytes::from_static(b"prekey")),
        Mutation::PutSendRecord(
            message_id(n),
            SendRecord {
                expires_at: 1,
                results: vec![0],
            },
        ),
    ];
    let deletes = vec![
        Mutation::DeleteSendToken(m, token(n)),
        Mutation::DeleteBody(BodyId(u64::from(n))),
        Mutation::DeleteEnvelope(m, 4),
        Mutation::DeletePrekey(m, kind, 4),
        Mutation::DeleteSendRecord(message_id(n)),
    ];
    (puts, deletes)
}

fn batch_order_decides(store: &dyn MailboxStore) {
    let (mut in_one_batch, deletes) = put_then_delete(1);
    in_one_batch.extend(deletes);
    let (puts, deletes) = put_then_delete(2);
    let across_batches = [Batch { mutations: puts }, Batch { mutations: deletes }];
    store
        .commit(&[Batch {
            mutations: in_one_batch,
        }])
        .unwrap();
    store.commit(&across_batches).unwrap();
    assert_eq!(everything(store), everything(&MemoryStore::new()));
    assert_eq!(store.read_envelope(&mailbox(1), 4).unwrap(), None);
    assert_eq!(store.read_body(BodyId(2)).unwrap(), None);
    // Delete first, put second: the put stays.
    let (puts, mut delete_then_put) = put_then_delete(3);
    delete_then_put.extend(puts);
    commit(store, delete_then_put);
    let snapshot = store.load().unwrap();
    let index = store.load_mailbox(&mailbox(3)).unwrap();
    assert_eq!(index.envelopes.len(), 1);
    assert_eq!(index.body_refs, [(BodyId(3), 2)]);
    assert_eq!(snapshot.send_tokens, [(mailbox(3), token(3))]);
    assert_eq!(snapshot.prekeys.len(), 1);
    assert!(store.read_send_record(&message_id(3)).unwrap().is_some());
}

fn empty_commits_change_nothing(store: &dyn MailboxStore) {
    commit(store, vec![Mutation::PutMailbox(mailbox(1), record(1))]);
    let before = store.load().unwrap();
    store.commit(&[]).unwrap();
    store.commit(&[Batch::default(), Batch::default()]).unwrap();
    assert_eq!(store.load().unwrap(), before);
}

fn batches_of_one_commit_all_apply(store: &dyn MailboxStore) {
    let batches: Vec<Batch> = (1..=3)
        .map(|n| Batch {
            mutations: vec![
                put_body(n, b"body", 1),
                put_envelope(mailbox(1), n, envelope(n, b"hdr")),
            ],
        })
        .chain([Batch::default()])
        .collect();
    store.commit(&batches).unwrap();
    let index = store.load_mailbox(&mailbox(1)).unwrap();
    assert_eq!(index.envelopes.len(), 3);
    assert_eq!(index.body_refs.len(), 3);
}

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod memory_store {
            $(
                #[test]
                fn $check() {
                    super::$check(&super::MemoryStore::new());
                }
            )*
        }

        /// Each check, then a reopen that must read the same again, and
        /// a flush and reopen after which nothing changed either.
        mod fjall_store {
            $(
                #[test]
                fn $check() {
                    let (dir, store) = super::temp_fjall();
                    super::$check(&store);
                    let before = super::everything(&store);
                    drop(store);
                    let store = super::FjallStore::open(dir.path()).unwrap();
                    assert_eq!(super::everything(&store), before);
                    super::MailboxStore::flush(&store).unwrap();
                    drop(store);
                    let store = super::FjallStore::open(dir.path()).unwrap();
                    assert_eq!(super::everything(&store), before);
                }
            )*
        }
    };
}

conformance!(
    empty_store_holds_nothing,
    mailboxes_are_stored_and_updated,
    send_tokens_are_added_and_revoked,
    envelopes_load_in_mailbox_then_seq_order,
    inline_envelopes_are_one_record,
    deleted_envelopes_are_gone,
    bodies_are_reference_counted,
    bundles_are_replaced,
    prekeys_queue_in_key_order,
    send_records_are_remembered_and_forgotten,
    registration_uses_are_overwritten,
    batch_order_decides,
    empty_commits_change_nothing,
    batches_of_one_commit_all_apply,
);

// ---- store-specific tests ---------------------------------------------------

#[test]
fn memory_counts_commits_and_bodies() {
    let store = MemoryStore::new();
    let batches = [
        Batch {
            mutations: vec![put_body(1, b"shared", 2)],
        },
        Batch {
            mutations: vec![put_envelope(mailbox(1), 1, envelope(1, b"a"))],
        },
        Batch {
            mutations: vec![put_envelope(mailbox(2), 1, envelope(1, b"b"))],
        },
    ];
    store.commit(&batches).unwrap();
    store.commit(&[]).unwrap();
    store.commit(&[Batch::default()]).unwrap();
    assert_eq!(store.commits(), 1);
    assert_eq!(store.body_count(), 1);
    assert_eq!(store.envelope_count(), 2);
}

#[test]
fn memory_failing_commit_writes_nothing() {
    let store = MemoryStore::new();
    store.set_failing(true);
    let result = store.commit(&[Batch {
        mutations: vec![put_body(1, b"x", 1)],
    }]);
    assert!(matches!(result, Err(StoreError::Engine(_))));
    assert_eq!(everything(&store), everything(&MemoryStore::new()));
    assert_eq!(store.commits(), 0);
    store.set_failing(false);
    commit(&store, vec![put_body(1, b"x", 1)]);
    assert_eq!(store.body_count(), 1);
}

mod on_disk;
mod props;
