//! Property test: both stores end up with the same content after any
//! history of batches.

use super::*;

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
    let shared = any_body().prop_map(|id| (BodyRef::Shared(id), None));
    let inline = ((0u8..3).prop_map(message_id), any_bytes())
        .prop_map(|(id, body)| (BodyRef::Inline(id), Some(body)));
    (
        prop_oneof![shared, inline],
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        any_bytes(),
    )
        .prop_map(
            |((body_ref, body), stored_at, expires_at, size, sealed_header)| EnvelopeRecord {
                meta: EnvelopeMeta {
                    body: body_ref,
                    stored_at,
                    expires_at,
                    size,
                },
                sealed_header,
                body,
            },
        )
}

fn any_mutation() -> impl Strategy<Value = Mutation> {
    let token = (0u8..3).prop_map(token);
    let id = (0u8..3).prop_map(message_id);
    let mailbox_record = (any::<[u8; 32]>(), any::<u64>(), any::<u64>()).prop_map(
        |(key, created_at, reserved_seq)| MailboxRecord {
            key,
            created_at,
            reserved_seq,
        },
    );
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
        let expected = everything(&memory);
        prop_assert_eq!(&everything(&fjall), &expected);
        prop_assert_eq!(all_reads(&fjall), all_reads(&memory));
        prop_assert_eq!(fjall.body_count().unwrap(), memory.body_count());
        drop(fjall);
        let reopened = FjallStore::open(dir.path()).unwrap();
        prop_assert_eq!(&everything(&reopened), &expected);
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
    eprintln!("start-up load in {:?}", load.elapsed());
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&7u64.to_be_bytes());
    let one = std::time::Instant::now();
    let index = store.load_mailbox(&MailboxId(id)).unwrap();
    eprintln!(
        "loaded one mailbox of {} envelopes in {:?}",
        index.envelopes.len(),
        one.elapsed()
    );
    assert!(snapshot.mailboxes.is_empty());
    assert_eq!(index.envelopes.len(), 1_000);
}
