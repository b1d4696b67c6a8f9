//! Circles in the engine: creating them, invites and joining, roster
//! changes, and the control messages members exchange over their pairwise
//! sessions (welcome, roster updates, sender keys).
//!
//! **Pairwise sessions between members.** Sender keys travel over pairwise
//! sessions, so every two members of a circle need one. Members who already
//! share a session (contacts, or members of another circle) use it. For the
//! others exactly one side starts the session, so two handshakes never
//! cross: the member **added later** (a higher `added_in`; on a tie the
//! smaller member id) fetches the other's prekeys with the door token from
//! its card and sends its sender key as the first message; the other answers
//! with its own.
//!
//! **Epochs.** A version that drops a member (removed or left) moves the
//! epoch on. Every remaining member then forgets its sender key, so its next
//! send starts a fresh chain handed only to the remaining members, replaces
//! its door token, and revokes the pairwise send token it gave the departed
//! member unless they still share another circle or are personal contacts.

use std::collections::BTreeSet;

use hearth_proto::content as pb;
use hearth_protocol::keys::PreKeyBundle;
use hearth_protocol::sender_key::{RemoteSenderKey, SenderKeyDistribution};

use super::Engine;
use super::circle_messages::verifying;
use super::receive::Refusal;
use crate::circles::roster::{
    self, Added, PublicIdentityKeys, Roster, RosterChain, RosterMember, SignedRoster,
};
use crate::circles::{Circle, CircleId, CircleMember, CircleState, JoinRefusal, Role};
use crate::contacts;
use crate::content::{self, CircleControl};
use crate::error::Error;
use crate::events::{Event, RejectReason};
use crate::ids::{MemberId, MessageId};
use crate::invite::{CircleInvite, SECRET_LEN};
use crate::records::{
    self, CircleRecord, ContactRecord, InviteRecord, SenderKeysRecord, StoredCircleState, TaskKind,
    TaskRecord,
};
use crate::store::{BLIND_LEN, Space, StoreError, WriteSet};

/// Sender keys kept per (circle, member): enough for a rotation in flight.
const KEPT_SENDER_KEYS: usize = 4;

/// A change a facilitator (or a leaving member) signs.
#[derive(Clone, Debug)]
pub(crate) enum RosterChange {
    Remove(MemberId),
    Leave,
    SetRole(MemberId, Role),
    Rename(String),
    Rules(String),
}

impl Engine {
    // ---- records -----------------------------------------------------------

    fn circle_key(&self, circle: CircleId) -> [u8; BLIND_LEN] {
        self.store.blind("circle", &[circle.as_bytes()])
    }

    pub(super) fn sender_keys_key(&self, circle: CircleId, member: MemberId) -> [u8; BLIND_LEN] {
        self.store
            .blind("sender-keys", &[circle.as_bytes(), member.as_bytes()])
    }

    /// A circle as it will be after `writes`.
    pub(crate) fn circle_in(
        &self,
        writes: &WriteSet,
        circle: CircleId,
    ) -> Result<Option<CircleRecord>, StoreError> {
        writes
            .read(Space::Circles, &self.circle_key(circle))?
            .map(|bytes| records::decode(&bytes, "circle"))
            .transpose()
    }

    pub(super) fn put_circle(&self, writes: &mut WriteSet, record: &CircleRecord) {
        let id = circle_id_of(record);
        writes.put(
            Space::Circles,
            &self.circle_key(id),
            &records::encode(record),
        );
    }

    /// A contact (personal or fellow member) as it will be after `writes`.
    pub(crate) fn contact_in(
        &self,
        writes: &WriteSet,
        member: MemberId,
    ) -> Result<Option<ContactRecord>, StoreError> {
        writes
            .read(Space::Contacts, &self.contact_key(member))?
            .map(|bytes| records::decode(&bytes, "contact"))
            .transpose()
    }

    /// Every circle record.
    fn circle_records(&self) -> Result<Vec<CircleRecord>, StoreError> {
        self.store
            .scan(Space::Circles, &[])?
            .iter()
            .map(|(_, bytes)| records::decode(bytes, "circle"))
            .collect()
    }

    /// Every circle, oldest first.
    pub(crate) fn circles(&self) -> Result<Vec<Circle>, StoreError> {
        let mut records = self.circle_records()?;
        records.sort_by_key(|r| (r.joined_at_ms, r.circle_id.clone()));
        records.iter().map(|r| self.circle_view(r)).collect()
    }

    /// The circle named by `query`: its id, or a name only one circle has
    /// (ignoring case).
    pub(crate) fn find_circle(&self, query: &str) -> Result<Circle, Error> {
        let circles = self.circles()?;
        if let Ok(id) = query.parse::<CircleId>()
            && let Some(circle) = circles.iter().find(|c| c.id == id)
        {
            return Ok(circle.clone());
        }
        let query = query.trim().to_lowercase();
        let mut named = circles
            .into_iter()
            .filter(|c| c.name.to_lowercase() == query);
        match (named.next(), named.next()) {
            (Some(circle), None) => Ok(circle),
            (Some(_), Some(_)) => Err(Error::AmbiguousCircle),
            _ => Err(Error::UnknownCircle),
        }
    }

