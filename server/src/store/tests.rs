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
        next_seq: u64::from(n) * 10,
    }
}

fn envelope(body: u64, header: &'static [u8]) -> EnvelopeRecord {
    EnvelopeRecord {
        meta: EnvelopeMeta {
            body_id: BodyId(body),
            stored_at: 1_000 + body,
            expires_at: 9_000 + body,
            size: 512 + u32::try_from(header.len()).unwrap(),
        },
        sealed_header: Bytes::from_static(header),
    }
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

fn temp_fjall() -> (TempDir, FjallStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = FjallStore::open(dir.path()).unwrap();
    (dir, store)
}

// ---- conformance checks ---------------------------------------------------

fn empty_store_holds_nothing(store: &dyn MailboxStore) {
    assert_eq!(store.load().unwrap(), Snapshot::default());
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
        next_seq: 99,
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
    let order: Vec<_> = store
        .load()
        .unwrap()
        .envelopes
        .into_iter()
        .map(|(mailbox, seq, meta)| (mailbox, seq, meta.body_id))
        .collect();
    let expected = [(1, 2, 1), (1, 256, 1), (1, u64::MAX, 3), (2, 0, 5)]
        .map(|(m, seq, body)| (mailbox(m), seq, BodyId(body)));
    assert_eq!(order, expected);
    let read = store.read_envelope(&mailbox(1), 256).unwrap();
    assert_eq!(read, Some(envelope(1, b"header-256")));
    assert_eq!(store.load().unwrap().envelopes[0].2, envelope(1, b"").meta);
    assert_eq!(store.read_envelope(&mailbox(1), 3).unwrap(), None);
    assert_eq!(store.read_envelope(&mailbox(2), 256).unwrap(), None);
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
    let seqs: Vec<u64> = store
        .load()
        .unwrap()
        .envelopes
        .iter()
        .map(|e| e.1)
        .collect();
    assert_eq!(seqs, [2]);
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
    commit(store, vec![Mutation::SetBodyRefs(BodyId(1), 1)]);
    let refs = store.load().unwrap().body_refs;
    assert_eq!(
        refs,
        [(BodyId(1), 1), (BodyId(2), 1), (BodyId(u64::MAX), 1)]
    );
    assert!(store.read_body(BodyId(1)).unwrap().is_some());
    commit(
        store,
        vec![
            Mutation::DeleteBody(BodyId(1)),
            Mutation::DeleteBody(BodyId(u64::MAX)),
        ],
    );
    assert_eq!(store.read_body(BodyId(1)).unwrap(), None);
    assert_eq!(store.read_body(BodyId(u64::MAX)).unwrap(), None);
    assert_eq!(store.load().unwrap().body_refs, [(BodyId(2), 1)]);
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
    let records = store.load().unwrap().send_records;
    assert_eq!(
        records,
        [(message_id(1), first), (message_id(2), empty.clone())]
    );
    commit(store, vec![Mutation::DeleteSendRecord(message_id(1))]);
    assert_eq!(store.load().unwrap().send_records, [(message_id(2), empty)]);
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
    assert_eq!(store.load().unwrap(), Snapshot::default());
    assert_eq!(store.read_envelope(&mailbox(1), 4).unwrap(), None);
    assert_eq!(store.read_body(BodyId(2)).unwrap(), None);
    // Delete first, put second: the put stays.
    let (puts, mut delete_then_put) = put_then_delete(3);
    delete_then_put.extend(puts);
    commit(store, delete_then_put);
    let snapshot = store.load().unwrap();
    assert_eq!(snapshot.envelopes.len(), 1);
    assert_eq!(snapshot.body_refs, [(BodyId(3), 2)]);
    assert_eq!(snapshot.send_tokens, [(mailbox(3), token(3))]);
    assert_eq!(snapshot.prekeys.len(), 1);
    assert_eq!(snapshot.send_records.len(), 1);
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
    let snapshot = store.load().unwrap();
    assert_eq!(snapshot.envelopes.len(), 3);
    assert_eq!(snapshot.body_refs.len(), 3);
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

        /// Each check, then a reopen that must load the same snapshot.
        mod fjall_store {
            $(
                #[test]
                fn $check() {
                    let (dir, store) = super::temp_fjall();
                    super::$check(&store);
                    let before = super::MailboxStore::load(&store).unwrap();
                    drop(store);
                    let store = super::FjallStore::open(dir.path()).unwrap();
                    assert_eq!(super::MailboxStore::load(&store).unwrap(), before);
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
    assert_eq!(store.load().unwrap(), Snapshot::default());
    assert_eq!(store.commits(), 0);
    store.set_failing(false);
    commit(&store, vec![put_body(1, b"x", 1)]);
    assert_eq!(store.body_count(), 1);
}

#[test]
fn fjall_counts_bodies_and_envelopes() {
    let (_dir, store) = temp_fjall();
    commit(
        &store,
        vec![
            put_body(1, b"shared", 2),
            put_envelope(mailbox(1), 1, envelope(1, b"a")),
            put_envelope(mailbox(2), 1, envelope(1, b"b")),
        ],
    );
    assert_eq!(store.body_count().unwrap(), 1);
    assert_eq!(store.envelope_count().unwrap(), 2);
    commit(&store, vec![Mutation::DeleteEnvelope(mailbox(1), 1)]);
    assert_eq!(store.envelope_count().unwrap(), 1);
}

/// A digest of every file under `dir` (sizes alone say nothing: fjall
/// preallocates its journal).
fn disk_digest(dir: &std::path::Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    use sha2::Digest as _;
    let mut digests = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            digests.extend(disk_digest(&path));
        } else {
            let digest = sha2::Sha256::digest(std::fs::read(&path).unwrap());
            digests.insert(path, digest.to_vec());
        }
    }
    digests
}

#[test]
fn fjall_empty_commit_writes_nothing() {
    let (dir, store) = temp_fjall();
    commit(&store, vec![Mutation::PutMailbox(mailbox(1), record(1))]);
    let before = disk_digest(dir.path());
    store.commit(&[]).unwrap();
    store.commit(&[Batch::default(), Batch::default()]).unwrap();
    assert_eq!(disk_digest(dir.path()), before);
    commit(&store, vec![Mutation::PutMailbox(mailbox(2), record(2))]);
    assert!(
        disk_digest(dir.path()) != before,
        "a real commit reaches the journal"
    );
}

#[test]
fn fjall_refuses_a_second_open_of_the_same_directory() {
    let (dir, _store) = temp_fjall();
    assert!(matches!(
        FjallStore::open(dir.path()),
        Err(StoreError::Engine(_))
    ));
}

/// A scenario touching every record type, in three commits.
fn scenario() -> Vec<Vec<Batch>> {
    let (puts, deletes) = put_then_delete(4);
    let first = vec![
        Mutation::PutMailbox(mailbox(1), record(1)),
        Mutation::PutMailbox(mailbox(2), record(2)),
        Mutation::PutSendToken(mailbox(1), token(1)),
        put_body(10, b"body ten", 2),
        put_envelope(mailbox(1), 1, envelope(10, b"to one")),
        put_envelope(mailbox(2), 1, envelope(10, b"to two")),
        Mutation::PutSignedBundle(mailbox(1), Bytes::from_static(b"bundle")),
        Mutation::PutLastResort(mailbox(1), Bytes::from_static(b"last")),
        Mutation::PutPrekey(
            mailbox(1),
            PrekeyKind::OneTimePq,
            0,
            Bytes::from_static(b"pq"),
        ),
        Mutation::PutSendRecord(
            message_id(1),
            SendRecord {
                expires_at: 77,
                results: vec![0, 0],
            },
        ),
        Mutation::PutRegistrationUses(token(8), 1),
    ];
    let second = vec![
        Mutation::DeleteEnvelope(mailbox(1), 1),
        Mutation::SetBodyRefs(BodyId(10), 1),
        Mutation::PutMailbox(
            mailbox(1),
            MailboxRecord {
                next_seq: 2,
                ..record(1)
            },
        ),
    ];
    vec![
        vec![Batch { mutations: first }],
        vec![Batch { mutations: second }, Batch { mutations: puts }],
        vec![Batch { mutations: deletes }, Batch::default()],
    ]
}

#[test]
fn fjall_reopen_sees_everything() {
    let (dir, store) = temp_fjall();
    let memory = MemoryStore::new();
    for batches in scenario() {
        store.commit(&batches).unwrap();
        memory.commit(&batches).unwrap();
    }
    drop(store);
    let store = FjallStore::open(dir.path()).unwrap();
    let snapshot = store.load().unwrap();
    assert_eq!(snapshot, memory.load().unwrap());
    assert_eq!(snapshot.mailboxes.len(), 2);
    assert_eq!(snapshot.mailboxes[0].1.next_seq, 2);
    assert_eq!(snapshot.envelopes.len(), 1);
    assert_eq!(snapshot.body_refs, [(BodyId(10), 1)]);
    assert_eq!(
        store.read_envelope(&mailbox(2), 1).unwrap(),
        Some(envelope(10, b"to two"))
    );
    assert_eq!(
        store.read_body(BodyId(10)).unwrap().as_deref(),
        Some(&b"body ten"[..])
    );
    assert_eq!(
        store.read_signed_bundle(&mailbox(1)).unwrap().as_deref(),
        Some(&b"bundle"[..])
    );
    assert_eq!(
        store.read_last_resort(&mailbox(1)).unwrap().as_deref(),
        Some(&b"last"[..])
    );
    let prekey = store
        .read_prekey(&mailbox(1), PrekeyKind::OneTimePq, 0)
        .unwrap();
    assert_eq!(prekey.as_deref(), Some(&b"pq"[..]));
    assert_eq!(store.body_count().unwrap(), 1);
}

// ---- corruption -------------------------------------------------------------

/// A raw record written behind the store's back, and a read through the
/// store that must then report [`StoreError::Corrupt`].
struct Corruption {
    keyspace: &'static str,
    key: Vec<u8>,
    value: Vec<u8>,
    check: fn(&FjallStore) -> Result<(), StoreError>,
}

fn load(store: &FjallStore) -> Result<(), StoreError> {
    store.load().map(drop)
}

fn corruptions() -> Vec<Corruption> {
    let m = |tail: &[u8]| [&[1u8; 32][..], tail].concat();
    let case = |keyspace, key: Vec<u8>, value: &[u8], check| Corruption {
        keyspace,
        key,
        value: value.to_vec(),
        check,
    };
    let seq = |n: u64| m(&n.to_be_bytes());
    let valid_mailbox = [&[1][..], &[0; 48]].concat();
    let lying_send_record = [&[1][..], &[0; 8], &2u32.to_be_bytes(), &[0]].concat();
    vec![
        // Mailbox values of the wrong length, wrong version, or empty; a short key.
        case(keyspaces::MAILBOXES, m(&[]), &[1, 2, 3], load),
        case(keyspaces::MAILBOXES, m(&[]), &[9; 49], load),
        case(keyspaces::MAILBOXES, m(&[]), &[], load),
        case(keyspaces::MAILBOXES, vec![1; 31], &valid_mailbox, load),
        case(keyspaces::SEND_TOKENS, m(&[2; 31]), &[1], load),
        // Truncated envelope, unknown version, short key.
        case(keyspaces::ENVELOPES, seq(1), &[1, 0, 0], load),
        case(keyspaces::ENVELOPES, seq(1), &[1, 0, 0], |s| {
            s.read_envelope(&MailboxId([1; 32]), 1).map(drop)
        }),
        case(keyspaces::ENVELOPES, seq(2), &[2; 40], |s| {
            s.read_envelope(&MailboxId([1; 32]), 2).map(drop)
        }),
        case(keyspaces::ENVELOPES, m(&[0; 3]), &[1; 29], load),
        case(
            keyspaces::BODY_REFS,
            seq(5)[32..].to_vec(),
            &[1, 0, 0, 0, 0, 0],
            load,
        ),
        case(keyspaces::BODY_REFS, vec![5], &[1, 0, 0, 0, 1], load),
        case(
            keyspaces::PREKEYS,
            m(&[3, 0, 0, 0, 0, 0, 0, 0, 0]),
            &[1],
            load,
        ),
        case(keyspaces::PREKEYS, m(&[1, 0]), &[1], load),
        case(keyspaces::BUNDLES, m(&[0]), &[1], load),
        case(
            keyspaces::SEND_RECORDS,
            vec![1; 16],
            &lying_send_record,
            load,
        ),
        case(keyspaces::SEND_RECORDS, vec![1; 15], &[1; 13], load),
        case(
            keyspaces::REGISTRATION_USES,
            vec![1; 32],
            &[0, 0, 0, 0, 1],
            load,
        ),
        // Opaque values are not read at load, only when delivered or fetched.
        case(keyspaces::BODIES, seq(5)[32..].to_vec(), &[], |s| {
            s.read_body(BodyId(5)).map(drop)
        }),
        case(keyspaces::BODIES, seq(5)[32..].to_vec(), &[7, 1, 2], |s| {
            s.read_body(BodyId(5)).map(drop)
        }),
        case(keyspaces::BUNDLES, m(&[1]), &[7, 1, 2], |s| {
            s.read_signed_bundle(&MailboxId([1; 32])).map(drop)
        }),
        case(keyspaces::BUNDLES, m(&[2]), &[], |s| {
            s.read_last_resort(&MailboxId([1; 32])).map(drop)
        }),
        case(
            keyspaces::PREKEYS,
            m(&[2, 0, 0, 0, 0, 0, 0, 0, 9]),
            &[0],
            |s| {
                s.read_prekey(&MailboxId([1; 32]), PrekeyKind::OneTimePq, 9)
                    .map(drop)
            },
        ),
    ]
}

/// Writes a raw pair into a keyspace of a closed store, through fjall.
fn write_raw(dir: &std::path::Path, corruption: &Corruption) {
    let db = Database::builder(dir).open().unwrap();
    let keyspace = db
        .keyspace(corruption.keyspace, KeyspaceCreateOptions::default)
        .unwrap();
    keyspace
        .insert(corruption.key.as_slice(), corruption.value.as_slice())
        .unwrap();
    db.persist(PersistMode::SyncAll).unwrap();
}

#[test]
fn fjall_corrupt_records_are_errors_not_panics() {
    for (n, corruption) in corruptions().iter().enumerate() {
        let (dir, store) = temp_fjall();
        commit(&store, vec![Mutation::PutMailbox(mailbox(2), record(2))]);
        drop(store);
        write_raw(dir.path(), corruption);
        let store = FjallStore::open(dir.path()).unwrap();
        let result = (corruption.check)(&store);
        let what = format!("case {n} in {}", corruption.keyspace);
        assert!(
            matches!(result, Err(StoreError::Corrupt(_))),
            "{what}: {result:?}"
        );
    }
}

// ---- both stores agree on random histories ----------------------------------

fn any_mailbox() -> impl Strategy<Value = MailboxId> {
    (0u8..3).prop_map(mailbox)
}

fn any_seq() -> impl Strategy<Value = u64> {
    prop::sample::select(vec![0, 1, 255, 256, u64::MAX])
}

fn any_kind() -> impl Strategy<Value = PrekeyKind> {
    prop_oneof![Just(PrekeyKind::OneTimeX25519), Just(PrekeyKind::OneTimePq)]
}

fn any_bytes() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from)
}

