//! The records the client keeps in its [store](crate::store), encoded with
//! protobuf (prost derive; field numbers are the stored format, so only add
//! fields). Protocol state (identity, ratchet sessions, prekeys, the replay
//! cache) is kept in `hearth-protocol`'s own versioned layouts inside these
//! records or as separate values.
//!
//! Records hold secrets (keys, send tokens, content), so `Debug` is written
//! by hand and shows nothing of them.
//!
//! **Wiping.** A stored record is read from a [`Zeroizing`] buffer and
//! encoded into one, but decoding copies its fields into plain `Vec`s. So
//! every record that holds key material or a send token implements
//! [`WipeSecrets`], and its `Drop` zeroizes those fields (their whole
//! allocation, spare capacity included) when the record goes away, however
//! it was made: decoded, built or cloned. That covers [`DeviceRecord`]
//! (identity and mailbox key seeds), [`SessionRecord`] (ratchet state),
//! [`SignedPrekeyRecord`] (prekey private keys), [`CircleRecord`] (our
//! sender key state, our door token, members' door tokens),
//! [`SenderKeysRecord`] (members' sender keys), and [`ContactRecord`],
//! [`OutboxRecord`], [`OutboxRecipient`], [`InviteRecord`] and
//! [`TaskRecord`] (send tokens). A secret field that is replaced or emptied
//! in place goes through [`replace_secret`] or `zeroize()`, never plain
//! assignment or `clear()`, which would free the old bytes unwiped. (A
//! `Drop` type cannot be built with `..Default::default()`: such records
//! list their fields.)

use std::fmt;

use prost::Message;
use zeroize::{Zeroize as _, Zeroizing};

use crate::store::StoreError;

/// Encodes a record; the buffer is wiped when dropped.
pub(crate) fn encode<M: Message>(record: &M) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(record.encode_to_vec())
}

/// Decodes a stored record; failure means a damaged store.
pub(crate) fn decode<M: Message + Default>(
    bytes: &[u8],
    what: &'static str,
) -> Result<M, StoreError> {
    M::decode(bytes).map_err(|_| StoreError::Corrupt(what))
}

/// A record that holds key material or send tokens (see the module docs).
pub(crate) trait WipeSecrets {
    /// Zeroizes the secret fields, leaving them empty; `Drop` calls it.
    fn wipe_secrets(&mut self);
}

/// `Drop` that wipes the record's secrets.
macro_rules! wipe_on_drop {
    ($($name:ident),*) => {$(
        impl Drop for $name {
            fn drop(&mut self) {
                self.wipe_secrets();
            }
        }
    )*};
}

wipe_on_drop!(
    ContactRecord,
    OutboxRecord,
    OutboxRecipient,
    DeviceRecord,
    SessionRecord,
    InviteRecord,
    CircleRecord,
    SenderKeysRecord,
    TaskRecord,
    SignedPrekeyRecord
);

/// Sets the secret field `field` to `bytes`, wiping what it held first
/// (plain assignment would free the old secret without wiping it).
pub(crate) fn replace_secret(field: &mut Vec<u8>, bytes: &[u8]) {
    field.zeroize();
    field.extend_from_slice(bytes);
}

/// The device: who it is and where its mailbox lives. Written once.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub(crate) struct DeviceRecord {
    /// `IdentityKeyPair::to_bytes`.
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) identity: Vec<u8>,
    /// The mailbox id (32 bytes).
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) mailbox_id: Vec<u8>,
    /// The mailbox key's Ed25519 seed (32 bytes).
    #[prost(bytes = "vec", tag = "3")]
    pub(crate) mailbox_key: Vec<u8>,
    /// The relay address (`hearth://fingerprint@host:port`).
    #[prost(string, tag = "4")]
    pub(crate) relay: String,
    /// The name this member shows to contacts.
    #[prost(string, tag = "5")]
    pub(crate) display_name: String,
    /// When the device was set up.
    #[prost(uint64, tag = "6")]
    pub(crate) created_at_ms: u64,
}

