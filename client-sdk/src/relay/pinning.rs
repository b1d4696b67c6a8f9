//! Trusting a relay by its pinned key, not by a CA (DESIGN.md section 2).
//!
//! A relay address carries the SHA-256 fingerprint of the relay's
//! SubjectPublicKeyInfo. [`PinnedRelayVerifier`] accepts exactly the
//! certificate whose key has that fingerprint, whatever its names, issuer or
//! validity dates (as SimpleX does: the pin is the trust anchor), and still
//! lets rustls check the TLS 1.3 handshake signature, which proves the relay
//! holds the private key.

use std::sync::{Arc, OnceLock};

use hearth_protocol::address::Fingerprint;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, PeerIncompatible, SignatureScheme};
use subtle::ConstantTimeEq as _;

use super::ALPN;

/// A rustls server-certificate verifier that pins the relay's key.
///
/// It remembers the fingerprint the relay presented when it did not match,
/// so a failed connect can report
/// [`ClientError::FingerprintMismatch`](super::ClientError::FingerprintMismatch).
/// Use one verifier per connection attempt.
#[derive(Debug)]
pub struct PinnedRelayVerifier {
    pin: Fingerprint,
    algorithms: WebPkiSupportedAlgorithms,
    mismatch: OnceLock<Fingerprint>,
}

impl PinnedRelayVerifier {
    /// A verifier that accepts only a relay whose key has fingerprint `pin`.
    pub fn new(pin: Fingerprint) -> Self {
        let algorithms = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        Self {
            pin,
            algorithms,
            mismatch: OnceLock::new(),
        }
    }

    /// The pinned fingerprint.
    pub fn pin(&self) -> Fingerprint {
        self.pin
    }

    /// The fingerprint of a key the relay presented that did not match the
    /// pin, if that happened.
    pub fn mismatch(&self) -> Option<Fingerprint> {
        self.mismatch.get().copied()
    }

    /// Checks `end_entity`'s key against the pin.
    fn check_pin(&self, end_entity: &[u8]) -> Result<(), rustls::Error> {
        let presented = spki_fingerprint(end_entity)?;
        if bool::from(presented.0.ct_eq(&self.pin.0)) {
            Ok(())
        } else {
            // A second mismatch on the same verifier keeps the first value.
            let _ = self.mismatch.set(presented);
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }
}

/// The fingerprint of a DER certificate's SubjectPublicKeyInfo.
pub fn spki_fingerprint(certificate_der: &[u8]) -> Result<Fingerprint, rustls::Error> {
    let (_, certificate) = x509_parser::parse_x509_certificate(certificate_der)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    Ok(Fingerprint::of_spki(certificate.public_key().raw))
}

impl ServerCertVerifier for PinnedRelayVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check_pin(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // QUIC runs over TLS 1.3 only; the config never offers TLS 1.2.
        Err(PeerIncompatible::Tls13RequiredForQuic.into())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The client TLS configuration for a relay: TLS 1.3 only, the ring
/// provider, ALPN `hearth/1`, the pinning verifier, no client certificate,
/// no 0-RTT and no session resumption (a resumed session would skip the pin
/// check).
///
/// Exposed so tests can derive variants (e.g. another ALPN) from the real
/// configuration.
pub fn tls_config(
    verifier: Arc<PinnedRelayVerifier>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.enable_early_data = false;
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::PublicKeyData as _;

    fn relay_certificate() -> rcgen::CertifiedKey<rcgen::KeyPair> {
        rcgen::generate_simple_self_signed(vec!["somewhere.example".to_string()]).unwrap()
    }

    fn verify(
        verifier: &PinnedRelayVerifier,
        der: &CertificateDer<'_>,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let name = ServerName::try_from("hearth-relay").unwrap();
        verifier.verify_server_cert(der, &[], &name, &[], UnixTime::now())
    }

    #[test]
    fn accepts_the_pinned_key_whatever_the_name() {
        let relay = relay_certificate();
        let pin = Fingerprint::of_spki(&relay.signing_key.subject_public_key_info());
        let verifier = PinnedRelayVerifier::new(pin);
        assert!(verify(&verifier, relay.cert.der()).is_ok());
        assert_eq!(verifier.mismatch(), None);
        assert_eq!(spki_fingerprint(relay.cert.der()).unwrap(), pin);
    }

    #[test]
    fn rejects_another_key_and_records_what_was_presented() {
        let relay = relay_certificate();
        let impostor = relay_certificate();
        let pin = Fingerprint::of_spki(&relay.signing_key.subject_public_key_info());
        let verifier = PinnedRelayVerifier::new(pin);
        let err = verify(&verifier, impostor.cert.der()).unwrap_err();
        assert_eq!(
            err,
            rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
        );
        let presented = Fingerprint::of_spki(&impostor.signing_key.subject_public_key_info());
        assert_eq!(verifier.mismatch(), Some(presented));
    }

    #[test]
    fn rejects_garbage_certificates() {
        let verifier = PinnedRelayVerifier::new(Fingerprint([0; 32]));
        let err = verify(&verifier, &CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])).unwrap_err();
        assert_eq!(
            err,
            rustls::Error::InvalidCertificate(CertificateError::BadEncoding)
        );
        assert_eq!(verifier.mismatch(), None);
    }

    #[test]
    fn offers_the_ring_tls13_signature_schemes() {
        let verifier = PinnedRelayVerifier::new(Fingerprint([0; 32]));
        let schemes = verifier.supported_verify_schemes();
        assert!(schemes.contains(&SignatureScheme::ECDSA_NISTP256_SHA256));
        assert!(schemes.contains(&SignatureScheme::ED25519));
    }

    #[test]
    fn config_offers_hearth_alpn_without_early_data_or_client_cert() {
        let verifier = Arc::new(PinnedRelayVerifier::new(Fingerprint([0; 32])));
        let config = tls_config(verifier).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"hearth/1".to_vec()]);
        assert!(!config.enable_early_data);
        assert!(!config.client_auth_cert_resolver.has_certs());
    }
}
