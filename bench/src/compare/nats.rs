//! NATS JetStream through async-nats: one file-storage stream with
//! interest retention (a message is removed once every consumer that
//! wants it acknowledged it), one subject per group and one durable pull
//! consumer per mailbox. A circle message is one publish that the
//! group's 30 consumers each receive. A send counts as acknowledged when
//! the stream's PubAck arrives.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::stream::{RetentionPolicy, StorageType};
use async_nats::jetstream::{self, Context as JetStream};
use bytes::Bytes;
use futures_util::{FutureExt as _, StreamExt as _};

use super::peer::{Durability, Peer, PeerReceiver, PeerSender, Topology};

/// Where the local server listens.
const URL: &str = "127.0.0.1:4222";
/// Most messages one `receive` returns.
const BATCH: usize = 64;
/// Unacknowledged messages a consumer may have out.
const MAX_ACK_PENDING: i64 = 10_000;

/// What an acknowledged JetStream publish means on this machine's server.
pub(crate) fn durability() -> Durability {
    Durability {
        fsynced_before_ack: false,
        note: "written to the file store's OS buffers; JetStream fsyncs on a timer \
               (sync_interval, default 2 min), not per message"
            .into(),
    }
}

/// The local NATS server with JetStream.
#[derive(Debug)]
pub(crate) struct NatsPeer {
    stream: String,
    topology: Mutex<Option<(Topology, JetStream)>>,
}

impl NatsPeer {
    /// A peer whose stream is unique to this run.
    pub(crate) fn new() -> Self {
        Self {
            stream: format!("hearth_bench_{}", rand::random::<u32>()),
            topology: Mutex::new(None),
        }
    }

    /// Whether the server accepts a connection and lets us make (and
    /// delete) a file-storage stream.
    pub(crate) async fn reachable() -> anyhow::Result<()> {
        let probe = Self::new();
        probe
            .prepare(Topology {
                groups: 1,
                fanout: 1,
            })
            .await
            .context("JetStream: creating a stream")?;
        probe.cleanup().await
    }

    fn subject(&self, group: usize) -> String {
        format!("{}.{group}", self.stream)
    }

    fn prepared(&self) -> anyhow::Result<(Topology, JetStream)> {
        self.topology
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .context("prepare was not called")
    }
}

/// A JetStream context on a new connection.
async fn connect() -> anyhow::Result<JetStream> {
    let client = tokio::time::timeout(Duration::from_secs(10), async_nats::connect(URL))
        .await
        .context("the NATS server did not answer")?
        .context("connecting to NATS")?;
    Ok(jetstream::new(client))
}

impl Peer for NatsPeer {
    type Sender = NatsSender;
    type Receiver = NatsReceiver;

    async fn prepare(&self, topology: Topology) -> anyhow::Result<()> {
        let js = connect().await?;
        js.create_stream(jetstream::stream::Config {
            name: self.stream.clone(),
            subjects: vec![format!("{}.>", self.stream)],
            storage: StorageType::File,
            retention: RetentionPolicy::Interest,
            ..Default::default()
        })
        .await
        .context("creating the JetStream stream")?;
        *self.topology.lock().unwrap_or_else(PoisonError::into_inner) = Some((topology, js));
        Ok(())
    }

    async fn connect_receiver(&self, mailbox: usize) -> anyhow::Result<NatsReceiver> {
        let (topology, _) = self.prepared()?;
        // Its own connection, like a device's.
        let js = connect().await?;
        let stream = js.get_stream(&self.stream).await?;
        let name = format!("m{mailbox}");
        let consumer: PullConsumer = stream
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: self.subject(topology.group_of(mailbox)),
                    ack_policy: AckPolicy::Explicit,
                    max_ack_pending: MAX_ACK_PENDING,
                    ..Default::default()
                },
            )
            .await
            .context("creating a durable consumer")?;
        let messages = consumer.messages().await?;
        Ok(NatsReceiver {
            messages,
            unacked: Vec::new(),
        })
    }

    async fn connect_sender(&self, group: usize) -> anyhow::Result<NatsSender> {
        Ok(NatsSender {
            js: connect().await?,
            subject: self.subject(group),
        })
    }

    async fn cleanup(&self) -> anyhow::Result<()> {
        let prepared = self
            .topology
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((_, js)) = prepared {
            js.delete_stream(&self.stream)
                .await
                .context("deleting the JetStream stream")?;
        }
        Ok(())
    }
}

/// A publishing connection.
pub(crate) struct NatsSender {
    js: JetStream,
    subject: String,
}

impl std::fmt::Debug for NatsSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSender").finish_non_exhaustive()
    }
}

impl PeerSender for NatsSender {
    async fn send(&self, _id: u64, body: Bytes) -> anyhow::Result<()> {
        let ack = self.js.publish(self.subject.clone(), body).await?;
        ack.await.context("no PubAck")?;
        Ok(())
    }
}

/// A durable consumer's message stream.
pub(crate) struct NatsReceiver {
    messages: pull::Stream,
    unacked: Vec<jetstream::Message>,
}

impl std::fmt::Debug for NatsReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsReceiver").finish_non_exhaustive()
    }
}

impl PeerReceiver for NatsReceiver {
    async fn receive(&mut self) -> anyhow::Result<Option<Vec<Bytes>>> {
        let Some(first) = self.messages.next().await else {
            return Ok(None);
        };
        self.unacked
            .push(first.map_err(|e| anyhow::anyhow!("pulling messages: {e}"))?);
        while self.unacked.len() < BATCH {
            match self.messages.next().now_or_never() {
                Some(Some(Ok(message))) => self.unacked.push(message),
                _ => break,
            }
        }
        Ok(Some(
            self.unacked
                .iter()
                .map(|m| m.message.payload.clone())
                .collect(),
        ))
    }

    async fn ack(&mut self) -> anyhow::Result<()> {
        for message in self.unacked.drain(..) {
            message
                .ack()
                .await
                .map_err(|e| anyhow::anyhow!("acknowledging: {e}"))?;
        }
        Ok(())
    }
}
