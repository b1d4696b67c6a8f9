//! The rules of [`RosterChain::add`], the fork choice and the stored chain.

use super::*;
use crate::circles::roster::chain::{MAX_CHAIN_LEN, MAX_PATH};

mod fork;

fn dana() -> IdentityKeyPair {
    identity(1)
}

fn sam() -> IdentityKeyPair {
    identity(2)
}

fn noor() -> IdentityKeyPair {
    identity(3)
}

fn gale() -> IdentityKeyPair {
    identity(4)
}

fn sign(roster: &Roster, by: &IdentityKeyPair) -> SignedRoster {
    roster.sign(by).unwrap()
}

fn without(roster: &Roster, identity: &IdentityKeyPair) -> Roster {
    let mut roster = roster.clone();
    roster.members.retain(|m| m.member_id() != id_of(identity));
    roster
}

/// Dana creates the circle (version 1) and adds Sam as a member (version 2).
fn dana_and_sam() -> RosterChain {
    let base = genesis(&dana());
    let mut chain = RosterChain::new(base.clone());
    let mut v2 = base.next();
    v2.members.push(member(&sam(), Role::Member, 2));
    assert_eq!(chain.add(sign(&v2, &dana())), Ok(Added::NewHead));
    chain
}

/// Dana's circle with Gale as a second facilitator (version 2).
fn two_facilitators() -> RosterChain {
    let base = genesis(&dana());
    let mut chain = RosterChain::new(base.clone());
    let mut v2 = base.next();
    v2.members.push(member(&gale(), Role::Facilitator, 2));
    assert_eq!(chain.add(sign(&v2, &dana())), Ok(Added::NewHead));
    chain
}

/// The head's child with `name`, signed by `by`.
fn renamed(parent: &SignedRoster, name: &str, by: &IdentityKeyPair) -> SignedRoster {
    let mut next = parent.next();
    next.name = name.into();
    sign(&next, by)
}

/// Adds the head's child made by `edit` and signed by `by`.
fn add_edit(
    chain: &mut RosterChain,
    by: &IdentityKeyPair,
    edit: impl FnOnce(&mut Roster),
) -> Result<Added, RosterError> {
    let mut next = chain.head().next();
    edit(&mut next);
    chain.add(sign(&next, by))
}

#[test]
fn a_facilitator_adds_a_member_and_the_head_moves() {
    let mut chain = dana_and_sam();
    let head = chain.head().clone();
    assert_eq!(head.roster().version, 2);
    assert_eq!(chain.head_roster().members.len(), 2);
    assert!(chain.contains(&head.hash()));
    assert!(chain.contains(&head.roster().parent));
    assert!(!chain.contains(&[0; 32]));
    assert_eq!(chain.add(head), Ok(Added::Duplicate));
    let added = add_edit(&mut chain, &dana(), |r| {
        r.members.push(member(&noor(), Role::Member, 3))
    });
    assert_eq!(added, Ok(Added::NewHead));
    assert_eq!(chain.head_roster().members.len(), 3);
}

#[test]
fn a_member_may_not_add_promote_rename_or_remove() {
    let mut chain = dana_and_sam();
    let before = chain.clone();
    let refused = Err(RosterError::NotAuthorized);
    let edits: [fn(&mut Roster); 4] = [
        |r| r.members.push(member(&noor(), Role::Member, 3)),
        |r| member_mut(r, &sam()).role = Role::Facilitator,
        |r| r.name = "Sam's circle".into(),
        |r| {
            r.members.retain(|m| m.member_id() != id_of(&dana()));
            r.epoch += 1;
        },
    ];
    for edit in edits {
        assert_eq!(add_edit(&mut chain, &sam(), edit), refused);
    }
    assert_eq!(chain, before, "a refused version changes nothing");
}

#[test]
fn someone_outside_the_parent_version_may_not_sign() {
    let mut chain = dana_and_sam();
    let outsider = add_edit(&mut chain, &noor(), |r| {
        r.members.push(member(&noor(), Role::Facilitator, 3));
    });
    assert_eq!(outsider, Err(RosterError::NotAuthorized));
}

#[test]
fn a_version_naming_a_facilitator_but_signed_by_another_key_does_not_verify() {
    let chain = dana_and_sam();
    let mut next = chain.head().next();
    next.members.push(member(&noor(), Role::Member, 3));
    let claims_dana = layout::encode(&next, &dana().public().sig_key);
    let forged = sign_layout(claims_dana, &sam());
    assert_eq!(
        SignedRoster::from_bytes(&forged),
        Err(RosterError::BadSignature)
    );
}

