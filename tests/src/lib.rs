//! Shared harness of Hearth's end-to-end tests: real QUIC on loopback, real
//! files, real processes.
//!
//! - [`TestRelay`]: a relay running inside the test process on
//!   `127.0.0.1:0` with its own temporary data folder;
//! - [`RelayProcess`]: the real `hearth-relay` binary as a child process on a
//!   fixed port, which can be killed, terminated and restarted;
//! - [`relay_binary`] and [`hearth_binary`]: the workspace's binaries, built
//!   first when the tests run under cargo;
//! - [`Owner`]: a mailbox owner (mailbox key, mailbox id, send token) and the
//!   client steps around it (register, authenticate, drain deliveries);
//! - [`cli`]: devices driven through the `hearth` binary, and [`member`]:
//!   members of circles on such devices;
//! - [`attacker`]: what someone with the relay's disk, logs or a send token
//!   sees and can send.
//!
//! Every wait is bounded ([`within`]), so a failure can't hang the suite.
#![forbid(unsafe_code)]

pub mod attacker;
mod binary;
pub mod cli;
pub mod member;
mod owner;
mod process;
mod relay;

use std::future::Future;
use std::time::Duration;

use hearth_client::{ClientError, RelayErrorCode};

pub use binary::{hearth_binary, relay_binary};
pub use owner::{
    Owner, client_message_id, connect, drain, drain_and_ack, drain_until_quiet, fast_options,
    next_delivery,
};
pub use process::{RelayProcess, free_udp_port};
pub use relay::{TestRelay, open_store, store_dir, stored_counts, test_config};

/// The default bound on any single wait in these tests.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// Awaits `future` for at most [`STEP_TIMEOUT`]; panics naming `what` if it
/// takes longer.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    within_for(STEP_TIMEOUT, what, future).await
}

/// Awaits `future` for at most `limit`; panics naming `what` if it takes
/// longer.
pub async fn within_for<T>(limit: Duration, what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {limit:?}: {what}"),
    }
}

/// The relay's typed refusal inside `error`, if it is one.
pub fn relay_code(error: &ClientError) -> Option<RelayErrorCode> {
    match error {
        ClientError::Relay { code, .. } => Some(*code),
        _ => None,
    }
}

/// Asserts that `result` is the relay refusing with `code`.
#[track_caller]
pub fn assert_refused<T: std::fmt::Debug>(result: Result<T, ClientError>, code: RelayErrorCode) {
    match result {
        Err(ClientError::Relay { code: got, message }) => {
            assert_eq!(got, code, "expected {code}, got {got}: {message}");
        }
        other => panic!("expected the relay to refuse with {code}, got {other:?}"),
    }
}