fn any_body() -> impl Strategy<Value = BodyId> {
    any_seq().prop_map(BodyId)
}

fn any_envelope() -> impl Strategy<Value = EnvelopeRecord> {
    (
        any_body(),
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        any_bytes(),
    )
        .prop_map(
            |(body_id, stored_at, expires_at, size, sealed_header)| EnvelopeRecord {
                meta: EnvelopeMeta {
                    body_id,
                    stored_at,
                    expires_at,
                    size,
                },
                sealed_header,
            },
        )
}

fn any_mutation() -> impl Strategy<Value = Mutation> {
    let token = (0u8..3).prop_map(token);
    let id = (0u8..3).prop_map(message_id);
    let mailbox_record =
        (any::<[u8; 32]>(), any::<u64>(), any::<u64>()).prop_map(|(key, created_at, next_seq)| {
            MailboxRecord {
                key,
                created_at,
                next_seq,
            }
        });
    let send_record = (any::<u64>(), prop::collection::vec(any::<i32>(), 0..5)).prop_map(
        |(expires_at, results)| SendRecord {
            expires_at,
            results,
        },
    );
    prop_oneof![
        (any_mailbox(), mailbox_record).prop_map(|(m, r)| Mutation::PutMailbox(m, r)),
        (any_mailbox(), token.clone()).prop_map(|(m, t)| Mutation::PutSendToken(m, t)),
        (any_mailbox(), token.clone()).prop_map(|(m, t)| Mutation::DeleteSendToken(m, t)),
        (any_body(), any_bytes(), any::<u32>()).prop_map(|(id, bytes, refs)| Mutation::PutBody {
            id,
            bytes,
            refs
        }),
        (any_body(), 1u32..).prop_map(|(id, refs)| Mutation::SetBodyRefs(id, refs)),
        any_body().prop_map(Mutation::DeleteBody),
        (any_mailbox(), any_seq(), any_envelope()).prop_map(|(mailbox, seq, record)| {
            Mutation::PutEnvelope {
                mailbox,
                seq,
                record,
            }
        }),
        (any_mailbox(), any_seq()).prop_map(|(m, seq)| Mutation::DeleteEnvelope(m, seq)),
        (any_mailbox(), any_bytes()).prop_map(|(m, b)| Mutation::PutSignedBundle(m, b)),
        (any_mailbox(), any_bytes()).prop_map(|(m, b)| Mutation::PutLastResort(m, b)),
        (any_mailbox(), any_kind(), any_seq(), any_bytes())
            .prop_map(|(m, k, i, b)| Mutation::PutPrekey(m, k, i, b)),
        (any_mailbox(), any_kind(), any_seq())
            .prop_map(|(m, k, i)| Mutation::DeletePrekey(m, k, i)),
        (id.clone(), send_record).prop_map(|(id, r)| Mutation::PutSendRecord(id, r)),
        id.prop_map(Mutation::DeleteSendRecord),
        (token, any::<u32>()).prop_map(|(t, uses)| Mutation::PutRegistrationUses(t, uses)),
    ]
}

