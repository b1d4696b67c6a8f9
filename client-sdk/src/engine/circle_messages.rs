//! Circle messages: one sender-key encryption, one sealed body, one
//! multi-recipient send; and on the other side, verify, decrypt, dedupe,
//! store in the circle's feed.
//!
//! Before its first send in an epoch (and every 7 days or 1,000 messages)
//! a member makes a fresh sender key and queues it to every member it
//! shares a session with, ahead of the message, so each recipient's
//! mailbox holds the key before the first message that needs it. A
//! message whose key has not arrived yet is held (see `receive.rs`) and
//! read once the key comes.

use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;
use hearth_proto::content as pb;
use hearth_protocol::keys::Ed25519PublicKey;
use hearth_protocol::sealed::{body_hash, seal_body, seal_header};
use hearth_protocol::sender_key::{
    DecryptError, RemoteSenderKey, SenderKeyMessage, SenderKeyState,
};
use hearth_protocol::wire::{self, InnerMessage, SealedInner, SenderCertificate};

use super::Engine;
use super::circle_forks::{key_recipients, member_set_print};
use super::circles::{circle_id_of, load_chain};
use super::receive::{Applied, Refusal};
use crate::circles::feed::CircleMessage;
use crate::circles::roster::{RosterChain, RosterMember};
use crate::circles::{CircleId, Role};
use crate::content::{self, Content, Kind};
use crate::error::Error;
use crate::events::{Event, RejectReason};
use crate::ids::{MemberId, MessageId};
use crate::messages::Message;
use crate::records::{
    self, CircleRecord, MessageRecord, OutboxRecipient, OutboxRecord, ReadersRecord,
    SenderKeysRecord, StoredStatus,
};
use crate::store::{BLIND_LEN, Space, StoreError, WriteSet};

/// Most message ids one read receipt may name.
const MAX_RECEIPT_IDS: usize = 256;

impl Engine {
    fn feed_prefix(&self, circle: CircleId) -> [u8; BLIND_LEN] {
        self.store.blind("circle-feed", &[circle.as_bytes()])
    }

    fn feed_index_key(
        &self,
        outgoing: bool,
        circle: CircleId,
        member: MemberId,
        id: MessageId,
    ) -> [u8; BLIND_LEN] {
        let label = if outgoing {
            "circle-sent"
        } else {
            "circle-received"
        };
        self.store.blind(
            label,
            &[circle.as_bytes(), member.as_bytes(), id.as_bytes()],
        )
    }

