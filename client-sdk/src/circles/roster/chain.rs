//! The versions of one circle's roster a member knows, and the head the
//! fork-choice rule picks (see the module docs of [`roster`](super)).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use super::{HashPrefix, MAX_SIGNED_LEN, Roster, RosterError, RosterMember, SignedRoster};
use crate::circles::Role;
use crate::ids::MemberId;

/// Most versions kept on the winning path (the base included).
pub(super) const MAX_PATH: usize = 64;

/// Most hashes of losing versions remembered.
pub(super) const MAX_ABANDONED: usize = 256;

/// First byte of [`RosterChain::to_bytes`].
const CHAIN_FORMAT: u8 = 1;

/// Largest [`RosterChain::to_bytes`]: format, path count, each version with
/// a `u32` length, the count of abandoned hashes and the hashes.
pub(super) const MAX_CHAIN_LEN: usize =
    1 + 1 + MAX_PATH * (4 + MAX_SIGNED_LEN) + 2 + MAX_ABANDONED * 32;

/// What [`RosterChain::add`] did with a valid version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// The chain already had it (or had it and let it go as a loser).
    Duplicate,
    /// Valid, but it lost the fork choice: the head did not change.
    Stored,
    /// It is the new head (a child of the old head, or the winner of a fork
    /// on the path to it).
    NewHead,
}

/// The roster versions of one circle a member knows: the winning path from
/// a trusted base to the head, chosen by the fork-choice rule.
#[derive(Clone, PartialEq, Eq)]
pub struct RosterChain {
    /// The winning path before the head, base first.
    path: Vec<SignedRoster>,
    head: SignedRoster,
    /// Hashes of versions that lost a fork or descend from one, oldest
    /// first.
    abandoned: VecDeque<[u8; 32]>,
}

impl RosterChain {
    /// A chain that trusts `base` as it is: the genesis this device made,
    /// or the version a facilitator welcomed it with.
    pub fn new(base: SignedRoster) -> Self {
        Self {
            path: Vec::new(),
            head: base,
            abandoned: VecDeque::new(),
        }
    }

    /// The current version.
    pub fn head(&self) -> &SignedRoster {
        &self.head
    }

    /// The current version's content.
    pub fn head_roster(&self) -> &Roster {
        self.head.roster()
    }

    /// Whether the version with this hash is on the kept winning path.
    pub fn contains(&self, hash: &[u8; 32]) -> bool {
        self.versions().any(|v| v.hash() == *hash)
    }

    /// Adds a version received from a member, if every rule of the
    /// [module docs](super) holds, and moves the head by the fork-choice
    /// rule.
    ///
    /// [`RosterError::UnknownParent`] means "try again once more versions
    /// arrived"; every other error means the version can be dropped.
    pub fn add(&mut self, version: SignedRoster) -> Result<Added, RosterError> {
        let roster = version.roster();
        if roster.circle_id != self.head.roster().circle_id {
            return Err(RosterError::WrongCircle);
        }
        let hash = version.hash();
        if self.contains(&hash) || self.abandoned.contains(&hash) {
            return Ok(Added::Duplicate);
        }
        if self.abandoned.contains(&roster.parent) {
            self.abandon(hash);
            return Err(RosterError::Abandoned);
        }
        let Some(index) = self.versions().position(|v| v.hash() == roster.parent) else {
            let base = self
                .versions()
                .next()
                .unwrap_or(&self.head)
                .roster()
                .version;
            return Err(if roster.version <= base.saturating_add(1) {
                RosterError::Stale
            } else {
                RosterError::UnknownParent
            });
        };
        let parent = self.path.get(index).unwrap_or(&self.head);
        check_child(parent, &version)?;
        Ok(self.attach(index, version))
    }

