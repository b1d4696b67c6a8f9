//! Circle control messages received over pairwise sessions: join
//! requests and refusals, welcomes, roster updates and sender keys, and
//! which strangers' first messages may open a session (see
//! [`super::circles`] for the rules).

use hearth_proto::content as pb;
use hearth_protocol::sender_key::{RemoteSenderKey, SenderKeyDistribution};

use super::circle_messages::verifying;
use super::circles::{check_card, circle_from, load_chain, member_from, store_refusal};
use super::receive::Refusal;
use super::{Engine, circle_forks};
use crate::circles::roster::{PublicIdentityKeys, Roster, RosterChain, RosterMember, SignedRoster};
use crate::circles::{JoinRefusal, Role};
use crate::contacts;
use crate::content::CircleControl;
use crate::events::{Event, RejectReason};
use crate::ids::MemberId;
use crate::invite::SECRET_LEN;
use crate::records::{
    self, CircleRecord, ContactRecord, InviteRecord, SenderKeysRecord, StoredCircleState,
};
use crate::store::{Space, WriteSet};

/// Sender keys kept per (circle, member): enough for a rotation in flight.
const KEPT_SENDER_KEYS: usize = 4;

impl Engine {
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
        // A contact made just now for this request (no stored one): kept
        // only if the join is accepted.
        let new_contact = self.contact_record(sender)?.is_none();
        let refusal = if invite.used {
            Some(pb::circle_join_refused::Reason::AlreadyUsed)
        } else if invite.expires_at_ms != 0 && invite.expires_at_ms <= now_ms {
            Some(pb::circle_join_refused::Reason::Expired)
        } else if invite.token_revoked {
            Some(pb::circle_join_refused::Reason::UnknownInvite)
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
            self.void_invite(writes, &invite_key, invite);
            if new_contact {
                // The refusal is sealed in the outbox: nothing of the
                // session it went over is kept.
                self.forget_joiner(writes, sender);
            }
            return Ok(Vec::new());
        }
        invite.used = true;
        self.void_invite(writes, &invite_key, invite);
        let contact = self
            .contact_in(writes, sender)?
            .ok_or(RejectReason::UnknownSender)?;
        if new_contact {
            self.give_pair_token(writes, contact.clone(), rng)?;
        }
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
        set_card(&mut record.cards, card.clone());
        self.put_circle(writes, &record);
        let me = self.device.member_id;
        let signed_bytes = signed.to_bytes();
        for member in old.members.iter().map(RosterMember::member_id) {
            if member != me {
                let kind = pb::content::Kind::CircleRosterUpdate(pb::CircleRosterUpdate {
                    roster: signed_bytes.clone(),
                    cards: vec![card.clone()],
                });
                self.queue_control(writes, member, kind, rng, now_ms)
                    .map_err(store_refusal)?;
            }
        }
        let welcome = pb::content::Kind::CircleWelcome(pb::CircleWelcome {
            roster: signed_bytes,
            cards: record.cards.clone(),
            parent_circle_id: Vec::new(),
            history: circle_forks::welcome_history(&chain),
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
        let versions = circle_forks::welcome_versions(welcome)?;
        let Some(signed) = versions.last().cloned() else {
            return Err(RejectReason::Malformed.into());
        };
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
                self.reach_inviter_by_door(writes, sender, &welcome.cards)?;
                record
            }
            Some(record) => {
                return self.absorb_welcome(writes, record, welcome, versions, rng, now_ms);
            }
            None => {
                self.check_sub_circle_roster(writes, sender, roster)?;
                let mut door = [0u8; SECRET_LEN];
                rng.fill_bytes(&mut door);
                self.add_token_task(writes, &door);
                CircleRecord {
                    circle_id: circle.as_bytes().to_vec(),
                    state: StoredCircleState::Joining as i32,
                    chain: Vec::new(),
                    cards: Vec::new(),
                    door_token: door.to_vec(),
                    own_key: Vec::new(),
                    keys_sent_to: Vec::new(),
                    joined_at_ms: now_ms,
                    invite_name: String::new(),
                    inviter: Vec::new(),
                    departed: Vec::new(),
                    own_key_set: Vec::new(),
                }
            }
        };
        self.take_cards(&mut record, roster, &welcome.cards);
        let mine = self.my_card(&record.door_token);
        set_card(&mut record.cards, mine);
        record.state = StoredCircleState::Active as i32;
        record.invite_name.clear();
        // The versions before the head, so that a concurrent version that
        // wins a fork against the head still attaches here.
        let chain = RosterChain::from_run(versions).map_err(|_| RejectReason::Forged)?;
        record.chain = chain.to_bytes();
        self.put_circle(writes, &record);
        for member in roster.members.iter().map(RosterMember::member_id) {
            if member != me {
                self.reach_member(writes, circle, &chain, member, true, rng, now_ms)
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
        let circle = signed.roster().circle_id;
        let Some(record) = self.circle_in(writes, circle)? else {
            return Err(RejectReason::UnknownSender.into());
        };
        if signed.signer() != sender {
            // Not their version: at most fresh cards for one we know.
            return self.refresh_cards(sender, record, &signed, &update.cards, writes);
        }
        match StoredCircleState::try_from(record.state) {
            Ok(StoredCircleState::Joining) => return Err(Refusal::Hold),
            // After our leave: still watched, in case it lost a fork and
            // must be made again.
            Ok(StoredCircleState::Active | StoredCircleState::Left) => {}
            _ => return Ok(Vec::new()),
        }
        self.absorb_versions(writes, record, vec![signed], &update.cards, rng, now_ms)
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
        {
            // Keys of earlier epochs are kept too (the newest few): a post
            // sent under one before its sender learned of a change is
            // still read by those who remain.
            let remote = RemoteSenderKey::new(&distribution, verifying(&entry.identity.sig_key)?);
            let key = self.sender_keys_key(circle, sender);
            let mut stored: SenderKeysRecord = match writes.read(Space::SenderKeys, &key)? {
                Some(bytes) => records::decode(&bytes, "sender keys")?,
                None => SenderKeysRecord::default(),
            };
            stored.keys.retain(|bytes| {
                RemoteSenderKey::from_bytes(bytes).is_ok_and(|k| {
                    k.epoch() != distribution.epoch() || k.chain_id() != distribution.chain_id()
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
            let replaced = record
                .cards
                .iter()
                .any(|c| c.member_id == card.member_id && c.send_token != card.send_token);
            set_card(&mut record.cards, card.clone());
            if replaced {
                self.forward_card(writes, &chain, sender, card, rng, now_ms)
                    .map_err(store_refusal)?;
            }
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
        let pending = chain.pending_removals().contains(&sender);
        if (keys.reply_wanted || !has_ours) && !pending {
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
        let mut contact = ContactRecord::reached_at(
            entry.display_name.clone(),
            card.relay.clone(),
            card.mailbox_id.clone(),
            send_token,
        );
        contact.circle_only = true;
        Ok(contact)
    }

    /// A stranger's join request: the invite must exist (its outcome is
    /// decided by [`Self::apply_join_request`], which keeps the contact
    /// only if the join is accepted).
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
        if invite.circle_id.is_empty() || invite.circle_id != request.circle_id {
            return Err(RejectReason::UnknownInvite.into());
        }
        let card = request.card.as_ref().ok_or(RejectReason::Malformed)?;
        if request.pair_token.is_empty() || request.pair_token.len() > 256 {
            return Err(RejectReason::Malformed.into());
        }
        // No token of ours yet: one is drawn only if the join is accepted
        // (the link's own token is revoked either way).
        let mut contact = ContactRecord::reached_at(
            request.display_name.chars().take(64).collect(),
            card.relay.clone(),
            card.mailbox_id.clone(),
            request.pair_token.clone(),
        );
        contact.circle_only = true;
        Ok(contact)
    }

    /// A sub-circle's first roster, welcomed by `sender`: every member in
    /// it (the sender too) must be a member of the parent circle as our
    /// copy of the parent roster has them, with the same identity keys and
    /// display name. A sub-circle can only narrow its parent.
    fn check_sub_circle_roster(
        &self,
        writes: &WriteSet,
        sender: MemberId,
        roster: &Roster,
    ) -> Result<(), Refusal> {
        let parent = roster.parent_circle.ok_or(RejectReason::UnknownSender)?;
        let Ok((_, chain)) = self.active_circle(writes, parent) else {
            return Err(RejectReason::UnknownSender.into());
        };
        let parent_roster = chain.head().roster();
        if parent_roster.member(sender).is_none() {
            return Err(RejectReason::UnknownSender.into());
        }
        let as_in_parent = |member: &RosterMember| {
            parent_roster.member(member.member_id()).is_some_and(|p| {
                p.identity.sig_key == member.identity.sig_key
                    && p.identity.dh_key == member.identity.dh_key
                    && p.display_name == member.display_name
            })
        };
        if !roster.members.iter().all(as_in_parent) {
            return Err(RejectReason::Forged.into());
        }
        Ok(())
    }

    /// Keeps the valid `cards` of the other members `roster` names.
    pub(super) fn take_cards(
        &self,
        record: &mut CircleRecord,
        roster: &Roster,
        cards: &[pb::MemberCard],
    ) {
        for card in cards {
            if let Some(member) = member_from(&card.member_id)
                && member != self.device.member_id
                && roster.member(member).is_some()
                && check_card(card, member).is_ok()
            {
                set_card(&mut record.cards, card.clone());
            }
        }
    }
}

/// Makes `card` the way to reach its member, replacing an older one.
fn set_card(cards: &mut Vec<pb::MemberCard>, card: pb::MemberCard) {
    cards.retain(|c| c.member_id != card.member_id);
    cards.push(card);
}
