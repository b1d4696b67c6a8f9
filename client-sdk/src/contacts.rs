//! Contacts as the app sees them, and their stored form.

use hearth_protocol::keys::{Ed25519PublicKey, PublicIdentity, Signature, X25519PublicKey};

use crate::ids::{MEMBER_ID_LEN, MemberId};
use crate::records::ContactRecord;
use crate::safety::SafetyNumber;
use crate::store::StoreError;

/// Another member this device talks to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    /// The contact's member id.
    pub member_id: MemberId,
    /// The name the contact gave itself (may be empty).
    pub display_name: String,
    /// The safety number of this conversation, to compare out of band.
    pub safety_number: SafetyNumber,
    /// Whether the user confirmed the safety number
    /// ([`Client::verify_contact`](crate::Client::verify_contact)).
    pub verified: bool,
    /// When the contact was added (milliseconds since the Unix epoch).
    pub added_at_ms: u64,
}

impl Contact {
    /// The public view of a stored contact, with the safety number computed
    /// against our own identity key.
    pub(crate) fn from_record(
        record: &ContactRecord,
        own: &Ed25519PublicKey,
    ) -> Result<Self, StoreError> {
        let identity = identity_of(record)?;
        Ok(Self {
            member_id: member_of(record)?,
            display_name: record.display_name.clone(),
            safety_number: SafetyNumber::of(own, &identity.sig_key),
            verified: record.verified,
            added_at_ms: record.added_at_ms,
        })
    }

    /// The name to show: the display name, or the member id when empty.
    pub fn label(&self) -> String {
        if self.display_name.is_empty() {
            self.member_id.to_string()
        } else {
            self.display_name.clone()
        }
    }
}

/// A stored contact's member id.
pub(crate) fn member_of(record: &ContactRecord) -> Result<MemberId, StoreError> {
    let bytes: [u8; MEMBER_ID_LEN] = record
        .member_id
        .as_slice()
        .try_into()
        .map_err(|_| StoreError::Corrupt("contact"))?;
    Ok(MemberId::from_bytes(bytes))
}

/// A stored contact's identity keys.
pub(crate) fn identity_of(record: &ContactRecord) -> Result<PublicIdentity, StoreError> {
    let corrupt = |_| StoreError::Corrupt("contact");
    Ok(PublicIdentity {
        sig_key: Ed25519PublicKey::from_bytes(
            record.ik_sig.as_slice().try_into().map_err(corrupt)?,
        ),
        dh_key: X25519PublicKey::from_bytes(record.ik_dh.as_slice().try_into().map_err(corrupt)?),
        dh_signature: Signature::from_bytes(
            record
                .ik_dh_signature
                .as_slice()
                .try_into()
                .map_err(corrupt)?,
        ),
    })
}

/// The identity fields of a contact record.
pub(crate) fn with_identity(record: &mut ContactRecord, identity: &PublicIdentity) {
    record.member_id = MemberId::of(&identity.sig_key).as_bytes().to_vec();
    record.ik_sig = identity.sig_key.as_bytes().to_vec();
    record.ik_dh = identity.dh_key.as_bytes().to_vec();
    record.ik_dh_signature = identity.dh_signature.as_bytes().to_vec();
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_protocol::keys::IdentityKeyPair;

    #[test]
    fn a_record_keeps_the_identity_and_shows_the_safety_number() {
        let me = IdentityKeyPair::from_secrets(&[1; 32], &[2; 32]);
        let them = IdentityKeyPair::from_secrets(&[3; 32], &[4; 32]);
        let mut record =
            ContactRecord::reached_at("Sam".into(), String::new(), Vec::new(), Vec::new());
        with_identity(&mut record, them.public());
        assert_eq!(identity_of(&record).unwrap(), *them.public());
        let contact = Contact::from_record(&record, &me.public().sig_key).unwrap();
        assert_eq!(contact.member_id, MemberId::of(&them.public().sig_key));
        assert_eq!(
            contact.safety_number,
            SafetyNumber::of(&them.public().sig_key, &me.public().sig_key)
        );
        assert_eq!(contact.label(), "Sam");
        record.ik_sig.pop();
        assert!(identity_of(&record).is_err());
    }
}
