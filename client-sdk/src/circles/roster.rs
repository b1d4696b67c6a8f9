//! A circle's roster: a chain of signed versions, and which one is current.
//!
//! Every version lists the circle's members (both identity keys of each
//! device, a display name, a role and the version that added it), the
//! circle's name and rules, its epoch and, for a sub-circle, the parent
//! circle. It is signed with Ed25519 by the `IK_sig` of the device that made
//! it.
//!
//! # Layout
//!
//! A version is a fixed byte layout (never protobuf). Integers are
//! big-endian, strings are UTF-8 with a `u16` length prefix, `Encode(k)` is
//! the type byte and the raw key (DESIGN.md §5):
//!
//! ```text
//! layout = "Hearth_v1_Roster" ‖ circle_id (16) ‖ version (u64)
//!        ‖ parent_hash (32; zeros for version 1) ‖ epoch (u64)
//!        ‖ parent_circle flag (u8 0|1) [‖ parent_circle_id (16)]
//!        ‖ name (u16 len ‖ bytes, 1..=64 chars) ‖ rules (u16 len ‖ bytes, ≤ 4,000 bytes)
//!        ‖ member count (u16, 1..=256) ‖ members, sorted by member id, each:
//!             Encode(IK_sig) (33) ‖ Encode(IK_dh) (33) ‖ role (u8: 1 facilitator, 2 member)
//!             ‖ added_in (u64) ‖ display name (u16 len ‖ bytes, ≤ 64 chars)
//!        ‖ Encode(signer IK_sig) (33)
//! signed version = layout ‖ signature (64)            (at most 64 KiB)
//! hash = SHA-256("Hearth_v1_RosterHash" ‖ signed version)
//! ```
//!
//! [`SignedRoster::from_bytes`] checks the size first, then the signature
//! (`verify_strict`, with the signer key found at its fixed place before
//! the signature), and only then parses the fields: a change to any byte is
//! a [`RosterError::BadSignature`], and no input makes it panic.
//!
//! # Which versions are accepted
//!
//! [`RosterChain::add`] accepts a version only as the child of a version it
//! holds (its `parent_hash`), with the next version number, and only when:
//!
//! - **Authority:** the signer is a facilitator of the *parent* version;
//! - **or leaving:** the version differs from its parent only by removing
//!   its signer (and the epoch step below). This is how a member who is not
//!   a facilitator leaves; it may sign no other change. A facilitator leaves
//!   the same way, or together with other changes, since it may sign any.
//! - at least one facilitator remains;
//! - members kept from the parent keep their keys and `added_in`; new
//!   members have `added_in` equal to the new version; the parent circle
//!   never changes;
//! - the epoch stays the same, except that it grows by exactly one when
//!   any member of the parent is missing (removed or left), because the
//!   remaining members then start new sender keys.
//!
//! # Fork choice
//!
//! Two facilitators may each sign a child of the same version before seeing
//! the other's. The versions then form a tree rooted at the chain's trusted
//! base (the genesis we made, or the oldest version a facilitator welcomed
//! us with). The current version, the **head**, is found by starting at the
//! base and, at every fork, following the branch [`fork`] picks. The
//! choice depends only on which versions are known, never on the order
//! they arrived in, so every member that holds the same versions agrees on
//! the head. What it guarantees (DESIGN.md §5):
//!
//! - **No rollback of lost authority.** A branch that removes someone, or
//!   demotes a facilitator, beats every branch they signed with the
//!   membership or role they lost there. Someone demoted or removed gains
//!   nothing by signing children of older versions, however many.
//! - **Mutual conflicts** (two facilitators removing or demoting each other
//!   at once) go to the branch with the **most senior signer**: the
//!   facilitator added in the earlier version (the circle's creator first).
//! - **Removals win** over concurrent changes that remove nobody; a
//!   facilitator's change over a member's own leave; then the senior signer;
//!   then a hash of the fork point and the signer's key. No field a signer
//!   fills in (rules text, a signature) steers the choice.
//! - **Nothing is lost for good.** A facilitator whose change lost a fork
//!   makes it again on the new head (the engine does this on its own), and
//!   until then every member treats a removal that lost as still pending
//!   ([`RosterChain::pending_removals`]): no new key goes to that person.
//!
//! A chain keeps the winning path's last 64 versions and up to 32 versions
//! off it (branches that lose now but could still win when more versions
//! arrive). Versions it lets go are remembered by hash (the last 256), to
//! recognise them and their descendants ([`RosterError::Abandoned`]). A
//! version too old to attach to what is kept is [`RosterError::Stale`].

