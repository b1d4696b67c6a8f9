//! Roster layout, signing and parsing tests; the chain rules and fork
//! choice are tested in [`chain`].

mod chain;

use hearth_protocol::keys::{Ed25519PublicKey, IdentityKeyPair, X25519PublicKey};
use sha2::{Digest as _, Sha256};

use super::*;

/// The circle every test uses.
pub(super) const CIRCLE: CircleId = CircleId::from_bytes([7; 16]);

/// A deterministic device identity.
pub(super) fn identity(n: u8) -> IdentityKeyPair {
    IdentityKeyPair::from_secrets(&[n; 32], &[n.wrapping_add(100); 32])
}

pub(super) fn keys(identity: &IdentityKeyPair) -> PublicIdentityKeys {
    identity.public().into()
}

pub(super) fn id_of(identity: &IdentityKeyPair) -> MemberId {
    MemberId::of(&identity.public().sig_key)
}

pub(super) fn member(identity: &IdentityKeyPair, role: Role, added_in: u64) -> RosterMember {
    RosterMember {
        identity: keys(identity),
        display_name: format!("member {}", identity.expose_sig_seed()[0]),
        role,
        added_in,
    }
}

/// Version 1 of [`CIRCLE`], created by `creator`.
pub(super) fn genesis(creator: &IdentityKeyPair) -> SignedRoster {
    Roster::genesis(CIRCLE, "Tuesday group", keys(creator), "Dana", None)
        .sign(creator)
        .unwrap()
}

/// Signs `roster` as it is, without the field checks of [`Roster::sign`],
/// to build versions an honest client would never sign.
pub(super) fn sign_unchecked(roster: &Roster, signer: &IdentityKeyPair) -> Vec<u8> {
    sign_layout(layout::encode(roster, &signer.public().sig_key), signer)
}

/// A roster with every field in use: a parent circle, rules, three members
/// and non-ASCII text.
fn full_roster() -> Roster {
    let mut roster = Roster::genesis(
        CIRCLE,
        "Grupo de apoyo ☕",
        keys(&identity(1)),
        "Dana",
        Some(CircleId::from_bytes([9; 16])),
    );
    roster.version = 3;
    roster.parent = [0xaa; 32];
    roster.epoch = 2;
    roster.rules = "Be kind.\nWhat is said here stays here.".into();
    roster.members.push(member(&identity(2), Role::Member, 2));
    roster
        .members
        .push(member(&identity(3), Role::Facilitator, 3));
    roster.members.sort_by_key(RosterMember::member_id);
    roster
}

/// The member of `roster` whose identity is `identity`, to edit.
pub(super) fn member_mut<'a>(
    roster: &'a mut Roster,
    identity: &IdentityKeyPair,
) -> &'a mut RosterMember {
    let id = id_of(identity);
    roster
        .members
        .iter_mut()
        .find(|m| m.member_id() == id)
        .unwrap()
}

fn parse(bytes: &[u8]) -> Result<SignedRoster, RosterError> {
    SignedRoster::from_bytes(bytes)
}

#[test]
fn a_signed_version_round_trips() {
    let signed = full_roster().sign(&identity(1)).unwrap();
    let back = parse(&signed.to_bytes()).unwrap();
    assert_eq!(back, signed);
    assert_eq!(back.roster().name, "Grupo de apoyo ☕");
    assert_eq!(back.roster().members.len(), 3);
    assert_eq!(back.signer(), id_of(&identity(1)));
    assert_eq!(back.signer_key(), &identity(1).public().sig_key);
    assert_eq!(back.hash(), signed.hash());
}

