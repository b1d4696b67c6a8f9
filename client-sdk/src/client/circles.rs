//! The circle API of [`Client`]: create, invite, join, change rosters,
//! post, read feeds and see who is due for a check-in.

use std::time::Duration;

use crate::circles::feed::{self, CircleMessage, DueStatus, GoalView};
use crate::circles::{Circle, CircleId, Role};
use crate::content::Content;
use crate::engine::RosterChange;
use crate::error::Error;
use crate::events::Event;
use crate::ids::{MemberId, MessageId};
use crate::invite::CircleInvite;

use super::{Client, commit, fetch_error};

impl Client {
    /// Creates a circle with this device as its first facilitator.
    pub async fn create_circle(&self, name: &str) -> Result<Circle, Error> {
        self.new_circle(name, None).await
    }

    /// Forms a sub-circle of `parent` with `members` (all members of
    /// `parent`); they join at once, without invites.
    pub async fn create_sub_circle(
        &self,
        parent: CircleId,
        name: &str,
        members: &[MemberId],
    ) -> Result<Circle, Error> {
        self.new_circle(name, Some((parent, members))).await
    }

    async fn new_circle(
        &self,
        name: &str,
        parent: Option<(CircleId, &[MemberId])>,
    ) -> Result<Circle, Error> {
        let circle = {
            let mut engine = self.shared.engine.lock().await;
            let (circle, writes) = {
                let mut rng = self.rng();
                engine.create_circle(name, parent, &mut *rng, self.now())?
            };
            commit(&mut engine, writes).await?;
            circle
        };
        self.flush_quietly().await;
        Ok(circle)
    }

    /// A new invite link for `circle` (facilitators only), valid for
    /// `expires_in`, usable once. Needs the relay (to register the link's
    /// send token).
    pub async fn circle_invite(
        &self,
        circle: CircleId,
        expires_in: Duration,
    ) -> Result<String, Error> {
        let expires_at = self
            .now()
            .saturating_add(u64::try_from(expires_in.as_millis()).unwrap_or(u64::MAX));
        let (invite, writes) = {
            let engine = self.shared.engine.lock().await;
            let mut rng = self.rng();
            engine.new_circle_invite(circle, expires_at, &mut *rng, self.now())?
        };
        self.commit(writes).await?;
        self.own_relay()
            .await?
            .add_send_token(self.shared.mailbox_id, &invite.send_token)
            .await?;
        Ok(invite.to_link())
    }

    /// Asks to join the circle of an invite link. The facilitator's device
    /// answers on its next sync: [`Event::CircleChanged`] when welcomed,
    /// [`Event::CircleJoinRefused`] with the reason otherwise. An expired
    /// link is refused here already ([`Error::InviteExpired`]).
    pub async fn join_circle(&self, link: &str) -> Result<CircleId, Error> {
        let invite: CircleInvite = link.parse()?;
        let is_contact = {
            let engine = self.shared.engine.lock().await;
            engine.check_circle_invite(&invite, self.now())?;
            engine.contact_record(invite.member_id)?.is_some()
        };
        let bundle = if is_contact {
            None
        } else {
            let their_relay = self.relay_at(&invite.relay).await?;
            let fetched = their_relay
                .fetch_prekeys(invite.mailbox_id, &invite.send_token)
                .await
                .map_err(fetch_error)?;
            Some(
                hearth_protocol::wire::decode_prekey_bundle(
                    &fetched.signed_bundle,
                    fetched.one_time_prekey.as_deref(),
                    &fetched.pq_prekey,
                )
                .map_err(|_| Error::InviteKeysMismatch)?,
            )
        };
        let (mut door, mut pair) = ([0u8; 32], [0u8; 32]);
        {
            let mut rng = self.rng();
            rand::Rng::fill_bytes(&mut *rng, &mut door);
            rand::Rng::fill_bytes(&mut *rng, &mut pair);
        }
        let own = self.own_relay().await?;
        own.add_send_token(self.shared.mailbox_id, &door).await?;
        own.add_send_token(self.shared.mailbox_id, &pair).await?;
        {
            let mut engine = self.shared.engine.lock().await;
            let writes = {
                let mut rng = self.rng();
                engine.join_circle(
                    &invite,
                    bundle.as_ref(),
                    &door,
                    &pair,
                    &mut *rng,
                    self.now(),
                )?
            };
            commit(&mut engine, writes).await?;
        }
        self.flush_quietly().await;
        Ok(invite.circle_id)
    }

    /// Every circle this device is in, asked to join, left or was removed
    /// from; oldest first.
    pub async fn circles(&self) -> Result<Vec<Circle>, Error> {
        Ok(self.shared.engine.lock().await.circles()?)
    }

    /// The circle named by `query`: its id, or a name only one circle has.
    pub async fn find_circle(&self, query: &str) -> Result<Circle, Error> {
        self.shared.engine.lock().await.find_circle(query)
    }

    /// Removes `member` (facilitators only): a new epoch, so nothing sent
    /// from now on is readable with any key they held.
    pub async fn remove_member(&self, circle: CircleId, member: MemberId) -> Result<Circle, Error> {
        self.change(circle, RosterChange::Remove(member)).await
    }

    /// Leaves `circle`.
    pub async fn leave_circle(&self, circle: CircleId) -> Result<(), Error> {
        self.change(circle, RosterChange::Leave).await.map(|_| ())
    }

