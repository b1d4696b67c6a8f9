//! The fork choice, tried as an attacker would: someone who lost their
//! role or membership signs children of older versions, grinds free text,
//! or leaves from before a removal. And convergence: every arrival order
//! gives the same head.

use std::collections::BTreeSet;

use proptest::prelude::*;
use sha2::{Digest as _, Sha256};

use super::*;

fn ravi() -> IdentityKeyPair {
    identity(5)
}

fn ines() -> IdentityKeyPair {
    identity(6)
}

/// The child of `parent` that `edit` makes, signed by `by`.
fn child(
    parent: &SignedRoster,
    by: &IdentityKeyPair,
    edit: impl FnOnce(&mut Roster),
) -> SignedRoster {
    let mut next = parent.next();
    edit(&mut next);
    sign(&next, by)
}

fn removing(parent: &SignedRoster, who: &IdentityKeyPair, by: &IdentityKeyPair) -> SignedRoster {
    child(parent, by, |r| {
        *r = without(r, who);
        r.epoch += 1;
    })
}

fn with_role(
    parent: &SignedRoster,
    who: &IdentityKeyPair,
    role: Role,
    by: &IdentityKeyPair,
) -> SignedRoster {
    child(parent, by, |r| member_mut(r, who).role = role)
}

/// Dana creates the circle; in version 2 she adds Gale as a second
/// facilitator and Sam and Noor as members. Dana is the senior
/// facilitator.
fn circle() -> RosterChain {
    let base = genesis(&dana());
    let mut chain = RosterChain::new(base.clone());
    let v2 = child(&base, &dana(), |r| {
        r.members.push(member(&gale(), Role::Facilitator, 2));
        r.members.push(member(&sam(), Role::Member, 2));
        r.members.push(member(&noor(), Role::Member, 2));
    });
    assert_eq!(chain.add(v2), Ok(Added::NewHead));
    chain
}

/// Adds `versions` in order, and again in reverse order to a fresh copy;
/// both must end on the same head, which is returned.
fn head_after(chain: &RosterChain, versions: &[&SignedRoster]) -> SignedRoster {
    let (forward, results) = add_all(chain, versions);
    for result in results {
        assert!(
            matches!(result, Ok(_) | Err(RosterError::Abandoned)),
            "{result:?}"
        );
    }
    let reversed: Vec<&SignedRoster> = versions.iter().rev().copied().collect();
    let (mut backward, _) = add_all(chain, &reversed);
    // Children that arrived before their parents are added again.
    for version in versions {
        let _ = backward.add((*version).clone());
    }
    assert_eq!(
        forward.head(),
        backward.head(),
        "arrival order changed the head"
    );
    forward.head().clone()
}

/// Versions of Gale's that vary the rules text: the grinding of the old
/// smallest-hash rule.
fn ground(count: usize, make: impl Fn(&str) -> SignedRoster) -> Vec<SignedRoster> {
    (0..count).map(|n| make(&format!("attempt {n}"))).collect()
}

#[test]
fn a_demoted_facilitator_cannot_undo_it_by_forking() {
    let chain = circle();
    let v2 = chain.head().clone();
    // Dana adds Ravi, then demotes Gale.
    let v3 = child(&v2, &dana(), |r| {
        r.members.push(member(&ravi(), Role::Member, 3))
    });
    let v4 = with_role(&v3, &gale(), Role::Member, &dana());
    // Gale, demoted, signs children of v2 and of v3 that remove Dana, and
    // grinds the rules text of each for a small hash.
    let mut attacks = ground(32, |text| {
        child(&v2, &gale(), |r| {
            *r = without(r, &dana());
            r.epoch += 1;
            r.rules = text.into();
        })
    });
    attacks.extend(ground(32, |text| {
        child(&v3, &gale(), |r| {
            *r = without(r, &dana());
            r.epoch += 1;
            r.rules = text.into();
        })
    }));
    // And ones that only undo her demotion by not containing it.
    attacks.extend(ground(16, |text| {
        child(&v3, &gale(), |r| r.rules = text.into())
    }));
    let mut all = vec![&v3, &v4];
    all.extend(attacks.iter());
    assert_eq!(head_after(&chain, &all), v4);
    let (chain, _) = add_all(&chain, &all);
    assert!(!chain.head_roster().is_facilitator(id_of(&gale())));
    assert!(chain.head_roster().member(id_of(&dana())).is_some());
}

#[test]
fn a_removed_facilitator_cannot_sign_from_an_older_version() {
    let chain = circle();
    let v2 = chain.head().clone();
    let v3 = removing(&v2, &gale(), &dana());
    let adds_ines = child(&v2, &gale(), |r| {
        r.members.push(member(&ines(), Role::Facilitator, 3));
    });
    let removes_dana = removing(&v2, &dana(), &gale());
    assert_eq!(head_after(&chain, &[&v3, &adds_ines, &removes_dana]), v3);
    let (chain, _) = add_all(&chain, &[&adds_ines, &removes_dana, &v3]);
    assert!(chain.head_roster().member(id_of(&gale())).is_none());
    assert!(chain.head_roster().member(id_of(&ines())).is_none());
    assert!(chain.pending_removals().is_empty());
}

