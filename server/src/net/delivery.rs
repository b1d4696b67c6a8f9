//! Deliveries: `Delivery` frames on one long-lived relay-opened
//! unidirectional stream per connection (DESIGN.md section 3).
//!
//! Every connection has one delivery task. It sleeps on a [`Notify`] that the
//! writer pokes when a commit made envelopes deliverable on the connection
//! (and that a request stream pokes after authenticating), then drains
//! [`crate::core::RelayCore::poll_delivery`]: for each plan it takes the
//! envelopes and their bodies from the hot cache (`net/hot.rs`), where the
//! writer put them on commit, and reads whatever is missing there (an older
//! backlog, after eviction or a restart) from the store on a blocking thread.
//! The frames of one drain go out in one write on the connection's delivery
//! stream, opened on the first delivery and kept open; if the client stops
//! it, the next delivery opens a new one. It never waits for the peer to
//! acknowledge the stream (`stopped()`): the client's cumulative `Ack` does
//! that.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use hearth_proto::relay as pb;
use prost::Message as _;
use quinn::{Connection, SendStream};
use tokio::sync::Notify;
use tracing::{debug, error};

use super::hot::HotEnvelopes;
use super::{CLOSE_INTERNAL, Shell};
use crate::core::DeliveryPlan;
use crate::ids::ConnId;
use crate::store::{BodyRef, EnvelopeMeta, MailboxStore, StoreError};

/// The delivery wake-ups of live connections, shared by the request tasks
/// and the writer thread.
#[derive(Debug, Default)]
pub(crate) struct Wakers(Mutex<HashMap<ConnId, Arc<Notify>>>);

impl Wakers {
    /// Registers a new connection and returns its wake-up.
    pub(crate) fn register(&self, conn: ConnId) -> Arc<Notify> {
        let notify = Arc::new(Notify::new());
        self.lock().insert(conn, Arc::clone(&notify));
        notify
    }

    /// Forgets a closed connection.
    pub(crate) fn remove(&self, conn: ConnId) {
        self.lock().remove(&conn);
    }