mod chain;
pub mod fork;
mod layout;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use ed25519_dalek::Signer as _;
use hearth_protocol::keys::{
    Ed25519PublicKey, IdentityKeyPair, PublicIdentity, Signature, X25519PublicKey,
};
use sha2::{Digest as _, Sha256};

pub use chain::{Added, RosterChain};
pub use fork::{FORK_TIE_LABEL, SENIORITY_LABEL};

use super::{CircleId, Role};
use crate::ids::MemberId;

/// The first bytes of every roster layout.
pub const ROSTER_LABEL: &[u8] = b"Hearth_v1_Roster";

/// Domain separation prefix of a roster version's hash.
pub const ROSTER_HASH_LABEL: &[u8] = b"Hearth_v1_RosterHash";

/// Largest signed version accepted or produced, in bytes.
pub const MAX_SIGNED_LEN: usize = 64 * 1024;

/// Most characters in a circle name (at least one is required).
pub const MAX_NAME_CHARS: usize = 64;

/// Most bytes of UTF-8 in a circle's rules.
pub const MAX_RULES_BYTES: usize = 4_000;

/// Most characters in a member's display name.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;

/// Most members in one version (at least one is required).
pub const MAX_MEMBERS: usize = 256;

/// Why a roster version was not signed, parsed or accepted.
///
/// Messages name the rule that failed and never include names, rules or
/// keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RosterError {
    /// The input (or the version to sign) is larger than allowed.
    #[error("roster data is too large ({len} bytes, limit {limit})")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The input ends before the layout does.
    #[error("roster data is truncated")]
    Truncated,
    /// The bytes are not a roster layout (label, flag, role or key type
    /// byte, UTF-8, trailing bytes...).
    #[error("malformed roster: {0}")]
    Malformed(&'static str),
    /// A field is out of range: an empty or too long name, too long rules
    /// or display name, a member count outside 1..=256, version 0, a
    /// genesis with a parent (or a later version without one), an
    /// `added_in` after the version.
    #[error("invalid roster field: {0}")]
    Invalid(&'static str),
    /// Members are not unique and sorted by member id.
    #[error("roster members are not unique and sorted by member id")]
    MemberOrder,
    /// The signature does not verify (`verify_strict`) under the signer
    /// key the version names; any changed byte ends up here.
    #[error("roster signature does not verify")]
    BadSignature,
    /// The version belongs to another circle.
    #[error("roster version belongs to another circle")]
    WrongCircle,
    /// The parent version is not known yet: hold the version and add it
    /// again after the parent arrived.
    #[error("roster version's parent is not known yet")]
    UnknownParent,
    /// The version can never attach: its parent is older than the history
    /// the chain keeps, or not on the path from the chain's base.
    #[error("roster version is older than the kept history")]
    Stale,
    /// The version descends from a version that lost the fork choice, so
    /// it can never become the head.
    #[error("roster version extends a branch that lost the fork choice")]
    Abandoned,
    /// The version number is not its parent's plus one.
    #[error("roster version {version} does not follow its parent version {parent}")]
    VersionGap {
        /// The parent's version number.
        parent: u64,
        /// This version's number.
        version: u64,
    },
    /// The signer is not a facilitator of the parent version, and the
    /// version does more than remove its signer.
    #[error("roster version is not signed by a facilitator of the previous version")]
    NotAuthorized,
    /// No member of the version is a facilitator.
    #[error("roster version has no facilitator")]
    NoFacilitator,
    /// The version changes which circle this one is a sub-circle of.
    #[error("roster version changes the parent circle")]
    ParentCircleChanged,
    /// A member kept from the parent version has other keys or another
    /// `added_in`.
    #[error("roster version changes the keys or added_in of a kept member")]
    KeptMemberChanged,
    /// A member new in this version has an `added_in` other than this
    /// version.
    #[error("roster version adds a member with the wrong added_in")]
    NewMemberAddedIn,
    /// The epoch is not the parent's (no one missing) or the parent's plus
    /// one (someone removed or left).
    #[error("roster version has epoch {found}, expected {expected}")]
    WrongEpoch {
        /// The epoch the rules require.
        expected: u64,
        /// The epoch the version carries.
        found: u64,
    },
}

/// The public identity keys of a member device, as a roster lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicIdentityKeys {
    /// `IK_sig` (Ed25519); the member id is derived from it.
    pub sig_key: Ed25519PublicKey,
    /// `IK_dh` (X25519).
    pub dh_key: X25519PublicKey,
}

impl From<&PublicIdentity> for PublicIdentityKeys {
    fn from(identity: &PublicIdentity) -> Self {
        Self {
            sig_key: identity.sig_key,
            dh_key: identity.dh_key,
        }
    }
}