#[test]
fn a_leave_from_before_a_removal_does_not_bring_the_removed_back() {
    let chain = circle();
    let v2 = chain.head().clone();
    let removes_noor = removing(&v2, &noor(), &dana());
    // Sam leaves from v2, where Noor was still a member.
    let sam_leaves = removing(&v2, &sam(), &sam());
    assert_eq!(
        head_after(&chain, &[&removes_noor, &sam_leaves]),
        removes_noor
    );
    let (mut chain, _) = add_all(&chain, &[&sam_leaves, &removes_noor]);
    assert!(chain.head_roster().member(id_of(&noor())).is_none());
    // Sam's leave is pending until Sam's device leaves again on the head.
    assert_eq!(chain.pending_removals(), BTreeSet::from([id_of(&sam())]));
    let again = removing(chain.head(), &sam(), &sam());
    assert_eq!(chain.add(again), Ok(Added::NewHead));
    assert!(chain.pending_removals().is_empty());
    let head = chain.head_roster();
    assert!(head.member(id_of(&noor())).is_none() && head.member(id_of(&sam())).is_none());
}

#[test]
fn in_a_mutual_conflict_the_senior_facilitator_wins() {
    let chain = circle();
    let v2 = chain.head().clone();
    let dana_demotes_gale = with_role(&v2, &gale(), Role::Member, &dana());
    let gale_demotes_dana = with_role(&v2, &dana(), Role::Member, &gale());
    // Gale builds on her branch to make it longer; length does not count.
    let gale_more = child(&gale_demotes_dana, &gale(), |r| r.name = "Gale's".into());
    let gale_most = child(&gale_more, &gale(), |r| r.rules = "Mine".into());
    let versions = [
        &gale_demotes_dana,
        &gale_more,
        &gale_most,
        &dana_demotes_gale,
    ];
    assert_eq!(head_after(&chain, &versions), dana_demotes_gale);
}

#[test]
fn concurrent_removals_stay_removed_or_pending_until_made_again() {
    let chain = circle();
    let v2 = chain.head().clone();
    let dana_removes_sam = removing(&v2, &sam(), &dana());
    let gale_removes_noor = removing(&v2, &noor(), &gale());
    assert_eq!(
        head_after(&chain, &[&gale_removes_noor, &dana_removes_sam]),
        dana_removes_sam
    );
    let (mut chain, _) = add_all(&chain, &[&gale_removes_noor, &dana_removes_sam]);
    // Both epochs are 2; Noor is on the head but her removal is pending.
    assert!(chain.head_roster().member(id_of(&noor())).is_some());
    assert_eq!(chain.pending_removals(), BTreeSet::from([id_of(&noor())]));
    // Gale's device makes the removal again on the head.
    let again = removing(chain.head(), &noor(), &gale());
    assert_eq!(chain.add(again), Ok(Added::NewHead));
    assert!(chain.pending_removals().is_empty());
    assert!(chain.head_roster().member(id_of(&noor())).is_none());
    assert!(chain.head_roster().member(id_of(&sam())).is_none());
    assert_eq!(chain.head_roster().epoch, 3);
}

#[test]
fn a_removal_beats_a_concurrent_change_that_removes_nobody() {
    let chain = circle();
    let v2 = chain.head().clone();
    // Gale is junior, Dana senior: the removal still wins.
    let gale_removes_sam = removing(&v2, &sam(), &gale());
    let dana_renames = ground(16, |text| child(&v2, &dana(), |r| r.rules = text.into()));
    let mut all: Vec<&SignedRoster> = dana_renames.iter().collect();
    all.push(&gale_removes_sam);
    assert_eq!(head_after(&chain, &all), gale_removes_sam);
}

/// `SHA-256("Hearth_v1_RosterFork" ‖ fork point hash ‖ IK_sig)`.
fn fork_tie(fork_point: &SignedRoster, signer: &IdentityKeyPair) -> [u8; 32] {
    Sha256::new()
        .chain_update(FORK_TIE_LABEL)
        .chain_update(fork_point.hash())
        .chain_update(signer.public().sig_key.as_bytes())
        .finalize()
        .into()
}

#[test]
fn grinding_free_text_does_not_steer_the_tie_break() {
    // Gale and Ines are added as facilitators in the same version, so
    // neither is senior: the per-fork hash of their keys decides.
    let base = genesis(&dana());
    let mut chain = RosterChain::new(base.clone());
    let v2 = child(&base, &dana(), |r| {
        r.members.push(member(&gale(), Role::Facilitator, 2));
        r.members.push(member(&ines(), Role::Facilitator, 2));
    });
    chain.add(v2.clone()).unwrap();
    let expected_winner = if fork_tie(&v2, &gale()) < fork_tie(&v2, &ines()) {
        id_of(&gale())
    } else {
        id_of(&ines())
    };
    let by_ines = child(&v2, &ines(), |r| r.name = "Ines's name".into());
    for attempt in ground(48, |text| child(&v2, &gale(), |r| r.rules = text.into())) {
        let head = head_after(&chain, &[&by_ines, &attempt]);
        assert_eq!(head.signer(), expected_winner);
    }
}

