//! Mosquitto through rumqttc: MQTT 3.1.1, QoS 1 both ways, persistent
//! sessions (`clean_session = false`) so a recipient that is away gets
//! what was published meanwhile. A group is a topic; a circle message is
//! one publish to a topic its members subscribe to. A send counts as
//! acknowledged when its PUBACK arrives; a recipient acknowledges (manual
//! acks) after recording what it received. The broker is the shared
//! local one ([`Broker::local`]) or a private TLS instance.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS, TlsConfiguration,
    Transport,
};
use tokio::sync::{mpsc, oneshot};

use super::peer::{Durability, Peer, PeerReceiver, PeerSender, Topology};

/// Where the local broker listens.
const HOST: &str = "127.0.0.1";
/// Its port.
const PORT: u16 = 1883;
/// Requests a client may queue for its event loop.
const REQUEST_CAPACITY: usize = 256;
/// How long connecting and subscribing may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// What an acknowledged MQTT publish means on this machine's Mosquitto.
pub(crate) fn durability() -> Durability {
    Durability {
        fsynced_before_ack: false,
        note: "in memory; Mosquitto (persistence true) writes its database every \
               autosave_interval (default 30 min) and at shutdown, never fsync per message"
            .into(),
    }
}

/// Where a broker listens and how to reach it.
#[derive(Clone, Debug)]
pub(crate) struct Broker {
    host: String,
    port: u16,
    /// TLS: the only root certificate to trust, in PEM.
    tls_root_pem: Option<Vec<u8>>,
}

impl Broker {
    /// The shared local broker (plaintext TCP).
    pub(crate) fn local() -> Self {
        Self {
            host: HOST.into(),
            port: PORT,
            tls_root_pem: None,
        }
    }

    /// A private broker's TLS listener on 127.0.0.1, trusting only
    /// `root_pem`.
    pub(crate) fn tls(port: u16, root_pem: &str) -> Self {
        Self {
            host: super::tls::HOST.into(),
            port,
            tls_root_pem: Some(root_pem.as_bytes().to_vec()),
        }
    }
}

/// A Mosquitto broker.
#[derive(Debug)]
pub(crate) struct MqttPeer {
    broker: Broker,
    run: u32,
    topology: Mutex<Option<Topology>>,
}

impl MqttPeer {
    /// A peer on `broker` whose topics and client ids are unique to this
    /// run.
    pub(crate) fn new(broker: Broker) -> Self {
        Self {
            broker,
            run: rand::random(),
            topology: Mutex::new(None),
        }
    }

    /// Whether the broker accepts a connection.
    pub(crate) async fn reachable(broker: &Broker) -> anyhow::Result<()> {
        let (client, events) = open(
            broker,
            &format!("hearth_bench_probe_{}", rand::random::<u32>()),
            true,
        );
        let connected = wait_connected(events).await;
        let _ = client.disconnect().await;
        connected
    }

    fn topic(&self, group: usize) -> String {
        format!("hearth_bench/{}/{group}", self.run)
    }

    fn client_id(&self, mailbox: usize) -> String {
        format!("hearth_bench_{}_{mailbox}", self.run)
    }

    fn topology(&self) -> anyhow::Result<Topology> {
        self.topology
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .context("prepare was not called")
    }
}

/// A client of `broker` and its event loop; `clean` starts a fresh
/// session.
fn open(broker: &Broker, client_id: &str, clean: bool) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(client_id, broker.host.clone(), broker.port);
    if let Some(ca) = &broker.tls_root_pem {
        options.set_transport(Transport::Tls(TlsConfiguration::Simple {
            ca: ca.clone(),
            alpn: None,
            client_auth: None,
        }));
    }
    options
        .set_clean_session(clean)
        .set_keep_alive(Duration::from_secs(30))
        .set_manual_acks(true)
        .set_inflight(256)
        .set_max_packet_size(1 << 20, 1 << 20);
    AsyncClient::new(options, REQUEST_CAPACITY)
}

/// Polls `events` until the broker accepted the connection.
async fn wait_connected(mut events: EventLoop) -> anyhow::Result<()> {
    tokio::time::timeout(CONNECT_TIMEOUT, async {
        loop {
            if let Event::Incoming(Packet::ConnAck(_)) = events.poll().await? {
                return Ok(());
            }
        }
    })
    .await
    .context("the MQTT broker did not answer")?
}

impl Peer for MqttPeer {
    type Sender = MqttSender;
    type Receiver = MqttReceiver;

    async fn prepare(&self, topology: Topology) -> anyhow::Result<()> {
        *self.topology.lock().unwrap_or_else(PoisonError::into_inner) = Some(topology);
        Ok(())
    }

    async fn connect_receiver(&self, mailbox: usize) -> anyhow::Result<MqttReceiver> {
        let topology = self.topology()?;
        let (client, events) = open(&self.broker, &self.client_id(mailbox), false);
        let (publishes, inbox) = mpsc::unbounded_channel();
        let (subscribed, on_subscribed) = oneshot::channel();
        tokio::spawn(drive_receiver(events, publishes, subscribed));
        client
            .subscribe(self.topic(topology.group_of(mailbox)), QoS::AtLeastOnce)
            .await?;
        tokio::time::timeout(CONNECT_TIMEOUT, on_subscribed)
            .await
            .context("no SUBACK from the MQTT broker")?
            .context("the MQTT connection closed before SUBACK")?;
        Ok(MqttReceiver {
            client,
            inbox,
            unacked: Vec::new(),
        })
    }

