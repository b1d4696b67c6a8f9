//! The relay's network shell: the quinn endpoint and the tokio tasks that
//! move bytes between clients, the core and the store (DESIGN.md sections
//! 3–4). No relay logic lives here: every decision is the core's.
//!
//! Tasks and threads:
//! - the accept loop (`net/connection.rs`) admits connections up to the cap,
//!   and up to the per-address cap (`net/address_slots.rs`) once their
//!   handshake is done;
//! - one task per connection registers it with the core, accepts its
//!   request streams, one task per request (`net/request.rs`), and closes
//!   it when the core says it did not authenticate in time;
//! - one delivery task per connection (`net/delivery.rs`) writes envelopes on
//!   relay-opened unidirectional streams, taking freshly committed ones from
//!   the hot cache (`net/hot.rs`) and the rest from the store;
//! - one thread owns the store's writes and group-commits (`net/writer.rs`);
//! - one task sweeps expired envelopes and send records every
//!   `expiry_sweep`.
//!
//! The core lives behind a `std::sync::Mutex`, held only for a core call and
//! never across an `.await`.
//!
//! Shutdown ([`RunningRelay::shutdown`]): refuse new connections and
//! streams, let requests in flight finish (up to [`REQUEST_GRACE`]), commit
//! and answer everything queued for the writer, close every connection with
//! "relay shutting down", and wait for the endpoint to go idle. Every commit
//! was already made durable when it was answered; last, the store writes its
//! memory tables to disk ([`MailboxStore::flush`]) so that the next start
//! replays little journal.
//!
//! If the store fails to commit, the relay stops the same way and [`run`]
//! returns an error (`net/writer.rs` explains why stopping is the only safe
//! reaction).

mod address_slots;
mod connection;
mod delivery;
mod endpoint;
mod hot;
mod load;
mod request;
#[cfg(test)]
mod tests;
mod writer;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use hearth_proto::relay::ErrorCode;
use hearth_protocol::address::RelayAddress;
use quinn::{Endpoint, VarInt};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::core::{CoreStats, RegistrationMode, RelayCore};
use crate::ids::Millis;
use crate::registration::TokenFolder;
use crate::store::MailboxStore;
use crate::store::fjall::FjallStore;
use crate::tls::RelayIdentity;
use address_slots::AddressSlots;
use delivery::Wakers;
use hot::{HOT_CACHE_BYTES, HotEnvelopes};
use request::RequestsInFlight;
use writer::{Writer, WriterThread};

/// Label of the TLS keying material exported per connection, to which
/// authentication proofs are bound (32 bytes, empty context).
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-hearth-auth";

/// QUIC application close codes reuse the numbers of relay.proto's
/// `ErrorCode`.
const fn close_code(code: ErrorCode) -> VarInt {
    VarInt::from_u32(code as i32 as u32)
}

/// Close code when the relay shuts down.
const CLOSE_SHUTTING_DOWN: VarInt = close_code(ErrorCode::ShuttingDown);
/// Close code for a peer that keeps sending malformed frames.
const CLOSE_BAD_FRAMES: VarInt = close_code(ErrorCode::BadFrame);
/// Close code when the relay itself failed.
const CLOSE_INTERNAL: VarInt = close_code(ErrorCode::Internal);
/// Close code for a connection over its address's cap.
const CLOSE_TOO_MANY: VarInt = close_code(ErrorCode::RateLimited);
/// Close reason for a connection over its address's cap.
const TOO_MANY_REASON: &[u8] = b"too many connections from your address";

/// How long shutdown waits for requests in flight.
pub const REQUEST_GRACE: Duration = Duration::from_secs(5);
/// How long shutdown waits for closed connections to be acknowledged.
const CLOSE_GRACE: Duration = Duration::from_secs(3);
/// How long shutdown waits for connection tasks to wind up.
const TASK_GRACE: Duration = Duration::from_secs(5);
/// Shortest expiry sweep interval (a zero setting would spin).
const MIN_SWEEP: Duration = Duration::from_millis(100);
/// How often the sweep scans the store for expired send records written
/// before this start.
const STORED_RECORD_SWEEP: Duration = Duration::from_secs(3600);

/// Milliseconds since the Unix epoch: the only clock the relay reads.
fn now_ms() -> Millis {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Millis::try_from(since_epoch.as_millis()).unwrap_or(Millis::MAX)
}

/// What every task of the shell shares.
struct Shell {
    core: Arc<Mutex<RelayCore>>,
    store: Arc<dyn MailboxStore>,
    /// Freshly committed envelopes, filled by the writer.
    hot: Arc<HotEnvelopes>,
    writer: Writer,
    wakers: Arc<Wakers>,
    requests: RequestsInFlight,
    /// Connections per client address.
    address_slots: Arc<AddressSlots>,
    /// The registration token folder, read again only when it changed.
    token_folder: Arc<Mutex<TokenFolder>>,
    registration: RegistrationMode,
    max_frame_bytes: usize,
    /// Becomes true once the relay stops (shutdown or store failure).
    stopping: watch::Sender<bool>,
    /// Set by the writer when a commit failed.
    store_failed: Arc<AtomicBool>,
}