/// One member device of a roster version.
#[derive(Clone, PartialEq, Eq)]
pub struct RosterMember {
    /// Its identity keys.
    pub identity: PublicIdentityKeys,
    /// The name it is shown with (at most 64 characters, may be empty).
    pub display_name: String,
    /// What it may do.
    pub role: Role,
    /// The version that added it.
    pub added_in: u64,
}

impl RosterMember {
    /// Its member id (derived from `IK_sig`).
    pub fn member_id(&self) -> MemberId {
        MemberId::of(&self.identity.sig_key)
    }
}

impl fmt::Debug for RosterMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RosterMember")
            .field("member_id", &self.member_id())
            .field("display_name", &"<redacted>")
            .field("role", &self.role)
            .field("added_in", &self.added_in)
            .finish()
    }
}

/// The content of one roster version (see the [module docs](self)).
///
/// Edit a copy made with [`SignedRoster::next`] (or [`Roster::next`]) and
/// [`sign`](Roster::sign) it; signing puts the members in order.
#[derive(Clone, PartialEq, Eq)]
pub struct Roster {
    /// The circle.
    pub circle_id: CircleId,
    /// 1 for the genesis, then one more per version.
    pub version: u64,
    /// The hash of the parent version; zeros for version 1.
    pub parent: [u8; 32],
    /// The sender-key epoch; grows by one whenever someone is removed or
    /// leaves.
    pub epoch: u64,
    /// The circle this one is a sub-circle of.
    pub parent_circle: Option<CircleId>,
    /// The circle's name (1..=64 characters).
    pub name: String,
    /// The circle's rules (at most 4,000 bytes, may be empty).
    pub rules: String,
    /// The members (1..=256), sorted by member id once signed.
    pub members: Vec<RosterMember>,
}

impl Roster {
    /// Version 1 of a new circle: epoch 1, no rules, the creator as its only
    /// member and facilitator.
    pub fn genesis(
        circle_id: CircleId,
        name: &str,
        creator: PublicIdentityKeys,
        creator_name: &str,
        parent_circle: Option<CircleId>,
    ) -> Self {
        Self {
            circle_id,
            version: 1,
            parent: [0; 32],
            epoch: 1,
            parent_circle,
            name: name.to_owned(),
            rules: String::new(),
            members: vec![RosterMember {
                identity: creator,
                display_name: creator_name.to_owned(),
                role: Role::Facilitator,
                added_in: 1,
            }],
        }
    }

    /// The member with id `id`.
    pub fn member(&self, id: MemberId) -> Option<&RosterMember> {
        self.members.iter().find(|m| m.member_id() == id)
    }

    /// Whether `id` is a facilitator of this version.
    pub fn is_facilitator(&self, id: MemberId) -> bool {
        self.member(id).is_some_and(|m| m.role == Role::Facilitator)
    }

    /// A copy to edit into the child of the version whose hash is
    /// `parent_hash`: the next version number, `parent` set, everything else
    /// the same. Whoever removes a member must also set
    /// `epoch = self.epoch + 1`; a member added gets `added_in` = the new
    /// version.
    pub fn next(&self, parent_hash: [u8; 32]) -> Self {
        Self {
            version: self.version.saturating_add(1),
            parent: parent_hash,
            ..self.clone()
        }
    }

    /// Signs this version with `identity`'s `IK_sig`, after putting the
    /// members in order and checking every field (not the chain rules:
    /// [`RosterChain::add`] checks those).
    pub fn sign(&self, identity: &IdentityKeyPair) -> Result<SignedRoster, RosterError> {
        let mut roster = self.clone();
        roster.members.sort_by_cached_key(RosterMember::member_id);
        layout::validate(&roster)?;
        let signer = identity.public().sig_key;
        let bytes = sign_layout(layout::encode(&roster, &signer), identity);
        if bytes.len() > MAX_SIGNED_LEN {
            return Err(RosterError::TooLarge {
                len: bytes.len(),
                limit: MAX_SIGNED_LEN,
            });
        }
        Ok(SignedRoster::assemble(roster, signer, bytes))
    }
}

impl fmt::Debug for Roster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Roster")
            .field("circle_id", &self.circle_id)
            .field("version", &self.version)
            .field("parent", &HashPrefix(&self.parent))
            .field("epoch", &self.epoch)
            .field("parent_circle", &self.parent_circle)
            .field("name", &"<redacted>")
            .field("rules", &"<redacted>")
            .field("members", &self.members)
            .finish()
    }
}

/// A roster version with a valid signature, and its hash.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedRoster {
    roster: Roster,
    signer: Ed25519PublicKey,
    bytes: Vec<u8>,
    hash: [u8; 32],
}

