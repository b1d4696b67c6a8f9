//! Group commit: grouping, order, empty batches, failure, stop, prekey reads.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hearth_proto::relay::response::Kind;

use super::*;
use crate::core::response;
use crate::ids::{BodyId, MailboxId};
use crate::net::hot::HOT_CACHE_BYTES;
use crate::store::memory::MemoryStore;
use crate::store::{BodyRef, EnvelopeMeta, EnvelopeRecord, Mutation, Snapshot};

/// A store whose commits each wait for the test's go-ahead, so the test
/// controls what queues while a commit runs.
struct GatedStore {
    inner: MemoryStore,
    entered: Mutex<std::sync::mpsc::Sender<usize>>,
    release: Mutex<std::sync::mpsc::Receiver<()>>,
}

impl MailboxStore for GatedStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        self.inner.load()
    }
    fn load_mailbox(&self, mailbox: &MailboxId) -> Result<crate::store::MailboxIndex, StoreError> {
        self.inner.load_mailbox(mailbox)
    }
    fn read_send_record(
        &self,
        id: &crate::ids::ClientMessageId,
    ) -> Result<Option<crate::store::SendRecord>, StoreError> {
        self.inner.read_send_record(id)
    }
    fn expired_send_records(
        &self,
        now: crate::ids::Millis,
        limit: usize,
    ) -> Result<Vec<crate::ids::ClientMessageId>, StoreError> {
        self.inner.expired_send_records(now, limit)
    }
    fn commit(&self, batches: &[Batch]) -> Result<(), StoreError> {
        self.entered.lock().unwrap().send(batches.len()).unwrap();
        self.release.lock().unwrap().recv().unwrap();
        self.inner.commit(batches)
    }
    fn read_envelope(
        &self,
        mailbox: &MailboxId,
        seq: u64,
    ) -> Result<Option<EnvelopeRecord>, StoreError> {
        self.inner.read_envelope(mailbox, seq)
    }
    fn read_body(&self, id: crate::ids::BodyId) -> Result<Option<Bytes>, StoreError> {
        self.inner.read_body(id)
    }
    fn read_signed_bundle(&self, mailbox: &MailboxId) -> Result<Option<Bytes>, StoreError> {
        self.inner.read_signed_bundle(mailbox)
    }
    fn read_last_resort(&self, mailbox: &MailboxId) -> Result<Option<Bytes>, StoreError> {
        self.inner.read_last_resort(mailbox)
    }
    fn read_prekey(
        &self,
        mailbox: &MailboxId,
        kind: PrekeyKind,
        index: u64,
    ) -> Result<Option<Bytes>, StoreError> {
        self.inner.read_prekey(mailbox, kind, index)
    }
}

const MAILBOX: MailboxId = MailboxId([3; 32]);

/// A commit that stores one send token and answers with a response that
/// tells `n` apart.
fn commit(n: u32) -> Commit {
    let mut batch = Batch::default();
    batch.push(Mutation::PutSendToken(
        MAILBOX,
        crate::ids::TokenHash([n as u8; 32]),
    ));
    Commit {
        ticket: Ticket(u64::from(n)),
        batch,
        reply: Reply::Ready(acked(n)),
    }
}

fn acked(n: u32) -> pb::Response {
    response(Kind::Challenge(pb::Challenge {
        challenge: n.to_be_bytes().to_vec().into(),
    }))
}

/// Tickets reported to the core, in order, and whether the failure hook ran.
#[derive(Default)]
struct Reports {
    tickets: Mutex<Vec<u64>>,
    failed: AtomicBool,
}

fn spawn(store: Arc<dyn MailboxStore>) -> (Writer, WriterThread, Arc<Reports>) {
    spawn_with(store, Arc::new(HotEnvelopes::new(HOT_CACHE_BYTES)), |_| {})
}

/// Starts a writer whose report hook also runs `check` on each group.
fn spawn_with(
    store: Arc<dyn MailboxStore>,
    hot: Arc<HotEnvelopes>,
    check: impl Fn(&[Ticket]) + Send + 'static,
) -> (Writer, WriterThread, Arc<Reports>) {
    let reports = Arc::new(Reports::default());
    let on_committed = {
        let reports = Arc::clone(&reports);
        Box::new(move |tickets: &[Ticket]| {
            check(tickets);
            let mut reported = reports.tickets.lock().unwrap();
            reported.extend(tickets.iter().map(|ticket| ticket.0));
        })
    };
    let on_failure = {
        let reports = Arc::clone(&reports);
        Box::new(move || reports.failed.store(true, Ordering::SeqCst))
    };
    let (writer, thread) = Writer::spawn(store, hot, on_committed, on_failure).unwrap();
    (writer, thread, reports)
}

