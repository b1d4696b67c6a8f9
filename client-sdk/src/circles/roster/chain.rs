//! The versions of one circle's roster a member knows, and the head the
//! fork choice picks (see the module docs of [`roster`](super) and
//! [`fork`](super::fork)).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use super::fork::{self, Branch};
use super::{HashPrefix, MAX_SIGNED_LEN, Roster, RosterError, RosterMember, SignedRoster};
use crate::circles::Role;
use crate::ids::MemberId;

/// Most versions kept on the winning path (the base included).
pub(super) const MAX_PATH: usize = 64;

/// Most versions kept off the winning path (branches that lose a fork for
/// now, and may still win when more versions arrive).
pub(super) const MAX_SIDE: usize = 32;

/// Most hashes of let-go versions remembered.
pub(super) const MAX_FORGOTTEN: usize = 256;

/// First byte of [`RosterChain::to_bytes`].
const CHAIN_FORMAT: u8 = 2;

/// The format before side branches were kept: the path, then the hashes of
/// losing versions. Still read.
const CHAIN_FORMAT_PATH_ONLY: u8 = 1;

/// Largest [`RosterChain::to_bytes`]: format, version count, each version
/// with a `u32` length, the count of forgotten hashes and the hashes.
pub(super) const MAX_CHAIN_LEN: usize =
    1 + 2 + (MAX_PATH + MAX_SIDE) * (4 + MAX_SIGNED_LEN) + 2 + MAX_FORGOTTEN * 32;

/// What [`RosterChain::add`] did with a valid version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// The chain already had it (or had it and let it go).
    Duplicate,
    /// Valid and kept, but the head did not change.
    Stored,
    /// The head changed: the version is the new head, or it made another
    /// branch win.
    NewHead,
}

/// The roster versions of one circle a member knows: a tree rooted at a
/// trusted base, and the head the fork choice picks in it.
#[derive(Clone, PartialEq, Eq)]
pub struct RosterChain {
    /// The oldest version kept, trusted as it is.
    base: SignedRoster,
    /// Every other version kept, by hash.
    versions: BTreeMap<[u8; 32], SignedRoster>,
    /// The winning path after the base, head last (derived from the tree).
    path: Vec<[u8; 32]>,
    /// Hashes of versions let go (too old, or over the side limit), oldest
    /// first.
    forgotten: VecDeque<[u8; 32]>,
}

impl RosterChain {
    /// A chain that trusts `base` as it is: the genesis this device made,
    /// or the oldest version a facilitator welcomed it with.
    pub fn new(base: SignedRoster) -> Self {
        Self {
            base,
            versions: BTreeMap::new(),
            path: Vec::new(),
            forgotten: VecDeque::new(),
        }
    }

    /// A chain from a run of linked versions, oldest first (as a welcome
    /// carries them): the first is trusted, each later one must be a valid
    /// child of the one before.
    pub fn from_run(run: Vec<SignedRoster>) -> Result<Self, RosterError> {
        let mut run = run.into_iter();
        let mut chain = Self::new(run.next().ok_or(RosterError::Truncated)?);
        for version in run {
            chain.extend(version)?;
        }
        Ok(chain)
    }

    /// The current version.
    pub fn head(&self) -> &SignedRoster {
        self.path
            .last()
            .and_then(|hash| self.versions.get(hash))
            .unwrap_or(&self.base)
    }

    /// The current version's content.
    pub fn head_roster(&self) -> &Roster {
        self.head().roster()
    }

    /// Whether the version with this hash is on the winning path.
    pub fn contains(&self, hash: &[u8; 32]) -> bool {
        self.base.hash() == *hash || self.path.contains(hash)
    }

    /// The winning path, base first, head last.
    pub fn path(&self) -> impl DoubleEndedIterator<Item = &SignedRoster> {
        [&self.base]
            .into_iter()
            .chain(self.path.iter().filter_map(|hash| self.versions.get(hash)))
    }

    /// The versions kept off the winning path.
    pub fn side_versions(&self) -> impl Iterator<Item = &SignedRoster> {
        self.versions
            .values()
            .filter(|v| !self.path.contains(&v.hash()))
    }

    /// A kept version by hash.
    pub fn get(&self, hash: &[u8; 32]) -> Option<&SignedRoster> {
        if self.base.hash() == *hash {
            return Some(&self.base);
        }
        self.versions.get(hash)
    }

