//! Relay chores the engine leaves to the shell, done in order before the
//! outbox is sent: send tokens to register or revoke, and sessions to open
//! with circle members (the pairing rule in [`super::circles`]).

use hearth_proto::content as pb;
use hearth_protocol::keys::PreKeyBundle;

use super::Engine;
use super::circles::member_from;
use crate::circles::CircleId;
use crate::contacts;
use crate::error::Error;
use crate::ids::MemberId;
use crate::invite::SECRET_LEN;
use crate::records::{self, ContactRecord, TaskKind, TaskRecord};
use crate::store::{Space, StoreError, WriteSet};

impl Engine {
    pub(super) fn push_task(&mut self, writes: &mut WriteSet, task: &TaskRecord) {
        let seq = self.state.next_task_seq;
        self.state.next_task_seq += 1;
        writes.put(Space::Tasks, &seq.to_be_bytes(), &records::encode(task));
    }

    pub(super) fn add_token_task(&mut self, writes: &mut WriteSet, token: &[u8]) {
        let task = TaskRecord {
            kind: TaskKind::AddToken as i32,
            token: token.to_vec(),
            member_id: Vec::new(),
            circle_id: Vec::new(),
            attempts: 0,
            next_attempt_at_ms: 0,
        };
        self.push_task(writes, &task);
    }

    pub(super) fn revoke_token_task(&mut self, writes: &mut WriteSet, token: &[u8]) {
        if token.is_empty() {
            return;
        }
        let task = TaskRecord {
            kind: TaskKind::RevokeToken as i32,
            token: token.to_vec(),
            member_id: Vec::new(),
            circle_id: Vec::new(),
            attempts: 0,
            next_attempt_at_ms: 0,
        };
        self.push_task(writes, &task);
    }

    /// Relay chores in order.
    pub(crate) fn tasks(&self) -> Result<Vec<(u64, TaskRecord)>, StoreError> {
        self.scan_numbered(Space::Tasks, "task")
    }

    /// A chore is done (or can never be).
    pub(crate) fn task_done(&self, seq: u64) -> WriteSet {
        let mut writes = self.store.writes();
        writes.delete(Space::Tasks, &seq.to_be_bytes());
        writes
    }

    /// A chore that could not be done now is kept for another attempt at
    /// `at_ms` (never dropped for a passing failure).
    pub(crate) fn task_later(&self, seq: u64, mut task: TaskRecord, at_ms: u64) -> WriteSet {
        task.attempts = task.attempts.saturating_add(1);
        task.next_attempt_at_ms = at_ms;
        let mut writes = self.store.writes();
        writes.put(Space::Tasks, &seq.to_be_bytes(), &records::encode(&task));
        writes
    }

    /// Where to fetch a member's prekeys for an `OpenSession` chore: their
    /// card, if the circle still has them and we still have no session.
    pub(crate) fn session_target(
        &self,
        task: &TaskRecord,
    ) -> Result<Option<pb::MemberCard>, StoreError> {
        let (Some(circle), Some(member)) = (
            CircleId::from_slice(&task.circle_id),
            member_from(&task.member_id),
        ) else {
            return Ok(None);
        };
        if self.contact_record(member)?.is_some() {
            return Ok(None);
        }
        let writes = self.store.writes();
        let Some(record) = self.circle_in(&writes, circle)? else {
            return Ok(None);
        };
        Ok(record
            .cards
            .iter()
            .find(|c| c.member_id == member.as_bytes())
            .cloned())
    }

    /// Opens the session an `OpenSession` chore asked for with the bundle
    /// fetched from the member's relay, and sends our sender key as its
    /// first message.
    pub(crate) fn open_circle_session<R: rand::CryptoRng>(
        &mut self,
        task: &TaskRecord,
        card: &pb::MemberCard,
        bundle: &PreKeyBundle,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<WriteSet, Error> {
        let circle = CircleId::from_slice(&task.circle_id).ok_or(Error::UnknownCircle)?;
        let member = member_from(&task.member_id).ok_or(Error::UnknownContact)?;
        let mut writes = self.store.writes();
        let (record, chain) = self.active_circle(&writes, circle)?;
        let entry = chain
            .head()
            .roster()
            .member(member)
            .ok_or(Error::UnknownContact)?;
        if MemberId::of(&bundle.identity.sig_key) != member
            || bundle.identity.dh_key != entry.identity.dh_key
        {
            return Err(Error::InviteKeysMismatch);
        }
        let mut pair_token = [0u8; SECRET_LEN];
        rng.fill_bytes(&mut pair_token);
        self.add_token_task(&mut writes, &pair_token);
        let mut contact = ContactRecord::reached_at(
            entry.display_name.clone(),
            card.relay.clone(),
            card.mailbox_id.clone(),
            card.send_token.clone(),
        );
        contact.our_send_token = pair_token.to_vec();
        contact.added_at_ms = now_ms;
        contact.circle_only = true;
        // Staged first, so the keys we send carry the pairwise token: the
        // door token they reach us by changes after every departure.
        contacts::with_identity(&mut contact, &bundle.identity);
        self.put_contact(&mut writes, &contact)?;
        let keys = self.circle_keys_for(&mut writes, record, &chain, member, true, rng, now_ms)?;
        self.start_session(bundle, contact, &keys, &mut writes, rng, now_ms)?;
        self.put_state(&mut writes);
        Ok(writes)
    }
}