#[test]
fn the_layout_is_the_documented_bytes() {
    let dana = identity(1);
    let signed = genesis(&dana);
    let sig_key = dana.public().sig_key.encode();
    let mut expected = Vec::new();
    expected.extend_from_slice(b"Hearth_v1_Roster");
    expected.extend_from_slice(&[7; 16]);
    expected.extend_from_slice(&1u64.to_be_bytes());
    expected.extend_from_slice(&[0; 32]);
    expected.extend_from_slice(&1u64.to_be_bytes()); // epoch
    expected.push(0); // no parent circle
    expected.extend_from_slice(&13u16.to_be_bytes());
    expected.extend_from_slice(b"Tuesday group");
    expected.extend_from_slice(&0u16.to_be_bytes()); // no rules
    expected.extend_from_slice(&1u16.to_be_bytes()); // one member
    expected.extend_from_slice(&sig_key);
    expected.extend_from_slice(&dana.public().dh_key.encode());
    expected.push(1); // facilitator
    expected.extend_from_slice(&1u64.to_be_bytes()); // added_in
    expected.extend_from_slice(&4u16.to_be_bytes());
    expected.extend_from_slice(b"Dana");
    expected.extend_from_slice(&sig_key); // signer

    let bytes = signed.to_bytes();
    let (layout, signature) = bytes.split_at(bytes.len() - 64);
    assert_eq!(layout, expected);
    let signature = Signature::from_bytes(signature.try_into().unwrap());
    assert_eq!(
        dana.public().sig_key.verify_strict(layout, &signature),
        Ok(())
    );
    let hash: [u8; 32] =
        Sha256::digest([b"Hearth_v1_RosterHash".as_slice(), &bytes].concat()).into();
    assert_eq!(signed.hash(), hash);
}

#[test]
fn every_changed_byte_is_a_bad_signature() {
    let bytes = full_roster().sign(&identity(1)).unwrap().to_bytes();
    for position in 0..bytes.len() {
        for flip in [0x01, 0x80] {
            let mut tampered = bytes.clone();
            tampered[position] ^= flip;
            assert_eq!(
                parse(&tampered),
                Err(RosterError::BadSignature),
                "byte {position} ^ {flip:#x}"
            );
        }
    }
}

#[test]
fn truncated_extended_and_oversized_input_is_rejected() {
    let bytes = full_roster().sign(&identity(1)).unwrap().to_bytes();
    for len in 0..bytes.len() {
        assert!(parse(&bytes[..len]).is_err(), "prefix of {len} bytes");
    }
    assert_eq!(parse(&[]), Err(RosterError::Truncated));
    assert_eq!(parse(&bytes[..100]), Err(RosterError::Truncated));
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(parse(&longer), Err(RosterError::BadSignature));
    assert_eq!(
        parse(&vec![0; MAX_SIGNED_LEN + 1]),
        Err(RosterError::TooLarge {
            len: MAX_SIGNED_LEN + 1,
            limit: MAX_SIGNED_LEN
        })
    );
}

/// Signs `layout` after `edit` changed it, and parses the result.
fn parse_edited(edit: impl FnOnce(&mut Vec<u8>)) -> Result<SignedRoster, RosterError> {
    let dana = identity(1);
    let roster = Roster::genesis(CIRCLE, "ab", keys(&dana), "D", None);
    let mut layout = layout::encode(&roster, &dana.public().sig_key);
    edit(&mut layout);
    parse(&sign_layout(layout, &dana))
}

