//! One authenticated-capable connection to a relay.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use hearth_proto::relay as pb;
use hearth_protocol::address::RelayAddress;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

use super::auth::{EXPORTER_LABEL, sign_proof};
use super::error::ClientError;
use super::exchange::{Exchange, receive_deliveries, request, unexpected};
use super::messages::Delivery;
use super::pinning::{PinnedRelayVerifier, tls_config};
use super::{DEFAULT_FRAME_LIMIT, SERVER_NAME};

/// How long [`RelayClient::close_and_flush`] waits for the close to go out.
const CLOSE_FLUSH: std::time::Duration = std::time::Duration::from_millis(250);
/// How to connect to a relay. `ConnectOptions::default()` suits apps.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// A QUIC endpoint to share between connections (a load generator opens
    /// thousands on one socket). `None` binds a fresh one, `0.0.0.0:0` or
    /// `[::]:0` to match the relay's address family.
    pub endpoint: Option<quinn::Endpoint>,
    /// How often to send keep-alives so NATs and the relay keep the
    /// connection open; `None` disables them. Default 10 s.
    pub keep_alive_interval: Option<Duration>,
    /// How long the connection may stay silent before it counts as lost.
    /// Default 30 s.
    pub idle_timeout: Duration,
    /// Deadline for resolving, the handshake and fetching the challenge.
    /// Default 10 s.
    pub connect_timeout: Duration,
    /// Deadline for each request's answer. Default 30 s.
    pub request_timeout: Duration,
    /// Largest frame accepted from the relay (responses and deliveries).
    /// Default [`DEFAULT_FRAME_LIMIT`].
    pub frame_limit: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            endpoint: None,
            keep_alive_interval: Some(Duration::from_secs(10)),
            idle_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            frame_limit: DEFAULT_FRAME_LIMIT,
        }
    }
}

/// A connection to one relay, pinned to its key.
///
/// Requests may run concurrently: they are pipelined on one control stream
/// and answered in any order. Dropping
/// the client stops receiving deliveries and closes the connection unless
/// other handles to it (see [`RelayClient::quinn_connection`]) remain.
pub struct RelayClient {
    pub(crate) exchange: Exchange,
    challenge: [u8; 32],
    exporter: [u8; 32],
    deliveries: Mutex<mpsc::UnboundedReceiver<Delivery>>,
    delivery_task: JoinHandle<()>,
    control_task: JoinHandle<()>,
    // Keeps a self-made endpoint alive as long as the connection.
    _endpoint: quinn::Endpoint,
}

impl RelayClient {
    /// Connects to the relay at `address` with default options: resolves
    /// it, checks its key against the pinned fingerprint, and fetches this
    /// connection's authentication challenge.
    pub async fn connect(address: &RelayAddress) -> Result<Self, ClientError> {
        Self::connect_with(address, ConnectOptions::default()).await
    }

    /// Connects to the relay at `address` with `options`.
    pub async fn connect_with(
        address: &RelayAddress,
        options: ConnectOptions,
    ) -> Result<Self, ClientError> {
        tokio::time::timeout(options.connect_timeout, Self::establish(address, options))
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    async fn establish(
        address: &RelayAddress,
        options: ConnectOptions,
    ) -> Result<Self, ClientError> {
        let remote = resolve(address, options.endpoint.as_ref()).await?;
        let endpoint = match &options.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => quinn::Endpoint::client(unspecified_like(remote))?,
        };
        let verifier = Arc::new(PinnedRelayVerifier::new(address.fingerprint));
        let config = quic_config(Arc::clone(&verifier), &options)?;
        let connecting = endpoint
            .connect_with(config, remote, SERVER_NAME)
            .map_err(ClientError::Endpoint)?;
        let connection = connecting.await.map_err(|e| match verifier.mismatch() {
            Some(presented) => ClientError::FingerprintMismatch {
                expected: verifier.pin(),
                presented,
            },
            None => ClientError::Connect(e),
        })?;
        let mut exporter = [0u8; 32];
        connection
            .export_keying_material(&mut exporter, EXPORTER_LABEL, b"")
            .map_err(|_| ClientError::Internal("TLS keying material export failed".into()))?;
        let (exchange, control_task) =
            Exchange::start(connection, options.frame_limit, options.request_timeout);
        let challenge = fetch_challenge(&exchange).await?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let delivery_task = tokio::spawn(receive_deliveries(
            exchange.connection.clone(),
            sender,
            options.frame_limit,
        ));
        Ok(Self {
            exchange,
            challenge,
            exporter,
            deliveries: Mutex::new(receiver),
            delivery_task,
            control_task,
            _endpoint: endpoint,
        })
    }

    /// The signature proving ownership of the mailbox whose key is `key`
    /// on this connection: Ed25519 over
    /// `"Hearth_v1_Auth" ‖ challenge ‖ exporter`. Useless on any other
    /// connection.
    pub fn auth_proof(&self, key: &SigningKey) -> [u8; 64] {
        sign_proof(key, &self.challenge, &self.exporter)
    }

    /// Sends a raw request (as given, version included; its id is set
    /// here) and returns the relay's answer. An `Error` answer becomes
    /// [`ClientError::Relay`], so the returned response is never an error.
    pub async fn request(&self, request: pb::Request) -> Result<pb::Response, ClientError> {
        self.exchange.round_trip(request).await
    }

