//! The relay's TLS identity and its rustls server configuration.
//!
//! A relay generates an ECDSA P-256 key and a self-signed certificate on
//! first start and keeps them in `<data_dir>/identity/`. Clients do not trust
//! the certificate through a CA: they pin the SHA-256 of its
//! SubjectPublicKeyInfo, the [`Fingerprint`] in the relay's address
//! (DESIGN.md section 2). An operator may load their own certificate instead;
//! the fingerprint then pins that certificate's key.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hearth_protocol::address::Fingerprint;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;
use crate::registration::write_file_atomically;

/// The ALPN protocol id of Hearth's relay protocol. A client that offers
/// another one is refused at the handshake.
pub const ALPN: &[u8] = b"hearth/1";

/// Folder under the data directory that holds the generated identity.
const IDENTITY_DIR: &str = "identity";
/// Certificate file name inside [`IDENTITY_DIR`].
const CERT_FILE: &str = "cert.pem";
/// Private key file name inside [`IDENTITY_DIR`].
const KEY_FILE: &str = "key.pem";
/// Key of stateless resets, in the identity folder.
const RESET_KEY_FILE: &str = "stateless-reset.key";
/// Subject alternative name of the generated certificate. Clients pin the
/// key, so the name only has to be syntactically valid.
const GENERATED_NAME: &str = "hearth-relay";

/// Why the relay's identity could not be created, loaded or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The stored stateless-reset key is not 32 bytes.
    #[error("{path} is not a 32-byte stateless-reset key; delete it to make a new one")]
    BadResetKey {
        /// The file.
        path: PathBuf,
    },
    /// Reading or writing an identity file failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`reading`, `writing`, `creating folder`).
        action: &'static str,
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A PEM file held no certificate (or no private key).
    #[error("{path}: no {what} found in PEM file")]
    MissingPem {
        /// The file concerned.
        path: PathBuf,
        /// `certificate` or `private key`.
        what: &'static str,
    },
    /// A PEM file is not well-formed. The detail never quotes the file.
    #[error("{path}: malformed PEM file")]
    MalformedPem {
        /// The file concerned.
        path: PathBuf,
    },
    /// The private key exists but its certificate is missing, so the
    /// identity cannot be restored without changing the relay's address.
    #[error("{key} exists but {cert} is missing; restore it or remove both to make a new identity")]
    MissingCertificate {
        /// The certificate file that is missing.
        cert: PathBuf,
        /// The key file that exists.
        key: PathBuf,
    },
    /// The leaf certificate is not valid X.509 DER.
    #[error("the certificate could not be parsed as X.509")]
    BadCertificate,
    /// The private key does not belong to the leaf certificate.
    #[error("the private key does not match the certificate")]
    KeyMismatch,
    /// Generating a key or a self-signed certificate failed.
    #[error("generating the relay identity failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the key or the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The relay's certificate chain and private key, and the fingerprint that
/// clients pin. `Debug` never shows the key.
pub struct RelayIdentity {
    /// Certificate chain, leaf first (DER).
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// Private key of the leaf certificate (DER).
    key: PrivateKeyDer<'static>,
    /// SHA-256 of the leaf certificate's SubjectPublicKeyInfo.
    pub fingerprint: Fingerprint,
}