impl WipeSecrets for DeviceRecord {
    fn wipe_secrets(&mut self) {
        self.identity.zeroize();
        self.mailbox_key.zeroize();
    }
}

/// Counters and progress of the device, rewritten by most operations.
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub(crate) struct DeviceState {
    /// Next one-time X25519 prekey id.
    #[prost(uint32, tag = "1")]
    pub(crate) next_one_time_id: u32,
    /// Next ML-KEM prekey id (one-time and last-resort share the range).
    #[prost(uint32, tag = "2")]
    pub(crate) next_pq_id: u32,
    /// The signed prekey currently published.
    #[prost(uint32, tag = "3")]
    pub(crate) signed_prekey_id: u32,
    /// When that signed prekey was made.
    #[prost(uint64, tag = "4")]
    pub(crate) signed_prekey_created_at_ms: u64,
    /// Whether the relay holds the current bundle (set after publishing).
    #[prost(bool, tag = "5")]
    pub(crate) bundle_published: bool,
    /// Every relay sequence number below this one is processed (and so
    /// safe to acknowledge again when redelivered).
    #[prost(uint64, tag = "6")]
    pub(crate) next_delivery_seq: u64,
    /// Next local message sequence number (orders history).
    #[prost(uint64, tag = "7")]
    pub(crate) next_message_seq: u64,
    /// Next outbox sequence number (orders sends).
    #[prost(uint64, tag = "8")]
    pub(crate) next_outbox_seq: u64,
    /// The last-resort ML-KEM prekey's id.
    #[prost(uint32, tag = "9")]
    pub(crate) last_resort_pq_id: u32,
    /// Next held-envelope sequence number.
    #[prost(uint64, tag = "10")]
    pub(crate) next_held_seq: u64,
    /// Next relay-task sequence number.
    #[prost(uint64, tag = "11")]
    pub(crate) next_task_seq: u64,
}

/// A contact: another member's device and how to reach it.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub(crate) struct ContactRecord {
    /// The contact's member id (16 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) member_id: Vec<u8>,
    /// `IK_sig`, `IK_dh` and the signature over `IK_dh`.
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) ik_sig: Vec<u8>,
    /// `IK_dh`.
    #[prost(bytes = "vec", tag = "3")]
    pub(crate) ik_dh: Vec<u8>,
    /// Signature over `IK_dh`.
    #[prost(bytes = "vec", tag = "4")]
    pub(crate) ik_dh_signature: Vec<u8>,
    /// The name the contact gave itself.
    #[prost(string, tag = "5")]
    pub(crate) display_name: String,
    /// The contact's relay address.
    #[prost(string, tag = "6")]
    pub(crate) relay: String,
    /// The contact's mailbox id.
    #[prost(bytes = "vec", tag = "7")]
    pub(crate) mailbox_id: Vec<u8>,
    /// The send token the contact gave us.
    #[prost(bytes = "vec", tag = "8")]
    pub(crate) send_token: Vec<u8>,
    /// The send token we gave the contact (to revoke it later).
    #[prost(bytes = "vec", tag = "9")]
    pub(crate) our_send_token: Vec<u8>,
    /// Whether the user compared safety numbers.
    #[prost(bool, tag = "10")]
    pub(crate) verified: bool,
    /// When the contact was added.
    #[prost(uint64, tag = "11")]
    pub(crate) added_at_ms: u64,
    /// Known only as a fellow circle member, not a personal contact: not
    /// listed among contacts.
    #[prost(bool, tag = "12")]
    pub(crate) circle_only: bool,
}

