//! A circle's feed and what an app shows from it: gatherings with their
//! RSVPs, goals with their progress and who is due for a check-in, and
//! reactions.
//!
//! The views are pure functions of the feed (oldest first, as
//! `Client::feed` returns it) and, for goals, of the time: the app calls
//! them again whenever the feed grows or the clock moves on.
//!
//! **Latest wins.** A member's RSVP to a gathering, and a member's reaction
//! to a message, replace that member's earlier ones: the one with the
//! largest `sent_at_ms` counts; between equal times, the later one in the
//! feed. An empty reaction removes the member's reaction.
//!
//! **Due rule.** Only the goal's owner (the member who set it) makes
//! progress; progress anyone else sends about it is ignored.
//!
//! - A goal is [`DueStatus::Done`] as soon as its owner sent progress with
//!   `done` set; nothing is due after that.
//! - A recurring goal has a period: 24 hours for [`Cadence::Daily`], 7 days
//!   for [`Cadence::Weekly`]. Its anchor is the time of the owner's latest
//!   progress (the largest `sent_at_ms`), or the goal's own `sent_at_ms`
//!   when there is none, and `next_due = anchor + period`. It is
//!   [`DueStatus::OnTrack`] while `now < next_due`, [`DueStatus::Due`]
//!   while `next_due ≤ now < next_due + period`, and [`DueStatus::Overdue`]
//!   from `next_due + period` on.
//! - A [`Cadence::Once`] goal with a due date is [`DueStatus::OnTrack`]
//!   while `now < due_at` and [`DueStatus::Overdue`] from `due_at` on
//!   (progress without `done` does not change that). Without a due date
//!   it stays [`DueStatus::OnTrack`]: nothing is ever due.
//!
//! [`GoalView::next_due_at_ms`] is `next_due` for a recurring goal, the due
//! date for a one-off goal, and `None` when the goal is done or has no due
//! date.
//!
//! [`Cadence::Daily`]: crate::Cadence::Daily
//! [`Cadence::Weekly`]: crate::Cadence::Weekly
//! [`Cadence::Once`]: crate::Cadence::Once

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::collections::hash_map::{Entry, HashMap};
use std::fmt;
use std::hash::Hash;

use super::CircleId;
use crate::content::{Content, Gathering, Goal, RsvpAnswer};
use crate::ids::{MemberId, MessageId};
use crate::messages::Direction;

/// One message of a circle's feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CircleMessage {
    /// The message id (the sender's).
    pub id: MessageId,
    /// The circle it was sent to.
    pub circle: CircleId,
    /// Who sent it (our own id for messages we sent).
    pub sender: MemberId,
    /// The sender's display name, as the roster knows it.
    pub sender_name: String,
    /// Whether we sent or received it.
    pub direction: Direction,
    /// When the sender wrote it (milliseconds since the Unix epoch, the
    /// sender's clock).
    pub sent_at_ms: u64,
    /// When this device stored it.
    pub stored_at_ms: u64,
    /// What it says.
    pub content: Content,
    /// A support request, as seen by a facilitator of the circle: show it
    /// urgently.
    pub urgent: bool,
}

/// A proposed gathering and the answers to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatheringView {
    /// The id of the message that proposed it (RSVPs refer to it).
    pub id: MessageId,
    /// Who proposed it.
    pub proposer: MemberId,
    /// The proposal.
    pub gathering: Gathering,
    /// Each member's latest answer, in the order the members first
    /// answered.
    pub rsvps: Vec<(MemberId, RsvpAnswer)>,
}

/// A goal, its owner's progress and whether a check-in is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoalView {
    /// The id of the message that set it (progress refers to it).
    pub id: MessageId,
    /// Who set it: the only member whose progress counts.
    pub owner: MemberId,
    /// The owner's display name.
    pub owner_name: String,
    /// The goal.
    pub goal: Goal,
    /// The owner's progress, oldest first (by `sent_at_ms`, then feed
    /// order).
    pub progress: Vec<ProgressEntry>,
    /// The owner reported it reached.
    pub done: bool,
    /// Where it stands now (see the [module docs](self)).
    pub status: DueStatus,
    /// When the next check-in is due (see the [module docs](self)).
    pub next_due_at_ms: Option<u64>,
}

/// One progress report of a goal's owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgressEntry {
    /// The id of the message that carried it.
    pub id: MessageId,
    /// When the owner sent it (the owner's clock).
    pub at_ms: u64,
    /// What the owner said.
    pub note: String,
    /// The owner reported the goal reached.
    pub done: bool,
}

/// Whether a goal's owner owes the circle a check-in (the rule is in the
/// [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DueStatus {
    /// Nothing is due yet.
    OnTrack,
    /// A check-in is due.
    Due,
    /// A check-in (or the goal) is late.
    Overdue,
    /// The owner reached the goal.
    Done,
}

impl DueStatus {
    /// `on-track`, `due`, `overdue` or `done`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnTrack => "on-track",
            Self::Due => "due",
            Self::Overdue => "overdue",
            Self::Done => "done",
        }
    }
}

