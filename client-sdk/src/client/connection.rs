//! The client's relay connections: one authenticated connection to its own
//! relay (deliveries flow on it), and plain connections to contacts' relays
//! (for sending and fetching prekeys), reused while they stay open.

use std::collections::HashMap;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use hearth_protocol::address::RelayAddress;
use tokio::sync::Mutex as AsyncMutex;

use crate::relay::{ClientError, ConnectOptions, RelayClient};

/// Open connections, by relay.
#[derive(Debug)]
pub(super) struct Connections {
    options: ConnectOptions,
    own: AsyncMutex<Option<Arc<RelayClient>>>,
    others: AsyncMutex<HashMap<RelayAddress, Arc<RelayClient>>>,
}

/// Whether a connection can still carry requests.
pub(super) fn is_open(relay: &RelayClient) -> bool {
    relay.quinn_connection().close_reason().is_none()
}

impl Connections {
    pub(super) fn new(options: ConnectOptions) -> Self {
        Self {
            options,
            own: AsyncMutex::new(None),
            others: AsyncMutex::new(HashMap::new()),
        }
    }

    /// Keeps an already authenticated connection to our relay (the one a
    /// registration used).
    pub(super) async fn adopt_own(&self, relay: RelayClient) {
        *self.own.lock().await = Some(Arc::new(relay));
    }

    /// The authenticated connection to our relay, connecting if needed;
    /// `true` when it is new.
    pub(super) async fn own(
        &self,
        address: &RelayAddress,
        mailbox_id: [u8; 32],
        key: &SigningKey,
    ) -> Result<(Arc<RelayClient>, bool), ClientError> {
        let mut own = self.own.lock().await;
        if let Some(relay) = own.as_ref().filter(|relay| is_open(relay)) {
            return Ok((Arc::clone(relay), false));
        }
        *own = None;
        let relay = RelayClient::connect_with(address, self.options.clone()).await?;
        relay.authenticate(mailbox_id, key).await?;
        let relay = Arc::new(relay);
        *own = Some(Arc::clone(&relay));
        Ok((relay, true))
    }

    /// Whether the connection to our relay is up.
    pub(super) async fn own_is_open(&self) -> bool {
        self.own
            .lock()
            .await
            .as_ref()
            .is_some_and(|relay| is_open(relay))
    }

    /// A connection to another relay, connecting if needed.
    pub(super) async fn other(
        &self,
        address: &RelayAddress,
    ) -> Result<Arc<RelayClient>, ClientError> {
        let mut others = self.others.lock().await;
        if let Some(relay) = others.get(address).filter(|relay| is_open(relay)) {
            return Ok(Arc::clone(relay));
        }
        others.remove(address);
        let relay = Arc::new(RelayClient::connect_with(address, self.options.clone()).await?);
        others.insert(address.clone(), Arc::clone(&relay));
        Ok(relay)
    }

    /// Drops `relay` from the pool (after it failed), closing it.
    pub(super) async fn forget(&self, relay: &Arc<RelayClient>) {
        relay.close();
        let mut own = self.own.lock().await;
        if own.as_ref().is_some_and(|own| Arc::ptr_eq(own, relay)) {
            *own = None;
        }
        drop(own);
        self.others
            .lock()
            .await
            .retain(|_, other| !Arc::ptr_eq(other, relay));
    }

    /// Closes everything.
    pub(super) async fn close_all(&self) {
        let own = self.own.lock().await.take();
        let others: Vec<Arc<RelayClient>> =
            self.others.lock().await.drain().map(|(_, r)| r).collect();
        for relay in own.iter().chain(&others) {
            relay.close_and_flush().await;
        }
    }
}
