//! [`Client`]: the SDK's async API over the [engine](crate::engine) and the
//! relay client.
//!
//! Every operation that changes state stages it in the engine, commits it to
//! the encrypted store (fdatasync), and only then talks to a relay: a sent
//! envelope's ratchet state is on disk before the envelope leaves, and a
//! received envelope is acknowledged only after what it changed is on disk.

mod circles;
mod connection;
mod options;
mod sync;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ed25519_dalek::SigningKey;
use hearth_protocol::address::RelayAddress;
use hearth_protocol::wire;
use rand::rngs::StdRng;
use tokio::sync::Mutex as AsyncMutex;

pub use options::{Backoff, ClientOptions, Clock, SystemClock};
pub use sync::SyncReport;
#[cfg(feature = "test-hooks")]
pub use sync::{TEST_EXIT_BEFORE_ACK_STATUS, TEST_EXIT_BEFORE_ACK_VAR};

use crate::contacts::Contact;
use crate::device::Device;
use crate::engine::Engine;
use crate::error::Error;
use crate::events::{Event, EventStream, Events};
use crate::ids::{MemberId, MessageId};
use crate::invite::Invite;
use crate::messages::Message;
use crate::relay::{ClientError, RelayClient, RelayErrorCode};
use crate::safety::SafetyNumber;
use crate::store::{Store, StoreSecret, WriteSet};
use connection::Connections;

/// The folder inside the home folder that holds the store.
pub const STORE_DIR: &str = "store";

/// A member's device: its identity, contacts, conversations and outbox,
/// stored encrypted under `home`, talking to relays.
///
/// Cheap to clone: clones share one device. See the [crate docs](crate) for
/// an example.
#[derive(Clone, Debug)]
pub struct Client {
    shared: Arc<Shared>,
}

struct Shared {
    home: PathBuf,
    options: ClientOptions,
    engine: AsyncMutex<Engine>,
    rng: Mutex<StdRng>,
    events: Events,
    connections: Connections,
    /// Held by whoever reads deliveries ([`Client::sync`] or [`Client::run`]).
    pump: AsyncMutex<()>,
    /// Held while the outbox is being sent.
    flush: AsyncMutex<()>,
    /// Client message ids sent to a relay by this process, and when the
    /// process started: an outbox entry sent before, or queued before the
    /// start (an earlier run may have sent it), is marked as a retry.
    sent: Mutex<std::collections::HashSet<Vec<u8>>>,
    started_at_ms: u64,
    member_id: MemberId,
    display_name: String,
    relay: RelayAddress,
    mailbox_id: [u8; 32],
    mailbox_key: SigningKey,
}

impl std::fmt::Debug for Shared {
    /// Shows who and where; never keys or the random generator's state.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("home", &self.home)
            .field("member_id", &self.member_id)
            .field("relay", &self.relay)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Sets up a new device in `home`: creates its encrypted store, registers
    /// a mailbox on the relay at `relay` (with `registration_token` if the
    /// relay is private), and publishes its prekeys.
    ///
    /// Fails with [`Error::AlreadySetUp`] if `home` already holds a device,
    /// [`Error::RegistrationRequired`] or [`Error::RegistrationTokenRejected`]
    /// if the relay wants a (valid) token, [`Error::RelayUnreachable`] or
    /// [`Error::FingerprintMismatch`]; nothing is left behind then.
    pub async fn create(
        home: impl AsRef<Path>,
        secret: impl Into<StoreSecret>,
        relay: &RelayAddress,
        registration_token: Option<&str>,
        display_name: &str,
    ) -> Result<Self, Error> {
        let options = ClientOptions::default();
        Self::create_with(
            home,
            secret,
            relay,
            registration_token,
            display_name,
            options,
        )
        .await
    }

    /// [`Client::create`] with `options`.
    pub async fn create_with(
        home: impl AsRef<Path>,
        secret: impl Into<StoreSecret>,
        relay: &RelayAddress,
        registration_token: Option<&str>,
        display_name: &str,
        options: ClientOptions,
    ) -> Result<Self, Error> {
        let home = home.as_ref().to_path_buf();
        let store_dir = home.join(STORE_DIR);
        if store_dir.exists() {
            return Err(Error::AlreadySetUp);
        }
        let secret = secret.into();
        let store = blocking({
            let (dir, kdf) = (store_dir.clone(), options.kdf);
            move || Store::create(&dir, &secret, kdf).map_err(Error::from)
        })
        .await?;
        let mut rng = new_rng(&options);
        let device = Device::generate(&mut rng, relay.clone(), display_name);
        let registered = register(&device, relay, registration_token, &options).await;
        let connection = match registered {
            Ok(connection) => connection,
            Err(error) => {
                drop(store);
                let _ = std::fs::remove_dir_all(&store_dir);
                return Err(error);
            }
        };
        let now = options.clock.now_ms();
        let (mut engine, writes, upload) = Engine::create(store, device, &mut rng, now);
        if let Err(error) = commit(&mut engine, writes).await {
            let _ = std::fs::remove_dir_all(&store_dir);
            return Err(error);
        }
        let client = Self::assemble(home, engine, rng, options);
        client.shared.connections.adopt_own(connection).await;
        // Prekeys failing to publish now are published by the next sync.
        if let Err(error) = client.publish(upload).await {
            tracing::warn!(%error, "publishing prekeys failed; will retry");
        }
        Ok(client)
    }