#[test]
fn the_version_must_be_the_parents_plus_one() {
    let mut chain = dana_and_sam();
    for version in [2, 4, u64::MAX] {
        let gap = add_edit(&mut chain, &dana(), |r| r.version = version);
        assert_eq!(gap, Err(RosterError::VersionGap { parent: 2, version }));
    }
}

#[test]
fn a_version_of_another_circle_is_refused() {
    let mut chain = dana_and_sam();
    let other = Roster::genesis(
        CircleId::from_bytes([8; 16]),
        "Other",
        keys(&dana()),
        "",
        None,
    );
    assert_eq!(
        chain.add(sign(&other, &dana())),
        Err(RosterError::WrongCircle)
    );
}

#[test]
fn a_version_waits_for_its_parent() {
    let mut chain = dana_and_sam();
    let v3 = renamed(chain.head(), "Renamed", &dana());
    let v4 = renamed(&v3, "Renamed again", &dana());
    assert_eq!(chain.add(v4.clone()), Err(RosterError::UnknownParent));
    assert_eq!(chain.add(v3), Ok(Added::NewHead));
    assert_eq!(chain.add(v4.clone()), Ok(Added::NewHead));
    assert_eq!(chain.head(), &v4);
}

#[test]
fn a_version_that_can_never_attach_is_stale() {
    let mut chain = dana_and_sam();
    let other_genesis = Roster::genesis(CIRCLE, "Impostor", keys(&dana()), "", None);
    assert_eq!(
        chain.add(sign(&other_genesis, &dana())),
        Err(RosterError::Stale)
    );
    let mut orphan = chain.head().next();
    orphan.version = 2;
    orphan.parent = [5; 32];
    assert_eq!(chain.add(sign(&orphan, &dana())), Err(RosterError::Stale));
}

#[test]
fn the_epoch_grows_by_one_exactly_when_someone_is_missing() {
    let mut chain = dana_and_sam();
    let removes_sam = |r: &mut Roster| *r = without(r, &sam());
    assert_eq!(
        add_edit(&mut chain, &dana(), removes_sam),
        Err(RosterError::WrongEpoch {
            expected: 2,
            found: 1
        })
    );
    assert_eq!(
        add_edit(&mut chain, &dana(), |r| r.epoch += 1),
        Err(RosterError::WrongEpoch {
            expected: 1,
            found: 2
        })
    );
    assert_eq!(
        add_edit(&mut chain, &dana(), |r| {
            removes_sam(r);
            r.epoch += 2;
        }),
        Err(RosterError::WrongEpoch {
            expected: 2,
            found: 3
        })
    );
    let replaced = add_edit(&mut chain, &dana(), |r| {
        removes_sam(r);
        r.members.push(member(&noor(), Role::Member, 3));
        r.epoch += 1;
    });
    assert_eq!(replaced, Ok(Added::NewHead));
    assert_eq!(chain.head_roster().epoch, 2);
    let added = add_edit(&mut chain, &dana(), |r| {
        r.members.push(member(&sam(), Role::Member, 4))
    });
    assert_eq!(added, Ok(Added::NewHead));
    assert_eq!(chain.head_roster().epoch, 2, "adding keeps the epoch");
}

#[test]
fn kept_members_keep_their_keys_and_added_in() {
    let mut chain = dana_and_sam();
    let edits: [fn(&mut Roster); 2] = [
        |r| member_mut(r, &sam()).identity.dh_key = X25519PublicKey::from_bytes([9; 32]),
        |r| member_mut(r, &sam()).added_in = 1,
    ];
    for edit in edits {
        assert_eq!(
            add_edit(&mut chain, &dana(), edit),
            Err(RosterError::KeptMemberChanged)
        );
    }
    let renamed_member = add_edit(&mut chain, &dana(), |r| {
        member_mut(r, &sam()).display_name = "Samuel".into();
    });
    assert_eq!(renamed_member, Ok(Added::NewHead));
}

#[test]
fn new_members_are_added_in_this_version() {
    let mut chain = dana_and_sam();
    for added_in in [1, 2] {
        let added = add_edit(&mut chain, &dana(), |r| {
            r.members.push(member(&noor(), Role::Member, added_in));
        });
        assert_eq!(added, Err(RosterError::NewMemberAddedIn));
    }
}