    async fn connect_sender(&self, group: usize) -> anyhow::Result<MqttSender> {
        let id = format!("hearth_bench_{}_sender_{group}", self.run);
        let (client, events) = open(&self.broker, &id, true);
        let acks = Arc::new(Mutex::new(PendingAcks::default()));
        tokio::spawn(drive_sender(events, Arc::clone(&acks)));
        Ok(MqttSender {
            client,
            topic: self.topic(group),
            acks,
            order: tokio::sync::Mutex::new(()),
        })
    }

    async fn cleanup(&self) -> anyhow::Result<()> {
        // A clean-session connection discards each recipient's persistent
        // session on the broker.
        let Some(topology) = self
            .topology
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return Ok(());
        };
        for mailbox in 0..topology.mailboxes() {
            let (client, events) = open(&self.broker, &self.client_id(mailbox), true);
            wait_connected(events).await?;
            let _ = client.disconnect().await;
        }
        Ok(())
    }
}

/// Forwards a recipient's incoming publishes; signals the first SUBACK.
async fn drive_receiver(
    mut events: EventLoop,
    publishes: mpsc::UnboundedSender<Publish>,
    subscribed: oneshot::Sender<()>,
) {
    let mut subscribed = Some(subscribed);
    while let Ok(event) = events.poll().await {
        match event {
            Event::Incoming(Packet::Publish(publish)) => {
                let taken = publishes.send(publish).is_ok();
                if !taken {
                    return;
                }
            }
            Event::Incoming(Packet::SubAck(_)) => {
                if let Some(signal) = subscribed.take() {
                    let _ = signal.send(());
                }
            }
            Event::Outgoing(Outgoing::Disconnect) => return,
            _ => {}
        }
    }
}

/// Publishes waiting for their packet id, then for their PUBACK.
#[derive(Debug, Default)]
struct PendingAcks {
    /// In the order they were handed to the event loop.
    queued: VecDeque<oneshot::Sender<()>>,
    /// By packet id, once sent.
    sent: HashMap<u16, oneshot::Sender<()>>,
}

/// Matches a sender's PUBACKs to its publishes.
async fn drive_sender(mut events: EventLoop, acks: Arc<Mutex<PendingAcks>>) {
    while let Ok(event) = events.poll().await {
        let mut acks = acks.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                if let Some(waiter) = acks.queued.pop_front() {
                    acks.sent.insert(pkid, waiter);
                }
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                if let Some(waiter) = acks.sent.remove(&ack.pkid) {
                    let _ = waiter.send(());
                }
            }
            _ => {}
        }
    }
    // Dropping the waiters fails the sends still waiting.
    let mut acks = acks.lock().unwrap_or_else(PoisonError::into_inner);
    acks.queued.clear();
    acks.sent.clear();
}

/// A publishing client.
pub(crate) struct MqttSender {
    client: AsyncClient,
    topic: String,
    acks: Arc<Mutex<PendingAcks>>,
    /// Keeps the waiters in the order the publishes enter the event loop.
    order: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for MqttSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSender").finish_non_exhaustive()
    }
}

impl PeerSender for MqttSender {
    async fn send(&self, _id: u64, body: Bytes) -> anyhow::Result<()> {
        let (acked, on_acked) = oneshot::channel();
        {
            let _order = self.order.lock().await;
            self.acks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .queued
                .push_back(acked);
            self.client
                .publish_bytes(self.topic.clone(), QoS::AtLeastOnce, false, body)
                .await?;
        }
        if on_acked.await.is_err() {
            bail!("the MQTT connection closed before PUBACK");
        }
        Ok(())
    }
}

/// A subscribing client with a persistent session.
pub(crate) struct MqttReceiver {
    client: AsyncClient,
    inbox: mpsc::UnboundedReceiver<Publish>,
    unacked: Vec<Publish>,
}

impl std::fmt::Debug for MqttReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttReceiver").finish_non_exhaustive()
    }
}

impl PeerReceiver for MqttReceiver {
    async fn receive(&mut self) -> anyhow::Result<Option<Vec<Bytes>>> {
        let Some(first) = self.inbox.recv().await else {
            return Ok(None);
        };
        self.unacked.push(first);
        while let Ok(more) = self.inbox.try_recv() {
            self.unacked.push(more);
        }
        Ok(Some(
            self.unacked.iter().map(|p| p.payload.clone()).collect(),
        ))
    }

    async fn ack(&mut self) -> anyhow::Result<()> {
        for publish in self.unacked.drain(..) {
            self.client.ack(&publish).await?;
        }
        Ok(())
    }
}

impl Drop for MqttReceiver {
    fn drop(&mut self) {
        // Leave the session on the broker; just close the connection.
        let _ = self.client.try_disconnect();
    }
}
