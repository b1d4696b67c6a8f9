//! Invite links.
//!
//! Personal invite links: `hearth://contact/<payload>`, where the payload is
//! the unpadded base64url encoding of a `hearth.content.v1.ContactInvite`:
//! the inviter's relay address (with its fingerprint), mailbox id, a send
//! token registered for this link, a one-time secret, the inviter's member
//! id and display name.
//!
//! Whoever holds a link can become the inviter's contact once: the secret
//! is consumed by the first contact request that carries it. The member id
//! lets the acceptor check that the keys the relay hands out really are the
//! inviter's.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hearth_proto::content as pb;
use hearth_protocol::address::RelayAddress;
use zeroize::Zeroize as _;

use crate::circles::CircleId;
use crate::ids::{MEMBER_ID_LEN, MemberId};

/// The scheme and path every personal invite link starts with.
pub const INVITE_PREFIX: &str = "hearth://contact/";

/// The scheme and path every circle invite link starts with.
pub const CIRCLE_INVITE_PREFIX: &str = "hearth://invite/";

/// Longest payload accepted (base64 characters): invites are small.
const MAX_PAYLOAD_LEN: usize = 2048;

/// Length of an invite's one-time secret and send token.
pub(crate) const SECRET_LEN: usize = 32;

/// A decoded invite link.
#[derive(Clone, PartialEq, Eq)]
pub struct Invite {
    /// The inviter's relay.
    pub relay: RelayAddress,
    /// The inviter's mailbox.
    pub mailbox_id: [u8; 32],
    /// The send token registered for this link.
    pub send_token: [u8; SECRET_LEN],
    /// The one-time secret.
    pub secret: [u8; SECRET_LEN],
    /// The inviter's member id.
    pub member_id: MemberId,
    /// The inviter's display name (may be empty).
    pub display_name: String,
}

/// Why a string is not a usable invite link. Names the problem only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidInvite {
    /// It does not start with `hearth://contact/` (a personal link) or
    /// `hearth://invite/` (a circle link), whichever was expected.
    #[error(
        "not a link of the expected kind (hearth://contact/... for a contact, hearth://invite/... for a circle)"
    )]
    Prefix,
    /// The payload is not base64url or is too long.
    #[error("the link is damaged (bad encoding)")]
    Encoding,
    /// The payload does not decode or a field has the wrong length.
    #[error("the link is damaged (field {0})")]
    Field(&'static str),
}

impl Invite {
    /// The link text.
    pub fn to_link(&self) -> String {
        let mut payload = pb::ContactInvite {
            relay: self.relay.to_string(),
            mailbox_id: self.mailbox_id.to_vec(),
            send_token: self.send_token.to_vec(),
            secret: self.secret.to_vec(),
            display_name: self.display_name.clone(),
            member_id: self.member_id.as_bytes().to_vec(),
        };
        let link = encode_link(INVITE_PREFIX, &payload);
        payload.send_token.zeroize();
        payload.secret.zeroize();
        link
    }
}

impl FromStr for Invite {
    type Err = InvalidInvite;

    fn from_str(link: &str) -> Result<Self, Self::Err> {
        let invite: pb::ContactInvite = decode_link(INVITE_PREFIX, link)?;
        Ok(Self {
            relay: relay(&invite.relay)?,
            mailbox_id: exact(&invite.mailbox_id, "mailbox_id")?,
            send_token: exact(&invite.send_token, "send_token")?,
            secret: exact(&invite.secret, "secret")?,
            member_id: MemberId::from_bytes(exact::<MEMBER_ID_LEN>(
                &invite.member_id,
                "member_id",
            )?),
            display_name: invite.display_name,
        })
    }
}

fn exact<const N: usize>(bytes: &[u8], field: &'static str) -> Result<[u8; N], InvalidInvite> {
    bytes.try_into().map_err(|_| InvalidInvite::Field(field))
}

fn relay(text: &str) -> Result<RelayAddress, InvalidInvite> {
    text.parse().map_err(|_| InvalidInvite::Field("relay"))
}

/// `prefix` ‖ base64url(payload).
fn encode_link<M: prost::Message>(prefix: &str, payload: &M) -> String {
    let bytes = zeroize::Zeroizing::new(payload.encode_to_vec());
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes.as_slice()))
}

/// The payload of a link that must start with `prefix`.
fn decode_link<M: prost::Message + Default>(prefix: &str, link: &str) -> Result<M, InvalidInvite> {
    let payload = link
        .trim()
        .strip_prefix(prefix)
        .ok_or(InvalidInvite::Prefix)?;
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(InvalidInvite::Encoding);
    }
    let bytes = zeroize::Zeroizing::new(
        URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| InvalidInvite::Encoding)?,
    );
    M::decode(bytes.as_slice()).map_err(|_| InvalidInvite::Field("payload"))
}

/// A decoded circle invite link (`hearth://invite/...`).
#[derive(Clone, PartialEq, Eq)]
pub struct CircleInvite {
    /// The inviting facilitator's relay.
    pub relay: RelayAddress,
    /// The facilitator's mailbox.
    pub mailbox_id: [u8; 32],
    /// The send token registered for this link.
    pub send_token: [u8; SECRET_LEN],
    /// The circle.
    pub circle_id: CircleId,
    /// The one-time secret.
    pub secret: [u8; SECRET_LEN],
    /// When the facilitator stops accepting it (ms since the Unix epoch).
    pub expires_at_ms: u64,
    /// The facilitator's member id.
    pub member_id: MemberId,
    /// The facilitator's display name.
    pub display_name: String,
    /// The circle's name.
    pub circle_name: String,
}