    /// The public view of a circle record.
    pub(crate) fn circle_view(&self, record: &CircleRecord) -> Result<Circle, StoreError> {
        let id = circle_id_of(record);
        let state = match StoredCircleState::try_from(record.state) {
            Ok(StoredCircleState::Joining) => CircleState::Joining,
            Ok(StoredCircleState::Active) => CircleState::Active,
            Ok(StoredCircleState::Left) => CircleState::Left,
            Ok(StoredCircleState::Removed) => CircleState::Removed,
            Err(_) => return Err(StoreError::Corrupt("circle")),
        };
        if record.chain.is_empty() {
            return Ok(Circle {
                id,
                name: record.invite_name.clone(),
                rules: String::new(),
                state,
                my_role: None,
                members: Vec::new(),
                epoch: 0,
                version: 0,
                parent: None,
            });
        }
        let chain = load_chain(record)?;
        let roster = chain.head().roster();
        let me = self.device.member_id;
        let mut members: Vec<CircleMember> = roster
            .members
            .iter()
            .map(|m| CircleMember {
                member_id: m.member_id(),
                display_name: m.display_name.clone(),
                role: m.role,
                is_me: m.member_id() == me,
            })
            .collect();
        members.sort_by(|a, b| {
            (
                a.role != Role::Facilitator,
                a.display_name.to_lowercase(),
                a.member_id,
            )
                .cmp(&(
                    b.role != Role::Facilitator,
                    b.display_name.to_lowercase(),
                    b.member_id,
                ))
        });
        let my_role = match state {
            CircleState::Active => roster.member(me).map(|m| m.role),
            _ => None,
        };
        Ok(Circle {
            id,
            name: roster.name.clone(),
            rules: roster.rules.clone(),
            state,
            my_role,
            members,
            epoch: roster.epoch,
            version: roster.version,
            parent: roster.parent_circle,
        })
    }

    /// An active circle and its roster chain, or why not.
    pub(crate) fn active_circle(
        &self,
        writes: &WriteSet,
        circle: CircleId,
    ) -> Result<(CircleRecord, RosterChain), Error> {
        let record = self
            .circle_in(writes, circle)?
            .ok_or(Error::UnknownCircle)?;
        if record.state != StoredCircleState::Active as i32 {
            return Err(Error::NotInCircle);
        }
        let chain = load_chain(&record)?;
        if chain
            .head()
            .roster()
            .member(self.device.member_id)
            .is_none()
        {
            return Err(Error::NotInCircle);
        }
        Ok((record, chain))
    }

    fn my_keys(&self) -> PublicIdentityKeys {
        let identity = self.device.identity.public();
        PublicIdentityKeys {
            sig_key: identity.sig_key,
            dh_key: identity.dh_key,
        }
    }

    fn my_card(&self, door_token: &[u8]) -> pb::MemberCard {
        pb::MemberCard {
            member_id: self.device.member_id.as_bytes().to_vec(),
            relay: self.device.relay.to_string(),
            mailbox_id: self.device.mailbox_id.to_vec(),
            send_token: door_token.to_vec(),
        }
    }

    // ---- tasks -------------------------------------------------------------

    pub(super) fn push_task(&mut self, writes: &mut WriteSet, task: &TaskRecord) {
        let seq = self.state.next_task_seq;
        self.state.next_task_seq += 1;
        writes.put(Space::Tasks, &seq.to_be_bytes(), &records::encode(task));
    }

    fn add_token_task(&mut self, writes: &mut WriteSet, token: &[u8]) {
        let task = TaskRecord {
            kind: TaskKind::AddToken as i32,
            token: token.to_vec(),
            ..Default::default()
        };
        self.push_task(writes, &task);
    }

    fn revoke_token_task(&mut self, writes: &mut WriteSet, token: &[u8]) {
        if token.is_empty() {
            return;
        }
        let task = TaskRecord {
            kind: TaskKind::RevokeToken as i32,
            token: token.to_vec(),
            ..Default::default()
        };
        self.push_task(writes, &task);
    }

    /// Relay chores in order.
    pub(crate) fn tasks(&self) -> Result<Vec<(u64, TaskRecord)>, StoreError> {
        self.store
            .scan(Space::Tasks, &[])?
            .iter()
            .map(|(key, bytes)| {
                let seq = key
                    .as_slice()
                    .try_into()
                    .map(u64::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt("task"))?;
                Ok((seq, records::decode(bytes, "task")?))
            })
            .collect()
    }

    /// A chore is done (or can never be).
    pub(crate) fn task_done(&self, seq: u64) -> WriteSet {
        let mut writes = self.store.writes();
        writes.delete(Space::Tasks, &seq.to_be_bytes());
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
        let contact = ContactRecord {
            display_name: entry.display_name.clone(),
            relay: card.relay.clone(),
            mailbox_id: card.mailbox_id.clone(),
            send_token: card.send_token.clone(),
            our_send_token: pair_token.to_vec(),
            added_at_ms: now_ms,
            circle_only: true,
            ..Default::default()
        };
        let keys = self.circle_keys_for(&mut writes, record, &chain, member, true, rng, now_ms)?;
        self.start_session(bundle, contact, &keys, &mut writes, rng, now_ms)?;
        self.put_state(&mut writes);
        Ok(writes)
    }

    // ---- creating, inviting, joining ----------------------------------------

