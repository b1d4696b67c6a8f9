//! Typed values exchanged with a relay, and their wire forms.
//!
//! Everything here is opaque to the relay: bodies, sealed headers and prekey
//! bundles are ciphertext or signed blobs made by the protocol layer. `Debug`
//! shows sizes and short id prefixes only, never content or tokens.

use std::fmt;

use bytes::Bytes;
use hearth_proto::relay as pb;
use sha2::{Digest as _, Sha256};

/// Length of a mailbox id.
pub const MAILBOX_ID_LEN: usize = 32;

/// A send to one or more recipients: one shared body, one sealed header per
/// recipient (DESIGN.md section 3, multi-recipient send).
#[derive(Clone)]
pub struct OutgoingSend {
    /// Idempotency key: retrying with the same id does not store twice.
    pub client_message_id: [u8; 16],
    /// The shared encrypted body.
    pub body: Bytes,
    /// Who receives it.
    pub recipients: Vec<OutgoingRecipient>,
}

/// One recipient of an [`OutgoingSend`].
#[derive(Clone)]
pub struct OutgoingRecipient {
    /// The recipient's mailbox.
    pub mailbox_id: [u8; 32],
    /// The send token the recipient handed out.
    pub send_token: Bytes,
    /// The sealed-sender header for this recipient.
    pub sealed_header: Bytes,
}

/// Envelopes the relay delivered for one mailbox, in FIFO order.
#[derive(Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The mailbox they were addressed to.
    pub mailbox_id: [u8; 32],
    /// The envelopes, ascending by sequence number.
    pub envelopes: Vec<DeliveredEnvelope>,
}

/// One delivered envelope. Acknowledge its `seq` once it is processed
/// durably.
#[derive(Clone, PartialEq, Eq)]
pub struct DeliveredEnvelope {
    /// Relay-assigned sequence number within the mailbox.
    pub seq: u64,
    /// The sealed-sender header.
    pub sealed_header: Bytes,
    /// The encrypted body.
    pub body: Bytes,
    /// When the relay stored it (milliseconds since the Unix epoch).
    pub stored_at_ms: u64,
}

/// What an owner publishes to its mailbox's prekey directory entry.
#[derive(Clone)]
pub struct PrekeyUpload {
    /// The mailbox.
    pub mailbox_id: [u8; 32],
    /// Identity keys, signed prekey and signatures; replaces the stored one
    /// when non-empty.
    pub signed_bundle: Bytes,
    /// One-time X25519 prekeys to add.
    pub one_time_prekeys: Vec<Bytes>,
    /// One-time ML-KEM prekeys to add.
    pub one_time_pq_prekeys: Vec<Bytes>,
    /// The last-resort ML-KEM prekey; replaces the stored one when non-empty.
    pub last_resort_pq_prekey: Bytes,
}

/// A prekey bundle fetched from the relay (the relay took one one-time
/// prekey of each kind for it).
#[derive(Clone, PartialEq, Eq)]
pub struct FetchedPrekeys {
    /// Identity keys, signed prekey and signatures.
    pub signed_bundle: Bytes,
    /// A one-time X25519 prekey, if any were left.
    pub one_time_prekey: Option<Bytes>,
    /// A one-time ML-KEM prekey, or the last-resort one.
    pub pq_prekey: Bytes,
    /// Whether `pq_prekey` is the last-resort one.
    pub pq_is_last_resort: bool,
}

/// How many prekeys remain in a mailbox's directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrekeyCounts {
    /// One-time X25519 prekeys left.
    pub one_time_prekeys: u32,
    /// One-time ML-KEM prekeys left.
    pub one_time_pq_prekeys: u32,
    /// Whether a last-resort ML-KEM prekey is stored.
    pub has_last_resort: bool,
}