impl SignedRoster {
    /// Reads a signed version: checks the size, then the signature, then
    /// every field. Never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RosterError> {
        if bytes.len() > MAX_SIGNED_LEN {
            return Err(RosterError::TooLarge {
                len: bytes.len(),
                limit: MAX_SIGNED_LEN,
            });
        }
        let (layout, signer) = layout::verify(bytes)?;
        let roster = layout::parse(layout, &signer)?;
        Ok(Self::assemble(roster, signer, bytes.to_vec()))
    }

    /// Reads a version this device verified before and kept in its
    /// encrypted store (which authenticates every value): the layout is
    /// parsed and checked like [`Self::from_bytes`] does, the signature is
    /// not verified again.
    pub(super) fn from_stored(bytes: &[u8]) -> Result<Self, RosterError> {
        if bytes.len() > MAX_SIGNED_LEN {
            return Err(RosterError::TooLarge {
                len: bytes.len(),
                limit: MAX_SIGNED_LEN,
            });
        }
        let (layout, signer, _) = layout::split(bytes)?;
        let roster = layout::parse(layout, &signer)?;
        Ok(Self::assemble(roster, signer, bytes.to_vec()))
    }

    fn assemble(roster: Roster, signer: Ed25519PublicKey, bytes: Vec<u8>) -> Self {
        let hash = Sha256::new()
            .chain_update(ROSTER_HASH_LABEL)
            .chain_update(&bytes)
            .finalize()
            .into();
        Self {
            roster,
            signer,
            bytes,
            hash,
        }
    }

    /// The signed content.
    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// The member id of the device that signed it.
    pub fn signer(&self) -> MemberId {
        MemberId::of(&self.signer)
    }

    /// The `IK_sig` that signed it.
    pub fn signer_key(&self) -> &Ed25519PublicKey {
        &self.signer
    }

    /// `SHA-256("Hearth_v1_RosterHash" ‖ signed version)`.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// The signed version's bytes (layout ‖ signature).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// A copy of the content to edit into this version's child (see
    /// [`Roster::next`]).
    pub fn next(&self) -> Roster {
        self.roster.next(self.hash)
    }
}

impl fmt::Debug for SignedRoster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedRoster")
            .field("hash", &HashPrefix(&self.hash))
            .field("signer", &self.signer())
            .field("roster", &self.roster)
            .finish()
    }
}

/// `layout ‖ Ed25519(IK_sig, layout)`.
fn sign_layout(mut layout: Vec<u8>, identity: &IdentityKeyPair) -> Vec<u8> {
    let signing = ed25519_dalek::SigningKey::from_bytes(identity.expose_sig_seed());
    let signature = Signature::from_bytes(signing.sign(&layout).to_bytes());
    layout.extend_from_slice(signature.as_bytes());
    layout
}

/// What changed from one roster version to another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RosterDiff {
    /// Members in the new version only, by member id. A member removed and
    /// added again in between (another `added_in`) is listed here and in
    /// `removed`.
    pub added: Vec<MemberId>,
    /// Members in the old version only, by member id.
    pub removed: Vec<MemberId>,
    /// Members in both whose role changed, with their new role.
    pub role_changes: Vec<(MemberId, Role)>,
    /// The name changed.
    pub renamed: bool,
    /// The rules changed.
    pub rules_changed: bool,
}

impl RosterDiff {
    /// Whether nothing a member would notice changed.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What changed from `old` to `new` (any two versions, usually the old and
/// the new head).
pub fn diff(old: &Roster, new: &Roster) -> RosterDiff {
    let old_members = by_id(old);
    let new_members = by_id(new);
    let same = |a: &RosterMember, b: &RosterMember| a.added_in == b.added_in;
    let mut diff = RosterDiff {
        renamed: old.name != new.name,
        rules_changed: old.rules != new.rules,
        ..RosterDiff::default()
    };
    for (id, member) in &new_members {
        match old_members.get(id) {
            Some(before) if same(before, member) => {
                if before.role != member.role {
                    diff.role_changes.push((*id, member.role));
                }
            }
            _ => diff.added.push(*id),
        }
    }
    for (id, member) in &old_members {
        if !new_members.get(id).is_some_and(|after| same(member, after)) {
            diff.removed.push(*id);
        }
    }
    diff
}

/// The members of `roster` by member id.
fn by_id(roster: &Roster) -> BTreeMap<MemberId, &RosterMember> {
    roster.members.iter().map(|m| (m.member_id(), m)).collect()
}

/// Prints the first bytes of a hash.
struct HashPrefix<'a>(&'a [u8; 32]);

impl fmt::Debug for HashPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0[..6] {
            write!(f, "{byte:02x}")?;
        }
        f.write_str("…")
    }
}
