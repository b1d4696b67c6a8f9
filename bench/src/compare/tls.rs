//! TLS for the peers' private instances ([`super::private`]): a
//! certificate made for each instance, a client configuration that trusts
//! that certificate and nothing else, a tokio-postgres connector on
//! rustls, and a handshake probe that reads which TLS version the server
//! negotiates.
//!
//! The clients' rustls 0.23 is built without TLS 1.2 in this workspace, so
//! the Redis, NATS and PostgreSQL clients offer TLS 1.3 only; rumqttc
//! brings its own rustls 0.22, which offers TLS 1.3 and 1.2. The probe
//! records what the server actually chose.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, bail};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ProtocolVersion, RootCertStore};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_rustls::TlsConnector;

/// The address every private instance listens on, and the name its
/// certificate is made for (as an IP address subject alternative name).
pub(crate) const HOST: &str = "127.0.0.1";

/// How long the version probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first bytes of PostgreSQL's `SSLRequest`: length 8, code 80877103.
const POSTGRES_SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// Longest NATS `INFO` line the probe reads before the TLS upgrade.
const NATS_INFO_LIMIT: usize = 64 * 1024;

/// A self-signed certificate for one private instance, valid for
/// `127.0.0.1` and `localhost`, with its private key.
pub(crate) struct Certificate {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.debug_struct("Certificate").finish_non_exhaustive()
    }
}

impl Certificate {
    /// A fresh ECDSA P-256 certificate and key.
    pub(crate) fn generate() -> anyhow::Result<Self> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .context("generating a key")?;
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .context("certificate parameters")?;
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "hearth-bench private peer");
        let cert = params
            .self_signed(&key)
            .context("signing the certificate")?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        })
    }

    /// The certificate in PEM (what clients pin as their only root).
    pub(crate) fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key in PEM (for the server's key file).
    pub(crate) fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// A rustls client configuration whose only trust anchor is this
    /// certificate, so the handshake verifies the server's chain and name
    /// against it.
    pub(crate) fn client_config(&self) -> anyhow::Result<ClientConfig> {
        install_provider();
        let mut roots = RootCertStore::empty();
        roots
            .add(self.der.clone())
            .context("pinning the certificate as a root")?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("choosing TLS versions")?
            .with_root_certificates(roots)
            .with_no_client_auth())
    }
}

/// Makes ring the process's default rustls provider (the `redis` crate
/// builds its configuration with the default); a no-op once one is set.
pub(crate) fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// What a client sends or reads on the plain connection before its TLS
/// handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Preamble {
    /// TLS from the first byte (Redis `tls-port`, an MQTT TLS listener).
    None,
    /// NATS: the server's plaintext `INFO` line first, then TLS.
    NatsInfo,
    /// PostgreSQL: `SSLRequest`, the server's `S`, then TLS.
    PostgresSslRequest,
}

/// The TLS version a server on `port` of [`HOST`] negotiates with a client
/// using `config`, e.g. `"TLS 1.3"`; fails if the handshake (including
/// the certificate check) fails.
pub(crate) async fn negotiated_version(
    port: u16,
    preamble: Preamble,
    config: Arc<ClientConfig>,
) -> anyhow::Result<String> {
    tokio::time::timeout(PROBE_TIMEOUT, probe(port, preamble, config))
        .await
        .context("the TLS handshake did not finish within 10 s")?
}

async fn probe(port: u16, preamble: Preamble, config: Arc<ClientConfig>) -> anyhow::Result<String> {
    let mut tcp = TcpStream::connect((HOST, port))
        .await
        .with_context(|| format!("connecting to {HOST}:{port}"))?;
    match preamble {
        Preamble::None => {}
        Preamble::NatsInfo => {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                if line.len() >= NATS_INFO_LIMIT {
                    bail!("no end of the NATS INFO line");
                }
                line.push(tcp.read_u8().await.context("reading NATS INFO")?);
            }
            if !line.starts_with(b"INFO ") {
                bail!("the server did not start with NATS INFO");
            }
        }
        Preamble::PostgresSslRequest => {
            tcp.write_all(&POSTGRES_SSL_REQUEST).await?;
            let answer = tcp
                .read_u8()
                .await
                .context("reading the SSLRequest answer")?;
            if answer != b'S' {
                bail!("PostgreSQL refused TLS (answered {:?})", char::from(answer));
            }
        }
    }
    let name = ServerName::try_from(HOST)?.to_owned();
    let mut tls = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .context("TLS handshake")?;
    let version = tls.get_ref().1.protocol_version();
    let _ = tls.shutdown().await;
    version_name(version)
}

/// `"TLS 1.3"` for TLS 1.3, and so on.
fn version_name(version: Option<ProtocolVersion>) -> anyhow::Result<String> {
    Ok(
        match version.context("no TLS version after the handshake")? {
            ProtocolVersion::TLSv1_3 => "TLS 1.3".to_owned(),
            ProtocolVersion::TLSv1_2 => "TLS 1.2".to_owned(),
            other => format!("{other:?}"),
        },
    )
}