impl CircleInvite {
    /// The link text.
    pub fn to_link(&self) -> String {
        let mut payload = pb::CircleInvite {
            relay: self.relay.to_string(),
            mailbox_id: self.mailbox_id.to_vec(),
            send_token: self.send_token.to_vec(),
            circle_id: self.circle_id.as_bytes().to_vec(),
            secret: self.secret.to_vec(),
            expires_at_ms: self.expires_at_ms,
            member_id: self.member_id.as_bytes().to_vec(),
            display_name: self.display_name.clone(),
            circle_name: self.circle_name.clone(),
        };
        let link = encode_link(CIRCLE_INVITE_PREFIX, &payload);
        payload.send_token.zeroize();
        payload.secret.zeroize();
        link
    }
}

impl FromStr for CircleInvite {
    type Err = InvalidInvite;

    fn from_str(link: &str) -> Result<Self, Self::Err> {
        let invite: pb::CircleInvite = decode_link(CIRCLE_INVITE_PREFIX, link)?;
        Ok(Self {
            relay: relay(&invite.relay)?,
            mailbox_id: exact(&invite.mailbox_id, "mailbox_id")?,
            send_token: exact(&invite.send_token, "send_token")?,
            circle_id: CircleId::from_bytes(exact(&invite.circle_id, "circle_id")?),
            secret: exact(&invite.secret, "secret")?,
            expires_at_ms: invite.expires_at_ms,
            member_id: MemberId::from_bytes(exact(&invite.member_id, "member_id")?),
            display_name: invite.display_name.chars().take(64).collect(),
            circle_name: invite.circle_name.chars().take(64).collect(),
        })
    }
}

impl fmt::Debug for CircleInvite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircleInvite")
            .field("relay", &self.relay)
            .field("circle_id", &self.circle_id)
            .field("member_id", &self.member_id)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Invite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invite")
            .field("relay", &self.relay)
            .field("member_id", &self.member_id)
            .field("display_name", &self.display_name)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_protocol::address::Fingerprint;
    use prost::Message as _;

    fn invite() -> Invite {
        Invite {
            relay: RelayAddress {
                fingerprint: Fingerprint([9; 32]),
                host: "relay.example.org".into(),
                port: 4433,
            },
            mailbox_id: [1; 32],
            send_token: [2; 32],
            secret: [3; 32],
            member_id: MemberId::from_bytes([4; 16]),
            display_name: "Dana".into(),
        }
    }

    #[test]
    fn a_link_round_trips() {
        let link = invite().to_link();
        assert!(link.starts_with("hearth://contact/"));
        assert!(
            link[INVITE_PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(link.parse::<Invite>(), Ok(invite()));
        assert_eq!(format!("  {link}\n").parse::<Invite>(), Ok(invite()));
    }

    #[test]
    fn damaged_links_name_the_problem() {
        assert_eq!("https://x".parse::<Invite>(), Err(InvalidInvite::Prefix));
        assert_eq!(
            "hearth://contact/!!".parse::<Invite>(),
            Err(InvalidInvite::Encoding)
        );
        let mut short = invite();
        short.display_name.clear();
        let link = short.to_link();
        // Cut the payload: some field ends up missing or short.
        let cut = &link[..link.len() - 10];
        assert!(matches!(
            cut.parse::<Invite>(),
            Err(InvalidInvite::Field(_) | InvalidInvite::Encoding)
        ));
        let no_relay = pb::ContactInvite {
            relay: "nonsense".into(),
            ..Default::default()
        };
        let link = format!(
            "{INVITE_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(no_relay.encode_to_vec())
        );
        assert_eq!(link.parse::<Invite>(), Err(InvalidInvite::Field("relay")));
    }

    #[test]
    fn a_circle_link_round_trips_and_is_not_a_contact_link() {
        let base = invite();
        let circle = CircleInvite {
            relay: base.relay,
            mailbox_id: [1; 32],
            send_token: [2; 32],
            circle_id: CircleId::from_bytes([5; 16]),
            secret: [3; 32],
            expires_at_ms: 1_700_000_000_000,
            member_id: MemberId::from_bytes([4; 16]),
            display_name: "Dana".into(),
            circle_name: "Tuesday group".into(),
        };
        let link = circle.to_link();
        assert!(link.starts_with(CIRCLE_INVITE_PREFIX));
        assert_eq!(link.parse::<CircleInvite>(), Ok(circle.clone()));
        assert_eq!(link.parse::<Invite>(), Err(InvalidInvite::Prefix));
        assert_eq!(
            invite().to_link().parse::<CircleInvite>(),
            Err(InvalidInvite::Prefix)
        );
        assert!(!format!("{circle:?}").contains("secret"));
    }

    #[test]
    fn debug_hides_the_secret_and_token() {
        let shown = format!("{:?}", invite());
        assert!(
            !shown.contains("secret") && !shown.contains("send_token"),
            "{shown}"
        );
    }
}
