//! Identifiers the relay handles. None of them says who someone is.

use std::fmt;

/// A mailbox id: 32 random bytes chosen by its owner, unlinkable to any
/// identity. `Debug` and `Display` show only a short prefix, so logs never
/// hold a full id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxId(pub [u8; 32]);

impl MailboxId {
    /// Length in bytes.
    pub const LEN: usize = 32;

    /// Parses a mailbox id from wire bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// A short, non-identifying prefix for logs (4 bytes of hex).
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl fmt::Debug for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MailboxId({}…)", self.short())
    }
}

impl fmt::Display for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…", self.short())
    }
}

/// SHA-256 of a send token or a registration token. The relay stores only
/// these hashes, never the tokens.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Hashes a token as presented on the wire.
    pub fn of(token: &[u8]) -> Self {
        use sha2::Digest as _;
        Self(sha2::Sha256::digest(token).into())
    }

    /// Parses a hash sent by a mailbox owner.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(…)")
    }
}

/// Relay-assigned id of a stored message body (shared by its recipients).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct BodyId(pub u64);

/// The client's idempotency key for a send (16 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientMessageId(pub [u8; 16]);

impl fmt::Debug for ClientMessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientMessageId(…)")
    }
}

/// Identifies one connection inside the core.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ConnId(pub u64);

/// Which queue a one-time prekey belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum PrekeyKind {
    /// One-time X25519 prekeys.
    OneTimeX25519,
    /// One-time ML-KEM-768 prekeys.
    OneTimePq,
}

/// Milliseconds since the Unix epoch: the core's only notion of time.
pub type Millis = u64;