/// The pairwise session with a contact.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub(crate) struct SessionRecord {
    /// `RatchetSession::to_bytes`.
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) ratchet: Vec<u8>,
    /// Set while we started the session and have heard nothing back: every
    /// message goes out as a prekey message with these handshake fields.
    #[prost(message, optional, tag = "2")]
    pub(crate) pending_init: Option<PendingInit>,
    /// Set when the contact started the session: its first message's
    /// signed prekey id and `EK_A`, so later prekey messages of the same
    /// handshake are read with this session.
    #[prost(message, optional, tag = "3")]
    pub(crate) accepted: Option<AcceptedInit>,
}

impl WipeSecrets for SessionRecord {
    fn wipe_secrets(&mut self) {
        self.ratchet.zeroize();
    }
}

/// The handshake fields an initiator repeats until the first reply.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct PendingInit {
    /// `EK_A`.
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) ephemeral: Vec<u8>,
    /// Signed prekey id used.
    #[prost(uint32, tag = "2")]
    pub(crate) signed_prekey_id: u32,
    /// One-time prekey id used, if any.
    #[prost(uint32, optional, tag = "3")]
    pub(crate) one_time_prekey_id: Option<u32>,
    /// ML-KEM prekey id used.
    #[prost(uint32, tag = "4")]
    pub(crate) pq_prekey_id: u32,
    /// The ML-KEM ciphertext.
    #[prost(bytes = "vec", tag = "5")]
    pub(crate) kem_ciphertext: Vec<u8>,
}

/// Which first message a responder's session came from.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct AcceptedInit {
    /// Signed prekey id of the first message.
    #[prost(uint32, tag = "1")]
    pub(crate) signed_prekey_id: u32,
    /// `EK_A` of the first message.
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) ephemeral: Vec<u8>,
}

/// An invite link we handed out.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub(crate) struct InviteRecord {
    /// The send token registered for the link.
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) send_token: Vec<u8>,
    /// When the link was made.
    #[prost(uint64, tag = "2")]
    pub(crate) created_at_ms: u64,
    /// Whether someone already accepted it (links work once).
    #[prost(bool, tag = "3")]
    pub(crate) used: bool,
    /// For a circle invite: the circle (16 bytes); empty for a contact link.
    #[prost(bytes = "vec", tag = "4")]
    pub(crate) circle_id: Vec<u8>,
    /// For a circle invite: when it stops working (0: never).
    #[prost(uint64, tag = "5")]
    pub(crate) expires_at_ms: u64,
    /// Whether the link's send token was revoked on the relay (it was
    /// used, expired or refused): nobody reaches us with it any more.
    #[prost(bool, tag = "6")]
    pub(crate) token_revoked: bool,
}

impl ContactRecord {
    /// A contact we reach at `mailbox_id` on `relay` with `send_token`;
    /// identity keys, our token, the time and the flags start empty.
    pub(crate) fn reached_at(
        display_name: String,
        relay: String,
        mailbox_id: Vec<u8>,
        send_token: Vec<u8>,
    ) -> Self {
        Self {
            member_id: Vec::new(),
            ik_sig: Vec::new(),
            ik_dh: Vec::new(),
            ik_dh_signature: Vec::new(),
            display_name,
            relay,
            mailbox_id,
            send_token,
            our_send_token: Vec::new(),
            verified: false,
            added_at_ms: 0,
            circle_only: false,
        }
    }
}

impl WipeSecrets for ContactRecord {
    fn wipe_secrets(&mut self) {
        self.send_token.zeroize();
        self.our_send_token.zeroize();
    }
}

impl WipeSecrets for OutboxRecipient {
    fn wipe_secrets(&mut self) {
        self.send_token.zeroize();
    }
}

impl WipeSecrets for OutboxRecord {
    fn wipe_secrets(&mut self) {
        self.send_token.zeroize();
        for recipient in &mut self.recipients {
            recipient.wipe_secrets();
        }
    }
}

impl WipeSecrets for InviteRecord {
    fn wipe_secrets(&mut self) {
        self.send_token.zeroize();
    }
}

