//! The fork choice: which of the known children of a version the head
//! follows (see the module docs of [`roster`](super), "Fork choice").
//!
//! The choice is a pure function of the versions known, never of the order
//! they arrived in, so every member that holds the same versions follows
//! the same head. It compares whole **branches**: a child together with the
//! path the same rule picks below it.

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

use super::{Roster, SignedRoster};
use crate::circles::Role;
use crate::ids::MemberId;

/// Domain separation of the per-fork tie-break between signers.
pub const FORK_TIE_LABEL: &[u8] = b"Hearth_v1_RosterFork";

/// Domain separation of the tie-break between facilitators added in the
/// same version.
pub const SENIORITY_LABEL: &[u8] = b"Hearth_v1_RosterSeniority";

/// How long someone has held their place in the circle: the version that
/// added them, then a hash of the circle and their key (fixed before any
/// fork, so nobody can change it when it would help). Smaller is senior.
pub(super) type Seniority = (u64, [u8; 32]);

/// Someone who lost something on a branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loss {
    /// Removed (or left).
    Membership,
    /// A facilitator made a member.
    Facilitator,
}

/// What the fork choice needs to know of one branch.
#[derive(Debug)]
pub(super) struct Branch<'a> {
    /// The child of the fork point that starts the branch.
    pub(super) first: &'a SignedRoster,
    /// The branch's last version.
    pub(super) leaf: &'a SignedRoster,
    /// Who signed a version of the branch, and whether it needed the
    /// facilitator role (everything but a member's own leave does).
    signers: Vec<(MemberId, bool, Seniority)>,
    /// Who lost their membership or role along the branch.
    losses: Vec<(MemberId, Loss)>,
}

impl<'a> Branch<'a> {
    /// The branch made of `versions` (fork point's child first), each with
    /// its parent.
    pub(super) fn new(versions: &[(&'a SignedRoster, &'a SignedRoster)]) -> Option<Self> {
        let (first, _) = *versions.first()?;
        let (leaf, _) = *versions.last()?;
        let mut signers = Vec::new();
        let mut losses = Vec::new();
        for (version, parent) in versions {
            let old = parent.roster();
            let signer = version.signer();
            let as_facilitator = old.is_facilitator(signer);
            signers.push((signer, as_facilitator, seniority(old, version)));
            for (id, loss) in losses_between(old, version.roster()) {
                losses.push((id, loss));
            }
        }
        Some(Self {
            first,
            leaf,
            signers,
            losses,
        })
    }

    /// Whether this branch takes from someone what they used to sign a
    /// version of `other`: their membership, or the facilitator role they
    /// signed with.
    fn revokes_a_signer_of(&self, other: &Branch<'_>) -> bool {
        self.losses.iter().any(|(victim, loss)| {
            other.signers.iter().any(|(signer, as_facilitator, _)| {
                signer == victim && (*loss == Loss::Membership || *as_facilitator)
            })
        })
    }

    /// The most senior signer of the branch.
    fn strength(&self) -> Seniority {
        self.signers
            .iter()
            .map(|(_, _, seniority)| *seniority)
            .min()
            .unwrap_or((u64::MAX, [0xff; 32]))
    }

    /// Whether the branch removes or demotes anyone of the fork point.
    fn takes_anything_from(&self, fork_point: &Roster) -> bool {
        !losses_between(fork_point, self.leaf.roster()).is_empty()
    }
}