    /// Wakes the delivery tasks of these connections. A wake-up that arrives
    /// while a task is busy is kept, so none is lost.
    pub(crate) fn wake(&self, conns: &[ConnId]) {
        if conns.is_empty() {
            return;
        }
        let wakers = self.lock();
        for conn in conns {
            if let Some(notify) = wakers.get(conn) {
                notify.notify_one();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ConnId, Arc<Notify>>> {
        // The map holds no invariant a panic could break.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why a delivery could not be made.
#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    /// Reading envelopes or bodies from the store failed.
    #[error("could not read envelopes for delivery: {0}")]
    Store(#[from] StoreError),
    /// The blocking read task panicked or was cancelled.
    #[error("the envelope reader task failed")]
    Reader,
    /// Opening or writing the stream failed (the connection is going away).
    #[error("could not write a delivery: {0}")]
    Write(String),
}

/// The delivery task of one connection; returns when the connection closes.
pub(super) async fn run(
    shell: Arc<Shell>,
    conn: ConnId,
    connection: Connection,
    wake: Arc<Notify>,
) {
    let closed = connection.closed();
    let mut closed = std::pin::pin!(closed);
    let mut stream = DeliveryStream::default();
    loop {
        tokio::select! {
            () = wake.notified() => {}
            _ = &mut closed => return,
        }
        match drain(&shell, conn, &connection, &mut stream).await {
            Ok(()) => {}
            Err(DeliveryError::Write(reason)) => {
                debug!(?conn, %reason, "delivery stream failed");
            }
            Err(failure) => {
                // The core counts these envelopes as in flight: only a
                // reconnect redelivers them, so ask the client for one.
                error!(?conn, error = %failure, "delivery failed; closing the connection");
                connection.close(CLOSE_INTERNAL, b"delivery failed");
                return;
            }
        }
    }
}

/// Most bytes of frames gathered before they are written, so that a large
/// backlog streams out rather than piling up in memory.
const WRITE_BATCH_BYTES: usize = 256 * 1024;

/// Sends every delivery the core has for this connection now, the frames of
/// several plans in one write.
async fn drain(
    shell: &Arc<Shell>,
    conn: ConnId,
    connection: &Connection,
    stream: &mut DeliveryStream,
) -> Result<(), DeliveryError> {
    let mut out = Vec::new();
    loop {
        // A statement of its own, so the lock is released before any await.
        let plan = shell.core().poll_delivery(conn);
        let Some(plan) = plan else { break };
        let delivery = match hot_delivery(&shell.hot, &plan) {
            Some(delivery) => delivery,
            None => {
                let (store, hot) = (Arc::clone(&shell.store), Arc::clone(&shell.hot));
                let read = move || read_delivery(store.as_ref(), &hot, &plan);
                tokio::task::spawn_blocking(read)
                    .await
                    .map_err(|_| DeliveryError::Reader)??
            }
        };
        if delivery.envelopes.is_empty() {
            continue;
        }
        delivery
            .encode_length_delimited(&mut out)
            .unwrap_or_else(|_| unreachable!("a Vec grows as needed"));
        if out.len() >= WRITE_BATCH_BYTES {
            stream.write(connection, std::mem::take(&mut out)).await?;
        }
    }
    if !out.is_empty() {
        stream.write(connection, out).await?;
    }
    Ok(())
}

/// The connection's delivery stream, opened on first use.
#[derive(Default)]
struct DeliveryStream(Option<SendStream>);

impl DeliveryStream {
    /// Writes whole frames; on failure the stream is dropped, so the next
    /// write opens a new one.
    async fn write(
        &mut self,
        connection: &Connection,
        frames: Vec<u8>,
    ) -> Result<(), DeliveryError> {
        let write_failed =
            |failure: &dyn std::fmt::Display| DeliveryError::Write(failure.to_string());
        let stream = match &mut self.0 {
            Some(stream) => stream,
            None => {
                let opened = connection.open_uni().await.map_err(|e| write_failed(&e))?;
                self.0.insert(opened)
            }
        };
        // Handed over whole: quinn keeps the buffer instead of copying it.
        if let Err(failure) = stream.write_chunk(Bytes::from(frames)).await {
            self.0 = None;
            return Err(write_failed(&failure));
        }
        Ok(())
    }
}

/// The plan's `Delivery` frame from the hot cache alone, or `None` if any
/// of its envelopes or bodies is not there. Never blocks on the store.
fn hot_delivery(hot: &HotEnvelopes, plan: &DeliveryPlan) -> Option<pb::Delivery> {
    let hot = hot.lock();
    let envelopes = plan
        .envelopes
        .iter()
        .map(|&(seq, meta)| {
            let header = hot.header(&plan.mailbox, seq)?;
            let body = hot.envelope_body(&plan.mailbox, seq, meta.body)?;
            Some(envelope(seq, meta, header, body))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(delivery(plan, envelopes))
}

/// Reads a plan's envelopes and bodies into one `Delivery` frame, from the
/// hot cache where they are still there and from the store otherwise. An
/// envelope the store no longer has (acknowledged meanwhile) is skipped.
fn read_delivery(
    store: &dyn MailboxStore,
    hot: &HotEnvelopes,
    plan: &DeliveryPlan,
) -> Result<pb::Delivery, StoreError> {
    let mut envelopes = Vec::with_capacity(plan.envelopes.len());
    for &(seq, meta) in &plan.envelopes {
        let (header, body) = {
            let hot = hot.lock();
            let header = hot.header(&plan.mailbox, seq);
            (header, hot.envelope_body(&plan.mailbox, seq, meta.body))
        };
        let found = match (header, body, meta.body) {
            (Some(header), Some(body), _) => Some((header, body)),
            // An inline envelope: one read gives header and body.
            (_, _, BodyRef::Inline(_)) => store
                .read_envelope(&plan.mailbox, seq)?
                .map(|record| (record.sealed_header, record.body.unwrap_or_default())),
            (header, body, BodyRef::Shared(id)) => {
                let header = match header {
                    Some(header) => Some(header),
                    None => store
                        .read_envelope(&plan.mailbox, seq)?
                        .map(|record| record.sealed_header),
                };
                match (header, body) {
                    (Some(header), Some(body)) => Some((header, body)),
                    (Some(header), None) => store.read_body(id)?.map(|body| (header, body)),
                    (None, _) => None,
                }
            }
        };
        let Some((header, body)) = found else {
            continue;
        };
        envelopes.push(envelope(seq, meta, header, body));
    }
    Ok(delivery(plan, envelopes))
}

/// One envelope of a `Delivery` frame.
fn envelope(seq: u64, meta: EnvelopeMeta, sealed_header: Bytes, body: Bytes) -> pb::Envelope {
    pb::Envelope {
        seq,
        sealed_header,
        body,
        stored_at_ms: meta.stored_at,
    }
}

/// A plan's `Delivery` frame holding `envelopes`.
fn delivery(plan: &DeliveryPlan, envelopes: Vec<pb::Envelope>) -> pb::Delivery {
    pb::Delivery {
        mailbox_id: Bytes::copy_from_slice(&plan.mailbox.0),
        envelopes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{BodyId, MailboxId};
    use crate::net::hot::HOT_CACHE_BYTES;
    use crate::store::memory::MemoryStore;
    use crate::store::{Batch, EnvelopeMeta, EnvelopeRecord, Mutation};

    fn meta(body: u64, stored_at: u64) -> EnvelopeMeta {
        EnvelopeMeta {
            body: BodyRef::Shared(BodyId(body)),
            stored_at,
            expires_at: stored_at + 1000,
            size: 10,
        }
    }

    fn store_envelope(
        mailbox: MailboxId,
        seq: u64,
        body: u64,
        header: &'static [u8],
    ) -> Vec<Mutation> {
        vec![
            Mutation::PutBody {
                id: BodyId(body),
                bytes: Bytes::from(format!("body {body}")),
                refs: 1,
            },
            Mutation::PutEnvelope {
                mailbox,
                seq,
                record: EnvelopeRecord {
                    meta: meta(body, 100 + seq),
                    sealed_header: Bytes::from_static(header),
                    body: None,
                },
            },
        ]
    }

    #[test]
    fn delivery_holds_stored_envelopes_in_plan_order_and_skips_acknowledged_ones() {
        let store = MemoryStore::default();
        let mailbox = MailboxId([7; 32]);
        let mut batch = Batch::default();
        for mutation in store_envelope(mailbox, 1, 10, b"h1")
            .into_iter()
            .chain(store_envelope(mailbox, 3, 30, b"h3"))
        {
            batch.push(mutation);
        }
        store.commit(&[batch]).unwrap();
        let plan = DeliveryPlan {
            mailbox,
            // Seq 2 was acknowledged (deleted) after the plan was made.
            envelopes: vec![(1, meta(10, 101)), (2, meta(20, 102)), (3, meta(30, 103))],
        };

        let cold = HotEnvelopes::new(HOT_CACHE_BYTES);
        assert_eq!(hot_delivery(&cold, &plan), None, "nothing hot");
        let delivery = read_delivery(&store, &cold, &plan).unwrap();

        assert_eq!(delivery.mailbox_id.as_ref(), &[7; 32]);
        let seqs: Vec<u64> = delivery.envelopes.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 3]);
        assert_eq!(delivery.envelopes[0].sealed_header.as_ref(), b"h1");
        assert_eq!(delivery.envelopes[1].body.as_ref(), b"body 30");
        assert_eq!(delivery.envelopes[1].stored_at_ms, 103);
    }

    /// A store and a hot cache that both hold envelopes 1 and 2 (bodies 10
    /// and 20); the hot cache's copies differ, to tell which one was read.
    fn stored_and_hot(mailbox: MailboxId) -> (MemoryStore, HotEnvelopes) {
        let store = MemoryStore::default();
        let stored: Vec<Mutation> = store_envelope(mailbox, 1, 10, b"h1")
            .into_iter()
            .chain(store_envelope(mailbox, 2, 20, b"h2"))
            .collect();
        store
            .commit(&[Batch {
                mutations: stored.clone(),
            }])
            .unwrap();
        let hot_copies = stored
            .into_iter()
            .map(|mutation| match mutation {
                Mutation::PutBody { id, refs, .. } => Mutation::PutBody {
                    id,
                    bytes: Bytes::from(format!("hot body {}", id.0)),
                    refs,
                },
                other => other,
            })
            .collect();
        let hot = HotEnvelopes::new(HOT_CACHE_BYTES);
        hot.apply(&[Batch {
            mutations: hot_copies,
        }]);
        (store, hot)
    }

    #[test]
    fn a_plan_of_hot_envelopes_is_built_without_the_store() {
        let mailbox = MailboxId([7; 32]);
        let (_store, hot) = stored_and_hot(mailbox);
        let plan = DeliveryPlan {
            mailbox,
            envelopes: vec![(1, meta(10, 101)), (2, meta(20, 102))],
        };
        let delivery = hot_delivery(&hot, &plan).expect("all hot");
        let bodies: Vec<&[u8]> = delivery.envelopes.iter().map(|e| e.body.as_ref()).collect();
        assert_eq!(bodies, [b"hot body 10".as_slice(), b"hot body 20"]);
        assert_eq!(delivery.envelopes[1].sealed_header.as_ref(), b"h2");
        assert_eq!(delivery.envelopes[1].stored_at_ms, 102);
    }

    #[test]
    fn a_miss_in_the_hot_cache_falls_back_to_the_store() {
        let mailbox = MailboxId([7; 32]);
        let (store, hot) = stored_and_hot(mailbox);
        // Evicted from the cache (not deleted from the store).
        hot.apply(&[Batch {
            mutations: vec![Mutation::DeleteBody(BodyId(20))],
        }]);
        let plan = DeliveryPlan {
            mailbox,
            envelopes: vec![(1, meta(10, 101)), (2, meta(20, 102))],
        };
        assert_eq!(hot_delivery(&hot, &plan), None, "one body is missing");
        let delivery = read_delivery(&store, &hot, &plan).unwrap();
        let bodies: Vec<&[u8]> = delivery.envelopes.iter().map(|e| e.body.as_ref()).collect();
        assert_eq!(
            bodies,
            [b"hot body 10".as_slice(), b"body 20"],
            "hot where possible, stored for the miss"
        );
    }

    #[test]
    fn an_inline_envelope_is_delivered_from_the_cache_or_one_store_read() {
        let mailbox = MailboxId([7; 32]);
        let meta = EnvelopeMeta {
            body: BodyRef::Inline(crate::ids::ClientMessageId([5; 16])),
            stored_at: 42,
            expires_at: 1000,
            size: 12,
        };
        let put = Batch {
            mutations: vec![Mutation::PutEnvelope {
                mailbox,
                seq: 4,
                record: EnvelopeRecord {
                    meta,
                    sealed_header: Bytes::from_static(b"hdr"),
                    body: Some(Bytes::from_static(b"inline body")),
                },
            }],
        };
        let store = MemoryStore::default();
        store.commit(std::slice::from_ref(&put)).unwrap();
        let plan = DeliveryPlan {
            mailbox,
            envelopes: vec![(4, meta)],
        };
        let cold = HotEnvelopes::new(HOT_CACHE_BYTES);
        assert_eq!(hot_delivery(&cold, &plan), None);
        let from_store = read_delivery(&store, &cold, &plan).unwrap();
        let hot = HotEnvelopes::new(HOT_CACHE_BYTES);
        hot.apply(&[put]);
        let from_cache = hot_delivery(&hot, &plan).expect("all hot");
        assert_eq!(from_store, from_cache);
        let envelope = &from_cache.envelopes[0];
        assert_eq!(envelope.body.as_ref(), b"inline body");
        assert_eq!(envelope.sealed_header.as_ref(), b"hdr");
        assert_eq!((envelope.seq, envelope.stored_at_ms), (4, 42));
    }

    #[test]
    fn wakers_keep_a_wake_up_for_a_busy_task_and_forget_removed_connections() {
        let wakers = Wakers::default();
        let notify = wakers.register(ConnId(1));
        wakers.wake(&[ConnId(1), ConnId(2)]);
        // The permit was stored: the next wait returns at once.
        let woken = futures_now(notify.notified());
        assert!(woken);
        wakers.remove(ConnId(1));
        wakers.wake(&[ConnId(1)]);
        assert!(!futures_now(notify.notified()));
    }

    /// Polls a future once: true if it was ready.
    fn futures_now(future: impl std::future::Future<Output = ()>) -> bool {
        let mut future = std::pin::pin!(future);
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        future.as_mut().poll(&mut context).is_ready()
    }
}