    /// Puts a valid child of the path's `index`-th version where the fork
    /// choice says.
    fn attach(&mut self, index: usize, version: SignedRoster) -> Added {
        let hash = version.hash();
        let rival = self.path.get(index + 1).unwrap_or(&self.head).hash();
        if index == self.path.len() {
            let old_head = std::mem::replace(&mut self.head, version);
            self.path.push(old_head);
            let excess = self.path.len().saturating_sub(MAX_PATH - 1);
            self.path.drain(..excess);
            Added::NewHead
        } else if hash < rival {
            let losers: Vec<_> = self.path.drain(index + 1..).collect();
            let old_head = std::mem::replace(&mut self.head, version);
            for loser in losers.iter().chain([&old_head]) {
                self.abandon(loser.hash());
            }
            Added::NewHead
        } else {
            self.abandon(hash);
            Added::Stored
        }
    }

    fn abandon(&mut self, hash: [u8; 32]) {
        if self.abandoned.len() >= MAX_ABANDONED {
            self.abandoned.pop_front();
        }
        self.abandoned.push_back(hash);
    }

    /// The kept winning path, base first, head last.
    fn versions(&self) -> impl Iterator<Item = &SignedRoster> {
        self.path.iter().chain([&self.head])
    }

    /// Stored layout (for the encrypted store): `format (1) ‖ path count
    /// (u8) ‖ each version: u32 len ‖ signed version ‖ abandoned count
    /// (u16) ‖ abandoned hashes (32 each)`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![
            CHAIN_FORMAT,
            u8::try_from(self.path.len() + 1).unwrap_or(u8::MAX),
        ];
        for version in self.versions() {
            let len = u32::try_from(version.bytes.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&version.bytes);
        }
        let count = u16::try_from(self.abandoned.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for hash in &self.abandoned {
            out.extend_from_slice(hash);
        }
        out
    }

    /// Reads [`RosterChain::to_bytes`], checking the size first and every
    /// signature and chain rule again. Never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RosterError> {
        Self::decode(bytes, SignedRoster::from_bytes)
    }

    /// Reads a chain this device wrote to its encrypted store, whose
    /// authenticated encryption already guarantees the bytes are the ones
    /// it wrote: every layout and chain rule is checked as in
    /// [`Self::from_bytes`], but signatures it verified when the versions
    /// arrived are not verified again on every load.
    pub fn from_stored_bytes(bytes: &[u8]) -> Result<Self, RosterError> {
        Self::decode(bytes, SignedRoster::from_stored)
    }

    fn decode(
        bytes: &[u8],
        read_version: fn(&[u8]) -> Result<SignedRoster, RosterError>,
    ) -> Result<Self, RosterError> {
        if bytes.len() > MAX_CHAIN_LEN {
            return Err(RosterError::TooLarge {
                len: bytes.len(),
                limit: MAX_CHAIN_LEN,
            });
        }
        let (&format, rest) = bytes.split_first().ok_or(RosterError::Truncated)?;
        if format != CHAIN_FORMAT {
            return Err(RosterError::Malformed("stored chain format"));
        }
        let (&count, mut rest) = rest.split_first().ok_or(RosterError::Truncated)?;
        if count == 0 || usize::from(count) > MAX_PATH {
            return Err(RosterError::Malformed("stored chain length"));
        }
        let mut chain: Option<Self> = None;
        for _ in 0..count {
            let len = u32::from_be_bytes(take_array(&mut rest)?);
            let len = usize::try_from(len).map_err(|_| RosterError::Truncated)?;
            let version = read_version(take(&mut rest, len)?)?;
            chain = Some(match chain {
                None => Self::new(version),
                Some(mut chain) => {
                    chain.extend(version)?;
                    chain
                }
            });
        }
        let mut chain = chain.ok_or(RosterError::Malformed("stored chain length"))?;
        let abandoned = u16::from_be_bytes(take_array(&mut rest)?);
        if usize::from(abandoned) > MAX_ABANDONED {
            return Err(RosterError::Malformed("stored chain abandoned count"));
        }
        for _ in 0..abandoned {
            chain.abandoned.push_back(take_array(&mut rest)?);
        }
        if !rest.is_empty() {
            return Err(RosterError::Malformed("trailing bytes"));
        }
        Ok(chain)
    }

    /// Adds the stored head's child while rebuilding the chain.
    fn extend(&mut self, version: SignedRoster) -> Result<(), RosterError> {
        if version.roster().parent != self.head.hash() {
            return Err(RosterError::Malformed("stored chain links"));
        }
        match self.add(version)? {
            Added::NewHead => Ok(()),
            Added::Duplicate | Added::Stored => Err(RosterError::Malformed("stored chain links")),
        }
    }
}