    /// Our sender key for the circle's current epoch, made afresh when
    /// there is none or it is due for rotation (then nobody has it yet).
    pub(super) fn own_sender_key<R: rand::CryptoRng>(
        &self,
        record: &mut CircleRecord,
        chain: &RosterChain,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<SenderKeyState, Error> {
        let epoch = chain.head().roster().epoch;
        let members = member_set_print(chain, self.device.member_id);
        if !record.own_key.is_empty()
            && record.own_key_set == members
            && let Ok(key) = SenderKeyState::from_bytes(&record.own_key)
            && key.epoch() == epoch
            && !key.needs_rotation(now_ms)
        {
            return Ok(key);
        }
        let sig = verifying(&self.device.identity.public().sig_key)
            .map_err(|_| Error::Internal("our identity key is invalid"))?;
        let key = SenderKeyState::new(*circle_id_of(record).as_bytes(), epoch, sig, now_ms, rng);
        records::replace_secret(&mut record.own_key, &key.to_bytes());
        record.own_key_set = members;
        record.keys_sent_to.clear();
        Ok(key)
    }

    /// Stages a post to `circle`: feed entry, sender-key state, any new
    /// sender key for the members, and one outbox entry per relay.
    pub(crate) fn post<R: rand::CryptoRng>(
        &mut self,
        circle: CircleId,
        content: &Content,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<(MessageId, WriteSet), Error> {
        self.post_signed(circle, content, true, rng, now_ms)
    }

    /// A misbehaving client for tests: posts with a signature that does
    /// not verify (one bit of it flipped), sealed and sent as usual.
    #[cfg(feature = "test-hooks")]
    pub(crate) fn post_badly_signed<R: rand::CryptoRng>(
        &mut self,
        circle: CircleId,
        content: &Content,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<(MessageId, WriteSet), Error> {
        self.post_signed(circle, content, false, rng, now_ms)
    }

    fn post_signed<R: rand::CryptoRng>(
        &mut self,
        circle: CircleId,
        content: &Content,
        well_signed: bool,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<(MessageId, WriteSet), Error> {
        let kind = content::to_kind(content).map_err(|error| match error {
            content::ContentError::Invalid(field) => Error::InvalidContent(field),
            _ => Error::InvalidContent("content"),
        })?;
        self.post_kind(circle, kind, well_signed, rng, now_ms)
    }

    /// Stages read receipts for `ids` (posts of others in `circle`): sent
    /// to the circle like a post, never shown in feeds.
    pub(crate) fn mark_read<R: rand::CryptoRng>(
        &mut self,
        circle: CircleId,
        ids: &[MessageId],
        rng: &mut R,
        now_ms: u64,
    ) -> Result<WriteSet, Error> {
        if ids.is_empty() || ids.len() > MAX_RECEIPT_IDS {
            return Err(Error::InvalidContent("receipt message ids"));
        }
        let kind = pb::content::Kind::Receipt(pb::Receipt {
            kind: pb::receipt::Kind::Read as i32,
            message_ids: ids.iter().map(|id| id.as_bytes().to_vec()).collect(),
        });
        self.post_kind(circle, kind, true, rng, now_ms)
            .map(|(_, writes)| writes)
    }

    /// Who has told us they read `id` in `circle`.
    pub(crate) fn read_by(&self, circle: CircleId, id: MessageId) -> Result<Vec<MemberId>, Error> {
        let key = self.read_key(circle, id);
        let Some(bytes) = self.store.get(Space::MessageIds, &key)? else {
            return Ok(Vec::new());
        };
        let record: ReadersRecord = records::decode(&bytes, "read receipts")?;
        Ok(record
            .members
            .iter()
            .filter_map(|m| <[u8; 16]>::try_from(m.as_slice()).ok())
            .map(MemberId::from_bytes)
            .collect())
    }

    fn read_key(&self, circle: CircleId, id: MessageId) -> [u8; BLIND_LEN] {
        self.store
            .blind("circle-read", &[circle.as_bytes(), id.as_bytes()])
    }

    /// Records that `reader` read the posts a receipt names.
    fn apply_read_receipt(
        &self,
        writes: &mut WriteSet,
        circle: CircleId,
        reader: MemberId,
        receipt: &pb::Receipt,
    ) -> Result<(), StoreError> {
        if receipt.kind != pb::receipt::Kind::Read as i32 {
            return Ok(());
        }
        for id in receipt.message_ids.iter().take(MAX_RECEIPT_IDS) {
            let Ok(id) = <[u8; 16]>::try_from(id.as_slice()) else {
                continue;
            };
            let key = self.read_key(circle, MessageId::from_bytes(id));
            let mut readers: ReadersRecord = match writes.read(Space::MessageIds, &key)? {
                Some(bytes) => records::decode(&bytes, "read receipts")?,
                None => ReadersRecord::default(),
            };
            if !readers.members.iter().any(|m| m == reader.as_bytes()) {
                readers.members.push(reader.as_bytes().to_vec());
                writes.put(Space::MessageIds, &key, &records::encode(&readers));
            }
        }
        Ok(())
    }

    fn post_kind<R: rand::CryptoRng>(
        &mut self,
        circle: CircleId,
        kind: pb::content::Kind,
        well_signed: bool,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<(MessageId, WriteSet), Error> {
        let shown = !matches!(kind, pb::content::Kind::Receipt(_));
        let mut writes = self.store.writes();
        let (mut record, chain) = self.active_circle(&writes, circle)?;
        let roster = chain.head().roster().clone();
        let me = self.device.member_id;
        // Not to anyone whose removal is pending (it lost a fork and its
        // facilitator is making it again).
        let recipients = key_recipients(&chain, me);
        let others: Vec<&RosterMember> = recipients.iter().collect();
        // Hand our key, before the message, to everyone reachable who does
        // not have it yet: all of them after a fresh key, and newcomers
        // otherwise.
        let had_key = zeroize::Zeroizing::new(record.own_key.clone());
        let mut key = self.own_sender_key(&mut record, &chain, rng, now_ms)?;
        if record.own_key != *had_key {
            self.put_circle(&mut writes, &record);
        }
        let lacking: Vec<MemberId> = others
            .iter()
            .map(|m| m.member_id())
            .filter(|m| !record.keys_sent_to.iter().any(|s| s == m.as_bytes()))
            .collect();
        for member in lacking {
            if self.contact_in(&writes, member)?.is_some() {
                let current = self
                    .circle_in(&writes, circle)?
                    .ok_or(Error::UnknownCircle)?;
                let bytes =
                    self.circle_keys_for(&mut writes, current, &chain, member, false, rng, now_ms)?;
                self.queue_bytes(&mut writes, member, &bytes, rng, now_ms)?;
            }
        }
        record = self
            .circle_in(&writes, circle)?
            .ok_or(Error::UnknownCircle)?;
        let id = MessageId::random(rng);
        let bytes = content::encode_in_epoch(id, now_ms, roster.epoch, kind);
        let mut message = key.encrypt(&bytes).map_err(|_| Error::MessageTooLong)?;
        if !well_signed {
            let mut raw = message.to_bytes();
            if let Some(last) = raw.last_mut() {
                *last ^= 1;
            }
            message = SenderKeyMessage::from_bytes(&raw)
                .map_err(|_| Error::Internal("re-reading a circle message failed"))?;
        }
        records::replace_secret(&mut record.own_key, &key.to_bytes());
        self.put_circle(&mut writes, &record);
        let inner = SealedInner {
            sender: SenderCertificate::of(self.device.identity.public()),
            message: InnerMessage::SenderKey(message),
        };
        let (body_key, body) = seal_body(&wire::encode_sealed_inner(&inner), rng)
            .map_err(|_| Error::MessageTooLong)?;
        let hash = body_hash(&body);
        // One outbox entry per relay, one sealed header per recipient.
        let mut by_relay: BTreeMap<String, Vec<OutboxRecipient>> = BTreeMap::new();
        for member in &others {
            let id = member.member_id();
            let (relay, mailbox, token) = match self.contact_in(&writes, id)? {
                Some(contact) => (
                    contact.relay.clone(),
                    contact.mailbox_id.clone(),
                    contact.send_token.clone(),
                ),
                None => match record.cards.iter().find(|c| c.member_id == id.as_bytes()) {
                    Some(card) => (
                        card.relay.clone(),
                        card.mailbox_id.clone(),
                        card.send_token.clone(),
                    ),
                    None => continue,
                },
            };
            let Ok(mailbox_arr) = <[u8; 32]>::try_from(mailbox.as_slice()) else {
                continue;
            };
            let header = seal_header(
                &body_key,
                &hash,
                &x25519_dalek::PublicKey::from(*member.identity.dh_key.as_bytes()),
                &mailbox_arr,
                rng,
            )
            .map_err(|_| Error::Internal("sealing failed"))?;
            by_relay.entry(relay).or_default().push(OutboxRecipient {
                member_id: id.as_bytes().to_vec(),
                mailbox_id: mailbox,
                send_token: token,
                sealed_header: header.as_bytes().to_vec(),
            });
        }
        for (relay, recipients) in by_relay {
            let mut client_message_id = [0u8; 16];
            rng.fill_bytes(&mut client_message_id);
            let entry = OutboxRecord {
                client_message_id: client_message_id.to_vec(),
                message_id: id.as_bytes().to_vec(),
                relay,
                body: body.clone(),
                queued_at_ms: now_ms,
                recipients,
                circle_id: circle.as_bytes().to_vec(),
                member_id: Default::default(),
                mailbox_id: Default::default(),
                send_token: Default::default(),
                sealed_header: Default::default(),
                failure_reported: Default::default(),
            };
            self.push_outbox(&mut writes, &entry);
        }
        let stored = MessageRecord {
            message_id: id.as_bytes().to_vec(),
            member_id: me.as_bytes().to_vec(),
            outgoing: true,
            sent_at_ms: now_ms,
            stored_at_ms: now_ms,
            content: bytes,
            status: StoredStatus::Queued as i32,
            failure: String::new(),
            circle_id: circle.as_bytes().to_vec(),
        };
        if shown {
            self.put_feed_entry(&mut writes, circle, me, &stored, id);
        }
        self.put_state(&mut writes);
        Ok((id, writes))
    }

    fn put_feed_entry(
        &mut self,
        writes: &mut WriteSet,
        circle: CircleId,
        sender: MemberId,
        record: &MessageRecord,
        id: MessageId,
    ) {
        let seq = self.state.next_message_seq;
        self.state.next_message_seq += 1;
        let key = [&self.feed_prefix(circle)[..], &seq.to_be_bytes()].concat();
        writes.put(Space::Messages, &key, &records::encode(record));
        writes.put(
            Space::MessageIds,
            &self.feed_index_key(record.outgoing, circle, sender, id),
            &seq.to_be_bytes(),
        );
    }

    /// A circle's feed, oldest first.
    pub(crate) fn feed(&self, circle: CircleId) -> Result<Vec<CircleMessage>, Error> {
        let writes = self.store.writes();
        let record = self
            .circle_in(&writes, circle)?
            .ok_or(Error::UnknownCircle)?;
        let chain = if record.chain.is_empty() {
            None
        } else {
            Some(load_chain(&record)?)
        };
        let roster = chain.as_ref().map(|c| c.head().roster());
        let facilitating = roster.is_some_and(|r| {
            r.member(self.device.member_id)
                .is_some_and(|m| m.role == Role::Facilitator)
        });
        let names = self.member_names(&record)?;
        self.store
            .scan(Space::Messages, &self.feed_prefix(circle))?
            .iter()
            .map(|(_, bytes)| {
                let record: MessageRecord = records::decode(bytes, "message")?;
                Ok(feed_message(circle, &record, &names, facilitating)?)
            })
            .collect()
    }

    /// Display names of everyone the circle's roster history or our
    /// contacts name.
    fn member_names(
        &self,
        record: &CircleRecord,
    ) -> Result<BTreeMap<MemberId, String>, StoreError> {
        let mut names = BTreeMap::new();
        if !record.chain.is_empty() {
            for member in &load_chain(record)?.head().roster().members {
                names.insert(member.member_id(), member.display_name.clone());
            }
        }
        names.insert(self.device.member_id, self.device.display_name.clone());
        Ok(names)
    }

    /// Verifies, decrypts and stores a circle message from `sender`.
    pub(super) fn apply_sender_key_message(
        &mut self,
        sender: MemberId,
        certificate: &SenderCertificate,
        message: &SenderKeyMessage,
        writes: &mut WriteSet,
        now_ms: u64,
    ) -> Result<Applied, Refusal> {
        let circle = CircleId::from_bytes(*message.circle_id());
        let Some(record) = self.circle_in(writes, circle)? else {
            return Err(RejectReason::UnknownSender.into());
        };
        if record.state == records::StoredCircleState::Joining as i32 {
            return Err(Refusal::Hold);
        }
        if record.state != records::StoredCircleState::Active as i32 {
            return Err(RejectReason::UnknownSender.into());
        }
        let chain = load_chain(&record)?;
        let roster = chain.head().roster();
        let Some(entry) = roster.member(sender) else {
            // Someone the roster dropped is refused; someone it does not
            // name yet may be ahead of our roster.
            return Err(if record.departed.iter().any(|m| m == sender.as_bytes()) {
                RejectReason::UnknownSender.into()
            } else {
                Refusal::Hold
            });
        };
        if entry.identity.sig_key != certificate.sig_key
            || entry.identity.dh_key != certificate.dh_key
        {
            return Err(RejectReason::UnknownSender.into());
        }
        // A post under an earlier key of a member who stays (sent before
        // its sender learned of a change) is still read while we keep
        // that key; one whose key is gone can never be read.
        let missing_key = || -> Refusal {
            if message.epoch() < roster.epoch {
                RejectReason::Undecryptable.into()
            } else {
                Refusal::Hold
            }
        };
        let key = self.sender_keys_key(circle, sender);
        let mut stored: SenderKeysRecord = match writes.read(Space::SenderKeys, &key)? {
            Some(bytes) => records::decode(&bytes, "sender keys")?,
            None => return Err(missing_key()),
        };
        let mut found = None;
        for (index, bytes) in stored.keys.iter().enumerate() {
            let remote = RemoteSenderKey::from_bytes(bytes)
                .map_err(|_| StoreError::Corrupt("sender key"))?;
            if remote.epoch() == message.epoch() && remote.chain_id() == message.chain_id() {
                found = Some((index, remote));
                break;
            }
        }
        let Some((index, mut remote)) = found else {
            return Err(missing_key());
        };
        let plain = remote.decrypt(message).map_err(|error| match error {
            DecryptError::Duplicate { .. } => RejectReason::Replayed,
            DecryptError::BadSignature => RejectReason::BadSignature,
            _ => RejectReason::Undecryptable,
        })?;
        if let Some(slot) = stored.keys.get_mut(index) {
            *slot = remote.to_bytes().to_vec();
        }
        writes.put(Space::SenderKeys, &key, &records::encode(&stored));
        let envelope = content::decode(&plain).map_err(|_| RejectReason::Malformed)?;
        let index_key = self.feed_index_key(false, circle, sender, envelope.message_id);
        if writes.read(Space::MessageIds, &index_key)?.is_some() {
            return Ok(Applied::default());
        }
        let mut applied = Applied::default();
        match envelope.kind {
            Kind::Shown(_) => {
                let stored = MessageRecord {
                    message_id: envelope.message_id.as_bytes().to_vec(),
                    member_id: sender.as_bytes().to_vec(),
                    outgoing: false,
                    sent_at_ms: envelope.sent_at_ms,
                    stored_at_ms: now_ms,
                    content: plain.clone(),
                    status: StoredStatus::Received as i32,
                    failure: String::new(),
                    circle_id: circle.as_bytes().to_vec(),
                };
                let names = self.member_names(&record)?;
                let facilitating = roster.is_facilitator(self.device.member_id);
                let message = feed_message(circle, &stored, &names, facilitating)?;
                self.put_feed_entry(writes, circle, sender, &stored, envelope.message_id);
                applied.events.push(Event::CircleMessage(message));
            }
            Kind::Receipt(receipt) => {
                self.apply_read_receipt(writes, circle, sender, &receipt)?;
                writes.put(Space::MessageIds, &index_key, &[]);
            }
            // Control kinds have no place in a circle feed.
            _ => {
                writes.put(Space::MessageIds, &index_key, &[]);
            }
        }
        Ok(applied)
    }
}

/// A stored feed entry as the app sees it.
fn feed_message(
    circle: CircleId,
    record: &MessageRecord,
    names: &BTreeMap<MemberId, String>,
    facilitating: bool,
) -> Result<CircleMessage, StoreError> {
    // The same record as a 1:1 history entry: one place reads ids,
    // direction and content.
    let message = Message::try_from(record)?;
    let urgent = facilitating && matches!(message.content, Content::SupportRequest { .. });
    Ok(CircleMessage {
        id: message.id,
        circle,
        sender: message.member,
        sender_name: names.get(&message.member).cloned().unwrap_or_default(),
        direction: message.direction,
        sent_at_ms: message.sent_at_ms,
        stored_at_ms: message.stored_at_ms,
        content: message.content,
        urgent,
    })
}

/// An identity signing key as ed25519-dalek's type.
pub(super) fn verifying(key: &Ed25519PublicKey) -> Result<VerifyingKey, RejectReason> {
    VerifyingKey::from_bytes(key.as_bytes()).map_err(|_| RejectReason::UnknownSender)
}

impl Engine {
    /// The relay answered a circle message per recipient: drop those it
    /// stored or refused for good; keep the ones refused for now (mailbox
    /// full, rate limited) under a fresh client message id, since a retry
    /// with the old one would only repeat the old answers.
    pub(crate) fn circle_sent<R: rand::CryptoRng>(
        &self,
        item: &super::Outgoing,
        failed: &[(MemberId, crate::messages::FailureReason)],
        rng: &mut R,
    ) -> Result<WriteSet, StoreError> {
        let mut writes = self.store.writes();
        let key = item.seq.to_be_bytes();
        let retry: Vec<OutboxRecipient> = item
            .record
            .recipients
            .iter()
            .filter(|r| {
                failed.iter().any(|(m, reason)| {
                    m.as_bytes() == r.member_id.as_slice() && reason.is_retryable()
                })
            })
            .cloned()
            .collect();
        if retry.is_empty() {
            writes.delete(Space::Outbox, &key);
        } else {
            let mut record = item.record.clone();
            let mut client_message_id = [0u8; 16];
            rng.fill_bytes(&mut client_message_id);
            record.client_message_id = client_message_id.to_vec();
            record.recipients = retry;
            record.failure_reported = true;
            writes.put(Space::Outbox, &key, &records::encode(&record));
        }
        if let (Some(circle), Ok(id)) = (item.circle(), item.message_id()) {
            let index = self.feed_index_key(true, circle, self.device.member_id, id);
            if let Some(seq) = self.store.get(Space::MessageIds, &index)?
                && let Ok(seq) = <[u8; 8]>::try_from(seq.as_slice())
            {
                let entry = [&self.feed_prefix(circle)[..], &seq[..]].concat();
                if let Some(bytes) = self.store.get(Space::Messages, &entry)? {
                    let mut stored: MessageRecord = records::decode(&bytes, "message")?;
                    if stored.status == StoredStatus::Queued as i32 {
                        stored.status = StoredStatus::Sent as i32;
                        writes.put(Space::Messages, &entry, &records::encode(&stored));
                    }
                }
            }
        }
        Ok(writes)
    }
}
