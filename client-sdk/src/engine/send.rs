//! Sending: sealing content for a contact and the outbox.
//!
//! A message is padded, ratchet-encrypted, wrapped in the sealed-sender
//! inner message with our sender certificate, sealed (body plus a header to
//! the contact's `IK_dh`, bound to the contact's mailbox id), and staged in
//! the outbox together with the advanced ratchet state: the shell commits
//! both before the envelope goes on the wire, and retries it with the same
//! client message id until the relay answers.

use hearth_proto::content as pb;
use hearth_protocol::handshake;
use hearth_protocol::handshake::{KemCiphertext, SessionInit};
use hearth_protocol::keys::{PreKeyBundle, X25519PublicKey};
use hearth_protocol::padding::pad;
use hearth_protocol::ratchet::RatchetSession;
use hearth_protocol::sealed::{body_hash, seal_body, seal_header};
use hearth_protocol::wire::{self, InnerMessage, PreKeyMessage, SealedInner, SenderCertificate};

use super::Engine;
use crate::contacts::{self, Contact};
use crate::content;
use crate::error::Error;
use crate::ids::{MemberId, MessageId};
use crate::invite::Invite;
use crate::messages::{FailureReason, MAX_TEXT_BYTES};
use crate::records::{
    self, ContactRecord, MessageRecord, OutboxRecord, PendingInit, SessionRecord, StoredStatus,
};
use crate::store::{Space, StoreError, WriteSet};

/// One outbox entry, as the shell sends it.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// Position in the outbox.
    pub(crate) seq: u64,
    /// The entry.
    pub(crate) record: OutboxRecord,
}

impl Outgoing {
    /// The circle of a circle message.
    pub(crate) fn circle(&self) -> Option<crate::circles::CircleId> {
        crate::circles::CircleId::from_slice(&self.record.circle_id)
    }

    /// The recipient's member id (for a circle message, the first one).
    pub(crate) fn member(&self) -> Result<MemberId, StoreError> {
        if let Some(first) = self.record.recipients.first() {
            let bytes = first.member_id.as_slice().try_into();
            return bytes
                .map(MemberId::from_bytes)
                .map_err(|_| StoreError::Corrupt("outbox"));
        }
        let bytes = self.record.member_id.as_slice().try_into();
        bytes
            .map(MemberId::from_bytes)
            .map_err(|_| StoreError::Corrupt("outbox"))
    }

    /// The message id inside.
    pub(crate) fn message_id(&self) -> Result<MessageId, StoreError> {
        let bytes = self.record.message_id.as_slice().try_into();
        bytes
            .map(MessageId::from_bytes)
            .map_err(|_| StoreError::Corrupt("outbox"))
    }
}

