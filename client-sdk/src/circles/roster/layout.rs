//! The fixed byte layout of a roster version (see the module docs of
//! [`roster`](super)): encoding, field checks, and parsing that never
//! panics.

use hearth_protocol::keys::{Ed25519PublicKey, Signature, X25519PublicKey};

use super::{
    MAX_DISPLAY_NAME_CHARS, MAX_MEMBERS, MAX_NAME_CHARS, MAX_RULES_BYTES, PublicIdentityKeys,
    ROSTER_LABEL, Roster, RosterError, RosterMember,
};
use crate::circles::{CIRCLE_ID_LEN, CircleId, Role};

/// Type byte of `Encode(X25519 key)`.
const X25519_TYPE: u8 = 0x01;
/// Type byte of `Encode(Ed25519 key)`.
const ED25519_TYPE: u8 = 0x02;
/// Length of `Encode(key)` for both key types.
const ENCODED_KEY_LEN: usize = 33;
/// Length of an Ed25519 signature.
const SIGNATURE_LEN: usize = 64;

/// Role bytes.
const FACILITATOR: u8 = 1;
const MEMBER: u8 = 2;

/// Writes the layout of `roster` signed by `signer`, without checking it:
/// [`validate`] first. Lengths that do not fit are cut to `u16::MAX` (which
/// validation never lets through).
pub(super) fn encode(roster: &Roster, signer: &Ed25519PublicKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(512 + roster.rules.len() + 128 * roster.members.len());
    out.extend_from_slice(ROSTER_LABEL);
    out.extend_from_slice(roster.circle_id.as_bytes());
    out.extend_from_slice(&roster.version.to_be_bytes());
    out.extend_from_slice(&roster.parent);
    out.extend_from_slice(&roster.epoch.to_be_bytes());
    match &roster.parent_circle {
        Some(parent) => {
            out.push(1);
            out.extend_from_slice(parent.as_bytes());
        }
        None => out.push(0),
    }
    put_str(&mut out, &roster.name);
    put_str(&mut out, &roster.rules);
    put_u16(&mut out, roster.members.len());
    for member in &roster.members {
        out.extend_from_slice(&member.identity.sig_key.encode());
        out.extend_from_slice(&member.identity.dh_key.encode());
        out.push(match member.role {
            Role::Facilitator => FACILITATOR,
            Role::Member => MEMBER,
        });
        out.extend_from_slice(&member.added_in.to_be_bytes());
        put_str(&mut out, &member.display_name);
    }
    out.extend_from_slice(&signer.encode());
    out
}

fn put_u16(out: &mut Vec<u8>, value: usize) {
    let value = u16::try_from(value).unwrap_or(u16::MAX);
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let len = bytes.len().min(usize::from(u16::MAX));
    put_u16(out, len);
    out.extend_from_slice(bytes.get(..len).unwrap_or_default());
}

/// Checks every field of `roster` against the layout's limits, and that
/// members are strictly sorted by member id. Both signing and parsing call
/// it, so whatever is signed parses.
pub(super) fn validate(roster: &Roster) -> Result<(), RosterError> {
    if roster.version == 0 {
        return Err(RosterError::Invalid("version 0"));
    }
    if (roster.version == 1) != (roster.parent == [0; 32]) {
        return Err(RosterError::Invalid(
            "parent hash (zeros exactly for version 1)",
        ));
    }
    let name_chars = roster.name.chars().count();
    if name_chars == 0 || name_chars > MAX_NAME_CHARS {
        return Err(RosterError::Invalid("circle name length"));
    }
    if roster.rules.len() > MAX_RULES_BYTES {
        return Err(RosterError::Invalid("rules length"));
    }
    if roster.members.is_empty() || roster.members.len() > MAX_MEMBERS {
        return Err(RosterError::Invalid("member count"));
    }
    for member in &roster.members {
        if member.display_name.chars().count() > MAX_DISPLAY_NAME_CHARS {
            return Err(RosterError::Invalid("display name length"));
        }
        if member.added_in == 0 || member.added_in > roster.version {
            return Err(RosterError::Invalid("added_in"));
        }
    }
    let ids: Vec<_> = roster.members.iter().map(RosterMember::member_id).collect();
    if ids.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(RosterError::MemberOrder);
    }
    Ok(())
}

/// Splits a signed version into its layout and signer key, and verifies
/// the signature over the layout with `verify_strict`. The signer key sits
/// at a fixed place (just before the signature), so nothing is parsed
/// before the signature is checked. The key's type byte is covered by the
/// signature and checked by [`parse`].
pub(super) fn verify(bytes: &[u8]) -> Result<(&[u8], Ed25519PublicKey), RosterError> {
    let (layout, signer, signature) = split(bytes)?;
    signer
        .verify_strict(layout, &signature)
        .map_err(|_| RosterError::BadSignature)?;
    Ok((layout, signer))
}

