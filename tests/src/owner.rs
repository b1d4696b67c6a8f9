//! Mailbox owners and the client steps the tests repeat.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use hearth_client::{
    ClientError, ConnectOptions, DeliveredEnvelope, Delivery, OutgoingRecipient, RelayAddress,
    RelayClient,
};
use tokio::time::Instant;

use crate::within;

/// Someone who owns a mailbox: its key, its id, and the send token they hand
/// to their contacts. Tokens and sealed headers are printable text with a
/// random part, so a test can look for them in logs and files.
#[derive(Debug)]
pub struct Owner {
    /// The mailbox key (Ed25519).
    pub key: SigningKey,
    /// The mailbox id: 32 random bytes.
    pub mailbox_id: [u8; 32],
    /// The send token contacts present (its hash is registered with the relay).
    pub send_token: Bytes,
}

impl Owner {
    /// A fresh owner with random key, mailbox id and send token.
    pub fn random() -> Self {
        Self {
            key: SigningKey::from_bytes(&rand::random()),
            mailbox_id: rand::random(),
            send_token: Bytes::from(format!("send-token-{}", hex(&rand::random::<[u8; 16]>()))),
        }
    }

    /// This mailbox as a send recipient, with the right send token and a
    /// random sealed header.
    pub fn recipient(&self) -> OutgoingRecipient {
        self.recipient_with_token(self.send_token.clone())
    }

    /// This mailbox as a send recipient presenting `send_token`.
    pub fn recipient_with_token(&self, send_token: Bytes) -> OutgoingRecipient {
        let sealed_header = Bytes::from(format!(
            "sealed-header-{}",
            hex(&rand::random::<[u8; 16]>())
        ));
        OutgoingRecipient {
            mailbox_id: self.mailbox_id,
            send_token,
            sealed_header,
        }
    }

    /// Connects, registers the mailbox on an open relay and adds the send
    /// token. Panics on any failure.
    pub async fn register(&self, address: &RelayAddress) -> RelayClient {
        match self.try_register(address, None).await {
            Ok(client) => client,
            Err(error) => panic!("registering a mailbox failed: {error}"),
        }
    }

    /// Connects, registers the mailbox (with `registration_token` if given)
    /// and adds the send token.
    pub async fn try_register(
        &self,
        address: &RelayAddress,
        registration_token: Option<&str>,
    ) -> Result<RelayClient, ClientError> {
        let client = connect(address).await;
        within(
            "register",
            client.register(self.mailbox_id, &self.key, registration_token),
        )
        .await?;
        within(
            "add a send token",
            client.add_send_token(self.mailbox_id, &self.send_token),
        )
        .await?;
        Ok(client)
    }

    /// Connects and authenticates as this (registered) mailbox, which starts
    /// its deliveries. Panics on any failure.
    pub async fn connect(&self, address: &RelayAddress) -> RelayClient {
        let client = connect(address).await;
        match within(
            "authenticate",
            client.authenticate(self.mailbox_id, &self.key),
        )
        .await
        {
            Ok(()) => client,
            Err(error) => panic!("authenticating failed: {error}"),
        }
    }
}

/// Connection options with short deadlines, so tests that kill relays
/// notice quickly.
pub fn fast_options() -> ConnectOptions {
    ConnectOptions {
        keep_alive_interval: Some(Duration::from_millis(500)),
        idle_timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_secs(5),
        ..ConnectOptions::default()
    }
}

/// Connects to the relay at `address` with [`fast_options`]. Panics on
/// failure.
pub async fn connect(address: &RelayAddress) -> RelayClient {
    match within(
        "connect",
        RelayClient::connect_with(address, fast_options()),
    )
    .await
    {
        Ok(client) => client,
        Err(error) => panic!("connecting to {address} failed: {error}"),
    }
}

/// A fresh random client message id.
pub fn client_message_id() -> [u8; 16] {
    rand::random()
}

/// The next delivery, or `None` if none arrives within `limit` (or the
/// connection closed).
pub async fn next_delivery(client: &RelayClient, limit: Duration) -> Option<Delivery> {
    tokio::time::timeout(limit, client.next_delivery())
        .await
        .ok()
        .flatten()
}

/// Receives deliveries until at least `count` envelopes arrived; panics if
/// that takes longer than `limit`.
pub async fn drain(client: &RelayClient, count: usize, limit: Duration) -> Vec<DeliveredEnvelope> {
    let deadline = Instant::now() + limit;
    let mut envelopes = Vec::new();
    while envelopes.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        match next_delivery(client, left).await {
            Some(delivery) => envelopes.extend(delivery.envelopes),
            None => panic!(
                "received {} of {count} envelopes within {limit:?}",
                envelopes.len()
            ),
        }
    }
    envelopes
}

/// Receives deliveries until none arrives for `quiet`.
pub async fn drain_until_quiet(client: &RelayClient, quiet: Duration) -> Vec<DeliveredEnvelope> {
    let mut envelopes = Vec::new();
    while let Some(delivery) = next_delivery(client, quiet).await {
        envelopes.extend(delivery.envelopes);
    }
    envelopes
}

/// Receives deliveries for `mailbox_id`, acknowledging each one as it
/// arrives (so the relay's delivery window never stalls), until none arrives
/// for `quiet`. Panics if an acknowledgement fails.
pub async fn drain_and_ack(
    client: &RelayClient,
    mailbox_id: [u8; 32],
    quiet: Duration,
) -> Vec<DeliveredEnvelope> {
    let mut envelopes = Vec::new();
    while let Some(delivery) = next_delivery(client, quiet).await {
        if let Some(last) = delivery.envelopes.last()
            && let Err(error) = client.ack_through(mailbox_id, last.seq)
        {
            panic!("acknowledging through {} failed: {error}", last.seq);
        }
        envelopes.extend(delivery.envelopes);
    }
    envelopes
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}
