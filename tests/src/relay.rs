//! A relay running inside the test process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hearth_client::RelayAddress;
use hearth_relay::config::Config;
use hearth_relay::core::RegistrationMode;
use hearth_relay::net::RunningRelay;
use hearth_relay::store::fjall::FjallStore;
use tempfile::TempDir;

use crate::within;

/// Settings for a test relay in `data_dir`: loopback on an ephemeral port,
/// open registration, small UDP buffers, debug-free logs, and no
/// per-address connection cap (every test client shares 127.0.0.1).
pub fn test_config(data_dir: &Path) -> Config {
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: data_dir.to_path_buf(),
        udp_buffer_bytes: 1024 * 1024,
        max_connections_per_ip: usize::MAX,
        ..Config::default()
    };
    config.core.registration = RegistrationMode::Open;
    config
}

/// A relay running in this process with its own temporary data folder. The
/// folder lives as long as the value (and past [`TestRelay::shutdown`]).
#[derive(Debug)]
pub struct TestRelay {
    relay: Option<RunningRelay>,
    data: TempDir,
    address: RelayAddress,
}

impl TestRelay {
    /// Starts a relay with [`test_config`].
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a relay with [`test_config`] changed by `adjust`.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let data = match tempfile::tempdir() {
            Ok(dir) => dir,
            Err(error) => panic!("creating a temporary data folder failed: {error}"),
        };
        let mut config = test_config(data.path());
        adjust(&mut config);
        let relay = match within("start the relay", RunningRelay::start(config)).await {
            Ok(relay) => relay,
            Err(error) => panic!("starting the relay failed: {error}"),
        };
        let address = relay.address();
        Self {
            relay: Some(relay),
            data,
            address,
        }
    }

    /// The relay's address (pinned fingerprint, `127.0.0.1`, its port).
    pub fn address(&self) -> &RelayAddress {
        &self.address
    }

    /// The running relay. Panics after [`TestRelay::shutdown`].
    pub fn relay(&self) -> &RunningRelay {
        match &self.relay {
            Some(relay) => relay,
            None => panic!("the relay was shut down"),
        }
    }

    /// The relay's data folder.
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// Where the relay keeps its fjall store.
    pub fn store_dir(&self) -> PathBuf {
        store_dir(self.data.path())
    }

    /// Opens the relay's store (after [`TestRelay::shutdown`]: the running
    /// relay holds it).
    pub fn open_store(&self) -> FjallStore {
        open_store(self.data.path())
    }

    /// Shuts the relay down gracefully (in-flight commits finish). The data
    /// folder stays until `self` is dropped.
    pub async fn shutdown(&mut self) {
        if let Some(relay) = self.relay.take() {
            within_shutdown(relay).await;
        }
    }
}

async fn within_shutdown(relay: RunningRelay) {
    let stopped = crate::within_for(
        Duration::from_secs(30),
        "shut the relay down",
        relay.shutdown(),
    )
    .await;
    if let Err(error) = stopped {
        panic!("the relay did not shut down cleanly: {error:#}");
    }
}

/// Where a relay with data folder `data_dir` keeps its fjall store.
pub fn store_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("store")
}

/// Opens the store of a stopped relay whose data folder is `data_dir`.
pub fn open_store(data_dir: &Path) -> FjallStore {
    match FjallStore::open(&store_dir(data_dir)) {
        Ok(store) => store,
        Err(error) => panic!("opening the relay's store failed: {error}"),
    }
}

/// `(bodies, envelopes)` stored by a stopped relay whose data folder is
/// `data_dir`.
pub fn stored_counts(data_dir: &Path) -> (usize, usize) {
    let store = open_store(data_dir);
    let bodies = store
        .body_count()
        .unwrap_or_else(|e| panic!("counting bodies failed: {e}"));
    let envelopes = store
        .envelope_count()
        .unwrap_or_else(|e| panic!("counting envelopes failed: {e}"));
    (bodies, envelopes)
}