    /// Members the head still lists whose removal a facilitator of the head
    /// signed on a branch that lost the fork, and has not signed anything
    /// on the winning path since: that facilitator's device makes the
    /// removal again on the head (see the engine), and until it does, this
    /// device hands them no new keys. A member's own losing leave counts
    /// the same way.
    pub fn pending_removals(&self) -> BTreeSet<MemberId> {
        let head = self.head_roster();
        let mut pending = BTreeSet::new();
        for version in self.side_versions() {
            let Some(parent) = self.get(&version.roster().parent) else {
                continue;
            };
            let signer = version.signer();
            let resolved = self
                .path()
                .any(|v| v.signer() == signer && v.roster().version > version.roster().version);
            let removed = fork::removed_yet_present(parent.roster(), version.roster(), head);
            let own_leave = removed == [signer];
            if resolved || !(head.is_facilitator(signer) || own_leave) {
                continue;
            }
            pending.extend(removed);
        }
        pending
    }

    /// Adds a version received from a member, if every rule of the
    /// [module docs](super) holds, and moves the head by the fork choice.
    ///
    /// [`RosterError::UnknownParent`] means "try again once more versions
    /// arrived"; every other error means the version can be dropped.
    pub fn add(&mut self, version: SignedRoster) -> Result<Added, RosterError> {
        let roster = version.roster();
        if roster.circle_id != self.base.roster().circle_id {
            return Err(RosterError::WrongCircle);
        }
        let hash = version.hash();
        if self.get(&hash).is_some() || self.forgotten.contains(&hash) {
            return Ok(Added::Duplicate);
        }
        if self.forgotten.contains(&roster.parent) {
            self.forget(hash);
            return Err(RosterError::Abandoned);
        }
        let Some(parent) = self.get(&roster.parent) else {
            return Err(
                if roster.version <= self.base.roster().version.saturating_add(1) {
                    RosterError::Stale
                } else {
                    RosterError::UnknownParent
                },
            );
        };
        check_child(parent, &version)?;
        let old_head = self.head().hash();
        self.versions.insert(hash, version);
        self.choose_path();
        self.prune();
        if self.head().hash() == old_head {
            Ok(Added::Stored)
        } else {
            Ok(Added::NewHead)
        }
    }

    /// Keeps a version read from the store, whose parent is already kept,
    /// after checking it as [`Self::add`] does; the path is chosen once
    /// everything is read.
    fn restore(&mut self, version: SignedRoster) -> Result<(), RosterError> {
        let hash = version.hash();
        let roster = version.roster();
        if roster.circle_id != self.base.roster().circle_id {
            return Err(RosterError::WrongCircle);
        }
        let parent = self
            .get(&roster.parent)
            .ok_or(RosterError::Malformed("stored chain links"))?;
        if self.get(&hash).is_some() {
            return Err(RosterError::Malformed("stored chain links"));
        }
        check_child(parent, &version)?;
        self.versions.insert(hash, version);
        Ok(())
    }

    /// Recomputes the winning path from the base.
    fn choose_path(&mut self) {
        let mut children: BTreeMap<[u8; 32], Vec<&SignedRoster>> = BTreeMap::new();
        for version in self.versions.values() {
            children
                .entry(version.roster().parent)
                .or_default()
                .push(version);
        }
        let mut memo = BTreeMap::new();
        let path = self.branch_from(&self.base, &children, &mut memo);
        self.path = path;
    }

