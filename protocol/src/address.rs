//! Relay addresses: `hearth://<fingerprint>@<host>:<port>`.
//!
//! The fingerprint is the unpadded base64url SHA-256 of the relay
//! certificate's SubjectPublicKeyInfo. Clients pin it instead of trusting a
//! CA or DNS.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The URL scheme of relay addresses.
pub const SCHEME: &str = "hearth://";

/// SHA-256 of a certificate's SubjectPublicKeyInfo (DER).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Fingerprint of a DER-encoded SubjectPublicKeyInfo.
    pub fn of_spki(spki_der: &[u8]) -> Self {
        Self(Sha256::digest(spki_der).into())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| AddressError::BadFingerprint)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| AddressError::BadFingerprint)?;
        Ok(Self(bytes))
    }
}

/// Why a relay address could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The address does not start with `hearth://`.
    #[error("a relay address starts with {SCHEME}")]
    BadScheme,
    /// The part before `@` is not 43 characters of base64url (32 bytes).
    #[error("the fingerprint must be the unpadded base64url of 32 bytes")]
    BadFingerprint,
    /// The host or port is missing or malformed.
    #[error("expected <host>:<port> after the fingerprint")]
    BadHostPort,
}

/// Where a relay is and which key it must prove it holds.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RelayAddress {
    /// Pinned SPKI fingerprint.
    pub fingerprint: Fingerprint,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// UDP port.
    pub port: u16,
}

impl fmt::Display for RelayAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(
                f,
                "{SCHEME}{}@[{}]:{}",
                self.fingerprint, self.host, self.port
            )
        } else {
            write!(
                f,
                "{SCHEME}{}@{}:{}",
                self.fingerprint, self.host, self.port
            )
        }
    }
}

impl fmt::Debug for RelayAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelayAddress({self})")
    }
}

impl FromStr for RelayAddress {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.strip_prefix(SCHEME).ok_or(AddressError::BadScheme)?;
        let (fingerprint, host_port) = rest.split_once('@').ok_or(AddressError::BadFingerprint)?;
        let fingerprint = fingerprint.parse()?;
        let host_port = host_port.strip_suffix('/').unwrap_or(host_port);
        let (host, port) = host_port
            .rsplit_once(':')
            .ok_or(AddressError::BadHostPort)?;
        let host = match host.strip_prefix('[') {
            Some(inner) => inner.strip_suffix(']').ok_or(AddressError::BadHostPort)?,
            None if host.contains(':') => return Err(AddressError::BadHostPort),
            None => host,
        };
        if host.is_empty() || host.contains(['/', '@', '[', ']']) {
            return Err(AddressError::BadHostPort);
        }
        let port = port.parse().map_err(|_| AddressError::BadHostPort)?;
        Ok(Self {
            fingerprint,
            host: host.to_owned(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(host: &str) -> RelayAddress {
        RelayAddress {
            fingerprint: Fingerprint::of_spki(b"spki"),
            host: host.into(),
            port: 4433,
        }
    }

    #[test]
    fn formats_and_parses_ipv4_names_and_ipv6() {
        for host in ["127.0.0.1", "relay.example.org", "::1"] {
            let addr = sample(host);
            let text = addr.to_string();
            assert_eq!(text.parse::<RelayAddress>(), Ok(addr), "{text}");
        }
        assert!(sample("::1").to_string().ends_with("@[::1]:4433"));
    }

    #[test]
    fn rejects_malformed_addresses() {
        let fp = Fingerprint::of_spki(b"spki").to_string();
        assert_eq!(fp.len(), 43);
        let cases = [
            (format!("https://{fp}@h:1"), AddressError::BadScheme),
            (
                "hearth://short@h:1".to_string(),
                AddressError::BadFingerprint,
            ),
            (format!("hearth://{fp}h:1"), AddressError::BadFingerprint),
            (format!("hearth://{fp}@h"), AddressError::BadHostPort),
            (format!("hearth://{fp}@h:99999"), AddressError::BadHostPort),
            (format!("hearth://{fp}@:1"), AddressError::BadHostPort),
            (format!("hearth://{fp}@::1:1"), AddressError::BadHostPort),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<RelayAddress>(), Err(want), "{text}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,80}") {
            let _ = s.parse::<RelayAddress>();
        }

        #[test]
        fn round_trips(fp in any::<[u8; 32]>(), host in "[a-z0-9.-]{1,30}", port in any::<u16>()) {
            let addr = RelayAddress { fingerprint: Fingerprint(fp), host, port };
            prop_assert_eq!(addr.to_string().parse::<RelayAddress>(), Ok(addr));
        }
    }
}
