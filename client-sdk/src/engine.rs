//! The client's deterministic core: the device's keys, contacts, sessions,
//! history and outbox over the encrypted store.
//!
//! Like the relay core, it does no I/O besides reading the store: time and
//! randomness are passed in, and every operation returns a [`WriteSet`]
//! that the shell ([`crate::Client`]) commits durably *before* it sends
//! anything on the wire or acknowledges anything to the relay. Operations
//! update the in-memory device state as they stage; if a commit fails the
//! shell reloads the engine from the store.

#[cfg(test)]
mod attack_tests;
mod circle_control;
mod circle_forks;
mod circle_messages;
mod circle_store;
mod circle_tasks;
mod circles;
mod invites;
mod receive;
mod send;
#[cfg(test)]
mod tests;

use hearth_protocol::handshake::ReplayCache;
use prost::Message as _;

use crate::contacts::{self, Contact};
use crate::device::{DEVICE_KEY, Device, Prekeys, REPLAY_KEY, STATE_KEY};
use crate::error::Error;
use crate::ids::{MemberId, MessageId};
use crate::invite::{Invite, SECRET_LEN};
use crate::messages::Message;
use crate::records::{
    self, ContactRecord, DeviceRecord, DeviceState, InviteRecord, MessageRecord, SessionRecord,
    StoredStatus,
};
use crate::relay::{PrekeyCounts, PrekeyUpload};
use crate::safety::SafetyNumber;
use crate::store::{BLIND_LEN, Space, Store, StoreError, WriteSet};

pub(crate) use circles::RosterChange;
pub(crate) use receive::Received;
pub(crate) use send::Outgoing;

/// The core. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct Engine {
    pub(crate) store: Store,
    pub(crate) device: Device,
    pub(crate) state: DeviceState,
    pub(crate) replay: ReplayCache,
}

impl Engine {
    /// A new device in an empty store: the writes hold the device, its state
    /// and its private prekeys; the upload is what to publish once they are
    /// committed.
    pub(crate) fn create<R: rand::CryptoRng>(
        store: Store,
        device: Device,
        rng: &mut R,
        now_ms: u64,
    ) -> (Self, WriteSet, PrekeyUpload) {
        let mut engine = Self {
            store,
            device,
            state: DeviceState::default(),
            replay: ReplayCache::new(),
        };
        let mut writes = engine.store.writes();
        writes.put(
            Space::Device,
            DEVICE_KEY,
            &records::encode(&engine.device.record(now_ms)),
        );
        let mut state = engine.state;
        let upload = engine
            .prekeys()
            .initial(&mut state, &mut writes, rng, now_ms);
        engine.state = state;
        engine.put_state(&mut writes);
        writes.put(Space::Device, REPLAY_KEY, &engine.replay.to_bytes());
        (engine, writes, upload)
    }

    /// Loads the device from its store.
    pub(crate) fn load(store: Store) -> Result<Self, StoreError> {
        let record: DeviceRecord = match store.get(Space::Device, DEVICE_KEY)? {
            Some(bytes) => records::decode(&bytes, "device")?,
            None => return Err(StoreError::NotFound),
        };
        let device = Device::from_record(&record)?;
        let state = match store.get(Space::Device, STATE_KEY)? {
            Some(bytes) => records::decode(&bytes, "device state")?,
            None => return Err(StoreError::Corrupt("device state")),
        };
        let replay = match store.get(Space::Device, REPLAY_KEY)? {
            Some(bytes) => {
                ReplayCache::from_bytes(&bytes).map_err(|_| StoreError::Corrupt("replay cache"))?
            }
            None => ReplayCache::new(),
        };
        Ok(Self {
            store,
            device,
            state,
            replay,
        })
    }

    /// Re-reads the in-memory state after a failed commit.
    pub(crate) fn reload(&mut self) -> Result<(), StoreError> {
        let fresh = Self::load(self.store.clone())?;
        self.state = fresh.state;
        self.replay = fresh.replay;
        Ok(())
    }

