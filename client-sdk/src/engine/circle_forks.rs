//! What a device does when roster versions fork (see the fork choice in
//! [`crate::circles::roster`]): sender keys that follow the member set,
//! welcomes that carry recent history, and changes of ours that lost a fork
//! made again on the new head.
//!
//! **Keys follow the member set.** A sender key is made for one set of
//! recipients: the head's members, less this device, less anyone whose
//! removal lost a fork and is pending
//! ([`RosterChain::pending_removals`]). Whenever that set changes — a
//! removal, a newcomer, a switch to another branch with the same epoch
//! number — a fresh key is made for the new set: at once after a
//! departure, and for a newcomer at once while the others get it with the
//! next post.
//!
//! **Lost changes come back.** When a fork makes the head leave a version
//! this device signed, the device signs what that version changed again as
//! a child of the new head, as far as it still applies and it still may:
//! removals of members still there, role changes, a new name or rules
//! nobody else changed, members it had added (welcomed again with the
//! history they need), its own leave.

use std::collections::BTreeSet;

use hearth_proto::content as pb;
use sha2::{Digest as _, Sha256};

use super::Engine;
use super::receive::Refusal;
use crate::circles::Role;
use crate::circles::roster::{self, Added, Roster, RosterChain, RosterMember, SignedRoster};
use crate::error::Error;
use crate::events::{Event, RejectReason};
use crate::ids::MemberId;
use crate::records::{CircleRecord, StoredCircleState};
use crate::store::WriteSet;

/// Most bytes of older roster versions a welcome carries (the envelope
/// limit is 64 KiB; the head itself comes on top).
const WELCOME_HISTORY_BYTES: usize = 24 * 1024;

/// Most older versions a welcome carries.
const WELCOME_HISTORY_VERSIONS: usize = 8;

/// How many versions back a newcomer we welcomed still gets the new cards
/// of other members from us.
const RECENT_VERSIONS: u64 = 4;

/// Domain separation of [`member_set_print`].
const MEMBER_SET_LABEL: &[u8] = b"Hearth_v1_SenderKeyMembers";

/// Who gets this device's sender key for `chain`: the head's members but
/// this device and anyone whose removal is pending.
pub(super) fn key_recipients(chain: &RosterChain, me: MemberId) -> Vec<RosterMember> {
    let pending = chain.pending_removals();
    chain
        .head_roster()
        .members
        .iter()
        .filter(|m| m.member_id() != me && !pending.contains(&m.member_id()))
        .cloned()
        .collect()
}

/// A print of the member set a sender key is made for: the epoch and each
/// recipient's id and `added_in`.
pub(super) fn member_set_print(chain: &RosterChain, me: MemberId) -> Vec<u8> {
    let mut recipients: Vec<(MemberId, u64)> = key_recipients(chain, me)
        .iter()
        .map(|m| (m.member_id(), m.added_in))
        .collect();
    recipients.sort();
    let mut hash = Sha256::new()
        .chain_update(MEMBER_SET_LABEL)
        .chain_update(chain.head_roster().epoch.to_be_bytes());
    for (id, added_in) in recipients {
        hash.update(id.as_bytes());
        hash.update(added_in.to_be_bytes());
    }
    hash.finalize().to_vec()
}

/// The versions before the head a welcome carries, oldest first.
pub(super) fn welcome_history(chain: &RosterChain) -> Vec<Vec<u8>> {
    let mut history = Vec::new();
    let mut bytes = 0;
    for version in chain.path().rev().skip(1).take(WELCOME_HISTORY_VERSIONS) {
        let encoded = version.to_bytes();
        bytes += encoded.len();
        if bytes > WELCOME_HISTORY_BYTES {
            break;
        }
        history.push(encoded);
    }
    history.reverse();
    history
}

/// The versions a welcome carries, oldest first, each verified.
pub(super) fn welcome_versions(
    welcome: &pb::CircleWelcome,
) -> Result<Vec<SignedRoster>, RejectReason> {
    if welcome.history.len() > WELCOME_HISTORY_VERSIONS {
        return Err(RejectReason::Malformed);
    }
    welcome
        .history
        .iter()
        .chain([&welcome.roster])
        .map(|bytes| SignedRoster::from_bytes(bytes).map_err(|_| RejectReason::Malformed))
        .collect()
}