impl fmt::Debug for RelayIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayIdentity")
            .field(
                "cert_chain",
                &format_args!("[{} certificate(s)]", self.cert_chain.len()),
            )
            .field("key", &format_args!("<redacted>"))
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl RelayIdentity {
    /// Loads the generated identity from `<data_dir>/identity/`, creating a
    /// new key and self-signed certificate there on first start.
    ///
    /// The key file is written last, with mode 0600, atomically; an identity
    /// is complete once it exists. A certificate without a key (a crash
    /// during creation) is replaced.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, TlsError> {
        let dir = data_dir.join(IDENTITY_DIR);
        let cert_path = dir.join(CERT_FILE);
        let key_path = dir.join(KEY_FILE);
        if key_path.exists() {
            if !cert_path.exists() {
                return Err(TlsError::MissingCertificate {
                    cert: cert_path,
                    key: key_path,
                });
            }
            return Self::from_pem_files(&cert_path, &key_path);
        }
        create_identity_dir(&dir)?;
        let (cert_pem, key_pem) = generate_self_signed()?;
        write_file_atomically(&cert_path, cert_pem.as_bytes(), 0o644)
            .map_err(|source| io_error("writing", &cert_path, source))?;
        write_file_atomically(&key_path, key_pem.as_bytes(), 0o600)
            .map_err(|source| io_error("writing", &key_path, source))?;
        tracing::info!(path = %dir.display(), "created a new relay identity");
        // Read back what is on disk: if another process created an identity at
        // the same moment, the files may not be ours, and must still match.
        Self::from_pem_files(&cert_path, &key_path)
    }

    /// The key that signs QUIC stateless resets, kept in the data folder so
    /// that after a restart (or a crash) the relay can reset the connections
    /// of its previous run at once, instead of clients waiting for their idle
    /// timeout. Created on first use (32 random bytes, mode 0600).
    pub fn load_or_create_reset_key(data_dir: &Path) -> Result<[u8; 32], TlsError> {
        let dir = data_dir.join(IDENTITY_DIR);
        let path = dir.join(RESET_KEY_FILE);
        if let Ok(bytes) = std::fs::read(&path) {
            return bytes.try_into().map_err(|_| TlsError::BadResetKey { path });
        }
        create_identity_dir(&dir)?;
        let mut key = [0u8; 32];
        rand::fill(&mut key);
        write_file_atomically(&path, &key, 0o600)
            .map_err(|source| io_error("writing", &path, source))?;
        let bytes = std::fs::read(&path).map_err(|source| io_error("reading", &path, source))?;
        bytes.try_into().map_err(|_| TlsError::BadResetKey { path })
    }

    /// The identity a relay with these settings uses: the operator's
    /// certificate and key when `cert_file` and `key_file` are set, else the
    /// generated one in the data folder (created on first use).
    pub fn for_config(config: &Config) -> Result<Self, TlsError> {
        match (&config.cert_file, &config.key_file) {
            (Some(cert), Some(key)) => Self::from_pem_files(cert, key),
            _ => Self::load_or_create(&config.data_dir),
        }
    }

    /// Loads an operator-supplied certificate chain (leaf first) and private
    /// key (PKCS#8, PKCS#1 or SEC1) from PEM files. Fails unless the key
    /// belongs to the leaf certificate.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let cert_chain = read_cert_chain(cert)?;
        let key_der = read_private_key(key)?;
        Self::from_der(cert_chain, key_der)
    }

    /// Builds an identity from DER, checking that the key belongs to the leaf.
    fn from_der(
        cert_chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, TlsError> {
        let leaf = cert_chain.first().ok_or(TlsError::BadCertificate)?;
        let fingerprint = spki_fingerprint(leaf)?;
        // rustls loads the key and compares its public half with the leaf's.
        rustls::sign::CertifiedKey::from_der(cert_chain.clone(), key.clone_key(), &provider())
            .map_err(|err| match err {
                rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch,
                other => TlsError::Rustls(other),
            })?;
        Ok(Self {
            cert_chain,
            key,
            fingerprint,
        })
    }

    /// The rustls server configuration: TLS 1.3 only, ring provider, ALPN
    /// exactly [`ALPN`], no client certificates, no 0-RTT.
    pub fn server_crypto(&self) -> Result<rustls::ServerConfig, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(self.cert_chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![ALPN.to_vec()];
        config.max_early_data_size = 0;
        Ok(config)
    }
}

/// The crypto provider the relay uses for TLS.
fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// SHA-256 of a certificate's SubjectPublicKeyInfo (the raw DER bytes).
fn spki_fingerprint(cert: &CertificateDer<'_>) -> Result<Fingerprint, TlsError> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(cert).map_err(|_| TlsError::BadCertificate)?;
    Ok(Fingerprint::of_spki(parsed.public_key().raw))
}

/// Generates an ECDSA P-256 key and a self-signed certificate, as PEM.
fn generate_self_signed() -> Result<(String, String), TlsError> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(vec![GENERATED_NAME.to_owned()])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, GENERATED_NAME);
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Creates the identity folder, readable only by the relay's user.
fn create_identity_dir(dir: &Path) -> Result<(), TlsError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|source| io_error("creating folder", dir, source))
}

/// Reads every certificate in a PEM file, in order.
fn read_cert_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|err| pem_error(path, "certificate", err))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| pem_error(path, "certificate", err))?;
    if chain.is_empty() {
        return Err(TlsError::MissingPem {
            path: path.to_owned(),
            what: "certificate",
        });
    }
    Ok(chain)
}

/// Reads the first private key in a PEM file.
fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    warn_if_key_readable_by_others(path);
    PrivateKeyDer::from_pem_file(path).map_err(|err| pem_error(path, "private key", err))
}