impl fmt::Display for DueStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The gatherings proposed in `feed`, in feed order, each with every
/// member's latest RSVP. RSVPs to gatherings not in the feed are left out.
pub fn gatherings(feed: &[CircleMessage]) -> Vec<GatheringView> {
    let mut views = Vec::new();
    let mut index = HashMap::new();
    for message in feed {
        if let Content::Gathering(gathering) = &message.content
            && let Entry::Vacant(entry) = index.entry(message.id)
        {
            entry.insert(views.len());
            views.push(GatheringView {
                id: message.id,
                proposer: message.sender,
                gathering: gathering.clone(),
                rsvps: Vec::new(),
            });
        }
    }
    let answers = latest(feed.iter().filter_map(|message| match &message.content {
        Content::Rsvp(rsvp) => Some((
            (rsvp.gathering, message.sender),
            message.sent_at_ms,
            rsvp.answer,
        )),
        _ => None,
    }));
    for ((gathering, member), answer) in answers {
        if let Some(view) = index.get(&gathering).and_then(|&i| views.get_mut(i)) {
            view.rsvps.push((member, answer));
        }
    }
    views
}

/// The goals set in `feed`, in feed order, each with its owner's progress
/// and its status at `now_ms` (the rule is in the [module docs](self)).
pub fn goals(feed: &[CircleMessage], now_ms: u64) -> Vec<GoalView> {
    let mut goals = Vec::new();
    let mut index = HashMap::new();
    for message in feed {
        if let Content::Goal(goal) = &message.content
            && let Entry::Vacant(entry) = index.entry(message.id)
        {
            entry.insert(goals.len());
            goals.push((message, goal, Vec::new()));
        }
    }
    for message in feed {
        let Content::GoalProgress(progress) = &message.content else {
            continue;
        };
        let Some((set, _, entries)) = index.get(&progress.goal).and_then(|&i| goals.get_mut(i))
        else {
            continue;
        };
        if message.sender == set.sender {
            entries.push(ProgressEntry {
                id: message.id,
                at_ms: message.sent_at_ms,
                note: progress.note.clone(),
                done: progress.done,
            });
        }
    }
    goals
        .into_iter()
        .map(|(set, goal, mut progress)| {
            progress.sort_by_key(|entry| entry.at_ms);
            let done = progress.iter().any(|entry| entry.done);
            let anchor = progress.last().map_or(set.sent_at_ms, |entry| entry.at_ms);
            let (status, next_due_at_ms) = due_status(goal, anchor, done, now_ms);
            GoalView {
                id: set.id,
                owner: set.sender,
                owner_name: set.sender_name.clone(),
                goal: goal.clone(),
                progress,
                done,
                status,
                next_due_at_ms,
            }
        })
        .collect()
}

/// The due rule of the module docs: status and next due time.
fn due_status(goal: &Goal, anchor_ms: u64, done: bool, now_ms: u64) -> (DueStatus, Option<u64>) {
    if done {
        return (DueStatus::Done, None);
    }
    match (goal.cadence.period_ms(), goal.due_at_ms) {
        (Some(period), _) => {
            let next_due = anchor_ms.saturating_add(period);
            let status = if now_ms < next_due {
                DueStatus::OnTrack
            } else if now_ms < next_due.saturating_add(period) {
                DueStatus::Due
            } else {
                DueStatus::Overdue
            };
            (status, Some(next_due))
        }
        (None, Some(due_at)) if now_ms < due_at => (DueStatus::OnTrack, Some(due_at)),
        (None, Some(due_at)) => (DueStatus::Overdue, Some(due_at)),
        (None, None) => (DueStatus::OnTrack, None),
    }
}

/// Every member's latest reaction to each message, by target id; in the
/// order the members first reacted. Removed reactions (empty emoji) and
/// targets left without reactions are left out. Targets need not be in
/// the feed (they may be older than the history kept).
pub fn reactions(feed: &[CircleMessage]) -> BTreeMap<MessageId, Vec<(MemberId, String)>> {
    let latest = latest(feed.iter().filter_map(|message| match &message.content {
        Content::Reaction(reaction) => Some((
            (reaction.target, message.sender),
            message.sent_at_ms,
            &reaction.emoji,
        )),
        _ => None,
    }));
    let mut reactions: BTreeMap<MessageId, Vec<(MemberId, String)>> = BTreeMap::new();
    for ((target, member), emoji) in latest {
        if !emoji.is_empty() {
            reactions
                .entry(target)
                .or_default()
                .push((member, emoji.clone()));
        }
    }
    reactions
}

/// Per key, the value of the latest item (largest time; on a tie, the
/// later item), in the order the keys first appeared.
fn latest<K: Copy + Eq + Hash, V>(items: impl IntoIterator<Item = (K, u64, V)>) -> Vec<(K, V)> {
    let mut order = Vec::new();
    let mut latest: HashMap<K, (u64, V)> = HashMap::new();
    for (key, at_ms, value) in items {
        match latest.entry(key) {
            Entry::Occupied(mut entry) => {
                if at_ms >= entry.get().0 {
                    entry.insert((at_ms, value));
                }
            }
            Entry::Vacant(entry) => {
                order.push(key);
                entry.insert((at_ms, value));
            }
        }
    }
    order
        .into_iter()
        .filter_map(|key| latest.remove(&key).map(|(_, value)| (key, value)))
        .collect()
}

/// For the fuzz target `fuzz/fuzz_targets/content.rs`: decodes untrusted
/// content bytes as a received message is decoded. Returns `false` only on
/// a bug: content that decodes but does not encode back to itself. Only
/// with the `test-hooks` feature.
#[cfg(any(test, feature = "test-hooks"))]
#[doc(hidden)]
pub fn fuzz_content_decode(bytes: &[u8]) -> bool {
    crate::content::decodes_consistently(bytes)
}