#[test]
fn a_validly_signed_malformed_layout_is_rejected() {
    // Offsets in the genesis above: parent circle flag at 80, the name at
    // 81..85, the first member from 89 (its role byte at 89 + 66).
    assert!(parse_edited(|_| {}).is_ok());
    type Edit = fn(&mut Vec<u8>);
    let cases: [(&str, Edit, RosterError); 8] = [
        (
            "label",
            |l| l[0] = b'h',
            RosterError::Malformed("not a roster layout"),
        ),
        (
            "flag",
            |l| l[80] = 2,
            RosterError::Malformed("parent circle flag"),
        ),
        ("utf-8", |l| l[83] = 0xff, RosterError::Malformed("UTF-8")),
        (
            "member key type",
            |l| l[89] = 0x01,
            RosterError::Malformed("key type"),
        ),
        (
            "dh key type",
            |l| l[89 + 33] = 0x02,
            RosterError::Malformed("key type"),
        ),
        ("role", |l| l[89 + 66] = 3, RosterError::Malformed("role")),
        (
            "count",
            |l| l[87..89].copy_from_slice(&0u16.to_be_bytes()),
            RosterError::Invalid("member count"),
        ),
        (
            "trailing bytes",
            |l| {
                let signer = l[l.len() - 33..].to_vec();
                l.extend_from_slice(&signer);
            },
            RosterError::Malformed("trailing bytes"),
        ),
    ];
    for (what, edit, error) in cases {
        assert_eq!(parse_edited(edit), Err(error), "{what}");
    }
    let signer_type = parse_edited(|l| {
        let at = l.len() - 33;
        l[at] = 0x01;
    });
    assert_eq!(signer_type, Err(RosterError::Malformed("key type")));
    // The member list ends early: only the signer key follows the count.
    let short = parse_edited(|l| {
        let signer = l[l.len() - 33..].to_vec();
        l.truncate(89);
        l.extend_from_slice(&signer);
    });
    assert_eq!(short, Err(RosterError::Truncated));
}

/// Signs `roster` unchecked and parses it; also signs it checked. Both
/// must give the same result.
fn check_both(roster: &Roster) -> Result<(), RosterError> {
    let parsed = parse(&sign_unchecked(roster, &identity(1))).map(|_| ());
    let signed = roster.sign(&identity(1)).map(|_| ());
    assert_eq!(parsed, signed);
    parsed
}

#[test]
fn fields_out_of_range_are_refused_when_signing_and_parsing() {
    let base = full_roster();
    let invalid = |edit: fn(&mut Roster)| {
        let mut roster = base.clone();
        edit(&mut roster);
        check_both(&roster)
    };
    assert_eq!(check_both(&base), Ok(()));
    assert_eq!(invalid(|r| r.name = "x".repeat(64)), Ok(()));
    assert_eq!(invalid(|r| r.name = "é".repeat(64)), Ok(()));
    assert_eq!(invalid(|r| r.rules = "r".repeat(4_000)), Ok(()));
    let too_long = Err(RosterError::Invalid("circle name length"));
    assert_eq!(invalid(|r| r.name = "x".repeat(65)), too_long);
    assert_eq!(invalid(|r| r.name = "é".repeat(65)), too_long);
    assert_eq!(invalid(|r| r.name.clear()), too_long);
    assert_eq!(
        invalid(|r| r.rules = "r".repeat(4_001)),
        Err(RosterError::Invalid("rules length"))
    );
    assert_eq!(
        invalid(|r| r.members[1].display_name = "n".repeat(65)),
        Err(RosterError::Invalid("display name length"))
    );
    assert_eq!(
        invalid(|r| r.members.clear()),
        Err(RosterError::Invalid("member count"))
    );
    assert_eq!(
        invalid(|r| r.version = 0),
        Err(RosterError::Invalid("version 0"))
    );
    let parent = Err(RosterError::Invalid(
        "parent hash (zeros exactly for version 1)",
    ));
    assert_eq!(invalid(|r| r.parent = [0; 32]), parent);
    assert_eq!(invalid(|r| r.version = 1), parent);
    assert_eq!(
        invalid(|r| r.members[1].added_in = 4),
        Err(RosterError::Invalid("added_in"))
    );
    assert_eq!(
        invalid(|r| r.members[1].added_in = 0),
        Err(RosterError::Invalid("added_in"))
    );
}