/// Maps a PEM error to a [`TlsError`] that never quotes the file's content.
fn pem_error(path: &Path, what: &'static str, err: pem::Error) -> TlsError {
    match err {
        pem::Error::Io(source) => io_error("reading", path, source),
        pem::Error::NoItemsFound => TlsError::MissingPem {
            path: path.to_owned(),
            what,
        },
        _ => TlsError::MalformedPem {
            path: path.to_owned(),
        },
    }
}

/// Warns when a private key file can be read by other users.
fn warn_if_key_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).map(|meta| meta.permissions().mode());
        if mode.is_ok_and(|mode| mode & 0o077 != 0) {
            tracing::warn!(path = %path.display(), "private key file is readable by other users; chmod 600 it");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Builds a [`TlsError::Io`].
fn io_error(action: &'static str, path: &Path, source: io::Error) -> TlsError {
    TlsError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    #[test]
    fn created_identity_is_reloaded_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let first = RelayIdentity::load_or_create(dir.path()).unwrap();
        let second = RelayIdentity::load_or_create(dir.path()).unwrap();
        assert_eq!(first.fingerprint, second.fingerprint);
        assert_eq!(first.cert_chain, second.cert_chain);
        assert_eq!(
            spki_fingerprint(&first.cert_chain[0]).unwrap(),
            first.fingerprint
        );
    }

    #[test]
    fn each_data_dir_gets_its_own_identity() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let first = RelayIdentity::load_or_create(a.path()).unwrap();
        let second = RelayIdentity::load_or_create(b.path()).unwrap();
        assert_ne!(first.fingerprint, second.fingerprint);
    }

    #[test]
    fn operator_pem_files_load_and_the_fingerprint_pins_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let params = rcgen::CertificateParams::new(vec!["relay.example.org".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (cert_path, key_path) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        let identity = RelayIdentity::from_pem_files(&cert_path, &key_path).unwrap();
        let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
        assert_eq!(identity.fingerprint, Fingerprint::of_spki(&spki));
        assert_eq!(identity.cert_chain, vec![cert.der().clone()]);
        identity.server_crypto().unwrap();
    }

    #[test]
    fn config_chooses_operator_files_when_set_else_the_generated_identity() {
        let dir = tempfile::tempdir().unwrap();
        let operator = tempfile::tempdir().unwrap();
        let (cert_pem, key_pem) = generate_self_signed().unwrap();
        let (cert_path, key_path) = (operator.path().join("c.pem"), operator.path().join("k.pem"));
        std::fs::write(&cert_path, cert_pem).unwrap();
        std::fs::write(&key_path, key_pem).unwrap();
        let mut config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        let generated = RelayIdentity::for_config(&config).unwrap();
        assert_eq!(
            generated.fingerprint,
            RelayIdentity::load_or_create(dir.path())
                .unwrap()
                .fingerprint
        );
        config.cert_file = Some(cert_path.clone());
        config.key_file = Some(key_path.clone());
        let chosen = RelayIdentity::for_config(&config).unwrap();
        let operator_identity = RelayIdentity::from_pem_files(&cert_path, &key_path).unwrap();
        assert_eq!(chosen.fingerprint, operator_identity.fingerprint);
        assert_ne!(chosen.fingerprint, generated.fingerprint);
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_pem, _) = generate_self_signed().unwrap();
        let (_, other_key_pem) = generate_self_signed().unwrap();
        let (cert_path, key_path) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert_path, cert_pem).unwrap();
        std::fs::write(&key_path, other_key_pem).unwrap();
        let err = RelayIdentity::from_pem_files(&cert_path, &key_path).unwrap_err();
        assert!(matches!(err, TlsError::KeyMismatch), "{err:?}");
    }

    #[test]
    fn missing_or_empty_pem_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem at all\n").unwrap();
        let missing = dir.path().join("missing.pem");
        let err = RelayIdentity::from_pem_files(&missing, &empty).unwrap_err();
        assert!(matches!(err, TlsError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("missing.pem"));
        let err = RelayIdentity::from_pem_files(&empty, &empty).unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::MissingPem {
                    what: "certificate",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn key_without_certificate_is_not_silently_replaced() {
        let dir = tempfile::tempdir().unwrap();
        RelayIdentity::load_or_create(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join(IDENTITY_DIR).join(CERT_FILE)).unwrap();
        let err = RelayIdentity::load_or_create(dir.path()).unwrap_err();
        assert!(
            matches!(err, TlsError::MissingCertificate { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn certificate_without_key_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let first = RelayIdentity::load_or_create(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join(IDENTITY_DIR).join(KEY_FILE)).unwrap();
        let second = RelayIdentity::load_or_create(dir.path()).unwrap();
        assert_ne!(first.fingerprint, second.fingerprint);
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_readable_only_by_its_owner() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        RelayIdentity::load_or_create(dir.path()).unwrap();
        let identity_dir = dir.path().join(IDENTITY_DIR);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&identity_dir.join(KEY_FILE)), 0o600);
        assert_eq!(mode(&identity_dir), 0o700);
        assert_eq!(
            std::fs::read_dir(&identity_dir).unwrap().count(),
            2,
            "no temp files left"
        );
    }

    #[test]
    fn reset_key_is_created_once_private_and_refused_when_damaged() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let first = RelayIdentity::load_or_create_reset_key(dir.path()).unwrap();
        assert_eq!(
            RelayIdentity::load_or_create_reset_key(dir.path()).unwrap(),
            first
        );
        let other = tempfile::tempdir().unwrap();
        assert_ne!(
            RelayIdentity::load_or_create_reset_key(other.path()).unwrap(),
            first
        );
        let path = dir.path().join(IDENTITY_DIR).join(RESET_KEY_FILE);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(
            RelayIdentity::load_or_create_reset_key(dir.path()),
            Err(TlsError::BadResetKey { .. })
        ));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let identity = RelayIdentity::load_or_create(dir.path()).unwrap();
        let debug = format!("{identity:?}");
        let key_pem =
            std::fs::read_to_string(dir.path().join(IDENTITY_DIR).join(KEY_FILE)).unwrap();
        let key_body: String = key_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        assert!(debug.contains("<redacted>"));
        assert!(!debug.contains(&key_body[..16]));
        assert!(debug.contains(&identity.fingerprint.to_string()));
    }

    #[test]
    fn server_config_is_tls13_with_hearth_alpn_and_no_early_data() {
        let dir = tempfile::tempdir().unwrap();
        let config = RelayIdentity::load_or_create(dir.path())
            .unwrap()
            .server_crypto()
            .unwrap();
        assert_eq!(config.alpn_protocols, vec![b"hearth/1".to_vec()]);
        assert_eq!(config.max_early_data_size, 0);
    }

    #[test]
    fn handshake_with_hearth_alpn_succeeds_and_presents_the_pinned_key() {
        let dir = tempfile::tempdir().unwrap();
        let identity = RelayIdentity::load_or_create(dir.path()).unwrap();
        let (client, server) = handshake(&identity, &[ALPN]).unwrap();
        assert_eq!(server.alpn_protocol(), Some(ALPN));
        assert_eq!(
            client.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        let presented = &client.peer_certificates().unwrap()[0];
        assert_eq!(spki_fingerprint(presented).unwrap(), identity.fingerprint);
    }

    #[test]
    fn handshake_with_another_alpn_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let identity = RelayIdentity::load_or_create(dir.path()).unwrap();
        let err = handshake(&identity, &[b"h3"]).unwrap_err();
        assert_eq!(err, rustls::Error::NoApplicationProtocol);
    }

    /// Runs an in-memory TLS handshake between a client offering `alpn` and
    /// the relay's server configuration.
    fn handshake(
        identity: &RelayIdentity,
        alpn: &[&[u8]],
    ) -> Result<(rustls::ClientConnection, rustls::ServerConnection), rustls::Error> {
        let server_config = Arc::new(identity.server_crypto().unwrap());
        let mut client_config = rustls::ClientConfig::builder_with_provider(Arc::new(provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate))
            .with_no_client_auth();
        client_config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let name = ServerName::try_from("hearth-relay").unwrap();
        let mut client = rustls::ClientConnection::new(Arc::new(client_config), name).unwrap();
        let mut server = rustls::ServerConnection::new(server_config).unwrap();
        while client.is_handshaking() || server.is_handshaking() {
            let mut buf = Vec::new();
            client.write_tls(&mut buf).unwrap();
            server.read_tls(&mut buf.as_slice()).unwrap();
            server.process_new_packets()?;
            buf.clear();
            server.write_tls(&mut buf).unwrap();
            client.read_tls(&mut buf.as_slice()).unwrap();
            client.process_new_packets()?;
        }
        Ok((client, server))
    }

    /// Accepts any certificate but checks handshake signatures (the real
    /// client pins the SPKI hash; these tests check what the server sends).
    #[derive(Debug)]
    struct AcceptAnyCertificate;

    impl ServerCertVerifier for AcceptAnyCertificate {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _cert: &CertificateDer<'_>,
            _dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::General("TLS 1.2 is not offered".into()))
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            let algorithms = provider().signature_verification_algorithms;
            rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
}