fn any_history() -> impl Strategy<Value = Vec<Vec<Batch>>> {
    let batch =
        prop::collection::vec(any_mutation(), 0..8).prop_map(|mutations| Batch { mutations });
    prop::collection::vec(prop::collection::vec(batch, 0..3), 1..6)
}

/// Every point read over the small key domain the strategies draw from.
fn all_reads(store: &dyn MailboxStore) -> (Vec<Option<EnvelopeRecord>>, Vec<Option<Bytes>>) {
    let (mut envelopes, mut opaque) = (Vec::new(), Vec::new());
    let seqs = [0, 1, 255, 256, u64::MAX];
    for m in (0..3).map(mailbox) {
        opaque.push(store.read_signed_bundle(&m).unwrap());
        opaque.push(store.read_last_resort(&m).unwrap());
        for seq in seqs {
            envelopes.push(store.read_envelope(&m, seq).unwrap());
            for kind in [PrekeyKind::OneTimeX25519, PrekeyKind::OneTimePq] {
                opaque.push(store.read_prekey(&m, kind, seq).unwrap());
            }
        }
    }
    opaque.extend(seqs.map(|id| store.read_body(BodyId(id)).unwrap()));
    (envelopes, opaque)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn random_histories_agree_on_both_stores(history in any_history()) {
        let memory = MemoryStore::new();
        let (dir, fjall) = temp_fjall();
        for batches in &history {
            memory.commit(batches).unwrap();
            fjall.commit(batches).unwrap();
        }
        let expected = memory.load().unwrap();
        prop_assert_eq!(&fjall.load().unwrap(), &expected);
        prop_assert_eq!(all_reads(&fjall), all_reads(&memory));
        prop_assert_eq!(fjall.body_count().unwrap(), memory.body_count());
        drop(fjall);
        let reopened = FjallStore::open(dir.path()).unwrap();
        prop_assert_eq!(&reopened.load().unwrap(), &expected);
        prop_assert_eq!(all_reads(&reopened), all_reads(&memory));
    }
}

/// Start-up cost with a large backlog. Run by hand:
/// `cargo test --release -p hearth-relay --lib store::tests::fjall_loads_a_million_envelopes -- --ignored --nocapture`
#[test]
#[ignore = "benchmark-sized: run by hand in release mode"]
fn fjall_loads_a_million_envelopes() {
    const MAILBOXES: u64 = 1_000;
    const PER_MAILBOX: u64 = 1_000;
    let (dir, store) = temp_fjall();
    let write = std::time::Instant::now();
    for m in 0..MAILBOXES {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&m.to_be_bytes());
        let mutations = (0..PER_MAILBOX)
            .map(|seq| put_envelope(MailboxId(id), seq, envelope(seq, &[0x5A; 96])))
            .collect();
        commit(&store, mutations);
    }
    eprintln!("wrote 1M envelopes in {:?}", write.elapsed());
    drop(store);
    let store = FjallStore::open(dir.path()).unwrap();
    let load = std::time::Instant::now();
    let snapshot = store.load().unwrap();
    eprintln!(
        "loaded {} envelopes in {:?}",
        snapshot.envelopes.len(),
        load.elapsed()
    );
    assert_eq!(snapshot.envelopes.len(), 1_000_000);
}