impl fmt::Debug for RosterChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let base = self.versions().next().unwrap_or(&self.head);
        f.debug_struct("RosterChain")
            .field("base_version", &base.roster().version)
            .field("head_version", &self.head.roster().version)
            .field("head", &HashPrefix(&self.head.hash()))
            .field("abandoned", &self.abandoned.len())
            .finish()
    }
}

fn take<'a>(rest: &mut &'a [u8], len: usize) -> Result<&'a [u8], RosterError> {
    if rest.len() < len {
        return Err(RosterError::Truncated);
    }
    let (head, tail) = rest.split_at(len);
    *rest = tail;
    Ok(head)
}

fn take_array<const N: usize>(rest: &mut &[u8]) -> Result<[u8; N], RosterError> {
    take(rest, N)?
        .try_into()
        .map_err(|_| RosterError::Truncated)
}

/// Checks the rules a version must meet as the child of `parent` (the
/// circle id and the parent hash are already checked).
fn check_child(parent: &SignedRoster, child: &SignedRoster) -> Result<(), RosterError> {
    let (old, new) = (parent.roster(), child.roster());
    if old.version.checked_add(1) != Some(new.version) {
        return Err(RosterError::VersionGap {
            parent: old.version,
            version: new.version,
        });
    }
    check_authority(old, child)?;
    if new.parent_circle != old.parent_circle {
        return Err(RosterError::ParentCircleChanged);
    }
    if !new.members.iter().any(|m| m.role == Role::Facilitator) {
        return Err(RosterError::NoFacilitator);
    }
    let old_members: BTreeMap<MemberId, &RosterMember> =
        old.members.iter().map(|m| (m.member_id(), m)).collect();
    for member in &new.members {
        match old_members.get(&member.member_id()) {
            Some(kept) if kept.identity != member.identity || kept.added_in != member.added_in => {
                return Err(RosterError::KeptMemberChanged);
            }
            Some(_) => {}
            None if member.added_in != new.version => return Err(RosterError::NewMemberAddedIn),
            None => {}
        }
    }
    let new_ids: BTreeSet<MemberId> = new.members.iter().map(RosterMember::member_id).collect();
    let someone_missing = old_members.keys().any(|id| !new_ids.contains(id));
    let expected = if someone_missing {
        old.epoch.checked_add(1)
    } else {
        Some(old.epoch)
    };
    if expected != Some(new.epoch) {
        return Err(RosterError::WrongEpoch {
            expected: expected.unwrap_or(u64::MAX),
            found: new.epoch,
        });
    }
    Ok(())
}

/// The authority rule: the signer is a facilitator of the parent, or the
/// version only removes its signer.
fn check_authority(old: &Roster, child: &SignedRoster) -> Result<(), RosterError> {
    let signer = child.signer_key();
    let Some(member) = old.members.iter().find(|m| m.identity.sig_key == *signer) else {
        return Err(RosterError::NotAuthorized);
    };
    let new = child.roster();
    let only_leaves = new.name == old.name
        && new.rules == old.rules
        && new.members.len() + 1 == old.members.len()
        && old
            .members
            .iter()
            .filter(|m| m.identity.sig_key != *signer)
            .eq(new.members.iter());
    if member.role == Role::Facilitator || only_leaves {
        Ok(())
    } else {
        Err(RosterError::NotAuthorized)
    }
}