/// Where a message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub(crate) enum StoredStatus {
    /// Received from a contact.
    Received = 0,
    /// Waiting in the outbox.
    Queued = 1,
    /// Stored by the recipient's relay.
    Sent = 2,
    /// The recipient's relay refused it for good.
    Failed = 3,
    /// The recipient said it arrived.
    Delivered = 4,
    /// The recipient said it was read.
    Read = 5,
}

/// One message of a conversation.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub(crate) struct MessageRecord {
    /// The message id (16 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) message_id: Vec<u8>,
    /// The other member of the conversation.
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) member_id: Vec<u8>,
    /// Whether we sent it.
    #[prost(bool, tag = "3")]
    pub(crate) outgoing: bool,
    /// The sender's time.
    #[prost(uint64, tag = "4")]
    pub(crate) sent_at_ms: u64,
    /// When this device stored it.
    #[prost(uint64, tag = "5")]
    pub(crate) stored_at_ms: u64,
    /// The `hearth.content.v1.Content` bytes as sent (kept whole, so kinds
    /// this version does not know survive for a newer one).
    #[prost(bytes = "vec", tag = "6")]
    pub(crate) content: Vec<u8>,
    /// [`StoredStatus`].
    #[prost(enumeration = "StoredStatus", tag = "7")]
    pub(crate) status: i32,
    /// Why sending failed, as a relay error name (empty otherwise).
    #[prost(string, tag = "8")]
    pub(crate) failure: String,
    /// The circle, for a circle message (16 bytes); empty in 1:1.
    #[prost(bytes = "vec", tag = "9")]
    pub(crate) circle_id: Vec<u8>,
}

/// An envelope waiting to be handed to a relay.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub(crate) struct OutboxRecord {
    /// The relay's idempotency key: the same on every retry.
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) client_message_id: Vec<u8>,
    /// The recipient's member id.
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) member_id: Vec<u8>,
    /// The message id inside.
    #[prost(bytes = "vec", tag = "3")]
    pub(crate) message_id: Vec<u8>,
    /// The recipient's relay address.
    #[prost(string, tag = "4")]
    pub(crate) relay: String,
    /// The recipient's mailbox.
    #[prost(bytes = "vec", tag = "5")]
    pub(crate) mailbox_id: Vec<u8>,
    /// The send token for that mailbox.
    #[prost(bytes = "vec", tag = "6")]
    pub(crate) send_token: Vec<u8>,
    /// The sealed-sender header.
    #[prost(bytes = "vec", tag = "7")]
    pub(crate) sealed_header: Vec<u8>,
    /// The sealed body.
    #[prost(bytes = "vec", tag = "8")]
    pub(crate) body: Vec<u8>,
    /// When it was queued.
    #[prost(uint64, tag = "9")]
    pub(crate) queued_at_ms: u64,
    /// Whether a retryable failure (mailbox full, rate limited) was already
    /// reported, so it is reported once.
    #[prost(bool, tag = "10")]
    pub(crate) failure_reported: bool,
    /// A circle message: every recipient with its own sealed header (the
    /// fields above naming one recipient are then empty). One body for all.
    #[prost(message, repeated, tag = "11")]
    pub(crate) recipients: Vec<OutboxRecipient>,
    /// The circle of a circle message (16 bytes).
    #[prost(bytes = "vec", tag = "12")]
    pub(crate) circle_id: Vec<u8>,
}

/// One recipient of a circle message.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub(crate) struct OutboxRecipient {
    /// The member.
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) member_id: Vec<u8>,
    /// Their mailbox.
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) mailbox_id: Vec<u8>,
    /// The send token for it.
    #[prost(bytes = "vec", tag = "3")]
    pub(crate) send_token: Vec<u8>,
    /// The sealed header for them.
    #[prost(bytes = "vec", tag = "4")]
    pub(crate) sealed_header: Vec<u8>,
}