    /// A new circle with us as its only facilitator — or, with `parent`, a
    /// sub-circle of members of `parent` who are welcomed at once.
    pub(crate) fn create_circle<R: rand::CryptoRng>(
        &mut self,
        name: &str,
        parent: Option<(CircleId, &[MemberId])>,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<(Circle, WriteSet), Error> {
        let mut writes = self.store.writes();
        let id = CircleId::random(rng);
        let mut roster = Roster::genesis(
            id,
            name,
            self.my_keys(),
            &self.device.display_name,
            parent.map(|(p, _)| p),
        );
        let mut cards = Vec::new();
        if let Some((parent_id, members)) = parent {
            let (parent_record, parent_chain) = self.active_circle(&writes, parent_id)?;
            let parent_roster = parent_chain.head().roster();
            for &member in members {
                if member == self.device.member_id {
                    continue;
                }
                let entry = parent_roster
                    .member(member)
                    .ok_or(Error::NotACircleMember)?;
                roster.members.push(RosterMember {
                    role: Role::Member,
                    added_in: 1,
                    ..entry.clone()
                });
                if let Some(card) = parent_record
                    .cards
                    .iter()
                    .find(|c| c.member_id == member.as_bytes())
                {
                    cards.push(card.clone());
                }
            }
            roster.members.sort_by_key(RosterMember::member_id);
            roster.members.dedup_by_key(|m| m.member_id());
        }
        let signed = roster
            .sign(&self.device.identity)
            .map_err(|_| Error::InvalidContent("circle name"))?;
        let mut door = [0u8; SECRET_LEN];
        rng.fill_bytes(&mut door);
        self.add_token_task(&mut writes, &door);
        cards.push(self.my_card(&door));
        let record = CircleRecord {
            circle_id: id.as_bytes().to_vec(),
            state: StoredCircleState::Active as i32,
            chain: RosterChain::new(signed.clone()).to_bytes(),
            cards: cards.clone(),
            door_token: door.to_vec(),
            joined_at_ms: now_ms,
            ..Default::default()
        };
        self.put_circle(&mut writes, &record);
        // Sub-circle members are welcomed over the sessions we share.
        let welcome = pb::CircleWelcome {
            roster: signed.to_bytes(),
            cards,
            parent_circle_id: parent
                .map(|(p, _)| p.as_bytes().to_vec())
                .unwrap_or_default(),
        };
        for member in signed.roster().members.iter().map(RosterMember::member_id) {
            if member != self.device.member_id {
                let kind = pb::content::Kind::CircleWelcome(welcome.clone());
                self.queue_control(&mut writes, member, kind, rng, now_ms)?;
            }
        }
        self.put_state(&mut writes);
        let circle = self.circle_view(&record)?;
        Ok((circle, writes))
    }

    /// A new circle invite link; register its send token on the relay
    /// before handing it out.
    pub(crate) fn new_circle_invite<R: rand::CryptoRng>(
        &self,
        circle: CircleId,
        expires_at_ms: u64,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<(CircleInvite, WriteSet), Error> {
        let writes = self.store.writes();
        let (_, chain) = self.active_circle(&writes, circle)?;
        let roster = chain.head().roster();
        if !roster.is_facilitator(self.device.member_id) {
            return Err(Error::NotAFacilitator);
        }
        let mut secret = [0u8; SECRET_LEN];
        let mut send_token = [0u8; SECRET_LEN];
        rng.fill_bytes(&mut secret);
        rng.fill_bytes(&mut send_token);
        let record = InviteRecord {
            send_token: send_token.to_vec(),
            created_at_ms: now_ms,
            used: false,
            circle_id: circle.as_bytes().to_vec(),
            expires_at_ms,
        };
        let mut writes = self.store.writes();
        writes.put(
            Space::Invites,
            &self.invite_key(&secret),
            &records::encode(&record),
        );
        let invite = CircleInvite {
            relay: self.device.relay.clone(),
            mailbox_id: self.device.mailbox_id,
            send_token,
            circle_id: circle,
            secret,
            expires_at_ms,
            member_id: self.device.member_id,
            display_name: self.device.display_name.clone(),
            circle_name: roster.name.clone(),
        };
        Ok((invite, writes))
    }

    /// Checks a circle link before anything is fetched or registered.
    pub(crate) fn check_circle_invite(
        &self,
        invite: &CircleInvite,
        now_ms: u64,
    ) -> Result<(), Error> {
        if invite.member_id == self.device.member_id {
            return Err(Error::OwnInvite);
        }
        if invite.expires_at_ms != 0 && invite.expires_at_ms <= now_ms {
            return Err(Error::InviteExpired);
        }
        let writes = self.store.writes();
        if let Some(record) = self.circle_in(&writes, invite.circle_id)?
            && matches!(
                StoredCircleState::try_from(record.state),
                Ok(StoredCircleState::Active | StoredCircleState::Joining)
            )
        {
            return Err(Error::AlreadyInCircle);
        }
        Ok(())
    }

    /// Asks to join: a join request to the inviting facilitator, over our
    /// session with them or a new one (`bundle`, fetched with the link's
    /// token). `door` and `pair` are tokens already registered on our relay.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn join_circle<R: rand::CryptoRng>(
        &mut self,
        invite: &CircleInvite,
        bundle: Option<&PreKeyBundle>,
        door: &[u8],
        pair: &[u8],
        rng: &mut R,
        now_ms: u64,
    ) -> Result<WriteSet, Error> {
        self.check_circle_invite(invite, now_ms)?;
        let mut writes = self.store.writes();
        let request = pb::content::Kind::CircleJoinRequest(pb::CircleJoinRequest {
            invite_secret: invite.secret.to_vec(),
            circle_id: invite.circle_id.as_bytes().to_vec(),
            card: Some(self.my_card(door)),
            pair_token: pair.to_vec(),
            display_name: self.device.display_name.clone(),
        });
        match (self.contact_in(&writes, invite.member_id)?, bundle) {
            (Some(_), _) => {
                self.queue_control(&mut writes, invite.member_id, request, rng, now_ms)?;
            }
            (None, Some(bundle)) => {
                if MemberId::of(&bundle.identity.sig_key) != invite.member_id {
                    return Err(Error::InviteKeysMismatch);
                }
                let contact = ContactRecord {
                    display_name: invite.display_name.clone(),
                    relay: invite.relay.to_string(),
                    mailbox_id: invite.mailbox_id.to_vec(),
                    send_token: invite.send_token.to_vec(),
                    our_send_token: pair.to_vec(),
                    added_at_ms: now_ms,
                    circle_only: true,
                    ..Default::default()
                };
                let id = MessageId::random(rng);
                let bytes = content::encode(id, now_ms, request);
                self.start_session(bundle, contact, &bytes, &mut writes, rng, now_ms)?;
            }
            (None, None) => return Err(Error::Internal("a join needs the inviter's keys")),
        }
        let record = CircleRecord {
            circle_id: invite.circle_id.as_bytes().to_vec(),
            state: StoredCircleState::Joining as i32,
            door_token: door.to_vec(),
            joined_at_ms: now_ms,
            invite_name: invite.circle_name.clone(),
            inviter: invite.member_id.as_bytes().to_vec(),
            ..Default::default()
        };
        self.put_circle(&mut writes, &record);
        self.put_state(&mut writes);
        Ok(writes)
    }

    // ---- roster changes ------------------------------------------------------

    /// Signs `change` as the next roster version and sends it to everyone in
    /// the old and the new version.
    pub(crate) fn change_roster<R: rand::CryptoRng>(
        &mut self,
        circle: CircleId,
        change: RosterChange,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<(Circle, WriteSet, Vec<Event>), Error> {
        self.sign_roster_change(circle, change, false, rng, now_ms)
    }

    /// A misbehaving client for tests: signs `change` although we may not,
    /// and sends it to everyone without applying it here.
    pub(crate) fn forge_roster_change<R: rand::CryptoRng>(
        &mut self,
        circle: CircleId,
        change: RosterChange,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<WriteSet, Error> {
        self.sign_roster_change(circle, change, true, rng, now_ms)
            .map(|(_, writes, _)| writes)
    }

    fn sign_roster_change<R: rand::CryptoRng>(
        &mut self,
        circle: CircleId,
        change: RosterChange,
        forged: bool,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<(Circle, WriteSet, Vec<Event>), Error> {
        let mut writes = self.store.writes();
        let (record, chain) = self.active_circle(&writes, circle)?;
        let head = chain.head();
        let me = self.device.member_id;
        let old = head.roster().clone();
        if !forged && !matches!(change, RosterChange::Leave) && !old.is_facilitator(me) {
            return Err(Error::NotAFacilitator);
        }
        let mut next = old.next(head.hash());
        match &change {
            RosterChange::Remove(member) => {
                if *member == me {
                    return Err(Error::Internal("use leave to leave a circle"));
                }
                let before = next.members.len();
                next.members.retain(|m| m.member_id() != *member);
                if next.members.len() == before {
                    return Err(Error::NotACircleMember);
                }
                next.epoch += 1;
            }
            RosterChange::Leave => {
                next.members.retain(|m| m.member_id() != me);
                next.epoch += 1;
                if !next.members.iter().any(|m| m.role == Role::Facilitator) {
                    // The last facilitator hands the circle to the longest
                    // standing member rather than leaving it headless.
                    return Err(Error::LastFacilitator);
                }
            }
            RosterChange::SetRole(member, role) => {
                let entry = next
                    .members
                    .iter_mut()
                    .find(|m| m.member_id() == *member)
                    .ok_or(Error::NotACircleMember)?;
                entry.role = *role;
                if !next.members.iter().any(|m| m.role == Role::Facilitator) {
                    return Err(Error::LastFacilitator);
                }
            }
            RosterChange::Rename(name) => next.name.clone_from(name),
            RosterChange::Rules(rules) => next.rules.clone_from(rules),
        }
        let signed = next
            .sign(&self.device.identity)
            .map_err(|_| Error::InvalidContent("roster"))?;
        let mut chain = chain;
        if !forged {
            chain
                .add(signed.clone())
                .map_err(|_| Error::Internal("our own roster version was refused"))?;
        }
        let update = pb::CircleRosterUpdate {
            roster: signed.to_bytes(),
            cards: Vec::new(),
        };
        let recipients: BTreeSet<MemberId> = old
            .members
            .iter()
            .chain(&next.members)
            .map(RosterMember::member_id)
            .filter(|m| *m != me)
            .collect();
        for member in recipients {
            let kind = pb::content::Kind::CircleRosterUpdate(update.clone());
            self.queue_control(&mut writes, member, kind, rng, now_ms)?;
        }
        let events = if forged {
            Vec::new()
        } else {
            self.adopt_chain(&mut writes, record, chain, &old, rng, now_ms)?
        };
        self.put_state(&mut writes);
        let circle = self
            .circle_in(&writes, circle)?
            .ok_or(Error::UnknownCircle)?;
        Ok((self.circle_view(&circle)?, writes, events))
    }

    /// Stores `chain` for `record` and acts on what changed since `old`:
    /// departures (new epoch, tokens), arrivals (sessions, keys), our own
    /// removal. Returns the events to emit.
    fn adopt_chain<R: rand::CryptoRng>(
        &mut self,
        writes: &mut WriteSet,
        mut record: CircleRecord,
        chain: RosterChain,
        old: &Roster,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<Vec<Event>, Error> {
        let circle = circle_id_of(&record);
        let new = chain.head().roster().clone();
        record.chain = chain.to_bytes();
        let me = self.device.member_id;
        let diff = roster::diff(old, &new);
        if new.member(me).is_none() {
            // Removed (or our own leave): forget the circle's keys and doors.
            record.state = if old.member(me).is_some() && !diff.removed.is_empty() {
                if chain.head().signer() == me {
                    StoredCircleState::Left as i32
                } else {
                    StoredCircleState::Removed as i32
                }
            } else {
                record.state
            };
            record.own_key.clear();
            record.keys_sent_to.clear();
            let door = std::mem::take(&mut record.door_token);
            self.revoke_token_task(writes, &door);
            for member in old.members.iter().map(RosterMember::member_id) {
                writes.delete(Space::SenderKeys, &self.sender_keys_key(circle, member));
            }
            self.put_circle(writes, &record);
            for member in old.members.iter().map(RosterMember::member_id) {
                self.forget_pair_token_if_unshared(writes, circle, member)?;
            }
            return Ok(vec![Event::CircleChanged(self.circle_view(&record)?)]);
        }
        if new.epoch != old.epoch {
            record.own_key.clear();
            record.keys_sent_to.clear();
            let mut door = [0u8; SECRET_LEN];
            rng.fill_bytes(&mut door);
            self.add_token_task(writes, &door);
            let old_door = std::mem::replace(&mut record.door_token, door.to_vec());
            self.revoke_token_task(writes, &old_door);
            if let Some(card) = record
                .cards
                .iter_mut()
                .find(|c| c.member_id == me.as_bytes())
            {
                card.send_token = door.to_vec();
            }
        }
        for member in &diff.removed {
            if !record.departed.iter().any(|m| m == member.as_bytes()) {
                record.departed.push(member.as_bytes().to_vec());
            }
            writes.delete(Space::SenderKeys, &self.sender_keys_key(circle, *member));
            record.cards.retain(|c| c.member_id != member.as_bytes());
            record.keys_sent_to.retain(|m| m != member.as_bytes());
        }
        self.put_circle(writes, &record);
        for member in &diff.removed {
            self.forget_pair_token_if_unshared(writes, circle, *member)?;
        }
        let chain = load_chain(&record)?;
        for member in &diff.added {
            if *member != me {
                self.reach_member(writes, circle, &chain, *member, rng, now_ms)?;
            }
        }
        Ok(vec![Event::CircleChanged(self.circle_view(&record)?)])
    }

    /// Revokes the pairwise token we gave `member` when no circle or
    /// contact link keeps them in touch with us any more.
    fn forget_pair_token_if_unshared(
        &mut self,
        writes: &mut WriteSet,
        leaving: CircleId,
        member: MemberId,
    ) -> Result<(), StoreError> {
        let Some(mut contact) = self.contact_in(writes, member)? else {
            return Ok(());
        };
        if !contact.circle_only || member == self.device.member_id {
            return Ok(());
        }
        for record in self.circle_records()? {
            let id = circle_id_of(&record);
            if id == leaving || record.state != StoredCircleState::Active as i32 {
                continue;
            }
            let record = self.circle_in(writes, id)?.unwrap_or(record);
            if let Ok(chain) = load_chain(&record)
                && chain.head().roster().member(member).is_some()
            {
                return Ok(());
            }
        }
        let token = std::mem::take(&mut contact.our_send_token);
        self.revoke_token_task(writes, &token);
        self.put_contact(writes, &contact)?;
        Ok(())
    }

    /// Gets our sender key to `member` of `circle`: over our session if we
    /// have one, by opening one if the pairing rule says we start, or not
    /// at all (they will start it).
    fn reach_member<R: rand::CryptoRng>(
        &mut self,
        writes: &mut WriteSet,
        circle: CircleId,
        chain: &RosterChain,
        member: MemberId,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<(), Error> {
        if self.contact_in(writes, member)?.is_some() {
            let record = self
                .circle_in(writes, circle)?
                .ok_or(Error::UnknownCircle)?;
            let keys = self.circle_keys_for(writes, record, chain, member, true, rng, now_ms)?;
            return self.queue_bytes(writes, member, &keys, rng, now_ms);
        }
        let roster = chain.head().roster();
        let (Some(mine), Some(theirs)) =
            (roster.member(self.device.member_id), roster.member(member))
        else {
            return Ok(());
        };
        let we_start = (mine.added_in, theirs.member_id())
            > (theirs.added_in, self.device.member_id)
            || (mine.added_in == theirs.added_in && self.device.member_id < member);
        if we_start {
            let task = TaskRecord {
                kind: TaskKind::OpenSession as i32,
                member_id: member.as_bytes().to_vec(),
                circle_id: circle.as_bytes().to_vec(),
                ..Default::default()
            };
            self.push_task(writes, &task);
        }
        Ok(())
    }

    /// The content bytes of a `CircleKeys` message with our current sender
    /// key for `circle` (made now if there is none), noting that `member`
    /// has it. Stages the updated circle record.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn circle_keys_for<R: rand::CryptoRng>(
        &mut self,
        writes: &mut WriteSet,
        mut record: CircleRecord,
        chain: &RosterChain,
        member: MemberId,
        reply_wanted: bool,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<Vec<u8>, Error> {
        let own = self.own_sender_key(&mut record, chain, rng, now_ms)?;
        let pair_token = self
            .contact_in(writes, member)?
            .map(|c| c.our_send_token)
            .unwrap_or_default();
        let keys = pb::CircleKeys {
            circle_id: record.circle_id.clone(),
            epoch: own.epoch(),
            distribution: own.distribution().to_bytes().to_vec(),
            card: Some(self.my_card(&record.door_token)),
            pair_token,
            reply_wanted,
        };
        if !record.keys_sent_to.iter().any(|m| m == member.as_bytes()) {
            record.keys_sent_to.push(member.as_bytes().to_vec());
        }
        self.put_circle(writes, &record);
        let id = MessageId::random(rng);
        Ok(content::encode(
            id,
            now_ms,
            pb::content::Kind::CircleKeys(keys),
        ))
    }

    // ---- control messages received -----------------------------------------

    /// Applies a control message from `sender` (already authenticated by
    /// our pairwise session with them).
    pub(super) fn apply_control<R: rand::CryptoRng>(
        &mut self,
        sender: MemberId,
        control: CircleControl,
        writes: &mut WriteSet,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<Vec<Event>, Refusal> {
        match control {
            CircleControl::JoinRequest(request) => {
                self.apply_join_request(sender, &request, writes, rng, now_ms)
            }
            CircleControl::JoinRefused(refused) => {
                let circle = circle_from(&refused.circle_id)?;
                let Some(mut record) = self.circle_in(writes, circle)? else {
                    return Ok(Vec::new());
                };
                if record.state != StoredCircleState::Joining as i32
                    || record.inviter != sender.as_bytes()
                {
                    return Ok(Vec::new());
                }
                record.state = StoredCircleState::Left as i32;
                self.put_circle(writes, &record);
                let reason = match pb::circle_join_refused::Reason::try_from(refused.reason) {
                    Ok(pb::circle_join_refused::Reason::Expired) => JoinRefusal::Expired,
                    Ok(pb::circle_join_refused::Reason::AlreadyUsed) => JoinRefusal::AlreadyUsed,
                    Ok(pb::circle_join_refused::Reason::NotAFacilitator) => {
                        JoinRefusal::NotAFacilitator
                    }
                    _ => JoinRefusal::UnknownInvite,
                };
                Ok(vec![Event::CircleJoinRefused { circle, reason }])
            }
            CircleControl::Welcome(welcome) => {
                self.apply_welcome(sender, &welcome, writes, rng, now_ms)
            }
            CircleControl::RosterUpdate(update) => {
                self.apply_roster_update(sender, &update, writes, rng, now_ms)
            }
            CircleControl::Keys(keys) => self.apply_keys(sender, &keys, writes, rng, now_ms),
        }
    }

    fn apply_join_request<R: rand::CryptoRng>(
        &mut self,
        sender: MemberId,
        request: &pb::CircleJoinRequest,
        writes: &mut WriteSet,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<Vec<Event>, Refusal> {
        let circle = circle_from(&request.circle_id)?;
        let invite_key = self.invite_key(&request.invite_secret);
        let Some(bytes) = writes.read(Space::Invites, &invite_key)? else {
            return Err(RejectReason::UnknownInvite.into());
        };
        let mut invite: InviteRecord = records::decode(&bytes, "invite")?;
        if invite.circle_id != circle.as_bytes() {
            return Err(RejectReason::UnknownInvite.into());
        }
        let card = request.card.clone().ok_or(RejectReason::Malformed)?;
        check_card(&card, sender)?;
        let refusal = if invite.used {
            Some(pb::circle_join_refused::Reason::AlreadyUsed)
        } else if invite.expires_at_ms != 0 && invite.expires_at_ms <= now_ms {
            Some(pb::circle_join_refused::Reason::Expired)
        } else {
            match self.active_circle(writes, circle) {
                Ok((_, chain)) if chain.head().roster().is_facilitator(self.device.member_id) => {
                    None
                }
                _ => Some(pb::circle_join_refused::Reason::NotAFacilitator),
            }
        };
        if let Some(reason) = refusal {
            let kind = pb::content::Kind::CircleJoinRefused(pb::CircleJoinRefused {
                circle_id: circle.as_bytes().to_vec(),
                reason: reason as i32,
            });
            self.queue_control(writes, sender, kind, rng, now_ms)
                .map_err(store_refusal)?;
            return Ok(Vec::new());
        }
        invite.used = true;
        writes.put(Space::Invites, &invite_key, &records::encode(&invite));
        let contact = self
            .contact_in(writes, sender)?
            .ok_or(RejectReason::UnknownSender)?;
        let identity = contacts::identity_of(&contact)?;
        let (mut record, chain) = self.active_circle(writes, circle).map_err(store_refusal)?;
        let head = chain.head();
        let old = head.roster().clone();
        if old.member(sender).is_some() {
            return Ok(Vec::new());
        }
        let mut next = old.next(head.hash());
        next.members.push(RosterMember {
            identity: PublicIdentityKeys {
                sig_key: identity.sig_key,
                dh_key: identity.dh_key,
            },
            display_name: request.display_name.chars().take(64).collect(),
            role: Role::Member,
            added_in: next.version,
        });
        next.members.sort_by_key(RosterMember::member_id);
        let signed = next
            .sign(&self.device.identity)
            .map_err(|_| RejectReason::Malformed)?;
        let mut chain = chain;
        chain
            .add(signed.clone())
            .map_err(|_| RejectReason::Malformed)?;
        record.cards.retain(|c| c.member_id != sender.as_bytes());
        record.cards.push(card.clone());
        self.put_circle(writes, &record);
        let me = self.device.member_id;
        for member in old.members.iter().map(RosterMember::member_id) {
            if member != me {
                let kind = pb::content::Kind::CircleRosterUpdate(pb::CircleRosterUpdate {
                    roster: signed.to_bytes(),
                    cards: vec![card.clone()],
                });
                self.queue_control(writes, member, kind, rng, now_ms)
                    .map_err(store_refusal)?;
            }
        }
        let welcome = pb::content::Kind::CircleWelcome(pb::CircleWelcome {
            roster: signed.to_bytes(),
            cards: record.cards.clone(),
            parent_circle_id: Vec::new(),
        });
        self.queue_control(writes, sender, welcome, rng, now_ms)
            .map_err(store_refusal)?;
        self.adopt_chain(writes, record, chain, &old, rng, now_ms)
            .map_err(store_refusal)
    }

    fn apply_welcome<R: rand::CryptoRng>(
        &mut self,
        sender: MemberId,
        welcome: &pb::CircleWelcome,
        writes: &mut WriteSet,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<Vec<Event>, Refusal> {
        let signed =
            SignedRoster::from_bytes(&welcome.roster).map_err(|_| RejectReason::Malformed)?;
        let roster = signed.roster();
        let circle = roster.circle_id;
        let me = self.device.member_id;
        // Only the facilitator who signed it, and only to someone in it.
        if signed.signer() != sender
            || !roster.is_facilitator(sender)
            || roster.member(me).is_none()
        {
            return Err(RejectReason::UnknownSender.into());
        }
        let existing = self.circle_in(writes, circle)?;
        let mut record = match existing {
            Some(record)
                if record.state == StoredCircleState::Joining as i32
                    && record.inviter == sender.as_bytes() =>
            {
                record
            }
            Some(_) => return Ok(Vec::new()),
            None => {
                // A sub-circle: its creator must share the parent with us.
                let parent = roster.parent_circle.ok_or(RejectReason::UnknownSender)?;
                let shares = self
                    .active_circle(writes, parent)
                    .is_ok_and(|(_, chain)| chain.head().roster().member(sender).is_some());
                if !shares {
                    return Err(RejectReason::UnknownSender.into());
                }
                let mut door = [0u8; SECRET_LEN];
                rng.fill_bytes(&mut door);
                self.add_token_task(writes, &door);
                CircleRecord {
                    circle_id: circle.as_bytes().to_vec(),
                    door_token: door.to_vec(),
                    joined_at_ms: now_ms,
                    ..Default::default()
                }
            }
        };
        for card in &welcome.cards {
            if let Some(member) = member_from(&card.member_id)
                && member != me
                && roster.member(member).is_some()
                && check_card(card, member).is_ok()
            {
                record.cards.retain(|c| c.member_id != card.member_id);
                record.cards.push(card.clone());
            }
        }
        let mine = self.my_card(&record.door_token);
        record.cards.retain(|c| c.member_id != me.as_bytes());
        record.cards.push(mine);
        record.state = StoredCircleState::Active as i32;
        record.invite_name.clear();
        let chain = RosterChain::new(signed.clone());
        record.chain = chain.to_bytes();
        self.put_circle(writes, &record);
        for member in roster.members.iter().map(RosterMember::member_id) {
            if member != me {
                self.reach_member(writes, circle, &chain, member, rng, now_ms)
                    .map_err(store_refusal)?;
            }
        }
        let record = self
            .circle_in(writes, circle)?
            .ok_or(RejectReason::Malformed)?;
        Ok(vec![Event::CircleChanged(self.circle_view(&record)?)])
    }

    fn apply_roster_update<R: rand::CryptoRng>(
        &mut self,
        sender: MemberId,
        update: &pb::CircleRosterUpdate,
        writes: &mut WriteSet,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<Vec<Event>, Refusal> {
        let signed =
            SignedRoster::from_bytes(&update.roster).map_err(|_| RejectReason::Malformed)?;
        if signed.signer() != sender {
            return Err(RejectReason::UnknownSender.into());
        }
        let circle = signed.roster().circle_id;
        let Some(mut record) = self.circle_in(writes, circle)? else {
            return Err(RejectReason::UnknownSender.into());
        };
        if record.state == StoredCircleState::Joining as i32 {
            return Err(Refusal::Hold);
        }
        if record.state != StoredCircleState::Active as i32 {
            return Ok(Vec::new());
        }
        let mut chain = load_chain(&record)?;
        let old = chain.head().roster().clone();
        match chain.add(signed.clone()) {
            Ok(Added::NewHead) => {}
            Ok(Added::Duplicate | Added::Stored) => {
                record.chain = chain.to_bytes();
                self.put_circle(writes, &record);
                return Ok(Vec::new());
            }
            Err(roster::RosterError::UnknownParent) => return Err(Refusal::Hold),
            // Outdated (a branch that lost a fork, or older than we keep):
            // nothing to do, and nobody to blame.
            Err(roster::RosterError::Stale | roster::RosterError::Abandoned) => {
                return Ok(Vec::new());
            }
            Err(error) => {
                tracing::debug!(%error, "refused a roster version");
                return Err(RejectReason::Forged.into());
            }
        }
        let head = chain.head().roster();
        for card in &update.cards {
            if let Some(member) = member_from(&card.member_id)
                && head.member(member).is_some()
                && member != self.device.member_id
                && check_card(card, member).is_ok()
            {
                record.cards.retain(|c| c.member_id != card.member_id);
                record.cards.push(card.clone());
            }
        }
        self.adopt_chain(writes, record, chain, &old, rng, now_ms)
            .map_err(store_refusal)
    }

    fn apply_keys<R: rand::CryptoRng>(
        &mut self,
        sender: MemberId,
        keys: &pb::CircleKeys,
        writes: &mut WriteSet,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<Vec<Event>, Refusal> {
        let circle = circle_from(&keys.circle_id)?;
        let Some(mut record) = self.circle_in(writes, circle)? else {
            return Err(RejectReason::UnknownSender.into());
        };
        if record.state == StoredCircleState::Joining as i32 {
            return Err(Refusal::Hold);
        }
        if record.state != StoredCircleState::Active as i32 {
            return Ok(Vec::new());
        }
        let chain = load_chain(&record)?;
        let roster = chain.head().roster();
        let Some(entry) = roster.member(sender) else {
            // Their roster may be ahead of ours (the update adding them is
            // on its way): keep it for later.
            return Err(Refusal::Hold);
        };
        if keys.epoch > roster.epoch {
            return Err(Refusal::Hold);
        }
        let distribution = SenderKeyDistribution::from_bytes(&keys.distribution)
            .map_err(|_| RejectReason::Malformed)?;
        if *distribution.circle_id() != *circle.as_bytes() || distribution.epoch() != keys.epoch {
            return Err(RejectReason::Malformed.into());
        }
        if keys.epoch == roster.epoch {
            let remote = RemoteSenderKey::new(&distribution, verifying(&entry.identity.sig_key)?);
            let key = self.sender_keys_key(circle, sender);
            let mut stored: SenderKeysRecord = match writes.read(Space::SenderKeys, &key)? {
                Some(bytes) => records::decode(&bytes, "sender keys")?,
                None => SenderKeysRecord::default(),
            };
            stored.keys.retain(|bytes| {
                RemoteSenderKey::from_bytes(bytes).is_ok_and(|k| {
                    k.epoch() == roster.epoch && k.chain_id() != distribution.chain_id()
                })
            });
            stored.keys.push(remote.to_bytes().to_vec());
            let excess = stored.keys.len().saturating_sub(KEPT_SENDER_KEYS);
            stored.keys.drain(..excess);
            writes.put(Space::SenderKeys, &key, &records::encode(&stored));
        }
        if let Some(card) = &keys.card
            && check_card(card, sender).is_ok()
        {
            record.cards.retain(|c| c.member_id != card.member_id);
            record.cards.push(card.clone());
        }
        // Their pairwise token replaces the door token we used so far.
        if let Some(mut contact) = self.contact_in(writes, sender)?
            && !keys.pair_token.is_empty()
            && keys.pair_token.len() <= 256
            && contact.send_token != keys.pair_token
        {
            contact.send_token.clone_from(&keys.pair_token);
            self.put_contact(writes, &contact)?;
        }
        self.put_circle(writes, &record);
        let has_ours = record.keys_sent_to.iter().any(|m| m == sender.as_bytes())
            && !record.own_key.is_empty();
        if keys.reply_wanted || !has_ours {
            let bytes = self
                .circle_keys_for(writes, record, &chain, sender, false, rng, now_ms)
                .map_err(store_refusal)?;
            self.queue_bytes(writes, sender, &bytes, rng, now_ms)
                .map_err(store_refusal)?;
        }
        Ok(Vec::new())
    }

    /// Whether a stranger's first message may open a session: a circle
    /// member's keys, for a circle we are in, from a device the roster
    /// names. `Hold` when the roster adding them may be on its way.
    pub(super) fn admit_circle_stranger(
        &self,
        writes: &WriteSet,
        sender: MemberId,
        dh_key: &hearth_protocol::keys::X25519PublicKey,
        keys: &pb::CircleKeys,
    ) -> Result<ContactRecord, Refusal> {
        let circle = circle_from(&keys.circle_id)?;
        let Some(record) = self.circle_in(writes, circle)? else {
            return Err(RejectReason::UnknownSender.into());
        };
        if record.state == StoredCircleState::Joining as i32 {
            return Err(Refusal::Hold);
        }
        if record.state != StoredCircleState::Active as i32 {
            return Err(RejectReason::UnknownSender.into());
        }
        let chain = load_chain(&record)?;
        let Some(entry) = chain.head().roster().member(sender) else {
            return Err(Refusal::Hold);
        };
        if entry.identity.dh_key != *dh_key {
            return Err(RejectReason::UnknownSender.into());
        }
        let card = keys.card.as_ref().ok_or(RejectReason::Malformed)?;
        check_card(card, sender)?;
        let send_token = if keys.pair_token.is_empty() {
            card.send_token.clone()
        } else {
            keys.pair_token.clone()
        };
        let contact = ContactRecord {
            display_name: entry.display_name.clone(),
            relay: card.relay.clone(),
            mailbox_id: card.mailbox_id.clone(),
            send_token,
            circle_only: true,
            ..Default::default()
        };
        Ok(contact)
    }

    /// A stranger's join request: the invite must exist (its outcome is
    /// decided by [`Self::apply_join_request`]).
    pub(super) fn admit_joiner(
        &self,
        writes: &WriteSet,
        request: &pb::CircleJoinRequest,
    ) -> Result<ContactRecord, Refusal> {
        let invite_key = self.invite_key(&request.invite_secret);
        let Some(bytes) = writes.read(Space::Invites, &invite_key)? else {
            return Err(RejectReason::UnknownInvite.into());
        };
        let invite: InviteRecord = records::decode(&bytes, "invite")?;
        if invite.circle_id != request.circle_id {
            return Err(RejectReason::UnknownInvite.into());
        }
        let card = request.card.as_ref().ok_or(RejectReason::Malformed)?;
        if request.pair_token.is_empty() || request.pair_token.len() > 256 {
            return Err(RejectReason::Malformed.into());
        }
        Ok(ContactRecord {
            display_name: request.display_name.chars().take(64).collect(),
            relay: card.relay.clone(),
            mailbox_id: card.mailbox_id.clone(),
            send_token: request.pair_token.clone(),
            our_send_token: invite.send_token,
            circle_only: true,
            ..Default::default()
        })
    }

    // ---- pairwise sends -------------------------------------------------------

    /// Queues a control message to `member` over our session with them.
    pub(super) fn queue_control<R: rand::CryptoRng>(
        &mut self,
        writes: &mut WriteSet,
        member: MemberId,
        kind: pb::content::Kind,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<(), Error> {
        let id = MessageId::random(rng);
        let bytes = content::encode(id, now_ms, kind);
        self.queue_bytes(writes, member, &bytes, rng, now_ms)
    }

    /// Queues content bytes to `member` over our session with them (as the
    /// staged writes have it).
    pub(super) fn queue_bytes<R: rand::CryptoRng>(
        &mut self,
        writes: &mut WriteSet,
        member: MemberId,
        bytes: &[u8],
        rng: &mut R,
        now_ms: u64,
    ) -> Result<(), Error> {
        let contact = self
            .contact_in(writes, member)?
            .ok_or(Error::UnknownContact)?;
        let mut session = self
            .session_in(writes, member)?
            .ok_or(Error::Internal("contact without a session"))?;
        let id = MessageId::random(rng);
        self.queue(&contact, &mut session, id, bytes, writes, rng, now_ms)
    }
}

/// The circle id of a stored record.
pub(crate) fn circle_id_of(record: &CircleRecord) -> CircleId {
    CircleId::from_slice(&record.circle_id).unwrap_or(CircleId::from_bytes([0; 16]))
}

/// The roster chain of a stored record.
pub(crate) fn load_chain(record: &CircleRecord) -> Result<RosterChain, StoreError> {
    RosterChain::from_bytes(&record.chain).map_err(|_| StoreError::Corrupt("circle roster"))
}

fn member_from(bytes: &[u8]) -> Option<MemberId> {
    bytes.try_into().ok().map(MemberId::from_bytes)
}

fn circle_from(bytes: &[u8]) -> Result<CircleId, Refusal> {
    CircleId::from_slice(bytes).ok_or_else(|| RejectReason::Malformed.into())
}

/// A card must name its member and carry a usable address.
fn check_card(card: &pb::MemberCard, member: MemberId) -> Result<(), Refusal> {
    let relay_ok = card
        .relay
        .parse::<hearth_protocol::address::RelayAddress>()
        .is_ok();
    if card.member_id != member.as_bytes()
        || !relay_ok
        || card.mailbox_id.len() != 32
        || card.send_token.is_empty()
        || card.send_token.len() > 256
    {
        return Err(RejectReason::Malformed.into());
    }
    Ok(())
}

/// Our own failures while answering a message are store failures (the
/// envelope is retried), never the sender's fault.
fn store_refusal(error: Error) -> Refusal {
    match error {
        Error::Store(error) => Refusal::Store(error),
        other => {
            // Not the sender's fault but not worth blocking the mailbox
            // for: the message is refused and the conversation goes on.
            tracing::warn!(%other, "answering a circle message failed");
            RejectReason::Malformed.into()
        }
    }
}