impl Engine {
    /// Adds `versions` (from a roster update or a welcome) to the circle's
    /// chain, makes again any change of ours that lost a fork, and acts on
    /// the new head. `Hold` when a version's parent has not arrived yet.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn absorb_versions<R: rand::CryptoRng>(
        &mut self,
        writes: &mut WriteSet,
        mut record: CircleRecord,
        versions: Vec<SignedRoster>,
        cards: &[pb::MemberCard],
        rng: &mut R,
        now_ms: u64,
    ) -> Result<Vec<Event>, Refusal> {
        let mut chain = super::circles::load_chain(&record)?;
        let old = chain.head_roster().clone();
        let old_path: Vec<[u8; 32]> = chain.path().map(SignedRoster::hash).collect();
        let mut moved = false;
        for version in versions {
            match chain.add(version) {
                Ok(Added::NewHead) => moved = true,
                Ok(Added::Duplicate | Added::Stored) => {}
                Err(roster::RosterError::UnknownParent) => return Err(Refusal::Hold),
                // Outdated (older than we keep, or below a version we let
                // go): nothing to do, and nobody to blame.
                Err(roster::RosterError::Stale | roster::RosterError::Abandoned) => {}
                Err(error) => {
                    tracing::debug!(%error, "refused a roster version");
                    return Err(RejectReason::Forged.into());
                }
            }
        }
        if !moved {
            // Kept versions may still change what is pending, and a version
            // we hold may come again with fresher cards.
            self.take_cards(&mut record, chain.head_roster(), cards);
            record.chain = chain.to_bytes();
            self.put_circle(writes, &record);
            return Ok(Vec::new());
        }
        self.take_cards(&mut record, chain.head_roster(), cards);
        let lost: Vec<SignedRoster> = old_path
            .iter()
            .filter(|hash| !chain.contains(hash))
            .filter_map(|hash| chain.get(hash).cloned())
            .filter(|v| v.signer() == self.device.member_id)
            .collect();
        if !lost.is_empty() {
            self.make_again(writes, &mut chain, &lost, rng, now_ms)
                .map_err(super::circles::store_refusal)?;
        }
        self.adopt_chain(writes, record, chain, &old, rng, now_ms)
            .map_err(super::circles::store_refusal)
    }

    /// Signs what our `lost` versions changed as a child of the head, as
    /// far as it still applies and we still may, and sends it out.
    fn make_again<R: rand::CryptoRng>(
        &mut self,
        writes: &mut WriteSet,
        chain: &mut RosterChain,
        lost: &[SignedRoster],
        rng: &mut R,
        now_ms: u64,
    ) -> Result<(), Error> {
        let me = self.device.member_id;
        let head = chain.head().clone();
        let old = head.roster().clone();
        let mut next = head.next();
        let mut welcomed: BTreeSet<MemberId> = BTreeSet::new();
        for version in lost {
            let Some(parent) = chain.get(&version.roster().parent).cloned() else {
                continue;
            };
            let facilitating = next.is_facilitator(me);
            redo(
                &mut next,
                parent.roster(),
                version.roster(),
                me,
                facilitating,
                &mut welcomed,
            );
        }
        let departed = old
            .members
            .iter()
            .any(|m| next.member(m.member_id()).is_none());
        if departed {
            next.epoch = old.epoch.saturating_add(1);
        }
        next.members.sort_by_key(RosterMember::member_id);
        if next.members == old.members && next.name == old.name && next.rules == old.rules {
            return Ok(());
        }
        let Ok(signed) = next.sign(&self.device.identity) else {
            return Ok(());
        };
        if !matches!(chain.add(signed.clone()), Ok(Added::NewHead)) {
            // Not something we may sign here after all: nothing to send.
            return Ok(());
        }
        let recipients: BTreeSet<MemberId> = old
            .members
            .iter()
            .chain(&next.members)
            .map(RosterMember::member_id)
            .filter(|m| *m != me && !welcomed.contains(m))
            .collect();
        let record = self
            .circle_in(writes, next.circle_id)?
            .ok_or(Error::UnknownCircle)?;
        let cards: Vec<pb::MemberCard> = record
            .cards
            .iter()
            .filter(|c| welcomed.iter().any(|m| c.member_id == m.as_bytes()))
            .cloned()
            .collect();
        self.publish_roster(writes, &signed, recipients, cards, rng, now_ms)?;
        for member in welcomed {
            let record = self
                .circle_in(writes, next.circle_id)?
                .ok_or(Error::UnknownCircle)?;
            let welcome = pb::CircleWelcome {
                roster: signed.to_bytes(),
                cards: record.cards.clone(),
                parent_circle_id: Vec::new(),
                history: welcome_history(chain),
            };
            let kind = pb::content::Kind::CircleWelcome(welcome);
            self.queue_control(writes, member, kind, rng, now_ms)?;
        }
        Ok(())
    }

    /// Queues `signed` as a roster update, with `cards` of members it adds,
    /// to each of `recipients`.
    pub(super) fn publish_roster<R: rand::CryptoRng>(
        &mut self,
        writes: &mut WriteSet,
        signed: &SignedRoster,
        recipients: BTreeSet<MemberId>,
        cards: Vec<pb::MemberCard>,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<(), Error> {
        let update = pb::CircleRosterUpdate {
            roster: signed.to_bytes(),
            cards,
        };
        for member in recipients {
            let kind = pb::content::Kind::CircleRosterUpdate(update.clone());
            self.queue_control(writes, member, kind, rng, now_ms)?;
        }
        Ok(())
    }

    /// A welcome for a circle we already have a record of: a facilitator
    /// made again the change that added us after it lost a fork. Its
    /// versions join our chain under the usual rules.
    pub(super) fn absorb_welcome<R: rand::CryptoRng>(
        &mut self,
        writes: &mut WriteSet,
        mut record: CircleRecord,
        welcome: &pb::CircleWelcome,
        versions: Vec<SignedRoster>,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<Vec<Event>, Refusal> {
        if record.chain.is_empty()
            || !matches!(
                StoredCircleState::try_from(record.state),
                Ok(StoredCircleState::Active | StoredCircleState::Removed)
            )
        {
            return Ok(Vec::new());
        }
        // Only a welcome whose versions attach to our chain and list us
        // brings us back; the chain rules decide what attaches.
        let mut trial = super::circles::load_chain(&record)?;
        for version in &versions {
            let _ = trial.add(version.clone());
        }
        if trial.head_roster().member(self.device.member_id).is_none() {
            return Ok(Vec::new());
        }
        record.state = StoredCircleState::Active as i32;
        self.absorb_versions(writes, record, versions, &welcome.cards, rng, now_ms)
    }
}

impl Engine {
    /// `member` replaced its door token (`card`): members we welcomed may
    /// hold the old one from our welcome and have no session with `member`
    /// yet (the welcome raced a new epoch), so they get the new card. Sent
    /// as our copy of the head, which they know, with the card.
    pub(super) fn forward_card<R: rand::CryptoRng>(
        &mut self,
        writes: &mut WriteSet,
        chain: &RosterChain,
        member: MemberId,
        card: &pb::MemberCard,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<(), Error> {
        let me = self.device.member_id;
        let head_version = chain.head_roster().version;
        // Only newcomers of the last few versions: everyone else has had
        // the time to reach `member` already.
        let welcomed_by_us = |m: &RosterMember| {
            m.added_in.saturating_add(RECENT_VERSIONS) > head_version
                && chain
                    .path()
                    .any(|v| v.roster().version == m.added_in && v.signer() == me)
        };
        let targets: Vec<MemberId> = chain
            .head_roster()
            .members
            .iter()
            .filter(|m| m.member_id() != me && m.member_id() != member && welcomed_by_us(m))
            .map(RosterMember::member_id)
            .collect();
        let update = pb::CircleRosterUpdate {
            roster: chain.head().to_bytes(),
            cards: vec![card.clone()],
        };
        for target in targets {
            if self.contact_in(writes, target)?.is_some() {
                let kind = pb::content::Kind::CircleRosterUpdate(update.clone());
                self.queue_control(writes, target, kind, rng, now_ms)?;
            }
        }
        Ok(())
    }

    /// A member sent a roster version it did not sign: only cards for a
    /// version we already hold, from a member of our head, are taken.
    pub(super) fn refresh_cards(
        &mut self,
        sender: MemberId,
        mut record: CircleRecord,
        version: &SignedRoster,
        cards: &[pb::MemberCard],
        writes: &mut WriteSet,
    ) -> Result<Vec<Event>, Refusal> {
        if record.state != StoredCircleState::Active as i32 {
            return Ok(Vec::new());
        }
        let chain = super::circles::load_chain(&record)?;
        if chain.get(&version.hash()).is_none() || chain.head_roster().member(sender).is_none() {
            return Err(RejectReason::UnknownSender.into());
        }
        self.take_cards(&mut record, chain.head_roster(), cards);
        self.put_circle(writes, &record);
        Ok(Vec::new())
    }
}

/// Applies to `next` what `version` changed from `parent`, where it still
/// applies: removals of members still there (by `added_in`), role changes,
/// a name or rules the head has as `parent` had them, members added (noted
/// in `welcomed`), and our own leave. Only our leave needs no facilitator
/// role.
fn redo(
    next: &mut Roster,
    parent: &Roster,
    version: &Roster,
    me: MemberId,
    facilitating: bool,
    welcomed: &mut BTreeSet<MemberId>,
) {
    let diff = roster::diff(parent, version);
    if diff.removed.contains(&me) {
        next.members.retain(|m| m.member_id() != me);
    }
    if !facilitating {
        return;
    }
    for id in &diff.removed {
        let before = parent.member(*id).map(|m| m.added_in);
        if next.member(*id).map(|m| m.added_in) == before {
            next.members.retain(|m| m.member_id() != *id);
        }
    }
    for (id, role) in &diff.role_changes {
        if let Some(member) = next.members.iter_mut().find(|m| m.member_id() == *id) {
            member.role = *role;
        }
    }
    for id in &diff.added {
        if next.member(*id).is_none()
            && let Some(added) = version.member(*id)
        {
            next.members.push(RosterMember {
                added_in: next.version,
                ..added.clone()
            });
            welcomed.insert(*id);
        }
    }
    if diff.renamed && next.name == parent.name {
        next.name.clone_from(&version.name);
    }
    if diff.rules_changed && next.rules == parent.rules {
        next.rules.clone_from(&version.rules);
    }
    if !next.members.iter().any(|m| m.role == Role::Facilitator) {
        // Never sign a circle without a facilitator: keep the head's roles.
        for member in &mut next.members {
            if parent.is_facilitator(member.member_id()) {
                member.role = Role::Facilitator;
            }
        }
    }
}