    pub(crate) fn prekeys(&self) -> Prekeys<'_> {
        Prekeys {
            device: &self.device,
            store: &self.store,
        }
    }

    /// Every record of a space keyed by a big-endian `u64` sequence, in
    /// order (outbox, tasks).
    pub(crate) fn scan_numbered<M: prost::Message + Default>(
        &self,
        space: Space,
        what: &'static str,
    ) -> Result<Vec<(u64, M)>, StoreError> {
        self.store
            .scan(space, &[])?
            .iter()
            .map(|(key, bytes)| {
                let seq = key
                    .as_slice()
                    .try_into()
                    .map(u64::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt(what))?;
                Ok((seq, records::decode(bytes, what)?))
            })
            .collect()
    }

    /// Adds the current device state to `writes`.
    pub(crate) fn put_state(&self, writes: &mut WriteSet) {
        writes.put(Space::Device, STATE_KEY, &self.state.encode_to_vec());
    }

    // ---- prekeys ---------------------------------------------------------

    /// Stages prekey maintenance for the relay's `counts`; `None` when the
    /// relay needs nothing.
    pub(crate) fn maintain_prekeys<R: rand::CryptoRng>(
        &mut self,
        counts: PrekeyCounts,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<Option<(WriteSet, PrekeyUpload)>, StoreError> {
        let mut writes = self.store.writes();
        let mut state = self.state;
        let (upload, forgotten) =
            self.prekeys()
                .maintain(&mut state, counts, &mut writes, rng, now_ms)?;
        if crate::device::is_empty(&upload) && forgotten.is_empty() {
            return Ok(None);
        }
        self.state = state;
        for id in forgotten {
            self.replay.forget_signed_prekey(id);
        }
        if writes.is_empty() {
            return Ok(None);
        }
        writes.put(Space::Device, REPLAY_KEY, &self.replay.to_bytes());
        self.put_state(&mut writes);
        Ok(Some((writes, upload)))
    }

    /// Records that the relay holds the current bundle.
    pub(crate) fn bundle_published(&mut self) -> WriteSet {
        self.state.bundle_published = true;
        let mut writes = self.store.writes();
        self.put_state(&mut writes);
        writes
    }

    // ---- keys of the store ----------------------------------------------

    fn contact_key(&self, member: MemberId) -> [u8; BLIND_LEN] {
        self.store.blind("contact", &[member.as_bytes()])
    }

    fn session_key(&self, member: MemberId) -> [u8; BLIND_LEN] {
        self.store.blind("session", &[member.as_bytes()])
    }

    fn conversation_prefix(&self, member: MemberId) -> [u8; BLIND_LEN] {
        self.store.blind("conversation", &[member.as_bytes()])
    }

    fn message_index_key(
        &self,
        outgoing: bool,
        member: MemberId,
        id: MessageId,
    ) -> [u8; BLIND_LEN] {
        let label = if outgoing { "sent" } else { "received" };
        self.store.blind(label, &[member.as_bytes(), id.as_bytes()])
    }

    fn invite_key(&self, secret: &[u8]) -> [u8; BLIND_LEN] {
        self.store.blind("invite", &[secret])
    }

    // ---- contacts --------------------------------------------------------

    pub(crate) fn contact_record(
        &self,
        member: MemberId,
    ) -> Result<Option<ContactRecord>, StoreError> {
        self.store
            .get(Space::Contacts, &self.contact_key(member))?
            .map(|bytes| records::decode(&bytes, "contact"))
            .transpose()
    }

    fn put_contact(&self, writes: &mut WriteSet, record: &ContactRecord) -> Result<(), StoreError> {
        let member = contacts::member_of(record)?;
        writes.put(
            Space::Contacts,
            &self.contact_key(member),
            &records::encode(record),
        );
        Ok(())
    }

    pub(crate) fn session_record(
        &self,
        member: MemberId,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.store
            .get(Space::Sessions, &self.session_key(member))?
            .map(|bytes| records::decode(&bytes, "session"))
            .transpose()
    }

    /// A session as it will be after `writes`.
    pub(crate) fn session_in(
        &self,
        writes: &WriteSet,
        member: MemberId,
    ) -> Result<Option<SessionRecord>, StoreError> {
        writes
            .read(Space::Sessions, &self.session_key(member))?
            .map(|bytes| records::decode(&bytes, "session"))
            .transpose()
    }

    fn put_session(&self, writes: &mut WriteSet, member: MemberId, record: &SessionRecord) {
        writes.put(
            Space::Sessions,
            &self.session_key(member),
            &records::encode(record),
        );
    }

    /// Every contact, oldest first.
    pub(crate) fn contacts(&self) -> Result<Vec<Contact>, StoreError> {
        let own = self.device.identity.public().sig_key;
        let mut contacts = self
            .store
            .scan(Space::Contacts, &[])?
            .iter()
            .map(|(_, bytes)| records::decode::<ContactRecord>(bytes, "contact"))
            .filter(|record| !matches!(record, Ok(r) if r.circle_only))
            .map(|record| Contact::from_record(&record?, &own))
            .collect::<Result<Vec<_>, _>>()?;
        contacts.sort_by_key(|c| (c.added_at_ms, c.member_id));
        Ok(contacts)
    }

    /// The contact named by `query`: a member id, or a display name that
    /// exactly one contact has (case-insensitive).
    pub(crate) fn find_contact(&self, query: &str) -> Result<Contact, Error> {
        let id = query.parse::<MemberId>().ok();
        pick_named(
            self.contacts()?,
            query,
            |c| Some(c.member_id) == id,
            |c| &c.display_name,
        )
        .map_err(|many| {
            if many {
                Error::AmbiguousContact
            } else {
                Error::UnknownContact
            }
        })
    }

    /// Marks `member` verified if `number` is their safety number.
    pub(crate) fn verify_contact(
        &self,
        member: MemberId,
        number: &SafetyNumber,
    ) -> Result<(Contact, WriteSet), Error> {
        let mut record = self.contact_record(member)?.ok_or(Error::UnknownContact)?;
        let own = self.device.identity.public().sig_key;
        let contact = Contact::from_record(&record, &own)?;
        if contact.safety_number != *number {
            return Err(Error::SafetyNumberMismatch);
        }
        record.verified = true;
        let mut writes = self.store.writes();
        self.put_contact(&mut writes, &record)?;
        Ok((
            Contact {
                verified: true,
                ..contact
            },
            writes,
        ))
    }

    // ---- invites ---------------------------------------------------------

    /// A new invite link. Commit the writes and register the link's send
    /// token on the relay before handing the link out.
    pub(crate) fn new_invite<R: rand::CryptoRng>(
        &self,
        rng: &mut R,
        now_ms: u64,
    ) -> (Invite, WriteSet) {
        let (secret, send_token, writes) = self.stage_invite(InviteRecord::default(), rng, now_ms);
        let invite = Invite {
            relay: self.device.relay.clone(),
            mailbox_id: self.device.mailbox_id,
            send_token,
            secret,
            member_id: self.device.member_id,
            display_name: self.device.display_name.clone(),
        };
        (invite, writes)
    }

    /// Draws an invite's one-time secret and send token and stages
    /// `record` (completed with the token and time) under the secret.
    pub(crate) fn stage_invite<R: rand::CryptoRng>(
        &self,
        mut record: InviteRecord,
        rng: &mut R,
        now_ms: u64,
    ) -> ([u8; SECRET_LEN], [u8; SECRET_LEN], WriteSet) {
        let mut secret = [0u8; SECRET_LEN];
        let mut send_token = [0u8; SECRET_LEN];
        rng.fill_bytes(&mut secret);
        rng.fill_bytes(&mut send_token);
        record.send_token = send_token.to_vec();
        record.created_at_ms = now_ms;
        let mut writes = self.store.writes();
        writes.put(
            Space::Invites,
            &self.invite_key(&secret),
            &records::encode(&record),
        );
        (secret, send_token, writes)
    }

    // ---- history ---------------------------------------------------------

    /// The conversation with `member`, oldest first.
    pub(crate) fn history(&self, member: MemberId) -> Result<Vec<Message>, StoreError> {
        self.store
            .scan(Space::Messages, &self.conversation_prefix(member))?
            .iter()
            .map(|(_, bytes)| {
                Message::try_from(&records::decode::<MessageRecord>(bytes, "message")?)
            })
            .collect()
    }

    /// Stages a new history entry and its index mark; returns its key.
    fn put_new_message(
        &mut self,
        writes: &mut WriteSet,
        member: MemberId,
        record: &MessageRecord,
        id: MessageId,
    ) {
        let seq = self.state.next_message_seq;
        self.state.next_message_seq += 1;
        let key = self.message_key(member, seq);
        writes.put(Space::Messages, &key, &records::encode(record));
        writes.put(
            Space::MessageIds,
            &self.message_index_key(record.outgoing, member, id),
            &seq.to_be_bytes(),
        );
    }

    fn message_key(&self, member: MemberId, seq: u64) -> Vec<u8> {
        [&self.conversation_prefix(member)[..], &seq.to_be_bytes()].concat()
    }

    /// Changes the status of one of our messages; `false` if it is not in
    /// the history (e.g. a contact request).
    fn set_outgoing_status(
        &self,
        writes: &mut WriteSet,
        member: MemberId,
        id: MessageId,
        status: StoredStatus,
        failure: &str,
    ) -> Result<bool, StoreError> {
        let index = self.message_index_key(true, member, id);
        let Some(seq) = self.store.get(Space::MessageIds, &index)? else {
            return Ok(false);
        };
        let seq = u64::from_be_bytes(
            seq.as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt("message index"))?,
        );
        let key = self.message_key(member, seq);
        let Some(bytes) = self.store.get(Space::Messages, &key)? else {
            return Ok(false);
        };
        let mut record: MessageRecord = records::decode(&bytes, "message")?;
        // Never move backwards (a late "sent" after "delivered").
        let current = StoredStatus::try_from(record.status).unwrap_or(StoredStatus::Queued);
        if status == StoredStatus::Failed || current < status {
            record.status = status as i32;
            record.failure = failure.to_owned();
            writes.put(Space::Messages, &key, &records::encode(&record));
        }
        Ok(true)
    }
}

/// The one of `items` that `query` names: the one `is_id` picks, else the
/// only one whose (non-empty) name equals it, ignoring case. `Err(true)`
/// when several share the name, `Err(false)` when none matches.
pub(crate) fn pick_named<T>(
    items: Vec<T>,
    query: &str,
    is_id: impl Fn(&T) -> bool,
    name: impl Fn(&T) -> &str,
) -> Result<T, bool> {
    let query = query.trim().to_lowercase();
    let mut by_name = Vec::new();
    for item in items {
        if is_id(&item) {
            return Ok(item);
        }
        let own = name(&item);
        if !own.is_empty() && own.to_lowercase() == query {
            by_name.push(item);
        }
    }
    match by_name.len() {
        1 => by_name.pop().ok_or(false),
        0 => Err(false),
        _ => Err(true),
    }
}
