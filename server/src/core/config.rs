//! Limits and policies of the relay core.

use std::time::Duration;

/// Who may register a mailbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationMode {
    /// Only holders of a registration token issued by the operator
    /// (`hearth-relay token create`). A private relay.
    #[default]
    Token,
    /// Anyone may register. A public relay.
    Open,
}

/// Request rate limit of one connection: a token bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Requests allowed in a burst.
    pub burst: f64,
}

/// The core's limits. [`CoreConfig::default`] holds the documented defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct CoreConfig {
    /// Who may register mailboxes.
    pub registration: RegistrationMode,
    /// Largest shared body of one send (default 64 KiB).
    pub max_body_bytes: usize,
    /// Largest sealed header per recipient (default 1 KiB).
    pub max_header_bytes: usize,
    /// Most recipients of one send (default 1,000).
    pub max_recipients: usize,
    /// How long an unacknowledged envelope is kept (default 30 days).
    pub envelope_ttl: Duration,
    /// Most envelopes waiting in one mailbox (default 10,000).
    pub mailbox_max_envelopes: u32,
    /// Most bytes waiting in one mailbox (default 64 MiB).
    pub mailbox_max_bytes: u64,
    /// Per-connection request rate (default 1,000/s, bursts of 2,000).
    pub rate_limit: RateLimit,
    /// Prekey fetches per target mailbox (default 10/min, bursts of 20):
    /// stops a stranger with a send token from draining one-time prekeys.
    pub prekey_fetch_limit: RateLimit,
    /// Most one-time prekeys of each kind stored per mailbox (default 200).
    pub max_prekeys_per_kind: usize,
    /// Largest single prekey blob or signed bundle (default 8 KiB).
    pub max_prekey_bytes: usize,
    /// Most unacknowledged envelopes in flight per connection (default 512).
    pub delivery_window: usize,
    /// Most envelope bytes in flight per connection (default 4 MiB).
    pub delivery_window_bytes: u64,
    /// Most envelopes in one `Delivery` frame (default 64); the frame also
    /// stays under the frame size limit.
    pub delivery_batch: usize,
    /// Largest frame in either direction (default 256 KiB).
    pub max_frame_bytes: usize,
    /// How long a send's result is remembered for retries (default 7 days).
    pub send_record_ttl: Duration,
    /// Most send records counted against one mailbox (default 10,000): past
    /// it, the mailbox's oldest record is forgotten, and a retry of that send
    /// stores a copy that the recipient's client drops as a duplicate.
    pub send_records_per_mailbox: usize,
    /// How long a connection may stay without authenticating as a mailbox
    /// owner and without a useful request (a stored send, a prekey fetch)
    /// before it is closed (default 20 s).
    pub auth_timeout: Duration,
    /// Malformed frames tolerated on one connection before it is closed
    /// (default 16).
    pub max_bad_frames: u32,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            registration: RegistrationMode::Token,
            max_body_bytes: 64 * 1024,
            max_header_bytes: 1024,
            max_recipients: 1000,
            envelope_ttl: Duration::from_secs(30 * 24 * 3600),
            mailbox_max_envelopes: 10_000,
            mailbox_max_bytes: 64 * 1024 * 1024,
            rate_limit: RateLimit {
                per_second: 1000.0,
                burst: 2000.0,
            },
            prekey_fetch_limit: RateLimit {
                per_second: 10.0 / 60.0,
                burst: 20.0,
            },
            max_prekeys_per_kind: 200,
            max_prekey_bytes: 8 * 1024,
            delivery_window: 512,
            delivery_window_bytes: 4 * 1024 * 1024,
            delivery_batch: 64,
            max_frame_bytes: 256 * 1024,
            send_record_ttl: Duration::from_secs(7 * 24 * 3600),
            send_records_per_mailbox: 10_000,
            auth_timeout: Duration::from_secs(20),
            max_bad_frames: 16,
        }
    }
}