/// SHA-256 of a send token: all the relay ever learns of it.
pub fn send_token_hash(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// A mailbox id as wire bytes.
pub(crate) fn mailbox_bytes(mailbox_id: &[u8; 32]) -> Bytes {
    Bytes::copy_from_slice(mailbox_id)
}

impl From<OutgoingSend> for pb::Send {
    fn from(send: OutgoingSend) -> Self {
        let recipients = send
            .recipients
            .into_iter()
            .map(|r| pb::Recipient {
                mailbox_id: mailbox_bytes(&r.mailbox_id),
                send_token: r.send_token,
                sealed_header: r.sealed_header,
            })
            .collect();
        Self {
            client_message_id: Bytes::copy_from_slice(&send.client_message_id),
            body: send.body,
            recipients,
            // The relay client marks resends (lead's wire change).
            retry: false,
        }
    }
}

impl From<PrekeyUpload> for pb::PublishPrekeys {
    fn from(upload: PrekeyUpload) -> Self {
        Self {
            mailbox_id: mailbox_bytes(&upload.mailbox_id),
            signed_bundle: upload.signed_bundle,
            one_time_prekeys: upload.one_time_prekeys,
            one_time_pq_prekeys: upload.one_time_pq_prekeys,
            last_resort_pq_prekey: upload.last_resort_pq_prekey,
        }
    }
}

impl From<pb::PrekeyBundle> for FetchedPrekeys {
    fn from(bundle: pb::PrekeyBundle) -> Self {
        let one_time_prekey = Some(bundle.one_time_prekey).filter(|key| !key.is_empty());
        Self {
            signed_bundle: bundle.signed_bundle,
            one_time_prekey,
            pq_prekey: bundle.pq_prekey,
            pq_is_last_resort: bundle.pq_is_last_resort,
        }
    }
}

impl From<pb::PrekeyCountsResult> for PrekeyCounts {
    fn from(counts: pb::PrekeyCountsResult) -> Self {
        Self {
            one_time_prekeys: counts.one_time_prekeys,
            one_time_pq_prekeys: counts.one_time_pq_prekeys,
            has_last_resort: counts.has_last_resort,
        }
    }
}

/// Why a delivery frame was unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The mailbox id is not 32 bytes.
    #[error("delivery mailbox id has {0} bytes, expected 32")]
    BadMailboxId(usize),
}

impl TryFrom<pb::Delivery> for Delivery {
    type Error = DeliveryError;

    fn try_from(delivery: pb::Delivery) -> Result<Self, Self::Error> {
        let mailbox_id = delivery.mailbox_id[..]
            .try_into()
            .map_err(|_| DeliveryError::BadMailboxId(delivery.mailbox_id.len()))?;
        let envelopes = delivery
            .envelopes
            .into_iter()
            .map(|e| DeliveredEnvelope {
                seq: e.seq,
                sealed_header: e.sealed_header,
                body: e.body,
                stored_at_ms: e.stored_at_ms,
            })
            .collect();
        Ok(Self {
            mailbox_id,
            envelopes,
        })
    }
}

/// A short, non-identifying prefix of a mailbox id for `Debug` output.
pub(crate) struct ShortId<'a>(pub(crate) &'a [u8; 32]);

impl fmt::Debug for ShortId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0[..4] {
            write!(f, "{byte:02x}")?;
        }
        f.write_str("…")
    }
}

impl fmt::Debug for OutgoingSend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingSend")
            .field("client_message_id", &"…")
            .field("body_len", &self.body.len())
            .field("recipients", &self.recipients)
            .finish()
    }
}

impl fmt::Debug for OutgoingRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingRecipient")
            .field("mailbox_id", &ShortId(&self.mailbox_id))
            .field("send_token", &"<redacted>")
            .field("sealed_header_len", &self.sealed_header.len())
            .finish()
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("mailbox_id", &ShortId(&self.mailbox_id))
            .field("envelopes", &self.envelopes)
            .finish()
    }
}

impl fmt::Debug for DeliveredEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveredEnvelope")
            .field("seq", &self.seq)
            .field("sealed_header_len", &self.sealed_header.len())
            .field("body_len", &self.body.len())
            .field("stored_at_ms", &self.stored_at_ms)
            .finish()
    }
}