/// A commit that stores one envelope (seq `n`, body `n`) for `MAILBOX`.
fn envelope_commit(n: u64) -> Commit {
    let mut batch = Batch::default();
    batch.push(Mutation::PutBody {
        id: BodyId(n),
        bytes: Bytes::from(format!("body {n}")),
        refs: 1,
    });
    batch.push(Mutation::PutEnvelope {
        mailbox: MAILBOX,
        seq: n,
        record: EnvelopeRecord {
            meta: EnvelopeMeta {
                body: BodyRef::Shared(BodyId(n)),
                stored_at: 1,
                expires_at: 2,
                size: 10,
            },
            sealed_header: Bytes::from(format!("header {n}")),
            body: None,
        },
    });
    Commit {
        ticket: Ticket(n),
        batch,
        reply: Reply::Ready(acked(0)),
    }
}

async fn answer(pending: PendingCommit) -> Answer {
    tokio::time::timeout(Duration::from_secs(10), pending.answer())
        .await
        .expect("answered in time")
}

#[tokio::test]
async fn commits_queued_during_a_sync_share_the_next_one() {
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let store = Arc::new(GatedStore {
        inner: MemoryStore::default(),
        entered: Mutex::new(entered_tx),
        release: Mutex::new(release_rx),
    });
    let (writer, thread, reports) = spawn(store.clone());

    let first = writer.enqueue(commit(1));
    assert_eq!(
        entered.recv().unwrap(),
        1,
        "a lone commit is written at once, alone"
    );
    let rest: Vec<PendingCommit> = (2..=4).map(|n| writer.enqueue(commit(n))).collect();
    release.send(()).unwrap();
    assert_eq!(
        entered.recv().unwrap(),
        3,
        "the three queued meanwhile go in one group"
    );
    release.send(()).unwrap();

    assert_eq!(answer(first).await, Ok(acked(1)));
    for (n, pending) in (2..=4).zip(rest) {
        assert_eq!(answer(pending).await, Ok(acked(n)));
    }
    assert_eq!(store.inner.commits(), 2, "four sends, two fdatasyncs");
    assert_eq!(
        *reports.tickets.lock().unwrap(),
        [1, 2, 3, 4],
        "tickets reported in queue order"
    );
    writer.stop();
    thread.finished().await;
}

#[tokio::test]
async fn a_lone_commit_waits_for_nobody_and_is_durable_when_answered() {
    let store = Arc::new(MemoryStore::default());
    let (writer, thread, reports) = spawn(store.clone());
    assert_eq!(answer(writer.enqueue(commit(7))).await, Ok(acked(7)));
    assert_eq!(store.commits(), 1);
    assert_eq!(store.load().unwrap().send_tokens.len(), 1);
    assert_eq!(*reports.tickets.lock().unwrap(), [7]);
    writer.stop();
    thread.finished().await;
}

#[tokio::test]
async fn an_empty_batch_is_reported_and_answered_without_a_write() {
    let store = Arc::new(MemoryStore::default());
    let (writer, thread, reports) = spawn(store.clone());
    let empty = Commit {
        ticket: Ticket(9),
        batch: Batch::default(),
        reply: Reply::Ready(acked(0)),
    };
    assert_eq!(answer(writer.enqueue(empty)).await, Ok(acked(0)));
    assert_eq!(store.commits(), 0);
    assert_eq!(*reports.tickets.lock().unwrap(), [9]);
    writer.stop();
    thread.finished().await;
}

#[tokio::test]
async fn a_failed_commit_answers_internal_stops_the_writer_and_reports_nothing() {
    let store = Arc::new(MemoryStore::default());
    store.set_failing(true);
    let (writer, thread, reports) = spawn(store.clone());

    let failed = answer(writer.enqueue(commit(1))).await;
    assert_eq!(failed, Err(CommitFailed::Store));
    let code = match CommitFailed::Store.response().kind {
        Some(Kind::Error(error)) => error.code,
        other => panic!("expected an error, got {other:?}"),
    };
    assert_eq!(code, i32::from(ErrorCode::Internal));
    thread.finished().await;
    assert!(
        reports.failed.load(Ordering::SeqCst),
        "the relay is told to stop"
    );
    assert!(
        reports.tickets.lock().unwrap().is_empty(),
        "nothing reported durable"
    );
    assert_eq!(
        answer(writer.enqueue(commit(2))).await,
        Err(CommitFailed::Stopped)
    );
}