#[test]
fn a_facilitator_must_remain() {
    let mut chain = dana_and_sam();
    let demoted = add_edit(&mut chain, &dana(), |r| {
        member_mut(r, &dana()).role = Role::Member;
    });
    assert_eq!(demoted, Err(RosterError::NoFacilitator));
    let handed_over = add_edit(&mut chain, &dana(), |r| {
        member_mut(r, &dana()).role = Role::Member;
        member_mut(r, &sam()).role = Role::Facilitator;
    });
    assert_eq!(handed_over, Ok(Added::NewHead));
}

#[test]
fn the_parent_circle_never_changes() {
    let mut chain = dana_and_sam();
    let moved = add_edit(&mut chain, &dana(), |r| {
        r.parent_circle = Some(CircleId::from_bytes([9; 16]));
    });
    assert_eq!(moved, Err(RosterError::ParentCircleChanged));
}

#[test]
fn a_member_may_sign_its_own_leave() {
    let mut chain = dana_and_sam();
    let left = add_edit(&mut chain, &sam(), |r| {
        *r = without(r, &sam());
        r.epoch += 1;
    });
    assert_eq!(left, Ok(Added::NewHead));
    assert_eq!(chain.head().signer(), id_of(&sam()));
    assert!(chain.head_roster().member(id_of(&sam())).is_none());
    assert_eq!(chain.head_roster().epoch, 2);
}

#[test]
fn a_leave_may_change_nothing_else() {
    let mut chain = dana_and_sam();
    let leave = |r: &mut Roster| {
        *r = without(r, &sam());
        r.epoch += 1;
    };
    let refused = Err(RosterError::NotAuthorized);
    assert_eq!(
        add_edit(&mut chain, &sam(), |r| {
            leave(r);
            r.name = "Bye".into();
        }),
        refused
    );
    assert_eq!(
        add_edit(&mut chain, &sam(), |r| {
            leave(r);
            r.rules = "None".into();
        }),
        refused
    );
    assert_eq!(
        add_edit(&mut chain, &sam(), |r| {
            leave(r);
            r.members.push(member(&noor(), Role::Member, 3));
        }),
        refused
    );
    assert_eq!(
        add_edit(&mut chain, &sam(), |r| {
            leave(r);
            member_mut(r, &dana()).display_name = "D".into();
        }),
        refused
    );
    assert_eq!(
        add_edit(&mut chain, &sam(), |r| *r = without(r, &sam())),
        Err(RosterError::WrongEpoch {
            expected: 2,
            found: 1
        })
    );
}

#[test]
fn a_facilitator_may_leave_while_another_remains() {
    let mut chain = two_facilitators();
    let sam_added = add_edit(&mut chain, &dana(), |r| {
        r.members.push(member(&sam(), Role::Member, 3));
    });
    assert_eq!(sam_added, Ok(Added::NewHead));
    let dana_left = add_edit(&mut chain, &dana(), |r| {
        *r = without(r, &dana());
        r.epoch += 1;
    });
    assert_eq!(dana_left, Ok(Added::NewHead));
    let last_left = add_edit(&mut chain, &gale(), |r| {
        *r = without(r, &gale());
        r.epoch += 1;
    });
    assert_eq!(last_left, Err(RosterError::NoFacilitator));
}

/// Adds `versions` to a copy of `chain` in order; returns the chain and
/// what each add said.
fn add_all(
    chain: &RosterChain,
    versions: &[&SignedRoster],
) -> (RosterChain, Vec<Result<Added, RosterError>>) {
    let mut chain = chain.clone();
    let results = versions.iter().map(|&v| chain.add(v.clone())).collect();
    (chain, results)
}

#[test]
fn the_chain_keeps_the_last_64_versions_of_its_path() {
    let base = genesis(&dana());
    let mut chain = RosterChain::new(base.clone());
    let mut versions = vec![base];
    for n in 2..=70 {
        let next = renamed(versions.last().unwrap(), &format!("Name {n}"), &dana());
        assert_eq!(chain.add(next.clone()), Ok(Added::NewHead));
        versions.push(next);
    }
    let oldest_kept = versions.len() - MAX_PATH;
    assert!(chain.contains(&versions[oldest_kept].hash()));
    assert!(!chain.contains(&versions[oldest_kept - 1].hash()));
    assert_eq!(chain.head(), versions.last().unwrap());
    assert_eq!(chain.add(versions[3].clone()), Err(RosterError::Stale));
    let fork_below = renamed(&versions[oldest_kept - 1], "Late fork", &dana());
    assert_eq!(chain.add(fork_below), Err(RosterError::Stale));
    let fork_at_base = renamed(&versions[oldest_kept], "Fork at base", &dana());
    assert!(chain.add(fork_at_base).is_ok());
    let stored = chain.to_bytes();
    assert_eq!(RosterChain::from_bytes(&stored), Ok(chain));
}