    /// Writes `bytes` verbatim as a request stream of its own (for testing
    /// how the relay handles malformed frames) and returns its first
    /// answer, like [`RelayClient::request`]. Only with the `test-hooks`
    /// feature.
    #[cfg(any(test, feature = "test-hooks"))]
    pub async fn request_raw(&self, bytes: &[u8]) -> Result<pb::Response, ClientError> {
        self.exchange.raw_own_stream(bytes).await
    }

    /// Writes `bytes` verbatim on the control stream, between the frames of
    /// other requests (for testing how the relay handles malformed frames
    /// there). Nobody waits for an answer. Only with the `test-hooks`
    /// feature.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn control_raw(&self, bytes: &[u8]) {
        self.exchange.queue_raw(bytes);
    }

    /// The next delivery from the relay, in the order the relay sent them.
    /// `None` once the connection has closed and every delivery received
    /// before has been returned.
    pub async fn next_delivery(&self) -> Option<Delivery> {
        self.deliveries.lock().await.recv().await
    }

    /// Closes the connection at once; pending requests fail with
    /// [`ClientError::ConnectionLost`].
    pub fn close(&self) {
        self.exchange
            .connection
            .close(quinn::VarInt::from_u32(0), b"client closed");
    }

    /// Closes the connection and gives the endpoint a moment to put the
    /// close on the wire, so the relay frees its slot now rather than at
    /// its idle timeout (a CLI command that exits right after would
    /// otherwise leave the connection counted against its address).
    pub async fn close_and_flush(&self) {
        // Queued acknowledgements go out before the close: an answer to a
        // later request on the control stream means the relay read them.
        let _ = tokio::time::timeout(CLOSE_FLUSH, self.flush()).await;
        self.close();
        let _ = tokio::time::timeout(CLOSE_FLUSH, self._endpoint.wait_idle()).await;
    }

    /// The underlying QUIC connection (for tests, e.g. to replay a proof on
    /// another connection or to inspect statistics).
    pub fn quinn_connection(&self) -> &quinn::Connection {
        &self.exchange.connection
    }

    /// The relay's address as resolved.
    pub fn remote_address(&self) -> SocketAddr {
        self.exchange.connection.remote_address()
    }
}

impl Drop for RelayClient {
    fn drop(&mut self) {
        // The tasks hold connection handles; without them the connection
        // closes once the last handle is gone.
        self.delivery_task.abort();
        self.control_task.abort();
    }
}

impl fmt::Debug for RelayClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayClient")
            .field("remote", &self.exchange.connection.remote_address())
            .field("connection_id", &self.exchange.connection.stable_id())
            .finish_non_exhaustive()
    }
}

async fn fetch_challenge(exchange: &Exchange) -> Result<[u8; 32], ClientError> {
    let challenge = request(pb::request::Kind::GetChallenge(pb::GetChallenge {}));
    let response = exchange.round_trip(challenge).await?;
    match response.kind {
        Some(pb::response::Kind::Challenge(challenge)) => challenge.challenge[..]
            .try_into()
            .map_err(|_| ClientError::BadResponse("challenge is not 32 bytes".into())),
        other => Err(unexpected("Challenge", other.as_ref())),
    }
}

/// Resolves the relay's host, preferring an address of the shared
/// endpoint's family.
async fn resolve(
    address: &RelayAddress,
    endpoint: Option<&quinn::Endpoint>,
) -> Result<SocketAddr, ClientError> {
    let candidates: Vec<SocketAddr> =
        tokio::net::lookup_host((address.host.as_str(), address.port))
            .await?
            .collect();
    let local_is_ipv6 = endpoint
        .and_then(|e| e.local_addr().ok())
        .map(|a| a.is_ipv6());
    let preferred = local_is_ipv6.and_then(|v6| candidates.iter().find(|a| a.is_ipv6() == v6));
    preferred.or(candidates.first()).copied().ok_or_else(|| {
        ClientError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the relay's host resolved to no address",
        ))
    })
}

/// `0.0.0.0:0` or `[::]:0`, matching `remote`'s family.
fn unspecified_like(remote: SocketAddr) -> SocketAddr {
    match remote {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

/// The quinn client configuration for one connection attempt.
fn quic_config(
    verifier: Arc<PinnedRelayVerifier>,
    options: &ConnectOptions,
) -> Result<quinn::ClientConfig, ClientError> {
    let tls = tls_config(verifier)
        .map_err(|e| ClientError::Internal(format!("TLS configuration: {e}")))?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| ClientError::Internal(format!("QUIC TLS configuration: {e}")))?;
    let mut transport = quinn::TransportConfig::default();
    transport
        .keep_alive_interval(options.keep_alive_interval)
        .max_idle_timeout(Some(idle_timeout(options.idle_timeout)))
        // The relay never opens request streams towards a client.
        .max_concurrent_bidi_streams(quinn::VarInt::from_u32(0));
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// `duration` as a QUIC idle timeout, saturating at the protocol maximum.
fn idle_timeout(duration: Duration) -> quinn::IdleTimeout {
    quinn::IdleTimeout::try_from(duration).unwrap_or_else(|_| quinn::VarInt::MAX.into())
}
