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
use zeroize::{Zeroize as _, Zeroizing};

use super::receive::Refusal;
use super::{Engine, circle_forks};
use crate::circles::roster::{self, PublicIdentityKeys, Roster, RosterChain, RosterMember};
use crate::circles::{Circle, CircleId, Role};
use crate::content;
use crate::error::Error;
use crate::events::{Event, RejectReason};
use crate::ids::{MemberId, MessageId};
use crate::invite::{CircleInvite, SECRET_LEN};
use crate::records::{
    CircleRecord, ContactRecord, InviteRecord, StoredCircleState, TaskKind, TaskRecord,
};
use crate::store::{Space, StoreError, WriteSet};

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
    fn my_keys(&self) -> PublicIdentityKeys {
        let identity = self.device.identity.public();
        PublicIdentityKeys {
            sig_key: identity.sig_key,
            dh_key: identity.dh_key,
        }
    }

    pub(super) fn my_card(&self, door_token: &[u8]) -> pb::MemberCard {
        pb::MemberCard {
            member_id: self.device.member_id.as_bytes().to_vec(),
            relay: self.device.relay.to_string(),
            mailbox_id: self.device.mailbox_id.to_vec(),
            send_token: door_token.to_vec(),
        }
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
            own_key: Vec::new(),
            keys_sent_to: Vec::new(),
            joined_at_ms: now_ms,
            invite_name: String::new(),
            inviter: Vec::new(),
            departed: Vec::new(),
            own_key_set: Vec::new(),
        };
        self.put_circle(&mut writes, &record);
        // Sub-circle members are welcomed over the sessions we share.
        let welcome = pb::CircleWelcome {
            roster: signed.to_bytes(),
            cards,
            parent_circle_id: parent
                .map(|(p, _)| p.as_bytes().to_vec())
                .unwrap_or_default(),
            history: Vec::new(),
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
        let record = InviteRecord {
            send_token: Vec::new(),
            created_at_ms: 0,
            used: false,
            circle_id: circle.as_bytes().to_vec(),
            expires_at_ms,
            token_revoked: false,
        };
        let (secret, send_token, writes) = self.stage_invite(record, rng, now_ms);
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
                let mut contact = ContactRecord::reached_at(
                    invite.display_name.clone(),
                    invite.relay.to_string(),
                    invite.mailbox_id.to_vec(),
                    invite.send_token.to_vec(),
                );
                contact.our_send_token = pair.to_vec();
                contact.added_at_ms = now_ms;
                contact.circle_only = true;
                let id = MessageId::random(rng);
                let bytes = content::encode(id, now_ms, request);
                self.start_session(bundle, contact, &bytes, &mut writes, rng, now_ms)?;
            }
            (None, None) => return Err(Error::Internal("a join needs the inviter's keys")),
        }
        let record = CircleRecord {
            circle_id: invite.circle_id.as_bytes().to_vec(),
            state: StoredCircleState::Joining as i32,
            chain: Vec::new(),
            cards: Vec::new(),
            door_token: door.to_vec(),
            own_key: Vec::new(),
            keys_sent_to: Vec::new(),
            joined_at_ms: now_ms,
            invite_name: invite.circle_name.clone(),
            inviter: invite.member_id.as_bytes().to_vec(),
            departed: Vec::new(),
            own_key_set: Vec::new(),
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
    #[cfg(feature = "test-hooks")]
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
        let recipients: BTreeSet<MemberId> = old
            .members
            .iter()
            .chain(&next.members)
            .map(RosterMember::member_id)
            .filter(|m| *m != me)
            .collect();
        self.publish_roster(&mut writes, &signed, recipients, Vec::new(), rng, now_ms)?;
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
    pub(super) fn adopt_chain<R: rand::CryptoRng>(
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
            record.own_key.zeroize();
            record.keys_sent_to.clear();
            let door = Zeroizing::new(std::mem::take(&mut record.door_token));
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
        if record.state != StoredCircleState::Active as i32 {
            // Back on the head we follow (a change that had dropped us lost
            // a fork and was made again without it).
            record.state = StoredCircleState::Active as i32;
        }
        // A sender key belongs to one member set: any change of it (a
        // removal, a newcomer, another branch) starts a new one, handed
        // to the new set at once.
        let set_changed = record.own_key_set != circle_forks::member_set_print(&chain, me);
        if set_changed {
            record.own_key.zeroize();
            record.keys_sent_to.clear();
        }
        let someone_left = diff.removed.iter().any(|m| new.member(*m).is_none());
        if new.epoch != old.epoch || someone_left || record.door_token.is_empty() {
            let mut door = [0u8; SECRET_LEN];
            rng.fill_bytes(&mut door);
            self.add_token_task(writes, &door);
            let old_door = Zeroizing::new(std::mem::replace(&mut record.door_token, door.to_vec()));
            self.revoke_token_task(writes, &old_door);
            if let Some(card) = record
                .cards
                .iter_mut()
                .find(|c| c.member_id == me.as_bytes())
            {
                card.send_token = door.to_vec();
            }
        }
        // Back on this head (a branch switch): no longer departed.
        record
            .departed
            .retain(|m| member_from(m).is_none_or(|id| new.member(id).is_none()));
        // Someone listed again under a later `added_in` (a change made again
        // after a fork) has not left: their card, keys and tokens stay.
        let gone: Vec<MemberId> = diff
            .removed
            .iter()
            .copied()
            .filter(|m| new.member(*m).is_none())
            .collect();
        for member in &gone {
            if !record.departed.iter().any(|m| m == member.as_bytes()) {
                record.departed.push(member.as_bytes().to_vec());
            }
            writes.delete(Space::SenderKeys, &self.sender_keys_key(circle, *member));
            record.cards.retain(|c| c.member_id != member.as_bytes());
            record.keys_sent_to.retain(|m| m != member.as_bytes());
        }
        self.put_circle(writes, &record);
        for member in &gone {
            self.forget_pair_token_if_unshared(writes, circle, *member)?;
        }
        let chain = load_chain(&record)?;
        let recipients: Vec<MemberId> = circle_forks::key_recipients(&chain, me)
            .iter()
            .map(RosterMember::member_id)
            .collect();
        let mut reach: Vec<MemberId> = diff
            .added
            .iter()
            .copied()
            .filter(|m| recipients.contains(m))
            .collect();
        if new.epoch != old.epoch || someone_left {
            // After a departure, a fresh sender key (and our new door token)
            // for everyone who stays, now rather than at our next post:
            // members who reach us for the first time need the new door.
            // After an addition only newcomers get it now; the others get
            // the new key with our next post.
            reach.extend(recipients.iter().filter(|m| !diff.added.contains(m)));
        }
        for member in reach {
            // Newcomers answer with their key; those who stay send theirs
            // anyway, as we do.
            let newcomer = diff.added.contains(&member);
            self.reach_member(writes, circle, &chain, member, newcomer, rng, now_ms)?;
        }
        let record = self.circle_in(writes, circle)?.unwrap_or(record);
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
    #[allow(clippy::too_many_arguments)]
    pub(super) fn reach_member<R: rand::CryptoRng>(
        &mut self,
        writes: &mut WriteSet,
        circle: CircleId,
        chain: &RosterChain,
        member: MemberId,
        reply_wanted: bool,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<(), Error> {
        if self.contact_in(writes, member)?.is_some() {
            let record = self
                .circle_in(writes, circle)?
                .ok_or(Error::UnknownCircle)?;
            let keys =
                self.circle_keys_for(writes, record, chain, member, reply_wanted, rng, now_ms)?;
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
                token: Vec::new(),
                member_id: member.as_bytes().to_vec(),
                circle_id: circle.as_bytes().to_vec(),
                attempts: 0,
                next_attempt_at_ms: 0,
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
        let pair_token = match self.contact_in(writes, member)? {
            Some(mut contact) if contact.our_send_token.is_empty() => {
                // We revoked it when they left a branch we followed; they
                // are back, so they get a new one.
                let mut token = [0u8; SECRET_LEN];
                rng.fill_bytes(&mut token);
                self.add_token_task(writes, &token);
                contact.our_send_token = token.to_vec();
                self.put_contact(writes, &contact)?;
                contact.our_send_token.clone()
            }
            Some(contact) => contact.our_send_token.clone(),
            None => Vec::new(),
        };
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
    RosterChain::from_stored_bytes(&record.chain).map_err(|_| StoreError::Corrupt("circle roster"))
}

pub(super) fn member_from(bytes: &[u8]) -> Option<MemberId> {
    bytes.try_into().ok().map(MemberId::from_bytes)
}

pub(super) fn circle_from(bytes: &[u8]) -> Result<CircleId, Refusal> {
    CircleId::from_slice(bytes).ok_or_else(|| RejectReason::Malformed.into())
}

/// A card must name its member and carry a usable address.
pub(super) fn check_card(card: &pb::MemberCard, member: MemberId) -> Result<(), Refusal> {
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
pub(super) fn store_refusal(error: Error) -> Refusal {
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