/// Where we stand in a circle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, prost::Enumeration)]
#[repr(i32)]
pub(crate) enum StoredCircleState {
    /// We asked to join and wait for a facilitator.
    Joining = 0,
    /// A member.
    Active = 1,
    /// We left.
    Left = 2,
    /// A facilitator removed us.
    Removed = 3,
}

/// A circle this device belongs to (or asked to join).
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub(crate) struct CircleRecord {
    /// The circle id (16 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) circle_id: Vec<u8>,
    /// [`StoredCircleState`].
    #[prost(enumeration = "StoredCircleState", tag = "2")]
    pub(crate) state: i32,
    /// `RosterChain::to_bytes` (empty while joining).
    #[prost(bytes = "vec", tag = "3")]
    pub(crate) chain: Vec<u8>,
    /// How to reach each member (their door tokens).
    #[prost(message, repeated, tag = "4")]
    pub(crate) cards: Vec<hearth_proto::content::MemberCard>,
    /// The send token members use to reach us first (registered on our
    /// relay; replaced after every removal).
    #[prost(bytes = "vec", tag = "5")]
    pub(crate) door_token: Vec<u8>,
    /// Our sender key for the current epoch (`SenderKeyState::to_bytes`);
    /// empty until the next send makes one.
    #[prost(bytes = "vec", tag = "6")]
    pub(crate) own_key: Vec<u8>,
    /// Members who have our current sender key.
    #[prost(bytes = "vec", repeated, tag = "7")]
    pub(crate) keys_sent_to: Vec<Vec<u8>>,
    /// When we joined (or asked to).
    #[prost(uint64, tag = "8")]
    pub(crate) joined_at_ms: u64,
    /// While joining: the circle's name from the link.
    #[prost(string, tag = "9")]
    pub(crate) invite_name: String,
    /// While joining: the facilitator whose link we used.
    #[prost(bytes = "vec", tag = "10")]
    pub(crate) inviter: Vec<u8>,
    /// Members who left or were removed (their later messages are refused).
    #[prost(bytes = "vec", repeated, tag = "11")]
    pub(crate) departed: Vec<Vec<u8>>,
    /// Which member set `own_key` was made for (see
    /// `Engine::member_set_print`): a key belongs to one set, and any change
    /// of it starts a new key.
    #[prost(bytes = "vec", tag = "12")]
    pub(crate) own_key_set: Vec<u8>,
}

impl WipeSecrets for CircleRecord {
    fn wipe_secrets(&mut self) {
        self.own_key.zeroize();
        self.door_token.zeroize();
        for card in &mut self.cards {
            card.send_token.zeroize();
        }
    }
}

/// Other members' sender keys in one circle, newest last.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub(crate) struct SenderKeysRecord {
    /// `RemoteSenderKey::to_bytes` each.
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub(crate) keys: Vec<Vec<u8>>,
}

impl WipeSecrets for SenderKeysRecord {
    fn wipe_secrets(&mut self) {
        for key in &mut self.keys {
            key.zeroize();
        }
    }
}

/// The members who said they read one circle post.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct ReadersRecord {
    /// Member ids (16 bytes each).
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub(crate) members: Vec<Vec<u8>>,
}

/// An envelope kept until what it needs arrives.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub(crate) struct HeldRecord {
    /// The sealed header.
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) sealed_header: Vec<u8>,
    /// The sealed body.
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) body: Vec<u8>,
    /// When it arrived.
    #[prost(uint64, tag = "3")]
    pub(crate) held_at_ms: u64,
}

/// Something to do on a relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, prost::Enumeration)]
#[repr(i32)]
pub(crate) enum TaskKind {
    /// Register `token` on our mailbox.
    AddToken = 0,
    /// Revoke `token` from our mailbox.
    RevokeToken = 1,
    /// Open a session with `member` of `circle` (fetch its prekeys with its
    /// card's door token) and send it our sender key.
    OpenSession = 2,
}