    /// Makes `member` a facilitator or a member (facilitators only; a
    /// circle always keeps one facilitator).
    pub async fn set_role(
        &self,
        circle: CircleId,
        member: MemberId,
        role: Role,
    ) -> Result<Circle, Error> {
        self.change(circle, RosterChange::SetRole(member, role))
            .await
    }

    /// Renames `circle` (facilitators only).
    pub async fn rename_circle(&self, circle: CircleId, name: &str) -> Result<Circle, Error> {
        self.change(circle, RosterChange::Rename(name.to_owned()))
            .await
    }

    /// Sets the rules text of `circle` (facilitators only).
    pub async fn set_circle_rules(&self, circle: CircleId, rules: &str) -> Result<Circle, Error> {
        self.change(circle, RosterChange::Rules(rules.to_owned()))
            .await
    }

    /// **Tests only** (the `test-hooks` feature): behaves like a
    /// compromised member device that signs "remove `member`" without being
    /// a facilitator and sends it to the circle. Correct members refuse it
    /// ([`crate::RejectReason::Forged`]).
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub async fn send_unauthorized_removal(
        &self,
        circle: CircleId,
        member: MemberId,
    ) -> Result<(), Error> {
        {
            let mut engine = self.shared.engine.lock().await;
            let writes = {
                let mut rng = self.rng();
                engine.forge_roster_change(
                    circle,
                    RosterChange::Remove(member),
                    &mut *rng,
                    self.now(),
                )?
            };
            commit(&mut engine, writes).await?;
        }
        self.flush_quietly().await;
        Ok(())
    }

    async fn change(&self, circle: CircleId, change: RosterChange) -> Result<Circle, Error> {
        let (view, events) = {
            let mut engine = self.shared.engine.lock().await;
            let (view, writes, events) = {
                let mut rng = self.rng();
                engine.change_roster(circle, change, &mut *rng, self.now())?
            };
            commit(&mut engine, writes).await?;
            (view, events)
        };
        for event in events {
            self.emit(event);
        }
        self.flush_quietly().await;
        Ok(view)
    }

    /// Posts `content` to `circle`: stored in the feed (queued) before this
    /// returns, then handed to the relay in one multi-recipient send.
    pub async fn post(&self, circle: CircleId, content: Content) -> Result<MessageId, Error> {
        let id = {
            let mut engine = self.shared.engine.lock().await;
            let (id, writes) = {
                let mut rng = self.rng();
                engine.post(circle, &content, &mut *rng, self.now())?
            };
            commit(&mut engine, writes).await?;
            id
        };
        self.flush_quietly().await;
        Ok(id)
    }

    /// **Tests only** (the `test-hooks` feature): behaves like a
    /// compromised or buggy member device that posts `text` with a signature
    /// that does not verify. Correct members refuse it
    /// ([`crate::RejectReason::BadSignature`]).
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub async fn post_with_bad_signature(
        &self,
        circle: CircleId,
        text: &str,
    ) -> Result<MessageId, Error> {
        let id = {
            let mut engine = self.shared.engine.lock().await;
            let (id, writes) = {
                let mut rng = self.rng();
                let content = Content::Text(text.to_owned());
                engine.post_badly_signed(circle, &content, &mut *rng, self.now())?
            };
            commit(&mut engine, writes).await?;
            id
        };
        self.flush_quietly().await;
        Ok(id)
    }

    /// Tells the circle that this device read `ids` (other members' posts).
    /// Their authors see it in [`Client::read_by`].
    pub async fn mark_read(&self, circle: CircleId, ids: &[MessageId]) -> Result<(), Error> {
        {
            let mut engine = self.shared.engine.lock().await;
            let writes = {
                let mut rng = self.rng();
                engine.mark_read(circle, ids, &mut *rng, self.now())?
            };
            commit(&mut engine, writes).await?;
        }
        self.flush_quietly().await;
        Ok(())
    }

    /// The members who said they read post `id` of `circle`.
    pub async fn read_by(&self, circle: CircleId, id: MessageId) -> Result<Vec<MemberId>, Error> {
        self.shared.engine.lock().await.read_by(circle, id)
    }

    /// The circle's history, oldest first.
    pub async fn feed(&self, circle: CircleId) -> Result<Vec<CircleMessage>, Error> {
        self.shared.engine.lock().await.feed(circle)
    }

    /// Goals due or overdue for a check-in in every active circle, now.
    pub async fn due(&self) -> Result<Vec<(CircleId, GoalView)>, Error> {
        self.due_at(self.now()).await
    }

    /// Goals due or overdue for a check-in in every active circle, as of
    /// `now_ms` (ms since the Unix epoch).
    pub async fn due_at(&self, now_ms: u64) -> Result<Vec<(CircleId, GoalView)>, Error> {
        let engine = self.shared.engine.lock().await;
        let mut due = Vec::new();
        for circle in engine.circles()? {
            if circle.state != crate::circles::CircleState::Active {
                continue;
            }
            let messages = engine.feed(circle.id)?;
            for goal in feed::goals(&messages, now_ms) {
                if matches!(goal.status, DueStatus::Due | DueStatus::Overdue) {
                    due.push((circle.id, goal));
                }
            }
        }
        Ok(due)
    }
}

/// So the app can tell a circle event from others without matching.
impl Event {
    /// The circle this event is about, if any.
    pub fn circle(&self) -> Option<CircleId> {
        match self {
            Event::CircleMessage(message) => Some(message.circle),
            Event::CircleChanged(circle) => Some(circle.id),
            Event::CircleJoinRefused { circle, .. } => Some(*circle),
            _ => None,
        }
    }
}