#[test]
fn a_branch_that_loses_now_is_kept_and_can_win_later() {
    let chain = circle();
    let v2 = chain.head().clone();
    // Dana renames while Gale adds Ravi: neither removes anyone, so the
    // senior signer's rename wins. Gale's branch is kept, and when Gale
    // goes on from it with a removal, it becomes the branch that removes
    // someone and wins.
    let dana_renames = child(&v2, &dana(), |r| r.name = "Renamed".into());
    let gale_adds = child(&v2, &gale(), |r| {
        r.members.push(member(&ravi(), Role::Member, 3))
    });
    let (mut chain, _) = add_all(&chain, &[&gale_adds, &dana_renames]);
    assert_eq!(chain.head(), &dana_renames);
    assert!(chain.side_versions().any(|v| v == &gale_adds));
    let gale_removes_sam = removing(&gale_adds, &sam(), &gale());
    assert_eq!(chain.add(gale_removes_sam.clone()), Ok(Added::NewHead));
    assert_eq!(chain.head(), &gale_removes_sam);
    let stored = RosterChain::from_bytes(&chain.to_bytes()).unwrap();
    assert_eq!(stored.head(), chain.head());
}

/// What a generated version does to its parent.
#[derive(Clone, Copy, Debug)]
enum Action {
    Rename,
    Remove(u8),
    Demote(u8),
    Promote(u8),
    Leave,
}

fn people() -> [IdentityKeyPair; 4] {
    [dana(), gale(), sam(), noor()]
}

/// Builds the valid versions a list of (parent index, signer, action)
/// describes, from [`circle`]'s head; invalid ones are skipped.
fn build(shape: &[(prop::sample::Index, u8, Action)]) -> (RosterChain, Vec<SignedRoster>) {
    let chain = circle();
    let mut made = vec![chain.head().clone()];
    let mut everything = chain.clone();
    let people = people();
    for (n, (parent, signer, action)) in shape.iter().enumerate() {
        let parent = parent.get(&made).clone();
        let by = &people[usize::from(*signer) % 4];
        let target = |i: u8| &people[usize::from(i) % 4];
        let version = match *action {
            Action::Rename => child(&parent, by, |r| r.name = format!("Name {n}")),
            Action::Remove(i) => {
                if parent.roster().member(id_of(target(i))).is_none() {
                    continue;
                }
                removing(&parent, target(i), by)
            }
            Action::Demote(i) | Action::Promote(i) => {
                let role = if matches!(action, Action::Demote(_)) {
                    Role::Member
                } else {
                    Role::Facilitator
                };
                if parent.roster().member(id_of(target(i))).is_none() {
                    continue;
                }
                let mut next = parent.next();
                member_mut(&mut next, target(i)).role = role;
                match next.sign(by) {
                    Ok(signed) => signed,
                    Err(_) => continue,
                }
            }
            Action::Leave => {
                if parent.roster().member(id_of(by)).is_none() {
                    continue;
                }
                removing(&parent, by, by)
            }
        };
        if everything.add(version.clone()).is_ok() {
            made.push(version);
        }
    }
    made.remove(0);
    (chain, made)
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Rename),
        any::<u8>().prop_map(Action::Remove),
        any::<u8>().prop_map(Action::Demote),
        any::<u8>().prop_map(Action::Promote),
        Just(Action::Leave),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_arrival_order_gives_the_same_head(
        shape in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), action()), 1..12),
        seed in any::<u64>(),
    ) {
        let (chain, versions) = build(&shape);
        let (reference, _) = add_all(&chain, &versions.iter().collect::<Vec<_>>());
        // Every version twice, in an order drawn from the seed.
        let mut order: Vec<usize> = (0..versions.len()).chain(0..versions.len()).collect();
        let mut state = seed | 1;
        for i in (1..order.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            order.swap(i, usize::try_from(state % (i as u64 + 1)).unwrap());
        }
        let mut chain = chain;
        // Like the engine: hold versions whose parent is unknown and retry.
        let mut held: Vec<usize> = Vec::new();
        for index in order {
            held.push(index);
            loop {
                let before = held.len();
                held.retain(|&i| match chain.add(versions[i].clone()) {
                    Err(RosterError::UnknownParent) => true,
                    Ok(_) | Err(RosterError::Abandoned) => false,
                    Err(other) => panic!("version {i} refused: {other}"),
                });
                if held.len() == before {
                    break;
                }
            }
        }
        prop_assert!(held.is_empty());
        prop_assert_eq!(chain.head(), reference.head());
        prop_assert_eq!(chain.pending_removals(), reference.pending_removals());
        prop_assert_eq!(RosterChain::from_bytes(&chain.to_bytes()), Ok(chain));
    }
}