    /// The path the fork choice follows below `node` (its children's
    /// winner, and so on), memoised by hash.
    fn branch_from<'a>(
        &'a self,
        node: &'a SignedRoster,
        children: &BTreeMap<[u8; 32], Vec<&'a SignedRoster>>,
        memo: &mut BTreeMap<[u8; 32], Vec<[u8; 32]>>,
    ) -> Vec<[u8; 32]> {
        if let Some(path) = memo.get(&node.hash()) {
            return path.clone();
        }
        let kids = children.get(&node.hash()).cloned().unwrap_or_default();
        if let [only] = kids[..] {
            // No fork here: nothing to choose.
            let mut path = vec![only.hash()];
            path.extend(self.branch_from(only, children, memo));
            memo.insert(node.hash(), path.clone());
            return path;
        }
        let mut candidates: Vec<Vec<[u8; 32]>> = Vec::with_capacity(kids.len());
        for kid in &kids {
            let mut path = vec![kid.hash()];
            path.extend(self.branch_from(kid, children, memo));
            candidates.push(path);
        }
        let branches: Vec<Branch<'_>> = candidates
            .iter()
            .filter_map(|path| {
                let pairs: Vec<(&SignedRoster, &SignedRoster)> = path
                    .iter()
                    .filter_map(|hash| self.versions.get(hash))
                    .filter_map(|v| Some((v, self.get(&v.roster().parent)?)))
                    .collect();
                Branch::new(&pairs)
            })
            .collect();
        let chosen = fork::choose(node, &branches)
            .and_then(|index| candidates.get(index).cloned())
            .unwrap_or_default();
        memo.insert(node.hash(), chosen.clone());
        chosen
    }

    /// Keeps the tree within its limits: the base moves up the path when
    /// the path grows past [`MAX_PATH`] (dropping what forks below it), and
    /// the oldest side versions go when more than [`MAX_SIDE`] are kept.
    fn prune(&mut self) {
        while self.path.len() + 1 > MAX_PATH {
            let new_base_hash = self.path.remove(0);
            let Some(new_base) = self.versions.remove(&new_base_hash) else {
                break;
            };
            self.base = new_base;
            self.drop_unreachable();
        }
        loop {
            let side: Vec<([u8; 32], u64)> = self
                .side_versions()
                .map(|v| (v.hash(), v.roster().version))
                .collect();
            if side.len() <= MAX_SIDE {
                break;
            }
            // The oldest fork goes first; its descendants follow it.
            let Some((oldest, _)) = side.iter().min_by_key(|(hash, version)| (*version, *hash))
            else {
                break;
            };
            self.versions.remove(oldest);
            self.forget(*oldest);
            self.drop_unreachable();
        }
    }

    /// Drops the kept versions that no longer descend from the base.
    fn drop_unreachable(&mut self) {
        let mut reachable: BTreeSet<[u8; 32]> = BTreeSet::from([self.base.hash()]);
        let mut ordered: Vec<(u64, [u8; 32], [u8; 32])> = self
            .versions
            .values()
            .map(|v| (v.roster().version, v.hash(), v.roster().parent))
            .collect();
        ordered.sort();
        for (_, hash, parent) in ordered {
            if reachable.contains(&parent) {
                reachable.insert(hash);
            } else {
                self.versions.remove(&hash);
                self.forget(hash);
            }
        }
    }

    fn forget(&mut self, hash: [u8; 32]) {
        if self.forgotten.contains(&hash) {
            return;
        }
        if self.forgotten.len() >= MAX_FORGOTTEN {
            self.forgotten.pop_front();
        }
        self.forgotten.push_back(hash);
    }

    /// Stored layout (for the encrypted store): `format (2) ‖ version
    /// count (u16) ‖ each version, base first and every parent before its
    /// children: u32 len ‖ signed version ‖ forgotten count (u16) ‖
    /// forgotten hashes (32 each)`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![CHAIN_FORMAT];
        let count = u16::try_from(self.versions.len() + 1).unwrap_or(u16::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        let mut rest: Vec<&SignedRoster> = self.versions.values().collect();
        rest.sort_by_key(|v| (v.roster().version, v.hash()));
        for version in [&self.base].into_iter().chain(rest) {
            let len = u32::try_from(version.bytes.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&version.bytes);
        }
        let count = u16::try_from(self.forgotten.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for hash in &self.forgotten {
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
        let (&format, mut rest) = bytes.split_first().ok_or(RosterError::Truncated)?;
        let (count, max) = match format {
            CHAIN_FORMAT => (
                usize::from(u16::from_be_bytes(take_array(&mut rest)?)),
                MAX_PATH + MAX_SIDE,
            ),
            CHAIN_FORMAT_PATH_ONLY => (usize::from(take_array::<1>(&mut rest)?[0]), MAX_PATH),
            _ => return Err(RosterError::Malformed("stored chain format")),
        };
        if count == 0 || count > max {
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
                    if format == CHAIN_FORMAT_PATH_ONLY {
                        chain.extend(version)?;
                    } else {
                        chain.restore(version)?;
                    }
                    chain
                }
            });
        }
        let mut chain = chain.ok_or(RosterError::Malformed("stored chain length"))?;
        chain.choose_path();
        let forgotten = u16::from_be_bytes(take_array(&mut rest)?);
        if usize::from(forgotten) > MAX_FORGOTTEN {
            return Err(RosterError::Malformed("stored chain forgotten count"));
        }
        for _ in 0..forgotten {
            chain.forgotten.push_back(take_array(&mut rest)?);
        }
        if !rest.is_empty() {
            return Err(RosterError::Malformed("trailing bytes"));
        }
        Ok(chain)
    }

    /// Adds the head's child while reading a run of linked versions.
    fn extend(&mut self, version: SignedRoster) -> Result<(), RosterError> {
        if version.roster().parent != self.head().hash() {
            return Err(RosterError::Malformed("stored chain links"));
        }
        self.restore(version)?;
        self.choose_path();
        self.prune();
        Ok(())
    }
}

impl fmt::Debug for RosterChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RosterChain")
            .field("base_version", &self.base.roster().version)
            .field("head_version", &self.head().roster().version)
            .field("head", &HashPrefix(&self.head().hash()))
            .field("kept", &(self.versions.len() + 1))
            .field("forgotten", &self.forgotten.len())
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