impl Engine {
    /// Stages a text message to `member`: history entry, ratchet state and
    /// outbox entry, all in one write set.
    pub(crate) fn queue_text<R: rand::CryptoRng>(
        &mut self,
        member: MemberId,
        text: &str,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<(MessageId, WriteSet), Error> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(Error::MessageTooLong);
        }
        let contact = self.contact_record(member)?.ok_or(Error::UnknownContact)?;
        let mut session = self
            .session_record(member)?
            .ok_or(Error::Internal("contact without a session"))?;
        let id = MessageId::random(rng);
        let bytes = content::encode(id, now_ms, content::text(text));
        let mut writes = self.store.writes();
        self.queue(&contact, &mut session, id, &bytes, &mut writes, rng, now_ms)?;
        let record = MessageRecord {
            message_id: id.as_bytes().to_vec(),
            member_id: member.as_bytes().to_vec(),
            outgoing: true,
            sent_at_ms: now_ms,
            stored_at_ms: now_ms,
            content: bytes,
            status: StoredStatus::Queued as i32,
            failure: String::new(),
            circle_id: Vec::new(),
        };
        self.put_new_message(&mut writes, member, &record, id);
        self.put_state(&mut writes);
        Ok((id, writes))
    }

    /// Accepts an invite whose bundle the shell fetched: starts the session,
    /// adds the contact, and queues the contact request (which tells the
    /// inviter `our_token`, already registered on our relay).
    pub(crate) fn accept_invite<R: rand::CryptoRng>(
        &mut self,
        invite: &Invite,
        bundle: &PreKeyBundle,
        our_token: &[u8],
        rng: &mut R,
        now_ms: u64,
    ) -> Result<(Contact, WriteSet), Error> {
        self.check_invite(invite)?;
        if MemberId::of(&bundle.identity.sig_key) != invite.member_id {
            return Err(Error::InviteKeysMismatch);
        }
        let mut contact = ContactRecord::reached_at(
            invite.display_name.clone(),
            invite.relay.to_string(),
            invite.mailbox_id.to_vec(),
            invite.send_token.to_vec(),
        );
        contact.our_send_token = our_token.to_vec();
        contact.added_at_ms = now_ms;
        let request = pb::content::Kind::ContactRequest(pb::ContactRequest {
            invite_secret: invite.secret.to_vec(),
            relay: self.device.relay.to_string(),
            mailbox_id: self.device.mailbox_id.to_vec(),
            send_token: our_token.to_vec(),
            display_name: self.device.display_name.clone(),
        });
        let id = MessageId::random(rng);
        let bytes = content::encode(id, now_ms, request);
        let mut writes = self.store.writes();
        let contact = self.start_session(bundle, contact, &bytes, &mut writes, rng, now_ms)?;
        self.put_state(&mut writes);
        let own = self.device.identity.public().sig_key;
        Ok((Contact::from_record(&contact, &own)?, writes))
    }

    /// Starts a session with the owner of `bundle` (as initiator), stages
    /// `contact` (completed with the bundle's identity) and the session,
    /// and queues `first` as the first message.
    pub(crate) fn start_session<R: rand::CryptoRng>(
        &mut self,
        bundle: &PreKeyBundle,
        mut contact: ContactRecord,
        first: &[u8],
        writes: &mut WriteSet,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<ContactRecord, Error> {
        let identity = &self.device.identity;
        let started =
            handshake::initiate(identity, bundle, rng).map_err(|_| Error::InviteKeysMismatch)?;
        let ratchet =
            RatchetSession::init_alice(&started.key, started.ad, bundle.signed_prekey.key, rng)
                .map_err(|_| Error::InviteKeysMismatch)?;
        let mut session = SessionRecord {
            ratchet: ratchet.to_bytes().to_vec(),
            pending_init: Some(pending_init(&started.init)),
            accepted: None,
        };
        contacts::with_identity(&mut contact, &bundle.identity);
        self.put_contact(writes, &contact)?;
        let id = MessageId::random(rng);
        self.queue(&contact, &mut session, id, first, writes, rng, now_ms)?;
        Ok(contact)
    }

    /// Refuses one's own link and links of existing contacts.
    pub(crate) fn check_invite(&self, invite: &Invite) -> Result<(), Error> {
        if invite.member_id == self.device.member_id {
            return Err(Error::OwnInvite);
        }
        if self.contact_record(invite.member_id)?.is_some() {
            return Err(Error::AlreadyContact);
        }
        Ok(())
    }

    /// Seals `content_bytes` for `contact`, advancing `session`, and stages
    /// the session and the outbox entry.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn queue<R: rand::CryptoRng>(
        &mut self,
        contact: &ContactRecord,
        session: &mut SessionRecord,
        id: MessageId,
        content_bytes: &[u8],
        writes: &mut WriteSet,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<(), Error> {
        let member = contacts::member_of(contact)?;
        let (sealed_header, body) = self.seal(contact, session, content_bytes, rng)?;
        self.put_session(writes, member, session);
        let mut client_message_id = [0u8; 16];
        rng.fill_bytes(&mut client_message_id);
        let record = OutboxRecord {
            client_message_id: client_message_id.to_vec(),
            member_id: member.as_bytes().to_vec(),
            message_id: id.as_bytes().to_vec(),
            relay: contact.relay.clone(),
            mailbox_id: contact.mailbox_id.clone(),
            send_token: contact.send_token.clone(),
            sealed_header,
            body,
            queued_at_ms: now_ms,
            failure_reported: false,
            recipients: Default::default(),
            circle_id: Default::default(),
        };
        self.push_outbox(writes, &record);
        Ok(())
    }

    /// Encrypts and seals one message: returns the sealed header and body.
    fn seal<R: rand::CryptoRng>(
        &self,
        contact: &ContactRecord,
        session: &mut SessionRecord,
        content_bytes: &[u8],
        rng: &mut R,
    ) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let corrupt = |_| Error::Store(StoreError::Corrupt("session"));
        let mut ratchet = RatchetSession::from_bytes(&session.ratchet).map_err(corrupt)?;
        let message = ratchet
            .encrypt(&pad(content_bytes))
            .map_err(|_| Error::Internal("the session cannot send"))?;
        let identity = self.device.identity.public();
        let message = match &session.pending_init {
            Some(pending) => InnerMessage::PreKey(PreKeyMessage {
                init: session_init(pending, identity)?,
                message,
            }),
            None => InnerMessage::Ratchet(message),
        };
        let inner = SealedInner {
            sender: SenderCertificate::of(identity),
            message,
        };
        let (key, body) = seal_body(&wire::encode_sealed_inner(&inner), rng)
            .map_err(|_| Error::MessageTooLong)?;
        let their_dh: [u8; 32] = contact
            .ik_dh
            .as_slice()
            .try_into()
            .map_err(|_| Error::Store(StoreError::Corrupt("contact")))?;
        let mailbox: [u8; 32] = contact
            .mailbox_id
            .as_slice()
            .try_into()
            .map_err(|_| Error::Store(StoreError::Corrupt("contact")))?;
        let header = seal_header(
            &key,
            &body_hash(&body),
            &x25519_dalek::PublicKey::from(their_dh),
            &mailbox,
            rng,
        )
        .map_err(|_| Error::Store(StoreError::Corrupt("contact")))?;
        session.ratchet = ratchet.to_bytes().to_vec();
        Ok((header.as_bytes().to_vec(), body))
    }

    // ---- the outbox ------------------------------------------------------

    /// Appends `record` to the outbox.
    pub(crate) fn push_outbox(&mut self, writes: &mut WriteSet, record: &OutboxRecord) {
        let seq = self.state.next_outbox_seq;
        self.state.next_outbox_seq += 1;
        writes.put(Space::Outbox, &seq.to_be_bytes(), &records::encode(record));
    }

    /// Everything waiting to be sent, in order.
    pub(crate) fn outbox(&self) -> Result<Vec<Outgoing>, StoreError> {
        Ok(self
            .scan_numbered(Space::Outbox, "outbox")?
            .into_iter()
            .map(|(seq, record)| Outgoing { seq, record })
            .collect())
    }

    /// The relay stored `item`: drop it from the outbox, mark it sent.
    /// Also says whether the message shows in the history.
    pub(crate) fn sent(&self, item: &Outgoing) -> Result<(WriteSet, bool), StoreError> {
        let mut writes = self.store.writes();
        writes.delete(Space::Outbox, &item.seq.to_be_bytes());
        let shown = self.set_outgoing_status(
            &mut writes,
            item.member()?,
            item.message_id()?,
            StoredStatus::Sent,
            "",
        )?;
        Ok((writes, shown))
    }

    /// The relay refused `item`. A retryable refusal keeps it queued (and
    /// notes that it was reported); any other drops it and marks it failed.
    pub(crate) fn refused(
        &self,
        item: &Outgoing,
        reason: FailureReason,
    ) -> Result<(WriteSet, bool), StoreError> {
        let mut writes = self.store.writes();
        let key = item.seq.to_be_bytes();
        if reason.is_retryable() {
            let mut record = item.record.clone();
            record.failure_reported = true;
            writes.put(Space::Outbox, &key, &records::encode(&record));
            return Ok((writes, true));
        }
        writes.delete(Space::Outbox, &key);
        let failure = reason.code_name();
        let shown = self.set_outgoing_status(
            &mut writes,
            item.member()?,
            item.message_id()?,
            StoredStatus::Failed,
            &failure,
        )?;
        Ok((writes, shown))
    }
}

