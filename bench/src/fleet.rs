//! Many clients on few sockets: shared QUIC endpoints, mailboxes, and
//! opening connections with bounded concurrency.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use hearth_client::{ConnectOptions, OutgoingRecipient, RelayAddress, RelayClient};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::task::JoinSet;

/// UDP send and receive buffer requested for each client socket (the OS
/// caps it at `net.core.rmem_max` / `wmem_max`).
const UDP_BUFFER_BYTES: usize = 8 * 1024 * 1024;

/// Deadline for each request's answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Deadline for one connection's handshake and challenge.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// A few QUIC endpoints (UDP sockets on 127.0.0.1) that many connections
/// share: connection `i` uses endpoint `i / per_endpoint`.
#[derive(Debug)]
pub(crate) struct EndpointPool {
    endpoints: Vec<quinn::Endpoint>,
    per_endpoint: usize,
}

impl EndpointPool {
    /// Enough endpoints for `connections`, `per_endpoint` on each.
    pub(crate) fn new(connections: usize, per_endpoint: usize) -> anyhow::Result<Self> {
        let per_endpoint = per_endpoint.max(1);
        let count = connections.div_ceil(per_endpoint).max(1);
        let endpoints = (0..count)
            .map(|_| bind_endpoint())
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            endpoints,
            per_endpoint,
        })
    }

    /// How many endpoints (sockets) the pool holds.
    pub(crate) fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// Connection options for connection number `index`.
    pub(crate) fn options(&self, index: usize) -> ConnectOptions {
        let endpoint =
            self.endpoints[(index / self.per_endpoint).min(self.endpoints.len() - 1)].clone();
        ConnectOptions {
            endpoint: Some(endpoint),
            connect_timeout: CONNECT_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            ..ConnectOptions::default()
        }
    }

    /// Waits (at most `grace`) for the endpoints to finish closing their
    /// connections, so the relay sees them go.
    pub(crate) async fn close(&self, grace: Duration) {
        for endpoint in &self.endpoints {
            endpoint.close(quinn::VarInt::from_u32(0), b"benchmark done");
        }
        let idle = futures_all(self.endpoints.iter().map(quinn::Endpoint::wait_idle));
        let _ = tokio::time::timeout(grace, idle).await;
    }
}

/// Awaits every future in turn (they run concurrently in the endpoint
/// drivers; waiting in order is enough).
async fn futures_all<F: Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    for future in futures {
        future.await;
    }
}

/// A client endpoint on `127.0.0.1:0` with large UDP buffers.
fn bind_endpoint() -> anyhow::Result<quinn::Endpoint> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .context("opening a UDP socket")?;
    // Best effort: the OS may grant less.
    let _ = socket.set_recv_buffer_size(UDP_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(UDP_BUFFER_BYTES);
    socket
        .bind(&address.into())
        .context("binding a UDP socket on 127.0.0.1")?;
    let runtime = Arc::new(quinn::TokioRuntime);
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        None,
        socket.into(),
        runtime,
    )
    .context("creating a QUIC endpoint")
}

/// A mailbox the benchmark owns: random id, key and send token.
#[derive(Clone)]
pub(crate) struct Mailbox {
    /// The mailbox id.
    pub(crate) id: [u8; 32],
    /// The owner's key.
    pub(crate) key: SigningKey,
    /// The send token handed to its sender.
    pub(crate) send_token: Bytes,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox").finish_non_exhaustive()
    }
}

impl Mailbox {
    /// A fresh mailbox with random id, key and token.
    pub(crate) fn random() -> Self {
        Self {
            id: rand::random(),
            key: SigningKey::from_bytes(&rand::random()),
            send_token: Bytes::copy_from_slice(&rand::random::<[u8; 32]>()),
        }
    }

    /// Registers it on `client` (which also authenticates it there).
    pub(crate) async fn register(&self, client: &RelayClient) -> anyhow::Result<()> {
        client
            .register(self.id, &self.key, None)
            .await
            .context("registering a mailbox")
    }

    /// Registers it and lets holders of its send token send to it.
    pub(crate) async fn open(&self, client: &RelayClient) -> anyhow::Result<()> {
        self.register(client).await?;
        client
            .add_send_token(self.id, &self.send_token)
            .await
            .context("adding a send token")
    }

    /// How a sender addresses an envelope to this mailbox.
    pub(crate) fn recipient(&self) -> OutgoingRecipient {
        OutgoingRecipient {
            mailbox_id: self.id,
            send_token: self.send_token.clone(),
            sealed_header: Bytes::copy_from_slice(&rand::random::<[u8; 64]>()),
        }
    }
}

/// Connects client number `index` through `pool`.
pub(crate) async fn connect(
    address: &RelayAddress,
    pool: &EndpointPool,
    index: usize,
) -> anyhow::Result<RelayClient> {
    RelayClient::connect_with(address, pool.options(index))
        .await
        .context("connecting to the relay")
}

/// Runs `make(i)` for `i in 0..count`, at most `concurrency` at a time, and
/// returns the results in index order. `progress` is called with the number
/// finished after each one.
pub(crate) async fn run_bounded<T, F, Fut>(
    count: usize,
    concurrency: usize,
    mut make: F,
    mut progress: impl FnMut(usize),
) -> Vec<anyhow::Result<T>>
where
    T: Send + 'static,
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let mut results: Vec<Option<anyhow::Result<T>>> = (0..count).map(|_| None).collect();
    let mut tasks = JoinSet::new();
    let mut next = 0;
    let mut done = 0;
    while done < count {
        while next < count && tasks.len() < concurrency.max(1) {
            let future = make(next);
            let index = next;
            tasks.spawn(async move { (index, future.await) });
            next += 1;
        }
        match tasks.join_next().await {
            Some(Ok((index, result))) => results[index] = Some(result),
            // A task that panicked leaves its slot empty: reported below.
            Some(Err(_)) => {}
            None => break,
        }
        done += 1;
        progress(done);
    }
    results
        .into_iter()
        .map(|result| {
            result.unwrap_or_else(|| Err(anyhow::anyhow!("the task did not run to completion")))
        })
        .collect()
}