impl Shell {
    /// Locks the core. Hold the guard for one core call, never across an
    /// `.await`.
    fn core(&self) -> MutexGuard<'_, RelayCore> {
        self.core.lock().unwrap_or_else(|poisoned| {
            // A core call panicked half-way: its state can't be trusted any
            // more. Stop the relay; restarting rebuilds the core from disk.
            if !self.stopping.send_replace(true) {
                error!("the relay core panicked; stopping the relay");
            }
            poisoned.into_inner()
        })
    }

    /// Resolves once the relay is stopping.
    async fn stopped(&self) {
        let mut stopping = self.stopping.subscribe();
        // An error means the sender is gone, which also means stopping.
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }

    fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }
}

/// A running relay: the library entry for tests and tools. Stop it with
/// [`RunningRelay::shutdown`].
pub struct RunningRelay {
    shell: Arc<Shell>,
    endpoint: Endpoint,
    local_addr: SocketAddr,
    address: RelayAddress,
    writer_thread: WriterThread,
    accept_task: JoinHandle<()>,
    expiry_task: JoinHandle<()>,
}

impl std::fmt::Debug for RunningRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningRelay")
            .field("local_addr", &self.local_addr)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl RunningRelay {
    /// Opens the store, loads the core from it, binds the endpoint and starts
    /// serving.
    pub async fn start(config: Config) -> anyhow::Result<RunningRelay> {
        let (identity, reset_key, store) = open_identity_and_store(&config).await?;
        let snapshot = {
            let store = Arc::clone(&store);
            tokio::task::spawn_blocking(move || store.load())
                .await?
                .context("loading the store")?
        };
        let core = Arc::new(Mutex::new(RelayCore::new(config.core.clone(), snapshot)));
        let server_crypto = identity
            .server_crypto()
            .context("building the TLS configuration")?;
        let endpoint = endpoint::bind(&config, server_crypto, &reset_key)
            .context("starting the QUIC endpoint")?;
        let local_addr = endpoint.local_addr().context("reading the bound address")?;

        let wakers = Arc::new(Wakers::default());
        let hot = Arc::new(HotEnvelopes::new(HOT_CACHE_BYTES));
        let (stopping, _) = watch::channel(false);
        let store_failed = Arc::new(AtomicBool::new(false));
        let (writer, writer_thread) =
            spawn_writer(&store, &hot, &core, &wakers, &stopping, &store_failed)
                .context("starting the store writer")?;
        let shell = Arc::new(Shell {
            core,
            store,
            hot,
            writer,
            wakers,
            requests: RequestsInFlight::default(),
            address_slots: AddressSlots::new(config.max_connections_per_ip),
            token_folder: Arc::new(Mutex::new(TokenFolder::new(&config.data_dir))),
            registration: config.core.registration,
            max_frame_bytes: config.core.max_frame_bytes,
            stopping,
            store_failed,
        });
        let accept_task = tokio::spawn(connection::accept(
            endpoint.clone(),
            Arc::clone(&shell),
            config.max_connections,
        ));
        let expiry_task = tokio::spawn(sweep_expired(Arc::clone(&shell), config.expiry_sweep));
        let address = RelayAddress {
            fingerprint: identity.fingerprint,
            host: config.relay_host(),
            port: local_addr.port(),
        };
        info!(%local_addr, "relay started");
        Ok(RunningRelay {
            shell,
            endpoint,
            local_addr,
            address,
            writer_thread,
            accept_task,
            expiry_task,
        })
    }

    /// The UDP address the relay is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address clients use: `hearth://<fingerprint>@<host>:<port>`,
    /// with the configured public host and the bound port.
    pub fn address(&self) -> RelayAddress {
        self.address.clone()
    }

    /// Counts from the core.
    pub fn stats(&self) -> CoreStats {
        self.shell.core().stats()
    }

    /// Resolves when the relay stops on its own (after a store failure);
    /// then call [`RunningRelay::shutdown`].
    pub async fn stopped(&self) {
        self.shell.stopped().await;
    }

    /// Stops gracefully: refuses new connections and streams, lets requests
    /// in flight finish, commits and answers everything queued, closes every
    /// connection with "relay shutting down" and waits for the endpoint to go
    /// idle. Returns an error if the store failed while the relay ran.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        info!("relay shutting down");
        self.shell.stopping.send_replace(true);
        if tokio::time::timeout(REQUEST_GRACE, self.shell.requests.idle())
            .await
            .is_err()
        {
            warn!(
                requests = self.shell.requests.count(),
                "requests still in flight after the grace period"
            );
        }
        // The sweep returns once stopping; it may be waiting for a commit.
        join_task(self.expiry_task, "expiry sweep").await;
        self.shell.writer.stop();
        self.writer_thread.finished().await;
        self.endpoint
            .close(CLOSE_SHUTTING_DOWN, b"relay shutting down");
        if tokio::time::timeout(CLOSE_GRACE, self.endpoint.wait_idle())
            .await
            .is_err()
        {
            warn!("connections did not acknowledge the close in time");
        }
        match tokio::time::timeout(TASK_GRACE, join_task(self.accept_task, "accept loop")).await {
            Ok(()) => {}
            Err(_) => warn!("connection tasks did not finish in time"),
        }
        let store_failed = self.shell.store_failed.load(Ordering::SeqCst);
        if !store_failed {
            // Every commit is durable already: this only shortens the next
            // start's journal replay.
            let store = Arc::clone(&self.shell.store);
            match tokio::task::spawn_blocking(move || store.flush()).await {
                Ok(Ok(())) => {}
                Ok(Err(failure)) => warn!(error = %failure, "could not flush the store"),
                Err(failure) => warn!(error = %failure, "the store flush task failed"),
            }
        }
        // The last handle to the store goes with the shell.
        drop(self.shell);
        if store_failed {
            anyhow::bail!(
                "the store failed to commit; the relay stopped (restart it to recover from the store)"
            );
        }
        info!("relay stopped");
        Ok(())
    }
}

