//! NATS JetStream through async-nats: one file-storage stream with
//! interest retention (a message is removed once every consumer that
//! wants it acknowledged it), one subject per group and one durable pull
//! consumer per mailbox. A circle message is one publish that the
//! group's 30 consumers each receive. A send counts as acknowledged when
//! the stream's PubAck arrives. The server is the shared local one
//! ([`Server::local`]) or a private TLS instance ([`Server::tls`]).

use std::sync::{Arc, Mutex, PoisonError};
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

/// Where a NATS server listens and how to reach it.
#[derive(Clone, Debug)]
pub(crate) struct Server {
    url: String,
    /// TLS required, with this client configuration.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Server {
    /// The shared local server (plaintext TCP).
    pub(crate) fn local() -> Self {
        Self {
            url: URL.into(),
            tls: None,
        }
    }

    /// A private server on 127.0.0.1 that requires TLS; `config` trusts
    /// only its certificate.
    pub(crate) fn tls(port: u16, config: Arc<rustls::ClientConfig>) -> Self {
        Self {
            url: format!("tls://{}:{port}", super::tls::HOST),
            tls: Some(config),
        }
    }
}

/// A NATS server with JetStream.
#[derive(Debug)]
pub(crate) struct NatsPeer {
    server: Server,
    stream: String,
    topology: Mutex<Option<(Topology, JetStream)>>,
}

impl NatsPeer {
    /// A peer on `server` whose stream is unique to this run.
    pub(crate) fn new(server: Server) -> Self {
        Self {
            server,
            stream: format!("hearth_bench_{}", rand::random::<u32>()),
            topology: Mutex::new(None),
        }
    }

    /// Whether the server accepts a connection and lets us make (and
    /// delete) a file-storage stream.
    pub(crate) async fn reachable(server: &Server) -> anyhow::Result<()> {
        let probe = Self::new(server.clone());
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

/// A JetStream context on a new connection to `server`.
async fn connect(server: &Server) -> anyhow::Result<JetStream> {
    let mut options = async_nats::ConnectOptions::new();
    if let Some(config) = &server.tls {
        options = options
            .require_tls(true)
            .tls_client_config(rustls::ClientConfig::clone(config));
    }
    let client = tokio::time::timeout(Duration::from_secs(10), options.connect(&server.url))
        .await
        .context("the NATS server did not answer")?
        .context("connecting to NATS")?;
    Ok(jetstream::new(client))
}

impl Peer for NatsPeer {
    type Sender = NatsSender;
    type Receiver = NatsReceiver;

    async fn prepare(&self, topology: Topology) -> anyhow::Result<()> {
        let js = connect(&self.server).await?;
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
        let js = connect(&self.server).await?;
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
            js: connect(&self.server).await?,
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