/// A relay chore, done (in order) before the outbox is sent.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub(crate) struct TaskRecord {
    /// [`TaskKind`].
    #[prost(enumeration = "TaskKind", tag = "1")]
    pub(crate) kind: i32,
    /// The token to add or revoke.
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) token: Vec<u8>,
    /// The member to open a session with.
    #[prost(bytes = "vec", tag = "3")]
    pub(crate) member_id: Vec<u8>,
    /// The circle the session is for.
    #[prost(bytes = "vec", tag = "4")]
    pub(crate) circle_id: Vec<u8>,
    /// Failed attempts so far (an `OpenSession` that must wait).
    #[prost(uint32, tag = "5")]
    pub(crate) attempts: u32,
    /// Not to be tried before this time (ms since the Unix epoch; 0: now).
    #[prost(uint64, tag = "6")]
    pub(crate) next_attempt_at_ms: u64,
}

impl WipeSecrets for TaskRecord {
    fn wipe_secrets(&mut self) {
        self.token.zeroize();
    }
}

/// A signed prekey's private half and its age.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub(crate) struct SignedPrekeyRecord {
    /// `SignedPreKey::to_bytes`.
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) key: Vec<u8>,
    /// When it was made.
    #[prost(uint64, tag = "2")]
    pub(crate) created_at_ms: u64,
    /// When a newer one replaced it (0 while current).
    #[prost(uint64, tag = "3")]
    pub(crate) retired_at_ms: u64,
}

impl WipeSecrets for SignedPrekeyRecord {
    fn wipe_secrets(&mut self) {
        self.key.zeroize();
    }
}

macro_rules! redacted_debug {
    ($($name:ident),*) => {$(
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    )*};
}

