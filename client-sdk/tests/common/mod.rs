//! Shared set-up of the SDK's integration tests: a real relay in this
//! process, fast client options, and small helpers.
#![allow(dead_code)]

pub(crate) mod circles;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use hearth_client::{
    Client, ClientOptions, Event, KdfParams, RelayAddress, StorageKey, StoreSecret,
};
use hearth_relay::config::Config;
use hearth_relay::core::RegistrationMode;
use hearth_relay::net::RunningRelay;

pub(crate) const WAIT: Duration = Duration::from_secs(20);

pub(crate) async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what} took longer than {WAIT:?}"),
    }
}

pub(crate) struct Relay {
    pub(crate) relay: Option<RunningRelay>,
    pub(crate) data: tempfile::TempDir,
}

impl Relay {
    pub(crate) async fn start(mode: RegistrationMode) -> Self {
        Self::start_with(mode, |_| {}).await
    }

    pub(crate) async fn start_with(
        mode: RegistrationMode,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut config = config(data.path(), 0, mode);
        adjust(&mut config);
        let relay = RunningRelay::start(config).await.unwrap();
        Self {
            relay: Some(relay),
            data,
        }
    }

    pub(crate) fn address(&self) -> RelayAddress {
        self.relay.as_ref().unwrap().address()
    }

    pub(crate) async fn stop(&mut self) -> u16 {
        let relay = self.relay.take().unwrap();
        let port = relay.local_addr().port();
        relay.shutdown().await.unwrap();
        port
    }

    pub(crate) async fn restart_on(&mut self, port: u16) {
        let config = config(self.data.path(), port, RegistrationMode::Open);
        self.relay = Some(RunningRelay::start(config).await.unwrap());
    }
}

pub(crate) fn config(data: &Path, port: u16, mode: RegistrationMode) -> Config {
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], port)),
        data_dir: data.to_path_buf(),
        udp_buffer_bytes: 1024 * 1024,
        ..Config::default()
    };
    config.core.registration = mode;
    config
}

pub(crate) fn options() -> ClientOptions {
    let mut options = ClientOptions {
        quiet_period: Duration::from_millis(300),
        kdf: KdfParams {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        },
        ..ClientOptions::default()
    };
    options.connect.connect_timeout = Duration::from_secs(3);
    options.backoff.initial = Duration::from_millis(100);
    options
}

pub(crate) fn key(byte: u8) -> StoreSecret {
    StorageKey::from_bytes([byte; 32]).into()
}

pub(crate) async fn create(
    home: &Path,
    secret: StoreSecret,
    relay: &RelayAddress,
    name: &str,
) -> Client {
    within(
        "create",
        Client::create_with(home, secret, relay, None, name, options()),
    )
    .await
    .unwrap()
}

pub(crate) async fn sync(client: &Client) -> Vec<Event> {
    within("sync", client.sync(Duration::ZERO))
        .await
        .unwrap()
        .events
}
