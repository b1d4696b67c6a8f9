//! The fjall store alone: counts, empty commits, locking, reopening, and
//! damaged records.

use super::*;

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
fn fjall_flush_writes_the_memtables_to_disk_tables() {
    let (dir, store) = temp_fjall();
    for batches in scenario() {
        store.commit(&batches).unwrap();
    }
    assert_eq!(store.table_counts().0, 0, "all in memtables so far");
    store.flush().unwrap();
    let (tables, sealed) = store.table_counts();
    assert!(tables > 0, "written to disk tables");
    assert_eq!(sealed, 0, "nothing left waiting for a flush");
    let before = everything(&store);
    drop(store);
    let store = FjallStore::open(dir.path()).unwrap();
    assert_eq!(everything(&store), before);
    store.flush().unwrap();
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
                reserved_seq: 2,
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
    assert_eq!(everything(&store), everything(&memory));
    assert_eq!(snapshot.mailboxes.len(), 2);
    assert_eq!(snapshot.mailboxes[0].1.reserved_seq, 2);
    assert_eq!(snapshot.next_body, 11);
    assert!(seqs(&store, 1).is_empty());
    let index = store.load_mailbox(&mailbox(2)).unwrap();
    assert_eq!(index.envelopes.len(), 1);
    assert_eq!(index.body_refs, [(BodyId(10), 1)]);
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

/// Stores an envelope of mailbox 1 pointing at body `[1; 8]`, then loads
/// the mailbox (which reads the body's count).
fn load_mailbox_with_body(store: &FjallStore) -> Result<(), StoreError> {
    let shared = EnvelopeRecord {
        meta: EnvelopeMeta {
            body: BodyRef::Shared(BodyId(u64::from_be_bytes([1; 8]))),
            ..envelope(0, b"").meta
        },
        ..envelope(0, b"")
    };
    commit(store, vec![put_envelope(MailboxId([1; 32]), 9, shared)]);
    load_mailbox_one(store)
}

fn load_mailbox_one(store: &FjallStore) -> Result<(), StoreError> {
    store.load_mailbox(&MailboxId([1; 32])).map(drop)
}

fn read_record_one(store: &FjallStore) -> Result<(), StoreError> {
    store.read_send_record(&ClientMessageId([1; 16])).map(drop)
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
        case(keyspaces::ENVELOPES, seq(1), &[1, 0, 0], load_mailbox_one),
        case(keyspaces::ENVELOPES, seq(1), &[2, 0, 0], load_mailbox_one),
        case(keyspaces::ENVELOPES, seq(1), &[1, 0, 0], |s| {
            s.read_envelope(&MailboxId([1; 32]), 1).map(drop)
        }),
        case(keyspaces::ENVELOPES, seq(2), &[2; 40], |s| {
            s.read_envelope(&MailboxId([1; 32]), 2).map(drop)
        }),
        case(keyspaces::ENVELOPES, m(&[0; 3]), &[1; 29], load_mailbox_one),
        // A count of the wrong length, read for an envelope pointing at it.
        case(
            keyspaces::BODY_REFS,
            [1; 8].to_vec(),
            &[1, 0, 0, 0, 0, 0],
            load_mailbox_with_body,
        ),
        // The highest body key is short.
        case(keyspaces::BODY_REFS, vec![0xFF], &[1, 0, 0, 0, 1], load),
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
            read_record_one,
        ),
        case(
            keyspaces::SEND_RECORDS,
            vec![1; 16],
            &[2; 13],
            read_record_one,
        ),
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

#[test]
fn fjall_reads_an_envelope_written_in_format_1_by_hand() {
    let (dir, store) = temp_fjall();
    drop(store);
    // 1 ‖ body 4 ‖ stored_at 10 ‖ expires_at 20 ‖ size 30 ‖ header
    let value = [
        &[1u8][..],
        &4u64.to_be_bytes(),
        &10u64.to_be_bytes(),
        &20u64.to_be_bytes(),
        &30u32.to_be_bytes(),
        b"old header",
    ]
    .concat();
    let key = [&[1u8; 32][..], &6u64.to_be_bytes()].concat();
    write_raw(
        dir.path(),
        &Corruption {
            keyspace: keyspaces::ENVELOPES,
            key,
            value,
            check: load,
        },
    );
    let store = FjallStore::open(dir.path()).unwrap();
    let meta = EnvelopeMeta {
        body: BodyRef::Shared(BodyId(4)),
        stored_at: 10,
        expires_at: 20,
        size: 30,
    };
    let index = store.load_mailbox(&MailboxId([1; 32])).unwrap();
    assert_eq!(index.envelopes, [(6, meta)]);
    let record = store.read_envelope(&MailboxId([1; 32]), 6).unwrap();
    assert_eq!(
        record,
        Some(EnvelopeRecord {
            meta,
            sealed_header: Bytes::from_static(b"old header"),
            body: None,
        })
    );
}

#[test]
fn fjall_start_reads_no_envelope() {
    // A corrupt envelope does not stop a start: envelopes are not read
    // until their mailbox loads.
    let (dir, store) = temp_fjall();
    commit(&store, vec![Mutation::PutMailbox(mailbox(1), record(1))]);
    drop(store);
    let key = [&[1u8; 32][..], &6u64.to_be_bytes()].concat();
    let corrupt = Corruption {
        keyspace: keyspaces::ENVELOPES,
        key,
        value: vec![9, 9, 9],
        check: load,
    };
    write_raw(dir.path(), &corrupt);
    let store = FjallStore::open(dir.path()).unwrap();
    assert_eq!(store.load().unwrap().mailboxes.len(), 1);
    assert!(matches!(
        store.load_mailbox(&mailbox(1)),
        Err(StoreError::Corrupt("envelope"))
    ));
}

// ---- both stores agree on random histories ----------------------------------