/// Picks the branch the head follows from `fork_point` (the index into
/// `branches`); `None` when there are no branches.
///
/// 1. A branch that takes away the membership or role someone used to sign
///    a version of another branch **beats** that branch, unless the other
///    does the same to it. So nobody can undo, by forking from an older
///    version, what took their authority away.
/// 2. Among the branches nobody beats, a *mutual* conflict (two
///    facilitators removing or demoting each other at once) goes to the
///    branch with the most senior signer.
/// 3. Then branches that remove or demote someone come before those that
///    do not (a removal is never undone by a concurrent addition or
///    rename), a facilitator's change before a member's own leave, the
///    senior signer before the junior one, and between signers added in
///    the same version a hash of the fork point and the signer's key —
///    nothing a signer can grind at signing time. Two versions of one
///    signer are ordered by their hashes (that signer's own business).
pub(super) fn choose(fork_point: &SignedRoster, branches: &[Branch<'_>]) -> Option<usize> {
    let n = branches.len();
    let revokes = |a: usize, b: usize| a != b && branches[a].revokes_a_signer_of(&branches[b]);
    let beaten = |d: usize| (0..n).any(|c| revokes(c, d) && !revokes(d, c));
    let mut alive: Vec<usize> = (0..n).filter(|&d| !beaten(d)).collect();
    if alive.is_empty() {
        // A cycle of one-sided conflicts: nobody stands above the rest.
        alive = (0..n).collect();
    }
    let roster = fork_point.roster();
    let key = |c: usize| {
        let branch = &branches[c];
        let mutual = alive.iter().any(|&d| revokes(c, d));
        let first = branch.first;
        let signer = first.signer();
        (
            !mutual,
            if mutual {
                branch.strength()
            } else {
                (0, [0; 32])
            },
            !branch.takes_anything_from(roster),
            !roster.is_facilitator(signer),
            seniority(roster, first),
            fork_tie(fork_point, first),
            first.hash(),
        )
    };
    alive.iter().copied().min_by_key(|&c| key(c))
}

/// The seniority of the signer of `version`, as its parent `parent` has it.
fn seniority(parent: &Roster, version: &SignedRoster) -> Seniority {
    let added_in = parent
        .member(version.signer())
        .map_or(u64::MAX, |m| m.added_in);
    let tie = Sha256::new()
        .chain_update(SENIORITY_LABEL)
        .chain_update(parent.circle_id.as_bytes())
        .chain_update(version.signer_key().as_bytes())
        .finalize()
        .into();
    (added_in, tie)
}

/// `SHA-256("Hearth_v1_RosterFork" ‖ hash of the fork point ‖ signer's
/// IK_sig)`.
fn fork_tie(fork_point: &SignedRoster, version: &SignedRoster) -> [u8; 32] {
    Sha256::new()
        .chain_update(FORK_TIE_LABEL)
        .chain_update(fork_point.hash())
        .chain_update(version.signer_key().as_bytes())
        .finalize()
        .into()
}

/// Who of `old` is missing from `new` (or there again under a later
/// `added_in`), and which of its facilitators are members in `new`.
fn losses_between(old: &Roster, new: &Roster) -> Vec<(MemberId, Loss)> {
    let after: BTreeMap<MemberId, (u64, Role)> = new
        .members
        .iter()
        .map(|m| (m.member_id(), (m.added_in, m.role)))
        .collect();
    old.members
        .iter()
        .filter_map(|m| {
            let id = m.member_id();
            match after.get(&id) {
                Some((added_in, _)) if *added_in != m.added_in => Some((id, Loss::Membership)),
                None => Some((id, Loss::Membership)),
                Some((_, Role::Member)) if m.role == Role::Facilitator => {
                    Some((id, Loss::Facilitator))
                }
                Some(_) => None,
            }
        })
        .collect()
}

/// The members `version` removes from `parent` (by id), as seen from
/// `head`: those the head still lists with the same `added_in`.
pub(super) fn removed_yet_present(
    parent: &Roster,
    version: &Roster,
    head: &Roster,
) -> Vec<MemberId> {
    losses_between(parent, version)
        .into_iter()
        .filter(|(_, loss)| *loss == Loss::Membership)
        .map(|(id, _)| id)
        .filter(|id| {
            let before = parent.member(*id).map(|m| m.added_in);
            head.member(*id).map(|m| m.added_in) == before
        })
        .collect()
}
