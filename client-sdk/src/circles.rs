//! Circles: a therapy group or a smaller circle its members form.
//!
//! A circle has a **roster** (members, their devices, roles, name, rules
//! and an epoch), kept as a chain of versions each signed by a facilitator
//! of the version before ([`roster`]). Members talk to the whole circle
//! with **sender keys** (DESIGN.md §5): each member device has one chain
//! per (circle, epoch), handed to every other member over their pairwise
//! session; a circle message is encrypted and signed once, sealed once, and
//! fanned out by one multi-recipient send to the relay, which stores one
//! body for all recipients.
//!
//! What the relay learns: that one body went to a set of mailboxes. It
//! never sees a circle id, a name, a roster, a role or who sent anything:
//! all of that travels inside the encryption.
//!
//! [`feed`] turns a circle's history into what an app shows: gatherings
//! with their RSVPs, goals with progress and who is due for a check-in.

pub mod feed;
pub mod roster;

use std::fmt;
use std::str::FromStr;

use crate::ids::{MemberId, base32_decode, base32_encode};

/// Length of a circle id in bytes.
pub const CIRCLE_ID_LEN: usize = 16;

/// A circle's id: 16 random bytes chosen by its creator, printed as 26
/// characters of lowercase base32 (like a member id). Only members see it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CircleId([u8; CIRCLE_ID_LEN]);

impl CircleId {
    /// Draws a fresh id.
    pub fn random<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut id = [0u8; CIRCLE_ID_LEN];
        rng.fill_bytes(&mut id);
        Self(id)
    }

    /// Wraps raw bytes.
    pub const fn from_bytes(bytes: [u8; CIRCLE_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; CIRCLE_ID_LEN] {
        &self.0
    }

    /// Reads raw bytes of the right length.
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }
}

impl fmt::Display for CircleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base32_encode(&self.0))
    }
}

impl fmt::Debug for CircleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CircleId({self})")
    }
}

/// A string that is not a circle id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a circle id (26 base32 characters expected)")]
pub struct InvalidCircleId;

impl FromStr for CircleId {
    type Err = InvalidCircleId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = base32_decode(text.trim()).ok_or(InvalidCircleId)?;
        Self::from_slice(&bytes).ok_or(InvalidCircleId)
    }
}

/// What a member may do in a circle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Adds and removes members, changes roles, name and rules, accepts
    /// invites; sees support requests as urgent.
    Facilitator,
    /// Takes part.
    Member,
}

impl Role {
    /// `facilitator` or `member`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Facilitator => "facilitator",
            Self::Member => "member",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A circle as the app shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Circle {
    /// Its id.
    pub id: CircleId,
    /// Its name.
    pub name: String,
    /// Its rules text (may be empty).
    pub rules: String,
    /// Where this device stands in it.
    pub state: CircleState,
    /// This device's role (`None` while joining or after leaving).
    pub my_role: Option<Role>,
    /// Its members (this device included), facilitators first, then by name.
    pub members: Vec<CircleMember>,
    /// The epoch: it moves on whenever someone leaves or is removed.
    pub epoch: u64,
    /// The roster version.
    pub version: u64,
    /// The circle this one was formed from, for a sub-circle.
    pub parent: Option<CircleId>,
}

/// Where this device stands in a circle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CircleState {
    /// Asked to join; a facilitator has not answered yet.
    Joining,
    /// A member.
    Active,
    /// Left the circle.
    Left,
    /// A facilitator removed this device.
    Removed,
}

impl CircleState {
    /// `joining`, `active`, `left` or `removed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Joining => "joining",
            Self::Active => "active",
            Self::Left => "left",
            Self::Removed => "removed",
        }
    }
}

/// One member of a circle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CircleMember {
    /// Their member id.
    pub member_id: MemberId,
    /// The name they gave themselves.
    pub display_name: String,
    /// Their role.
    pub role: Role,
    /// Whether this is this device.
    pub is_me: bool,
}

/// Why a facilitator refused a join request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JoinRefusal {
    /// The invite link expired.
    Expired,
    /// Someone already joined with this link (links work once).
    AlreadyUsed,
    /// The facilitator does not know the link (revoked or never issued).
    UnknownInvite,
    /// The inviter no longer facilitates the circle.
    NotAFacilitator,
}

impl fmt::Display for JoinRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Expired => "the invite link expired",
            Self::AlreadyUsed => "the invite link was already used",
            Self::UnknownInvite => "the facilitator does not know this invite link",
            Self::NotAFacilitator => "the inviter no longer facilitates this circle",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circle_id_prints_and_parses_back() {
        let id = CircleId::from_bytes([9; 16]);
        let text = id.to_string();
        assert_eq!(text.len(), 26);
        assert_eq!(text.parse::<CircleId>(), Ok(id));
        assert_eq!("nope".parse::<CircleId>(), Err(InvalidCircleId));
        assert_eq!(Role::Facilitator.to_string(), "facilitator");
    }
}
