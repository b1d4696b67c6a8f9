//! What becomes of an invite link once it has served: its send token is
//! revoked on the relay when it is used, refused or expires, so a link
//! that has served gives nothing: no contact, no session, no way into our
//! mailbox.
//!
//! A circle link's token only carries the join request. Once the join is
//! accepted the facilitator draws a pairwise token for the joiner (handed
//! over with its sender key) and revokes the link's; the joiner reaches
//! the facilitator by its door token meanwhile. A refused joiner's request
//! is answered over the session it opened, and that session and contact
//! are then forgotten. A personal link's token becomes the pairwise token
//! of the contact who used it, as before.

use hearth_proto::content as pb;

use super::Engine;
use super::circles::{check_card, load_chain};
use crate::circles::CircleId;
use crate::ids::MemberId;
use crate::invite::SECRET_LEN;
use crate::records::{self, ContactRecord, InviteRecord, StoredCircleState};
use crate::store::{BLIND_LEN, Space, StoreError, WriteSet};

impl Engine {
    /// Stages `invite` (under `key`) with its send token revoked, unless it
    /// was revoked before.
    pub(super) fn void_invite(
        &mut self,
        writes: &mut WriteSet,
        key: &[u8; BLIND_LEN],
        mut invite: InviteRecord,
    ) {
        if !invite.token_revoked {
            self.revoke_token_task(writes, &invite.send_token);
            invite.token_revoked = true;
        }
        writes.put(Space::Invites, key, &records::encode(&invite));
    }

    /// Unstages the contact and session a refused joiner's first message
    /// made (the refusal is already sealed in the outbox).
    pub(super) fn forget_joiner(&self, writes: &mut WriteSet, joiner: MemberId) {
        writes.delete(Space::Contacts, &self.contact_key(joiner));
        writes.delete(Space::Sessions, &self.session_key(joiner));
    }

    /// Gives an accepted joiner a pairwise token of its own, registered
    /// before anything that carries it goes out.
    pub(super) fn give_pair_token<R: rand::CryptoRng>(
        &mut self,
        writes: &mut WriteSet,
        mut contact: ContactRecord,
        rng: &mut R,
    ) -> Result<(), StoreError> {
        let mut token = [0u8; SECRET_LEN];
        rng.fill_bytes(&mut token);
        self.add_token_task(writes, &token);
        contact.our_send_token = token.to_vec();
        self.put_contact(writes, &contact)
    }

    /// The joiner's side of the same change: the welcome's sender was
    /// reached by the link's token, which is revoked now; until its
    /// pairwise token arrives (with its sender key) we reach it by the door
    /// token on its card. Only a contact made for the join is switched.
    pub(super) fn reach_inviter_by_door(
        &self,
        writes: &mut WriteSet,
        inviter: MemberId,
        cards: &[pb::MemberCard],
    ) -> Result<(), StoreError> {
        let Some(mut contact) = self.contact_in(writes, inviter)? else {
            return Ok(());
        };
        let card = cards
            .iter()
            .find(|c| c.member_id == inviter.as_bytes() && check_card(c, inviter).is_ok());
        if let Some(card) = card
            && contact.circle_only
        {
            contact.send_token.clone_from(&card.send_token);
            self.put_contact(writes, &contact)?;
        }
        Ok(())
    }

    /// The invite chore: stages the revocation of every unused link that
    /// expired, or whose circle we no longer facilitate; `None` when there
    /// is nothing to revoke.
    pub(crate) fn expire_invites(&mut self, now_ms: u64) -> Result<Option<WriteSet>, StoreError> {
        let mut writes = self.store.writes();
        for (key, bytes) in self.store.scan(Space::Invites, &[])? {
            let invite: InviteRecord = records::decode(&bytes, "invite")?;
            // A used personal link's token is its contact's pairwise token.
            if invite.used || invite.token_revoked {
                continue;
            }
            let expired = invite.expires_at_ms != 0 && invite.expires_at_ms <= now_ms;
            if expired || !self.may_invite_to(&invite)? {
                let key: [u8; BLIND_LEN] = key
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("invite key"))?;
                self.void_invite(&mut writes, &key, invite);
            }
        }
        if writes.is_empty() {
            return Ok(None);
        }
        self.put_state(&mut writes);
        Ok(Some(writes))
    }

    /// Whether we may still admit someone with `invite`: always for a
    /// personal link; for a circle link, while we facilitate the circle.
    fn may_invite_to(&self, invite: &InviteRecord) -> Result<bool, StoreError> {
        if invite.circle_id.is_empty() {
            return Ok(true);
        }
        let writes = self.store.writes();
        let Some(circle) = CircleId::from_slice(&invite.circle_id) else {
            return Ok(false);
        };
        let Some(record) = self.circle_in(&writes, circle)? else {
            return Ok(false);
        };
        if record.state != StoredCircleState::Active as i32 {
            return Ok(false);
        }
        let chain = load_chain(&record)?;
        Ok(chain.head().roster().is_facilitator(self.device.member_id))
    }
}