/// The handshake fields to repeat until the first reply.
fn pending_init(init: &SessionInit) -> PendingInit {
    PendingInit {
        ephemeral: init.ephemeral.as_bytes().to_vec(),
        signed_prekey_id: init.signed_prekey_id,
        one_time_prekey_id: init.one_time_prekey_id,
        pq_prekey_id: init.pq_prekey_id,
        kem_ciphertext: init.kem_ciphertext.as_bytes().to_vec(),
    }
}

/// Rebuilds the first-message fields from their stored form.
fn session_init(
    pending: &PendingInit,
    identity: &hearth_protocol::keys::PublicIdentity,
) -> Result<SessionInit, Error> {
    let corrupt = || Error::Store(StoreError::Corrupt("session"));
    let ephemeral: [u8; 32] = pending
        .ephemeral
        .as_slice()
        .try_into()
        .map_err(|_| corrupt())?;
    Ok(SessionInit {
        initiator: *identity,
        ephemeral: X25519PublicKey::from_bytes(ephemeral),
        signed_prekey_id: pending.signed_prekey_id,
        one_time_prekey_id: pending.one_time_prekey_id,
        pq_prekey_id: pending.pq_prekey_id,
        kem_ciphertext: KemCiphertext::from_bytes(&pending.kem_ciphertext)
            .map_err(|_| corrupt())?,
    })
}