redacted_debug!(
    DeviceRecord,
    ContactRecord,
    SessionRecord,
    InviteRecord,
    MessageRecord,
    OutboxRecord,
    OutboxRecipient,
    SignedPrekeyRecord,
    CircleRecord,
    SenderKeysRecord,
    HeldRecord,
    TaskRecord
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_hide_secrets_in_debug() {
        let record = OutboxRecord {
            client_message_id: vec![1; 16],
            send_token: b"secret token".to_vec(),
            body: b"ciphertext".to_vec(),
            member_id: Default::default(),
            message_id: Default::default(),
            relay: Default::default(),
            mailbox_id: Default::default(),
            sealed_header: Default::default(),
            queued_at_ms: Default::default(),
            failure_reported: Default::default(),
            recipients: Default::default(),
            circle_id: Default::default(),
        };
        let bytes = encode(&record);
        let back: OutboxRecord = decode(&bytes, "outbox").unwrap();
        assert_eq!(back, record);
        assert_eq!(format!("{back:?}"), "OutboxRecord([redacted])");
        assert!(matches!(
            decode::<OutboxRecord>(&[0xff, 0xff], "outbox"),
            Err(StoreError::Corrupt("outbox"))
        ));
    }

    /// A decoded record with `secret` in its secret fields and `public`
    /// elsewhere, wiped as its `Drop` wipes it: no secret byte is left in
    /// the record (nor in what it would encode to), everything else is.
    fn assert_wipes<M: Message + Default + WipeSecrets>(built: M, secret: u8, public: u8) {
        let mut record: M = decode(&encode(&built), "record").unwrap();
        drop(built);
        let before = encode(&record);
        assert!(before.contains(&secret) && before.contains(&public));
        record.wipe_secrets();
        let after = encode(&record);
        assert!(!after.contains(&secret), "a secret survived the wipe");
        assert!(after.contains(&public), "the wipe took more than secrets");
    }

    #[test]
    fn decoded_device_records_wipe_identity_and_mailbox_key() {
        let (s, p) = (0xA5, 0x3C);
        let device = DeviceRecord {
            identity: vec![s; 64],
            mailbox_id: vec![p; 32],
            mailbox_key: vec![s; 32],
            relay: "hearth://fp@relay.example:4433".into(),
            display_name: "Dana".into(),
            created_at_ms: 1,
        };
        assert_wipes(device.clone(), s, p);
        let mut wiped = device;
        wiped.wipe_secrets();
        assert!(wiped.identity.is_empty() && wiped.mailbox_key.is_empty());
        assert_eq!(wiped.mailbox_id, vec![p; 32]);
        assert_eq!(wiped.display_name, "Dana");
    }

    #[test]
    fn decoded_circle_records_wipe_the_sender_key_and_door_tokens() {
        let (s, p) = (0xA5, 0x3C);
        let card = hearth_proto::content::MemberCard {
            member_id: vec![p; 16],
            relay: "hearth://fp@relay.example:4433".into(),
            mailbox_id: vec![p; 32],
            send_token: vec![s; 32],
        };
        let circle = CircleRecord {
            circle_id: vec![p; 16],
            state: StoredCircleState::Active as i32,
            chain: vec![p; 40],
            cards: vec![card.clone(), card],
            door_token: vec![s; 32],
            own_key: vec![s; 120],
            keys_sent_to: vec![vec![p; 16]],
            joined_at_ms: 1,
            invite_name: String::new(),
            inviter: Vec::new(),
            departed: Vec::new(),
            own_key_set: vec![p; 32],
        };
        assert_wipes(circle.clone(), s, p);
        let mut wiped = circle;
        wiped.wipe_secrets();
        assert!(wiped.own_key.is_empty() && wiped.door_token.is_empty());
        assert!(wiped.cards.iter().all(|c| c.send_token.is_empty()));
        assert_eq!(wiped.cards[0].mailbox_id, vec![p; 32]);
    }

    #[test]
    fn decoded_token_records_wipe_their_tokens() {
        let (s, p) = (0xA5, 0x3C);
        let invite = InviteRecord {
            send_token: vec![s; 32],
            created_at_ms: 1,
            used: false,
            circle_id: vec![p; 16],
            expires_at_ms: 2,
            token_revoked: false,
        };
        assert_wipes(invite, s, p);
        let task = TaskRecord {
            kind: TaskKind::RevokeToken as i32,
            token: vec![s; 32],
            member_id: vec![p; 16],
            circle_id: vec![p; 16],
            attempts: 0,
            next_attempt_at_ms: 0,
        };
        assert_wipes(task, s, p);
        let contact = ContactRecord {
            member_id: vec![p; 16],
            ik_sig: vec![p; 32],
            ik_dh: vec![p; 32],
            ik_dh_signature: vec![p; 64],
            display_name: "Ana".into(),
            relay: "hearth://fp@relay.example:4433".into(),
            mailbox_id: vec![p; 32],
            send_token: vec![s; 32],
            our_send_token: vec![s; 32],
            verified: false,
            added_at_ms: 1,
            circle_only: true,
        };
        assert_wipes(contact, s, p);
        let recipient = OutboxRecipient {
            member_id: vec![p; 16],
            mailbox_id: vec![p; 32],
            send_token: vec![s; 32],
            sealed_header: vec![p; 80],
        };
        let outbox = OutboxRecord {
            client_message_id: vec![p; 16],
            member_id: vec![p; 16],
            message_id: vec![p; 16],
            relay: "hearth://fp@relay.example:4433".into(),
            mailbox_id: vec![p; 32],
            send_token: vec![s; 32],
            sealed_header: vec![p; 80],
            body: vec![p; 256],
            queued_at_ms: 1,
            failure_reported: false,
            recipients: vec![recipient],
            circle_id: Vec::new(),
        };
        assert_wipes(outbox, s, p);
    }

    #[test]
    fn replacing_a_secret_keeps_only_the_new_value() {
        let mut field = vec![0xA5; 64];
        replace_secret(&mut field, b"new state");
        assert_eq!(field, b"new state");
    }
}
