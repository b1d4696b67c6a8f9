//! Hearth: the relay this tool started, through the SDK's `RelayClient`.
//! A circle message is one send request with one recipient per member;
//! the relay fdatasyncs it (group commit) before it answers.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use hearth_client::{OutgoingRecipient, OutgoingSend, RelayAddress, RelayClient};

use super::peer::{Durability, Peer, PeerReceiver, PeerSender, Topology};
use crate::fleet::{EndpointPool, Mailbox, connect};
use crate::probe::Probe;

/// What an acknowledged Hearth send means.
pub(crate) fn durability() -> Durability {
    Durability {
        fsynced_before_ack: true,
        note: "fdatasync before answering (group commit of concurrent sends)".into(),
    }
}

/// The relay at `address`.
#[derive(Debug)]
pub(crate) struct HearthPeer {
    address: RelayAddress,
    per_endpoint: usize,
    setup: Mutex<Option<Arc<Setup>>>,
}

/// What `prepare` made.
#[derive(Debug)]
struct Setup {
    topology: Topology,
    pool: EndpointPool,
    mailboxes: Vec<Mailbox>,
    registered: Vec<AtomicBool>,
}

impl HearthPeer {
    /// A peer for the relay at `address`; client connections share UDP
    /// sockets, `per_endpoint` on each.
    pub(crate) fn new(address: RelayAddress, per_endpoint: usize) -> Self {
        Self {
            address,
            per_endpoint,
            setup: Mutex::new(None),
        }
    }

    fn setup(&self) -> anyhow::Result<Arc<Setup>> {
        self.setup
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .context("prepare was not called")
    }
}

impl Peer for HearthPeer {
    type Sender = HearthSender;
    type Receiver = HearthReceiver;

    async fn prepare(&self, topology: Topology) -> anyhow::Result<()> {
        let mailboxes = topology.mailboxes();
        let setup = Setup {
            topology,
            pool: EndpointPool::new(mailboxes + topology.groups, self.per_endpoint)?,
            mailboxes: (0..mailboxes).map(|_| Mailbox::random()).collect(),
            registered: (0..mailboxes).map(|_| AtomicBool::new(false)).collect(),
        };
        *self.setup.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(setup));
        Ok(())
    }

    async fn connect_receiver(&self, mailbox: usize) -> anyhow::Result<HearthReceiver> {
        let setup = self.setup()?;
        let client = connect(&self.address, &setup.pool, mailbox).await?;
        let owner = &setup.mailboxes[mailbox];
        if setup.registered[mailbox].swap(true, Relaxed) {
            client
                .authenticate(owner.id, &owner.key)
                .await
                .context("authenticating a mailbox")?;
        } else {
            owner.open(&client).await?;
        }
        Ok(HearthReceiver {
            client: Arc::new(client),
            mailbox_id: owner.id,
            last_delivered: None,
        })
    }

    async fn connect_sender(&self, group: usize) -> anyhow::Result<HearthSender> {
        let setup = self.setup()?;
        let slot = setup.topology.mailboxes() + group;
        let client = connect(&self.address, &setup.pool, slot).await?;
        let recipients = setup
            .topology
            .members(group)
            .map(|m| setup.mailboxes[m].recipient())
            .collect();
        Ok(HearthSender {
            client,
            recipients,
            run: rand::random(),
            group: u32::try_from(group).context("too many groups")?,
        })
    }

    async fn cleanup(&self) -> anyhow::Result<()> {
        let setup = self
            .setup
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(setup) = setup {
            setup.pool.close(std::time::Duration::from_secs(2)).await;
        }
        Ok(())
    }
}

/// A sender connection and its group's recipients.
pub(crate) struct HearthSender {
    client: RelayClient,
    recipients: Vec<OutgoingRecipient>,
    /// Tells this run's idempotency keys from other runs'.
    run: u32,
    group: u32,
}

impl std::fmt::Debug for HearthSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HearthSender").finish_non_exhaustive()
    }
}

impl PeerSender for HearthSender {
    async fn send(&self, id: u64, body: Bytes) -> anyhow::Result<()> {
        let probe = Probe {
            sent_at: 0,
            sender: self.group,
            counter: id,
        };
        let client_message_id = probe.client_message_id(self.run);
        let send = OutgoingSend {
            client_message_id,
            body,
            recipients: self.recipients.clone(),
            retry: false,
        };
        let results = self.client.send(send).await?;
        if let Some(refused) = results.iter().find_map(|r| r.err()) {
            bail!("the relay refused a recipient: {refused:?}");
        }
        Ok(())
    }
}

/// A mailbox owner's connection.
pub(crate) struct HearthReceiver {
    client: Arc<RelayClient>,
    mailbox_id: [u8; 32],
    /// The last sequence number received, acknowledged cumulatively.
    last_delivered: Option<u64>,
}

impl std::fmt::Debug for HearthReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HearthReceiver").finish_non_exhaustive()
    }
}

impl PeerReceiver for HearthReceiver {
    async fn receive(&mut self) -> anyhow::Result<Option<Vec<Bytes>>> {
        let Some(delivery) = self.client.next_delivery().await else {
            return Ok(None);
        };
        self.last_delivered = delivery.envelopes.last().map(|e| e.seq);
        Ok(Some(
            delivery.envelopes.into_iter().map(|e| e.body).collect(),
        ))
    }

    async fn ack(&mut self) -> anyhow::Result<()> {
        // Queued and coalesced by the client; the relay does not answer.
        if let Some(through) = self.last_delivered.take() {
            self.client.ack_through(self.mailbox_id, through)?;
        }
        Ok(())
    }
}