/// Splits a signed version into its layout, the signer key found at its
/// fixed place at the end of the layout, and the signature; checks nothing
/// else.
pub(super) fn split(bytes: &[u8]) -> Result<(&[u8], Ed25519PublicKey, Signature), RosterError> {
    let layout_len = bytes
        .len()
        .checked_sub(SIGNATURE_LEN)
        .filter(|&len| len >= ROSTER_LABEL.len() + ENCODED_KEY_LEN)
        .ok_or(RosterError::Truncated)?;
    let (layout, signature) = bytes.split_at(layout_len);
    let key_start = layout_len - ENCODED_KEY_LEN + 1;
    let signer = Ed25519PublicKey::from_bytes(array(layout.get(key_start..))?);
    let signature = Signature::from_bytes(array(Some(signature))?);
    Ok((layout, signer, signature))
}

/// Parses a layout whose signature [`verify`] checked, and [`validate`]s
/// it. `signer` is the key `verify` used; the layout must end with its
/// encoding.
pub(super) fn parse(layout: &[u8], signer: &Ed25519PublicKey) -> Result<Roster, RosterError> {
    let mut r = Reader(layout);
    if r.take(ROSTER_LABEL.len())? != ROSTER_LABEL {
        return Err(RosterError::Malformed("not a roster layout"));
    }
    let circle_id = CircleId::from_bytes(r.array()?);
    let version = r.u64()?;
    let parent = r.array()?;
    let epoch = r.u64()?;
    let parent_circle = match r.u8()? {
        0 => None,
        1 => Some(CircleId::from_bytes(r.array::<CIRCLE_ID_LEN>()?)),
        _ => return Err(RosterError::Malformed("parent circle flag")),
    };
    let name = r.string(MAX_NAME_CHARS * 4, "circle name length")?;
    let rules = r.string(MAX_RULES_BYTES, "rules length")?;
    let count = usize::from(r.u16()?);
    if count == 0 || count > MAX_MEMBERS {
        return Err(RosterError::Invalid("member count"));
    }
    let members = (0..count)
        .map(|_| r.member())
        .collect::<Result<Vec<_>, _>>()?;
    if r.ed25519()? != *signer {
        return Err(RosterError::Malformed("signer key"));
    }
    if !r.0.is_empty() {
        return Err(RosterError::Malformed("trailing bytes"));
    }
    let roster = Roster {
        circle_id,
        version,
        parent,
        epoch,
        parent_circle,
        name,
        rules,
        members,
    };
    validate(&roster)?;
    Ok(roster)
}

fn array<const N: usize>(bytes: Option<&[u8]>) -> Result<[u8; N], RosterError> {
    bytes
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(RosterError::Truncated)
}

/// Reads a layout front to back; every read past the end is
/// [`RosterError::Truncated`].
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], RosterError> {
        if self.0.len() < len {
            return Err(RosterError::Truncated);
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RosterError> {
        array(Some(self.take(N)?))
    }

    fn u8(&mut self) -> Result<u8, RosterError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    fn u16(&mut self) -> Result<u16, RosterError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, RosterError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A `u16`-length-prefixed UTF-8 string of at most `max_bytes` bytes
    /// (characters are counted by [`validate`]); `field` names the limit.
    fn string(&mut self, max_bytes: usize, field: &'static str) -> Result<String, RosterError> {
        let len = usize::from(self.u16()?);
        if len > max_bytes {
            return Err(RosterError::Invalid(field));
        }
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| RosterError::Malformed("UTF-8"))
    }

    fn key(&mut self, type_byte: u8) -> Result<[u8; 32], RosterError> {
        if self.u8()? != type_byte {
            return Err(RosterError::Malformed("key type"));
        }
        self.array()
    }

    fn ed25519(&mut self) -> Result<Ed25519PublicKey, RosterError> {
        Ok(Ed25519PublicKey::from_bytes(self.key(ED25519_TYPE)?))
    }

    fn member(&mut self) -> Result<RosterMember, RosterError> {
        let sig_key = self.ed25519()?;
        let dh_key = X25519PublicKey::from_bytes(self.key(X25519_TYPE)?);
        let role = match self.u8()? {
            FACILITATOR => Role::Facilitator,
            MEMBER => Role::Member,
            _ => return Err(RosterError::Malformed("role")),
        };
        let added_in = self.u64()?;
        let display_name = self.string(MAX_DISPLAY_NAME_CHARS * 4, "display name length")?;
        Ok(RosterMember {
            identity: PublicIdentityKeys { sig_key, dh_key },
            display_name,
            role,
            added_in,
        })
    }
}