#[tokio::test]
async fn stop_commits_everything_queued_before_it() {
    let store = Arc::new(MemoryStore::default());
    let (writer, thread, _reports) = spawn(store.clone());
    let queued: Vec<PendingCommit> = (1..=3).map(|n| writer.enqueue(commit(n))).collect();
    writer.stop();
    for (n, pending) in (1..=3).zip(queued) {
        assert_eq!(answer(pending).await, Ok(acked(n)));
    }
    thread.finished().await;
    assert_eq!(store.load().unwrap().send_tokens.len(), 3);
    assert_eq!(
        answer(writer.enqueue(commit(4))).await,
        Err(CommitFailed::Stopped)
    );
}

#[tokio::test]
async fn a_prekey_fetch_reads_the_keys_its_own_batch_deletes() {
    let store = Arc::new(MemoryStore::default());
    let mut setup = Batch::default();
    setup.push(Mutation::PutSignedBundle(
        MAILBOX,
        Bytes::from_static(b"bundle"),
    ));
    setup.push(Mutation::PutPrekey(
        MAILBOX,
        PrekeyKind::OneTimeX25519,
        0,
        Bytes::from_static(b"otk"),
    ));
    setup.push(Mutation::PutLastResort(
        MAILBOX,
        Bytes::from_static(b"last resort"),
    ));
    store.commit(&[setup]).unwrap();
    let (writer, thread, _reports) = spawn(store.clone());

    let mut batch = Batch::default();
    batch.push(Mutation::DeletePrekey(
        MAILBOX,
        PrekeyKind::OneTimeX25519,
        0,
    ));
    let plan = PrekeyPlan {
        mailbox: MAILBOX,
        one_time: Some(0),
        one_time_pq: None,
    };
    let fetch = Commit {
        ticket: Ticket(1),
        batch,
        reply: Reply::Prekeys(plan),
    };
    let bundle = match answer(writer.enqueue(fetch)).await.unwrap().kind {
        Some(Kind::PrekeyBundle(bundle)) => bundle,
        other => panic!("expected a bundle, got {other:?}"),
    };

    assert_eq!(bundle.signed_bundle.as_ref(), b"bundle");
    assert_eq!(bundle.one_time_prekey.as_ref(), b"otk");
    assert_eq!(bundle.pq_prekey.as_ref(), b"last resort");
    assert!(bundle.pq_is_last_resort);
    assert_eq!(
        store
            .read_prekey(&MAILBOX, PrekeyKind::OneTimeX25519, 0)
            .unwrap(),
        None,
        "handed out once"
    );
    writer.stop();
    thread.finished().await;
}

#[tokio::test]
async fn a_group_is_in_the_hot_cache_before_its_tickets_are_reported() {
    let store = Arc::new(MemoryStore::default());
    let hot = Arc::new(HotEnvelopes::new(HOT_CACHE_BYTES));
    let seen_hot = Arc::new(AtomicBool::new(false));
    let check = {
        let (hot, seen_hot) = (Arc::clone(&hot), Arc::clone(&seen_hot));
        move |tickets: &[Ticket]| {
            let cache = hot.lock();
            let all_hot = tickets.iter().all(|ticket| {
                cache.header(&MAILBOX, ticket.0).is_some() && cache.body(BodyId(ticket.0)).is_some()
            });
            seen_hot.store(all_hot, Ordering::SeqCst);
        }
    };
    let (writer, thread, reports) = spawn_with(store, Arc::clone(&hot), check);

    assert_eq!(
        answer(writer.enqueue(envelope_commit(1))).await,
        Ok(acked(0))
    );
    assert!(
        seen_hot.load(Ordering::SeqCst),
        "cached before the core hears of it"
    );
    assert_eq!(*reports.tickets.lock().unwrap(), [1]);
    {
        let cache = hot.lock();
        assert_eq!(cache.header(&MAILBOX, 1).unwrap().as_ref(), b"header 1");
        assert_eq!(cache.body(BodyId(1)).unwrap().as_ref(), b"body 1");
    }
    writer.stop();
    thread.finished().await;
}

#[tokio::test]
async fn a_failed_commit_puts_nothing_in_the_hot_cache() {
    let store = Arc::new(MemoryStore::default());
    store.set_failing(true);
    let hot = Arc::new(HotEnvelopes::new(HOT_CACHE_BYTES));
    let (writer, thread, _reports) = spawn_with(store, Arc::clone(&hot), |_| {});
    assert_eq!(
        answer(writer.enqueue(envelope_commit(1))).await,
        Err(CommitFailed::Store)
    );
    thread.finished().await;
    let cache = hot.lock();
    assert_eq!(cache.header(&MAILBOX, 1), None);
    assert_eq!(cache.body(BodyId(1)), None);
}