/// A chain that has a path and a side branch: Dana (senior) and Gale rename
/// at once, Gale goes on from her losing version.
pub(super) fn eventful_chain() -> RosterChain {
    let chain = two_facilitators();
    let a3 = renamed(chain.head(), "A3", &dana());
    let b3 = renamed(chain.head(), "B3", &gale());
    let b4 = renamed(&b3, "B4", &gale());
    let (chain, _) = add_all(&chain, &[&a3, &b3, &b4]);
    assert_eq!(chain.head(), &a3);
    assert_eq!(chain.side_versions().count(), 2);
    chain
}

#[test]
fn a_stored_chain_round_trips() {
    let chain = eventful_chain();
    let bytes = chain.to_bytes();
    let back = RosterChain::from_bytes(&bytes).unwrap();
    assert_eq!(back, chain);
    assert_eq!(back.to_bytes(), bytes);
    assert_eq!(back.head_roster().version, 3);
    let stored = RosterChain::from_stored_bytes(&bytes).unwrap();
    assert_eq!(stored, chain);
    assert_eq!(stored.to_bytes(), bytes);
}

#[test]
fn a_chain_from_the_store_skips_signatures_but_not_the_layout_or_links() {
    let bytes = eventful_chain().to_bytes();
    // A flipped byte in the last version's signature: the store's own
    // encryption vouches for it, so the trusted read accepts it, the
    // checking read does not. Walk `format ‖ count (u16) ‖ (u32 len ‖ version)*`
    // to the end of the last version.
    let mut end = 3;
    for _ in 0..u16::from_be_bytes([bytes[1], bytes[2]]) {
        let len = u32::from_be_bytes(bytes[end..end + 4].try_into().unwrap()) as usize;
        end += 4 + len;
    }
    let mut flipped = bytes.clone();
    flipped[end - 1] ^= 1;
    assert!(RosterChain::from_bytes(&flipped).is_err());
    assert!(RosterChain::from_stored_bytes(&flipped).is_ok());
    // Truncation and broken structure are refused either way.
    for len in 0..bytes.len() {
        assert!(
            RosterChain::from_stored_bytes(&bytes[..len]).is_err(),
            "prefix {len}"
        );
    }
}

#[test]
fn a_damaged_stored_chain_is_rejected() {
    let chain = eventful_chain();
    let bytes = chain.to_bytes();
    for len in 0..bytes.len() {
        assert!(
            RosterChain::from_bytes(&bytes[..len]).is_err(),
            "prefix {len}"
        );
    }
    let edited = |edit: fn(&mut Vec<u8>)| {
        let mut bytes = bytes.clone();
        edit(&mut bytes);
        RosterChain::from_bytes(&bytes)
    };
    assert_eq!(
        edited(|b| b.push(0)),
        Err(RosterError::Malformed("trailing bytes"))
    );
    assert_eq!(
        edited(|b| b[0] = 3),
        Err(RosterError::Malformed("stored chain format"))
    );
    assert_eq!(
        edited(|b| b[1..3].copy_from_slice(&[0, 0])),
        Err(RosterError::Malformed("stored chain length"))
    );
    assert_eq!(
        edited(|b| b[1..3].copy_from_slice(&[0, 97])),
        Err(RosterError::Malformed("stored chain length"))
    );
    assert_eq!(edited(|b| b[11] ^= 1), Err(RosterError::BadSignature));
    assert!(matches!(
        RosterChain::from_bytes(&vec![1; MAX_CHAIN_LEN + 1]),
        Err(RosterError::TooLarge { .. })
    ));

    // Two versions that do not link up.
    let base = genesis(&dana());
    let grandchild = renamed(&renamed(&base, "Skipped", &dana()), "Grandchild", &dana());
    let mut unlinked = vec![1, 2];
    for version in [&base, &grandchild] {
        let bytes = version.to_bytes();
        unlinked.extend_from_slice(&u32::try_from(bytes.len()).unwrap().to_be_bytes());
        unlinked.extend_from_slice(&bytes);
    }
    unlinked.extend_from_slice(&[0, 0]);
    assert_eq!(
        RosterChain::from_bytes(&unlinked),
        Err(RosterError::Malformed("stored chain links"))
    );
    unlinked.truncate(unlinked.len() - 2 - 4 - grandchild.to_bytes().len());
    unlinked[1] = 1;
    unlinked.extend_from_slice(&[0, 0]);
    assert_eq!(
        RosterChain::from_bytes(&unlinked),
        Ok(RosterChain::new(base))
    );
}
