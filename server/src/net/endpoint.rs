//! The QUIC endpoint: a UDP socket with large buffers, and transport settings
//! sized for the relay's frames (DESIGN.md section 4).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use hearth_protocol::frame;
use quinn::crypto::rustls::QuicServerConfig;
use quinn::{Endpoint, EndpointConfig, IdleTimeout, TokioRuntime, TransportConfig, VarInt};
use socket2::{Domain, Protocol, Socket, Type};
use tracing::{info, warn};

use crate::config::Config;

/// Bidirectional streams a client may have open at once: its control
/// stream and a few large uploads on streams of their own (DESIGN.md
/// section 3). quinn keeps an entry per allowed stream in two maps for the
/// connection's whole life, about 85 bytes each: 256 cost 22 KiB per idle
/// connection, 16 cost 1.3 KiB (docs/BENCHMARKS.md, idle connections).
const MAX_STREAMS_PER_CONNECTION: u32 = 16;

/// How many full frames a connection may have in flight towards the relay
/// before flow control makes it wait, and how many the relay keeps unacked
/// towards a client. These windows allocate nothing up front; they bound
/// what one connection can make the relay buffer (quinn does not tune them).
const FRAMES_PER_CONNECTION_WINDOW: u64 = 4;

// A control stream and at least one large upload beside it, each with room
// for a full frame.
const _: () = assert!(MAX_STREAMS_PER_CONNECTION >= 2 && FRAMES_PER_CONNECTION_WINDOW >= 2);

/// Why the endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(super) enum EndpointError {
    /// The TLS configuration has no cipher suite QUIC can use.
    #[error("the TLS configuration is unusable for QUIC: {0}")]
    Tls(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
    /// A configured duration or size does not fit QUIC's limits.
    #[error("{0} is out of QUIC's range")]
    OutOfRange(&'static str),
    /// Creating or binding the UDP socket failed.
    #[error("could not open a UDP socket on {listen}: {source}")]
    Socket {
        /// The address asked for.
        listen: SocketAddr,
        /// The operating system's error.
        source: io::Error,
    },
}

/// Binds the UDP socket and starts a quinn endpoint serving `crypto`.
/// `reset_key` signs stateless resets; it outlives restarts so a restarted
/// relay resets its previous run's connections at once.
pub(super) fn bind(
    config: &Config,
    crypto: rustls::ServerConfig,
    reset_key: &[u8; 32],
) -> Result<Endpoint, EndpointError> {
    let crypto = QuicServerConfig::try_from(crypto)?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(Arc::new(transport(config)?));
    let socket_error = |source| EndpointError::Socket {
        listen: config.listen,
        source,
    };
    let socket = udp_socket(config.listen, config.udp_buffer_bytes).map_err(socket_error)?;
    let reset_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, reset_key);
    Endpoint::new(
        EndpointConfig::new(Arc::new(reset_key)),
        Some(server),
        socket,
        Arc::new(TokioRuntime),
    )
    .map_err(socket_error)
}

/// Transport settings: keep-alive, idle timeout, GSO, stream limits,
/// windows sized for the frame limit, and no path MTU discovery.
fn transport(config: &Config) -> Result<TransportConfig, EndpointError> {
    let frame_window =
        (config.core.max_frame_bytes as u64).saturating_add(frame::MAX_PREFIX_LEN as u64);
    let stream_window =
        VarInt::from_u64(frame_window).map_err(|_| EndpointError::OutOfRange("max_frame_bytes"))?;
    let connection_bytes = frame_window.saturating_mul(FRAMES_PER_CONNECTION_WINDOW);
    let connection_window = VarInt::from_u64(connection_bytes)
        .map_err(|_| EndpointError::OutOfRange("max_frame_bytes"))?;
    let idle_timeout = match config.idle_timeout {
        Duration::ZERO => None,
        timeout => Some(
            IdleTimeout::try_from(timeout)
                .map_err(|_| EndpointError::OutOfRange("idle_timeout"))?,
        ),
    };
    let keep_alive = Some(config.keep_alive).filter(|interval| !interval.is_zero());

    let mut transport = TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(VarInt::from_u32(MAX_STREAMS_PER_CONNECTION))
        // Clients open no unidirectional streams; deliveries go the other way.
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .stream_receive_window(stream_window)
        .receive_window(connection_window)
        .send_window(connection_bytes)
        // A probe grows quinn's per-connection send buffer from 1,200 to
        // 2,400 bytes for the connection's life (1.3 KiB per idle
        // connection); the relay's frames gain little from larger packets.
        .mtu_discovery_config(None)
        .keep_alive_interval(keep_alive)
        .max_idle_timeout(idle_timeout)
        .enable_segmentation_offload(config.gso)
        .datagram_receive_buffer_size(None);
    Ok(transport)
}

/// Opens the UDP socket, asking the OS for `buffer_bytes` of send and
/// receive buffer, and logs what it granted.
fn udp_socket(listen: SocketAddr, buffer_bytes: usize) -> io::Result<UdpSocket> {
    let socket = Socket::new(
        Domain::for_address(listen),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    if listen.is_ipv6()
        && let Err(failure) = socket.set_only_v6(false)
    {
        warn!(error = %failure, "could not accept IPv4 on the IPv6 socket");
    }
    if let Err(failure) = socket.set_recv_buffer_size(buffer_bytes) {
        warn!(error = %failure, "could not set the UDP receive buffer size");
    }
    if let Err(failure) = socket.set_send_buffer_size(buffer_bytes) {
        warn!(error = %failure, "could not set the UDP send buffer size");
    }
    socket.bind(&listen.into())?;
    let (recv, send) = (socket.recv_buffer_size()?, socket.send_buffer_size()?);
    // Linux reports twice what it grants (its bookkeeping share): a report
    // below the request means the request was capped.
    if recv < buffer_bytes || send < buffer_bytes {
        warn!(
            requested = buffer_bytes,
            receive = recv,
            send,
            "the OS granted smaller UDP buffers than requested (raise net.core.rmem_max and net.core.wmem_max)"
        );
    } else {
        info!(
            requested = buffer_bytes,
            receive = recv,
            send,
            "UDP socket buffers"
        );
    }
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_gets_buffers_and_binds_an_ephemeral_port() {
        let socket = udp_socket(SocketAddr::from(([127, 0, 0, 1], 0)), 256 * 1024).unwrap();
        let addr = socket.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        assert_ne!(addr.port(), 0);
        let socket = Socket::from(socket);
        // Whatever the OS caps, it grants some buffer and reports it.
        assert!(socket.recv_buffer_size().unwrap() > 0);
        assert!(socket.send_buffer_size().unwrap() > 0);
    }

    #[test]
    fn transport_rejects_an_idle_timeout_quic_cannot_express() {
        let config = Config {
            idle_timeout: Duration::from_secs(u64::MAX / 1000),
            ..Config::default()
        };
        assert!(matches!(
            transport(&config),
            Err(EndpointError::OutOfRange("idle_timeout"))
        ));
    }

    #[test]
    fn transport_accepts_the_defaults_and_zero_to_disable() {
        assert!(transport(&Config::default()).is_ok());
        let config = Config {
            idle_timeout: Duration::ZERO,
            keep_alive: Duration::ZERO,
            gso: false,
            ..Config::default()
        };
        assert!(transport(&config).is_ok());
    }
}