    /// Opens the device set up in `home`. A wrong key or passphrase is
    /// [`Error::WrongStorageKey`] and changes nothing; no device there is
    /// [`Error::NotSetUp`]. Does not connect (see [`Client::sync`]).
    pub async fn open(
        home: impl AsRef<Path>,
        secret: impl Into<StoreSecret>,
    ) -> Result<Self, Error> {
        Self::open_with(home, secret, ClientOptions::default()).await
    }

    /// [`Client::open`] with `options`.
    pub async fn open_with(
        home: impl AsRef<Path>,
        secret: impl Into<StoreSecret>,
        options: ClientOptions,
    ) -> Result<Self, Error> {
        let home = home.as_ref().to_path_buf();
        let secret = secret.into();
        let engine = blocking({
            let dir = home.join(STORE_DIR);
            move || {
                let store = Store::open(&dir, &secret)?;
                Engine::load(store).map_err(Error::from)
            }
        })
        .await?;
        let rng = new_rng(&options);
        Ok(Self::assemble(home, engine, rng, options))
    }

    fn assemble(home: PathBuf, engine: Engine, rng: StdRng, options: ClientOptions) -> Self {
        let started_at_ms = options.clock.now_ms();
        let device = &engine.device;
        let shared = Shared {
            home,
            member_id: device.member_id,
            display_name: device.display_name.clone(),
            relay: device.relay.clone(),
            mailbox_id: device.mailbox_id,
            mailbox_key: device.mailbox_key.clone(),
            connections: Connections::new(options.connect.clone()),
            options,
            engine: AsyncMutex::new(engine),
            rng: Mutex::new(rng),
            events: Events::default(),
            pump: AsyncMutex::new(()),
            flush: AsyncMutex::new(()),
            sent: Mutex::new(std::collections::HashSet::new()),
            started_at_ms,
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    /// This device's member id (what contacts see).
    pub fn member_id(&self) -> MemberId {
        self.shared.member_id
    }

    /// The name this member shows to contacts.
    pub fn display_name(&self) -> &str {
        &self.shared.display_name
    }

    /// The relay holding this device's mailbox.
    pub fn relay(&self) -> &RelayAddress {
        &self.shared.relay
    }

    /// The folder holding this device.
    pub fn home(&self) -> &Path {
        &self.shared.home
    }

    /// Subscribes to events from now on. Every subscriber gets every event.
    pub fn events(&self) -> EventStream {
        self.shared.events.subscribe()
    }

    /// A new personal invite link (`hearth://contact/...`). Whoever holds it
    /// can become a contact, once. Needs the relay (to register the link's
    /// send token).
    pub async fn invite_link(&self) -> Result<String, Error> {
        let (invite, writes) = {
            let engine = self.shared.engine.lock().await;
            let mut rng = self.rng();
            engine.new_invite(&mut *rng, self.now())
        };
        self.commit(writes).await?;
        let relay = self.own_relay().await?;
        relay
            .add_send_token(self.shared.mailbox_id, &invite.send_token)
            .await?;
        Ok(invite.to_link())
    }

    /// Accepts someone's invite link: fetches their keys (checked against
    /// the member id in the link), starts the session, gives them a send
    /// token for our mailbox, and queues the contact request. Emits
    /// [`Event::ContactAdded`].
    pub async fn accept_invite(&self, link: &str) -> Result<Contact, Error> {
        let invite: Invite = link.parse()?;
        self.shared.engine.lock().await.check_invite(&invite)?;
        let their_relay = self.relay_at(&invite.relay).await?;
        let fetched = their_relay
            .fetch_prekeys(invite.mailbox_id, &invite.send_token)
            .await
            .map_err(fetch_error)?;
        let bundle = wire::decode_prekey_bundle(
            &fetched.signed_bundle,
            fetched.one_time_prekey.as_deref(),
            &fetched.pq_prekey,
        )
        .map_err(|_| Error::InviteKeysMismatch)?;
        let mut our_token = [0u8; 32];
        rand::Rng::fill_bytes(&mut *self.rng(), &mut our_token);
        let own = self.own_relay().await?;
        own.add_send_token(self.shared.mailbox_id, &our_token)
            .await?;
        let contact = {
            let mut engine = self.shared.engine.lock().await;
            let (contact, writes) = {
                let mut rng = self.rng();
                engine.accept_invite(&invite, &bundle, &our_token, &mut *rng, self.now())?
            };
            commit(&mut engine, writes).await?;
            contact
        };
        self.emit(Event::ContactAdded(contact.clone()));
        self.flush_quietly().await;
        Ok(contact)
    }

    /// Every contact, oldest first.
    pub async fn contacts(&self) -> Result<Vec<Contact>, Error> {
        Ok(self.shared.engine.lock().await.contacts()?)
    }

    /// The contact named by `query`: a member id, or a display name that
    /// exactly one contact has (ignoring case).
    pub async fn contact(&self, query: &str) -> Result<Contact, Error> {
        self.shared.engine.lock().await.find_contact(query)
    }

    /// Marks `member` verified if `safety_number` (as read out or typed:
    /// spaces are ignored) is their safety number.
    pub async fn verify_contact(
        &self,
        member: MemberId,
        safety_number: &str,
    ) -> Result<Contact, Error> {
        let number: SafetyNumber = safety_number
            .parse()
            .map_err(|_| Error::InvalidSafetyNumber)?;
        let mut engine = self.shared.engine.lock().await;
        let (contact, writes) = engine.verify_contact(member, &number)?;
        commit(&mut engine, writes).await?;
        Ok(contact)
    }

    /// Sends a text message to `member`. The message is stored (and shows
    /// in [`Client::history`] as queued) before this returns; it is handed
    /// to the relay at once when possible, otherwise by the next
    /// [`Client::sync`] or [`Client::run`]. Delivery problems arrive as
    /// [`Event::DeliveryFailed`].
    pub async fn send_text(&self, member: MemberId, text: &str) -> Result<MessageId, Error> {
        let id = {
            let mut engine = self.shared.engine.lock().await;
            let (id, writes) = {
                let mut rng = self.rng();
                engine.queue_text(member, text, &mut *rng, self.now())?
            };
            commit(&mut engine, writes).await?;
            id
        };
        self.flush_quietly().await;
        Ok(id)
    }

    /// The conversation with `member`, oldest first.
    pub async fn history(&self, member: MemberId) -> Result<Vec<Message>, Error> {
        let engine = self.shared.engine.lock().await;
        if engine.contact_record(member)?.is_none() {
            return Err(Error::UnknownContact);
        }
        Ok(engine.history(member)?)
    }

    /// How many envelopes wait in the outbox.
    pub async fn queued(&self) -> Result<usize, Error> {
        Ok(self.shared.engine.lock().await.outbox()?.len())
    }

    /// Closes every relay connection (pending requests fail). The client
    /// stays usable: later calls connect again.
    pub async fn close(&self) {
        self.shared.connections.close_all().await;
    }

    // ---- helpers ---------------------------------------------------------

    fn rng(&self) -> MutexGuard<'_, StdRng> {
        self.shared
            .rng
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> u64 {
        self.shared.options.clock.now_ms()
    }

    fn emit(&self, event: Event) {
        self.shared.events.emit(event);
    }

    async fn commit(&self, writes: WriteSet) -> Result<(), Error> {
        let mut engine = self.shared.engine.lock().await;
        commit(&mut engine, writes).await
    }
}

/// Commits `writes` on a blocking thread; on failure the engine re-reads its
/// state from the store.
async fn commit(engine: &mut Engine, writes: WriteSet) -> Result<(), Error> {
    if writes.is_empty() {
        return Ok(());
    }
    let store = engine.store.clone();
    let result = blocking(move || store.commit(writes).map_err(Error::from)).await;
    if result.is_err()
        && let Err(error) = engine.reload()
    {
        tracing::error!(%error, "reloading the device state failed");
    }
    result
}

/// Runs blocking store work (fsync, Argon2id) off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| Error::Internal("a store task failed"))?
}

/// The client's random generator, seeded by the operating system.
#[cfg(not(feature = "test-hooks"))]
fn new_rng(_options: &ClientOptions) -> StdRng {
    rand::make_rng()
}

/// The client's random generator: from [`ClientOptions::rng_seed`] when
/// set (test hooks), else seeded by the operating system.
#[cfg(feature = "test-hooks")]
fn new_rng(options: &ClientOptions) -> StdRng {
    use rand::SeedableRng as _;
    match options.rng_seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => rand::make_rng(),
    }
}

/// Connects to the relay and registers the device's mailbox.
async fn register(
    device: &Device,
    relay: &RelayAddress,
    token: Option<&str>,
    options: &ClientOptions,
) -> Result<RelayClient, Error> {
    let connection = RelayClient::connect_with(relay, options.connect.clone()).await?;
    connection
        .register(device.mailbox_id, &device.mailbox_key, token)
        .await
        .map_err(|error| match error {
            ClientError::Relay {
                code: RelayErrorCode::Unauthorized,
                ..
            } => Error::RegistrationTokenRejected,
            other => Error::from(other),
        })?;
    Ok(connection)
}

/// Errors fetching an inviter's prekeys.
fn fetch_error(error: ClientError) -> Error {
    match error {
        ClientError::Relay {
            code:
                RelayErrorCode::Unauthorized
                | RelayErrorCode::UnknownMailbox
                | RelayErrorCode::NoPrekeys,
            ..
        } => Error::InviteExpired,
        other => Error::from(other),
    }
}