#[test]
fn signing_sorts_members_and_refuses_duplicates() {
    let mut roster = full_roster();
    roster
        .members
        .sort_by_key(|m| std::cmp::Reverse(m.member_id()));
    let signed = roster.sign(&identity(1)).unwrap();
    let ids: Vec<_> = signed
        .roster()
        .members
        .iter()
        .map(RosterMember::member_id)
        .collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
    assert_eq!(
        parse(&sign_unchecked(&roster, &identity(1))),
        Err(RosterError::MemberOrder)
    );

    let mut duplicate = full_roster();
    duplicate
        .members
        .push(member(&identity(2), Role::Member, 3));
    assert_eq!(duplicate.sign(&identity(1)), Err(RosterError::MemberOrder));
    duplicate.members.sort_by_key(RosterMember::member_id);
    assert_eq!(
        parse(&sign_unchecked(&duplicate, &identity(1))),
        Err(RosterError::MemberOrder)
    );
}

#[test]
fn member_count_and_total_size_are_bounded() {
    let fake = |n: usize, name: &str| RosterMember {
        identity: PublicIdentityKeys {
            sig_key: Ed25519PublicKey::from_bytes(
                [n as u8, (n >> 8) as u8, 1, 2]
                    .repeat(8)
                    .try_into()
                    .unwrap(),
            ),
            dh_key: X25519PublicKey::from_bytes([5; 32]),
        },
        display_name: name.to_owned(),
        role: Role::Facilitator,
        added_in: 1,
    };
    let mut roster = Roster::genesis(CIRCLE, "big", keys(&identity(1)), "", None);
    roster.members = (0..256).map(|n| fake(n, "n")).collect();
    assert!(roster.sign(&identity(1)).is_ok());
    roster.members.push(fake(256, "n"));
    assert_eq!(
        roster.sign(&identity(1)),
        Err(RosterError::Invalid("member count"))
    );
    // 256 display names of 64 three-byte characters do not fit in 64 KiB.
    roster.members = (0..256).map(|n| fake(n, &"€".repeat(64))).collect();
    assert!(matches!(
        roster.sign(&identity(1)),
        Err(RosterError::TooLarge {
            limit: MAX_SIGNED_LEN,
            ..
        })
    ));
}

#[test]
fn genesis_and_next_set_the_chain_fields() {
    let dana = identity(1);
    let signed = genesis(&dana);
    let roster = signed.roster();
    assert_eq!(
        (roster.version, roster.epoch, roster.parent),
        (1, 1, [0; 32])
    );
    assert!(roster.is_facilitator(id_of(&dana)));
    assert!(!roster.is_facilitator(id_of(&identity(2))));
    assert_eq!(roster.member(id_of(&dana)).unwrap().display_name, "Dana");
    let next = signed.next();
    assert_eq!((next.version, next.parent), (2, signed.hash()));
    assert_eq!(next.members, roster.members);
}

#[test]
fn debug_output_hides_names_and_rules() {
    let signed = full_roster().sign(&identity(1)).unwrap();
    let shown = format!("{signed:?} {:?}", RosterChain::new(signed.clone()));
    for secret in ["Grupo", "kind", "Dana", "member 2"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("version: 3"), "{shown}");
}

#[test]
fn diff_lists_what_changed() {
    let dana = identity(1);
    let old = full_roster();
    let mut new = old.next([1; 32]);
    new.version = 4;
    new.name = "Renamed".into();
    new.members.retain(|m| m.member_id() != id_of(&identity(2)));
    member_mut(&mut new, &dana).role = Role::Member;
    new.members.push(member(&identity(4), Role::Member, 4));
    let diff = super::diff(&old, &new);
    assert_eq!(
        diff,
        RosterDiff {
            added: vec![id_of(&identity(4))],
            removed: vec![id_of(&identity(2))],
            role_changes: vec![(id_of(&dana), Role::Member)],
            renamed: true,
            rules_changed: false,
        }
    );
    assert!(super::diff(&old, &old).is_empty());

    let mut rejoined = old.clone();
    rejoined.rules.clear();
    member_mut(&mut rejoined, &identity(2)).added_in = 3;
    let diff = super::diff(&old, &rejoined);
    assert_eq!(diff.added, vec![id_of(&identity(2))]);
    assert_eq!(diff.removed, vec![id_of(&identity(2))]);
    assert!(diff.rules_changed && !diff.renamed);
}