/// tokio-postgres's TLS on rustls: verifies the server against a
/// [`Certificate::client_config`].
#[derive(Clone, Debug)]
pub(crate) struct PostgresTls(Arc<ClientConfig>);

impl PostgresTls {
    /// A connector with `config`.
    pub(crate) fn new(config: Arc<ClientConfig>) -> Self {
        Self(config)
    }
}

impl<S> MakeTlsConnect<S> for PostgresTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PostgresTlsStream<S>;
    type TlsConnect = PostgresTlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<PostgresTlsConnect> {
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
        Ok(PostgresTlsConnect {
            config: Arc::clone(&self.0),
            name,
        })
    }
}

/// One connection's handshake.
#[derive(Debug)]
pub(crate) struct PostgresTlsConnect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for PostgresTlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PostgresTlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<PostgresTlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let tls = TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await?;
            Ok(PostgresTlsStream(tls))
        })
    }
}

/// A TLS connection to PostgreSQL.
#[derive(Debug)]
pub(crate) struct PostgresTlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for PostgresTlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for PostgresTlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for PostgresTlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        // Private instances trust local connections; no SCRAM to bind.
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject as _;
    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;

    /// A TLS server on a free port with `certificate` that first plays
    /// `preamble`'s server side, then echoes one line.
    async fn server(certificate: &Certificate, preamble: Preamble) -> u16 {
        install_provider();
        let chain =
            vec![CertificateDer::from_pem_slice(certificate.cert_pem().as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(certificate.key_pem().as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind((HOST, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match preamble {
                        Preamble::None => {}
                        Preamble::NatsInfo => tcp.write_all(b"INFO {}\r\n").await.unwrap(),
                        Preamble::PostgresSslRequest => {
                            let mut request = [0; 8];
                            tcp.read_exact(&mut request).await.unwrap();
                            assert_eq!(request, POSTGRES_SSL_REQUEST);
                            tcp.write_all(b"S").await.unwrap();
                        }
                    }
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut byte = [0; 1];
                    while tls.read_exact(&mut byte).await.is_ok() {
                        let _ = tls.write_all(&byte).await;
                        let _ = tls.flush().await;
                    }
                });
            }
        });
        port
    }

    #[test]
    fn certificates_are_fresh_and_keys_stay_out_of_debug() {
        let a = Certificate::generate().unwrap();
        let b = Certificate::generate().unwrap();
        assert!(a.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(a.key_pem().contains("PRIVATE KEY"));
        assert_ne!(a.cert_pem(), b.cert_pem());
        assert!(!format!("{a:?}").contains("PRIVATE"));
        assert!(a.client_config().is_ok());
    }

    #[tokio::test]
    async fn the_probe_reads_tls_1_3_after_each_preamble() {
        let certificate = Certificate::generate().unwrap();
        let config = Arc::new(certificate.client_config().unwrap());
        for preamble in [
            Preamble::None,
            Preamble::NatsInfo,
            Preamble::PostgresSslRequest,
        ] {
            let port = server(&certificate, preamble).await;
            let version = negotiated_version(port, preamble, Arc::clone(&config))
                .await
                .unwrap();
            assert_eq!(version, "TLS 1.3", "{preamble:?}");
        }
    }

    #[tokio::test]
    async fn a_server_with_another_certificate_is_refused() {
        let pinned = Certificate::generate().unwrap();
        let other = Certificate::generate().unwrap();
        let port = server(&other, Preamble::None).await;
        let config = Arc::new(pinned.client_config().unwrap());
        let error = negotiated_version(port, Preamble::None, config)
            .await
            .unwrap_err();
        assert!(format!("{error:#}").contains("certificate"), "{error:#}");
    }

    #[tokio::test]
    async fn the_postgres_connector_verifies_and_carries_data() {
        let certificate = Certificate::generate().unwrap();
        let port = server(&certificate, Preamble::None).await;
        let mut make = PostgresTls::new(Arc::new(certificate.client_config().unwrap()));
        let connect =
            <PostgresTls as MakeTlsConnect<TcpStream>>::make_tls_connect(&mut make, HOST).unwrap();
        let tcp = TcpStream::connect((HOST, port)).await.unwrap();
        let mut stream = connect.connect(tcp).await.unwrap();
        stream.write_all(b"ping").await.unwrap();
        stream.flush().await.unwrap();
        let mut echo = [0; 4];
        stream.read_exact(&mut echo).await.unwrap();
        assert_eq!(&echo, b"ping");

        let stranger = Certificate::generate().unwrap();
        let mut make = PostgresTls::new(Arc::new(stranger.client_config().unwrap()));
        let connect =
            <PostgresTls as MakeTlsConnect<TcpStream>>::make_tls_connect(&mut make, HOST).unwrap();
        let tcp = TcpStream::connect((HOST, port)).await.unwrap();
        assert!(connect.connect(tcp).await.is_err());
    }
}