/// Starts the relay, prints `hearth-relay listening on <address>` to stdout
/// once it listens, and returns after graceful shutdown on SIGINT or
/// SIGTERM (or with an error after a store failure).
pub async fn run(config: Config) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};

    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let relay = RunningRelay::start(config).await?;
    println!("hearth-relay listening on {}", relay.address());
    tokio::select! {
        _ = interrupt.recv() => info!("SIGINT received"),
        _ = terminate.recv() => info!("SIGTERM received"),
        () = relay.stopped() => warn!("the relay is stopping on its own"),
    }
    relay.shutdown().await
}

/// Loads (or creates) the TLS identity and stateless-reset key and opens the
/// store, off the async threads.
async fn open_identity_and_store(
    config: &Config,
) -> anyhow::Result<(RelayIdentity, [u8; 32], Arc<dyn MailboxStore>)> {
    config.validate()?;
    let config = config.clone();
    tokio::task::spawn_blocking(move || {
        let data_dir = &config.data_dir;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating the data folder {}", data_dir.display()))?;
        let identity = RelayIdentity::for_config(&config).context("loading the TLS identity")?;
        let reset_key = RelayIdentity::load_or_create_reset_key(data_dir)
            .context("loading the stateless-reset key")?;
        let store = FjallStore::open(&data_dir.join("store")).context("opening the store")?;
        Ok((
            identity,
            reset_key,
            Arc::new(store) as Arc<dyn MailboxStore>,
        ))
    })
    .await?
}

/// Starts the writer thread: it reports each durable group's tickets to the
/// core (one lock per group) and wakes the connections that now have
/// deliveries; a failed commit stops the relay.
fn spawn_writer(
    store: &Arc<dyn MailboxStore>,
    hot: &Arc<HotEnvelopes>,
    core: &Arc<Mutex<RelayCore>>,
    wakers: &Arc<Wakers>,
    stopping: &watch::Sender<bool>,
    store_failed: &Arc<AtomicBool>,
) -> std::io::Result<(Writer, WriterThread)> {
    let (core, wakers) = (Arc::clone(core), Arc::clone(wakers));
    let mut woken = Vec::new();
    let on_committed = Box::new(move |tickets: &[crate::core::Ticket]| {
        {
            let mut core = core.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for &ticket in tickets {
                woken.extend(core.handle_committed(ticket));
            }
        }
        // The lock is released before waking.
        woken.sort_unstable();
        woken.dedup();
        wakers.wake(&woken);
        woken.clear();
    });
    let (stopping, store_failed) = (stopping.clone(), Arc::clone(store_failed));
    let on_failure = Box::new(move || {
        store_failed.store(true, Ordering::SeqCst);
        stopping.send_replace(true);
    });
    Writer::spawn(Arc::clone(store), Arc::clone(hot), on_committed, on_failure)
}

/// Every `every`, hands the core's expired envelopes and send records to the
/// writer for deletion, a bounded batch per core call, until none are left.
/// About once an hour (and first soon after start) it also deletes expired
/// send records the core does not know, written before this start.
async fn sweep_expired(shell: Arc<Shell>, every: Duration) {
    let mut ticks = tokio::time::interval(every.max(MIN_SWEEP));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut records_due = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shell.stopped() => return,
        }
        if tokio::time::Instant::now() >= records_due {
            records_due = tokio::time::Instant::now() + STORED_RECORD_SWEEP;
            load::sweep_stored_send_records(&shell).await;
        }
        loop {
            let pending = {
                let mut core = shell.core();
                core.poll_expired(now_ms())
                    .map(|commit| shell.writer.enqueue(commit))
            };
            let Some(pending) = pending else { break };
            if let Err(failed) = pending.answer().await {
                warn!(error = %failed, "expired envelopes were not deleted");
                break;
            }
            if shell.is_stopping() {
                return;
            }
        }
    }
}

/// Waits for a task, logging a panic.
async fn join_task(task: JoinHandle<()>, name: &'static str) {
    if let Err(failure) = task.await
        && failure.is_panic()
    {
        error!(task = name, error = %failure, "a relay task panicked");
    }
}