impl fmt::Debug for PrekeyUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrekeyUpload")
            .field("mailbox_id", &ShortId(&self.mailbox_id))
            .field("signed_bundle_len", &self.signed_bundle.len())
            .field("one_time_prekeys", &self.one_time_prekeys.len())
            .field("one_time_pq_prekeys", &self.one_time_pq_prekeys.len())
            .field("has_last_resort", &!self.last_resort_pq_prekey.is_empty())
            .finish()
    }
}

impl fmt::Debug for FetchedPrekeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchedPrekeys")
            .field("signed_bundle_len", &self.signed_bundle.len())
            .field("has_one_time_prekey", &self.one_time_prekey.is_some())
            .field("pq_prekey_len", &self.pq_prekey.len())
            .field("pq_is_last_resort", &self.pq_is_last_resort)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_converts_every_recipient_in_order() {
        let send = OutgoingSend {
            client_message_id: [7; 16],
            body: Bytes::from_static(b"ciphertext"),
            recipients: (1..=3)
                .map(|i| OutgoingRecipient {
                    mailbox_id: [i; 32],
                    send_token: Bytes::from(vec![i; 8]),
                    sealed_header: Bytes::from(vec![i; 4]),
                })
                .collect(),
        };
        let wire = pb::Send::from(send);
        assert_eq!(&wire.client_message_id[..], &[7; 16]);
        assert_eq!(&wire.body[..], b"ciphertext");
        let ids: Vec<u8> = wire.recipients.iter().map(|r| r.mailbox_id[0]).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert!(wire.recipients.iter().all(|r| r.mailbox_id.len() == 32));
        assert_eq!(&wire.recipients[2].send_token[..], &[3; 8]);
    }

    #[test]
    fn delivery_needs_a_32_byte_mailbox_id() {
        let envelope = pb::Envelope {
            seq: 9,
            sealed_header: Bytes::from_static(b"h"),
            body: Bytes::from_static(b"b"),
            stored_at_ms: 5,
        };
        let good = pb::Delivery {
            mailbox_id: Bytes::from(vec![1; 32]),
            envelopes: vec![envelope],
        };
        let delivery = Delivery::try_from(good).unwrap();
        assert_eq!(delivery.mailbox_id, [1; 32]);
        assert_eq!(delivery.envelopes[0].seq, 9);
        assert_eq!(delivery.envelopes[0].stored_at_ms, 5);
        let bad = pb::Delivery {
            mailbox_id: Bytes::from(vec![1; 31]),
            envelopes: vec![],
        };
        assert_eq!(
            Delivery::try_from(bad),
            Err(DeliveryError::BadMailboxId(31))
        );
    }

    #[test]
    fn empty_one_time_prekey_means_none_left() {
        let bundle = pb::PrekeyBundle {
            signed_bundle: Bytes::from_static(b"sb"),
            one_time_prekey: Bytes::new(),
            pq_prekey: Bytes::from_static(b"pq"),
            pq_is_last_resort: true,
        };
        let fetched = FetchedPrekeys::from(bundle);
        assert_eq!(fetched.one_time_prekey, None);
        assert!(fetched.pq_is_last_resort);
    }

    #[test]
    fn debug_output_hides_tokens_content_and_full_ids() {
        let recipient = OutgoingRecipient {
            mailbox_id: [0xab; 32],
            send_token: Bytes::from_static(b"secret-token"),
            sealed_header: Bytes::from_static(b"header"),
        };
        let send = OutgoingSend {
            client_message_id: [1; 16],
            body: Bytes::from_static(b"private words"),
            recipients: vec![recipient],
        };
        let text = format!("{send:?}");
        assert!(
            !text.contains("secret-token") && !text.contains("private words"),
            "{text}"
        );
        assert!(
            text.contains("abababab…") && !text.contains(&"ab".repeat(5)),
            "{text}"
        );
    }

    #[test]
    fn token_hash_is_sha256() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        let want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let got: String = send_token_hash(b"abc")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, want);
    }
}
