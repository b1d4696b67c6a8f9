//! Receiving: from a delivered envelope to stored messages and events.
//!
//! Open the sealed header with our `IK_dh` (bound to our mailbox id), open
//! the body, decode the inner message, identify the sender by its
//! certificate, decrypt (a prekey message runs the responder's handshake
//! against the replay cache), unpad, decode the content, deduplicate by
//! message id. Everything an envelope changes — the message, the ratchet
//! state, the dedup mark, consumed prekeys, the replay cache and the
//! "processed up to" sequence number — lands in one write set, which the
//! shell commits durably before it acknowledges the envelope.
//!
//! An envelope that fails any step changes nothing but the sequence
//! number: it becomes a [`Event::Rejected`] and is acknowledged anyway, so a
//! bad envelope never blocks the mailbox and the session keeps working.

use hearth_proto::content as pb;
use hearth_protocol::handshake::{self, HandshakeError, ReplayTag, ResponderPreKeys};
use hearth_protocol::keys::{OneTimePreKey, PqPreKey, SignedPreKey};
use hearth_protocol::padding::unpad;
use hearth_protocol::ratchet::{DecryptError, RatchetMessage, RatchetSession};
use hearth_protocol::sealed::{open_body, open_header};
use hearth_protocol::wire::{self, InnerMessage, PreKeyMessage, SealedInner, SenderCertificate};
use zeroize::Zeroizing;

use super::Engine;
use crate::contacts::{self, Contact};
use crate::content::{self, CircleControl, Kind};
use crate::device::{PrekeyKind, REPLAY_KEY, prekey_key};
use crate::events::{Event, RejectReason};
use crate::ids::{MemberId, MessageId};
use crate::messages::Message;
use crate::records::{
    self, AcceptedInit, ContactRecord, HeldRecord, MessageRecord, SessionRecord,
    SignedPrekeyRecord, StoredStatus,
};
use crate::relay::DeliveredEnvelope;
use crate::store::{BLIND_LEN, Space, StoreError, WriteSet};

/// Longest display name kept from a contact request (in characters).
const MAX_NAME_CHARS: usize = 64;
/// Longest send token accepted from a contact request.
const MAX_TOKEN_LEN: usize = 256;
/// Most envelopes held for later at once.
const MAX_HELD: usize = 1_000;
/// Most envelopes held for one sender (as its certificate names it).
const MAX_HELD_PER_SENDER: usize = 100;
/// Most envelopes held, together, from senders who are neither contacts
/// nor named by the roster of the circle they wrote to (a newcomer whose
/// roster version is still on its way, or anyone holding a send token).
const MAX_HELD_FROM_STRANGERS: usize = 200;
/// A held envelope's key: held sequence (u64) ‖ 1 if its sender is a
/// stranger (else 0) ‖ the sender's blinded member id. Keys sort by
/// arrival, and the caps are counted without decrypting anything.
const HELD_KEY_LEN: usize = 8 + 1 + BLIND_LEN;
/// How long an envelope is held before it is given up.
const HOLD_FOR_MS: u64 = 14 * 24 * 60 * 60 * 1000;

/// What processing one envelope produced.
#[derive(Debug)]
pub(crate) enum Received {
    /// Processed before (a redelivery whose acknowledgement was lost): just
    /// acknowledge it again.
    AlreadyProcessed,
    /// Commit `writes`, then emit `events`, then acknowledge.
    Processed {
        /// Everything the envelope changed.
        writes: WriteSet,
        /// What to tell the app.
        events: Vec<Event>,
        /// Whether it was applied, so held envelopes may now move (a
        /// refused or held one changes nothing they wait for).
        applied: bool,
    },
}

/// Why an envelope was not applied: refused, or our own store failed (then
/// nothing is acknowledged).
#[derive(Debug)]
pub(super) enum Refusal {
    Reject(RejectReason),
    Store(StoreError),
    /// It needs something that has not arrived yet (a roster version, a
    /// sender key): keep it and try again later.
    Hold,
}

impl From<RejectReason> for Refusal {
    fn from(reason: RejectReason) -> Self {
        Self::Reject(reason)
    }
}

impl From<StoreError> for Refusal {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// The effects of an applied envelope beyond its writes.
#[derive(Debug, Default)]
pub(super) struct Applied {
    pub(super) events: Vec<Event>,
    replay_tag: Option<ReplayTag>,
}

/// A decrypted message on its way to the history.
struct Decrypted {
    sender: MemberId,
    ratchet: RatchetSession,
    session: SessionRecord,
    padded: Zeroizing<Vec<u8>>,
}

impl Engine {
    /// Processes one delivered envelope (see the [module docs](self)).
    pub(crate) fn receive<R: rand::CryptoRng>(
        &mut self,
        envelope: &DeliveredEnvelope,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<Received, StoreError> {
        // Below the mark: a redelivery of something processed before (its
        // acknowledgement was lost). It is still tried, in case the relay's
        // numbering went back (a restored backup): new content must not be
        // dropped, while a refusal here just means "already processed".
        let redelivered = envelope.seq < self.state.next_delivery_seq;
        let saved = self.state;
        let mut writes = self.store.writes();
        let mut applied = false;
        let (mut writes, events) = match self.apply(envelope, &mut writes, rng, now_ms) {
            Ok(done) => {
                if let Some(tag) = done.replay_tag {
                    // A full cache only weakens replay protection of very old
                    // signed prekeys; the message itself is fine.
                    let _ = self.replay.record(tag);
                    writes.put(Space::Device, REPLAY_KEY, &self.replay.to_bytes());
                }
                applied = true;
                (writes, done.events)
            }
            Err(Refusal::Reject(_) | Refusal::Hold) if redelivered => {
                self.state = saved;
                return Ok(Received::AlreadyProcessed);
            }
            Err(Refusal::Hold) => {
                self.state = saved;
                let mut writes = self.store.writes();
                match self.hold(&mut writes, envelope, now_ms)? {
                    Ok(()) => (writes, Vec::new()),
                    Err(reason) => {
                        tracing::debug!(?reason, seq = envelope.seq, "refused to hold an envelope");
                        (self.store.writes(), vec![Event::Rejected { reason }])
                    }
                }
            }
            Err(Refusal::Reject(reason)) => {
                tracing::debug!(?reason, seq = envelope.seq, "rejected an envelope");
                self.state = saved;
                (self.store.writes(), vec![Event::Rejected { reason }])
            }
            Err(Refusal::Store(error)) => {
                self.state = saved;
                return Err(error);
            }
        };
        let next = envelope.seq.saturating_add(1);
        self.state.next_delivery_seq = self.state.next_delivery_seq.max(next);
        self.put_state(&mut writes);
        Ok(Received::Processed {
            writes,
            events,
            applied,
        })
    }

    fn apply<R: rand::CryptoRng>(
        &mut self,
        envelope: &DeliveredEnvelope,
        writes: &mut WriteSet,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<Applied, Refusal> {
        let inner = self.open(&envelope.sealed_header, &envelope.body)?;
        let sender = MemberId::of(&inner.sender.sig_key);
        match inner.message {
            InnerMessage::Ratchet(message) => {
                let decrypted = self.decrypt_ratchet(sender, &inner.sender, &message, rng)?;
                self.deliver(decrypted, writes, rng, now_ms)
            }
            InnerMessage::PreKey(message) => {
                self.apply_prekey(sender, &inner.sender, message, writes, rng, now_ms)
            }
            InnerMessage::SenderKey(message) => {
                self.apply_sender_key_message(sender, &inner.sender, &message, writes, now_ms)
            }
        }
    }

    /// Keeps an envelope for [`Self::retry_held`], unless its sender, the
    /// senders we do not know together, or everyone together already have
    /// as many waiting as allowed: then it is refused. Nothing held is ever
    /// pushed out to make room, so whoever can deliver to our mailbox
    /// cannot flush out posts we hold for a sender key still on its way.
    fn hold(
        &mut self,
        writes: &mut WriteSet,
        envelope: &DeliveredEnvelope,
        now_ms: u64,
    ) -> Result<Result<(), RejectReason>, StoreError> {
        let Some((sender, stranger)) = self.held_sender(envelope)? else {
            return Ok(Err(RejectReason::Undecryptable));
        };
        // Counted from the keys alone (seq ‖ stranger ‖ blinded sender):
        // nothing held is decrypted to make room for a newcomer.
        let blinded = self.store.blind("held-sender", &[sender.as_bytes()]);
        let (mut total, mut from_sender, mut from_strangers) = (0, 0, 0);
        for key in self.store.keys(Space::Held, &[])? {
            total += 1;
            // Keys of older versions (the sequence alone) count only in
            // the total.
            if key.len() == HELD_KEY_LEN {
                let (stranger_flag, held_sender) = key[8..].split_at(1);
                from_strangers += usize::from(stranger_flag == [1]);
                from_sender += usize::from(held_sender == blinded);
            }
        }
        if total >= MAX_HELD
            || from_sender >= MAX_HELD_PER_SENDER
            || (stranger && from_strangers >= MAX_HELD_FROM_STRANGERS)
        {
            return Ok(Err(RejectReason::TooManyHeld));
        }
        let record = HeldRecord {
            sealed_header: envelope.sealed_header.to_vec(),
            body: envelope.body.to_vec(),
            held_at_ms: now_ms,
        };
        let seq = self.state.next_held_seq;
        self.state.next_held_seq += 1;
        let key = [&seq.to_be_bytes()[..], &[u8::from(stranger)], &blinded[..]].concat();
        writes.put(Space::Held, &key, &records::encode(&record));
        Ok(Ok(()))
    }

    /// Who an envelope to hold says it is from, and whether we know them:
    /// a contact, or a member the roster of the circle it names (for a
    /// circle message) lists with the same keys. `None` if it does not open
    /// (it did a moment ago).
    fn held_sender(
        &self,
        envelope: &DeliveredEnvelope,
    ) -> Result<Option<(MemberId, bool)>, StoreError> {
        let Ok(inner) = self.open(&envelope.sealed_header, &envelope.body) else {
            return Ok(None);
        };
        let sender = MemberId::of(&inner.sender.sig_key);
        let known = match self.contact_record(sender)? {
            Some(contact) => contact.ik_dh == inner.sender.dh_key.as_bytes(),
            None => match &inner.message {
                InnerMessage::SenderKey(message) => {
                    self.circle_names(*message.circle_id(), sender, &inner.sender)?
                }
                _ => false,
            },
        };
        Ok(Some((sender, !known)))
    }

    /// Whether the roster of `circle` (one we are in) lists `sender` with
    /// the keys of `certificate`.
    fn circle_names(
        &self,
        circle: [u8; 16],
        sender: MemberId,
        certificate: &SenderCertificate,
    ) -> Result<bool, StoreError> {
        let writes = self.store.writes();
        let Some(record) = self.circle_in(&writes, crate::circles::CircleId::from_bytes(circle))?
        else {
            return Ok(false);
        };
        if record.chain.is_empty() {
            return Ok(false);
        }
        let chain = super::circles::load_chain(&record)?;
        Ok(chain.head().roster().member(sender).is_some_and(|m| {
            m.identity.sig_key == certificate.sig_key && m.identity.dh_key == certificate.dh_key
        }))
    }

    /// Tries the held envelopes again, oldest first; returns what the
    /// first one that moved changed (commit it, then call again), or
    /// `None` when none can move.
    pub(crate) fn retry_held<R: rand::CryptoRng>(
        &mut self,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<Option<(WriteSet, Vec<Event>)>, StoreError> {
        for (key, bytes) in self.store.scan(Space::Held, &[])? {
            let record: HeldRecord = records::decode(&bytes, "held envelope")?;
            let mut writes = self.store.writes();
            writes.delete(Space::Held, &key);
            if now_ms.saturating_sub(record.held_at_ms) > HOLD_FOR_MS {
                // Given up, and said so: the app can tell that a message
                // could not be read.
                return Ok(Some((
                    writes,
                    vec![Event::Rejected {
                        reason: RejectReason::HeldTooLong,
                    }],
                )));
            }
            let envelope = DeliveredEnvelope {
                seq: u64::MAX,
                stored_at_ms: record.held_at_ms,
                sealed_header: record.sealed_header.clone().into(),
                body: record.body.clone().into(),
            };
            let saved = self.state;
            match self.apply(&envelope, &mut writes, rng, now_ms) {
                Ok(applied) => {
                    if let Some(tag) = applied.replay_tag {
                        let _ = self.replay.record(tag);
                        writes.put(Space::Device, REPLAY_KEY, &self.replay.to_bytes());
                    }
                    self.put_state(&mut writes);
                    return Ok(Some((writes, applied.events)));
                }
                Err(Refusal::Hold) => self.state = saved,
                Err(Refusal::Reject(reason)) => {
                    self.state = saved;
                    return Ok(Some((writes, vec![Event::Rejected { reason }])));
                }
                Err(Refusal::Store(error)) => {
                    self.state = saved;
                    return Err(error);
                }
            }
        }
        Ok(None)
    }

    /// Opens the sealed header and body and decodes the inner message.
    fn open(&self, sealed_header: &[u8], body: &[u8]) -> Result<SealedInner, RejectReason> {
        let our_dh =
            x25519_dalek::StaticSecret::from(*self.device.identity.dh().expose_private_bytes());
        let (key, hash) = open_header(&our_dh, &self.device.mailbox_id, sealed_header)
            .map_err(|_| RejectReason::Undecryptable)?;
        let inner =
            Zeroizing::new(open_body(&key, &hash, body).map_err(|_| RejectReason::Undecryptable)?);
        wire::decode_sealed_inner(&inner).map_err(|_| RejectReason::Malformed)
    }

    /// The contact a certificate names, if its keys match.
    fn known_sender(
        &self,
        sender: MemberId,
        certificate: &SenderCertificate,
    ) -> Result<Option<ContactRecord>, Refusal> {
        let Some(contact) = self.contact_record(sender)? else {
            return Ok(None);
        };
        if contact.ik_dh != certificate.dh_key.as_bytes() {
            return Err(RejectReason::UnknownSender.into());
        }
        Ok(Some(contact))
    }

    fn decrypt_ratchet<R: rand::CryptoRng>(
        &self,
        sender: MemberId,
        certificate: &SenderCertificate,
        message: &RatchetMessage,
        rng: &mut R,
    ) -> Result<Decrypted, Refusal> {
        self.known_sender(sender, certificate)?
            .ok_or(RejectReason::UnknownSender)?;
        let mut session = self
            .session_record(sender)?
            .ok_or(RejectReason::UnknownSender)?;
        let mut ratchet = RatchetSession::from_bytes(&session.ratchet)
            .map_err(|_| StoreError::Corrupt("session"))?;
        let padded = ratchet.decrypt(message, rng).map_err(decrypt_refusal)?;
        // The contact answered: our later messages need no handshake fields.
        session.pending_init = None;
        Ok(Decrypted {
            sender,
            ratchet,
            session,
            padded,
        })
    }

    fn apply_prekey<R: rand::CryptoRng>(
        &mut self,
        sender: MemberId,
        certificate: &SenderCertificate,
        message: PreKeyMessage,
        writes: &mut WriteSet,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<Applied, Refusal> {
        let tag = message.init.replay_tag();
        let contact = self.known_sender(sender, certificate)?;
        if contact.is_some()
            && let Some(session) = self.session_record(sender)?
            && accepted_from(&session, &tag)
        {
            // A later message of a handshake we already accepted.
            let decrypted = self.decrypt_ratchet(sender, certificate, &message.message, rng)?;
            return self.deliver(decrypted, writes, rng, now_ms);
        }
        if self.replay.contains(&tag) {
            return Err(RejectReason::Replayed.into());
        }
        let decrypted = self.accept_handshake(sender, &message, writes, rng)?;
        let mut applied = match contact {
            // A known contact restarted its session.
            Some(_) => self.deliver(decrypted, writes, rng, now_ms)?,
            None => self.add_requesting_contact(&message, decrypted, writes, rng, now_ms)?,
        };
        applied.replay_tag = Some(tag);
        Ok(applied)
    }

    /// Runs the responder's handshake and decrypts the first message;
    /// stages the deletion of consumed one-time prekeys.
    fn accept_handshake<R: rand::CryptoRng>(
        &self,
        sender: MemberId,
        message: &PreKeyMessage,
        writes: &mut WriteSet,
        rng: &mut R,
    ) -> Result<Decrypted, Refusal> {
        let init = &message.init;
        let signed = self.find_signed(init.signed_prekey_id)?;
        let one_time = match init.one_time_prekey_id {
            Some(id) => Some(self.find_one_time(id)?),
            None => None,
        };
        let pq = self.find_pq(init.pq_prekey_id)?;
        let prekeys = ResponderPreKeys {
            signed_prekey: &signed,
            one_time_prekey: one_time.as_ref(),
            pq_prekey: &pq,
        };
        let accepted = handshake::respond(&self.device.identity, prekeys, init, &self.replay)
            .map_err(|e| match e {
                HandshakeError::Replayed => RejectReason::Replayed,
                _ => RejectReason::Undecryptable,
            })?;
        let mut ratchet = RatchetSession::init_bob(&accepted.key, accepted.ad, signed.key_pair());
        let padded = ratchet
            .decrypt(&message.message, rng)
            .map_err(decrypt_refusal)?;
        if let Some(id) = accepted.consumed.one_time_prekey {
            writes.delete(Space::Prekeys, &prekey_key(PrekeyKind::OneTime, id));
        }
        if let Some(id) = accepted.consumed.pq_prekey {
            writes.delete(Space::Prekeys, &prekey_key(PrekeyKind::Pq, id));
        }
        let session = SessionRecord {
            ratchet: Vec::new(),
            pending_init: None,
            accepted: Some(AcceptedInit {
                signed_prekey_id: init.signed_prekey_id,
                ephemeral: init.ephemeral.as_bytes().to_vec(),
            }),
        };
        Ok(Decrypted {
            sender,
            ratchet,
            session,
            padded,
        })
    }

    fn find_signed(&self, id: u32) -> Result<SignedPreKey, Refusal> {
        let bytes = self
            .prekeys()
            .find(PrekeyKind::Signed, id)?
            .ok_or(RejectReason::Undecryptable)?;
        let record: SignedPrekeyRecord = records::decode(&bytes, "signed prekey")?;
        Ok(SignedPreKey::from_bytes(&record.key)
            .map_err(|_| StoreError::Corrupt("signed prekey"))?)
    }

    fn find_one_time(&self, id: u32) -> Result<OneTimePreKey, Refusal> {
        // A used one-time prekey is gone: a replay of an accepted first message.
        let bytes = self
            .prekeys()
            .find(PrekeyKind::OneTime, id)?
            .ok_or(RejectReason::Replayed)?;
        Ok(
            OneTimePreKey::from_bytes(&bytes)
                .map_err(|_| StoreError::Corrupt("one-time prekey"))?,
        )
    }

    fn find_pq(&self, id: u32) -> Result<PqPreKey, Refusal> {
        let bytes = self
            .prekeys()
            .find(PrekeyKind::Pq, id)?
            .ok_or(RejectReason::Replayed)?;
        Ok(PqPreKey::from_bytes(&bytes).map_err(|_| StoreError::Corrupt("ML-KEM prekey"))?)
    }

    /// A stranger's first message must be a contact request carrying the
    /// secret of one of our unused invites, a circle join request with a
    /// circle invite's secret, or the sender key of a member of a circle we
    /// are in.
    fn add_requesting_contact<R: rand::CryptoRng>(
        &mut self,
        message: &PreKeyMessage,
        decrypted: Decrypted,
        writes: &mut WriteSet,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<Applied, Refusal> {
        let plain = unpad(&decrypted.padded).map_err(|_| RejectReason::Malformed)?;
        let envelope = content::decode(plain).map_err(|_| RejectReason::Malformed)?;
        let initiator = &message.init.initiator;
        let circle_contact = match &envelope.kind {
            Kind::ContactRequest(_) => None,
            Kind::Circle(CircleControl::JoinRequest(request)) => {
                Some(self.admit_joiner(writes, request)?)
            }
            Kind::Circle(CircleControl::Keys(keys)) => {
                let mut contact =
                    self.admit_circle_stranger(writes, decrypted.sender, &initiator.dh_key, keys)?;
                // A token of our own for them, registered before our reply
                // (which carries it) goes out.
                let mut token = [0u8; 32];
                rng.fill_bytes(&mut token);
                self.add_token_task(writes, &token);
                contact.our_send_token = token.to_vec();
                Some(contact)
            }
            _ => return Err(RejectReason::UnknownSender.into()),
        };
        if let Some(mut contact) = circle_contact {
            contact.added_at_ms = now_ms;
            contacts::with_identity(&mut contact, initiator);
            self.put_contact(writes, &contact)?;
            return self.deliver(decrypted, writes, rng, now_ms);
        }
        let Kind::ContactRequest(request) = &envelope.kind else {
            return Err(RejectReason::UnknownSender.into());
        };
        let invite_key = self.invite_key(&request.invite_secret);
        let mut invite: records::InviteRecord = match self.store.get(Space::Invites, &invite_key)? {
            Some(bytes) => records::decode(&bytes, "invite")?,
            None => return Err(RejectReason::UnknownInvite.into()),
        };
        // A circle link's secret is for a join request only.
        if !invite.circle_id.is_empty() {
            return Err(RejectReason::UnknownInvite.into());
        }
        let expired = invite.expires_at_ms != 0 && invite.expires_at_ms <= now_ms;
        if invite.used || invite.token_revoked || expired {
            return Err(RejectReason::InviteAlreadyUsed.into());
        }
        let mut contact = contact_from_request(request, now_ms)?;
        contact.our_send_token = invite.send_token.clone();
        contacts::with_identity(&mut contact, &message.init.initiator);
        invite.used = true;
        writes.put(Space::Invites, &invite_key, &records::encode(&invite));
        self.put_contact(writes, &contact)?;
        let own = self.device.identity.public().sig_key;
        let added = Contact::from_record(&contact, &own)?;
        let mut applied = self.deliver(decrypted, writes, rng, now_ms)?;
        applied.events.insert(0, Event::ContactAdded(added));
        Ok(applied)
    }

    /// Stores a decrypted message: session, dedup mark, history entry or
    /// status change.
    fn deliver<R: rand::CryptoRng>(
        &mut self,
        decrypted: Decrypted,
        writes: &mut WriteSet,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<Applied, Refusal> {
        let Decrypted {
            sender,
            ratchet,
            mut session,
            padded,
        } = decrypted;
        let plain = unpad(&padded).map_err(|_| RejectReason::Malformed)?;
        let envelope = content::decode(plain).map_err(|_| RejectReason::Malformed)?;
        session.ratchet = ratchet.to_bytes().to_vec();
        self.put_session(writes, sender, &session);
        let index = self.message_index_key(false, sender, envelope.message_id);
        if writes.read(Space::MessageIds, &index)?.is_some() {
            return Ok(Applied::default());
        }
        let mut applied = Applied::default();
        match &envelope.kind {
            Kind::Shown(_) => {
                let record = MessageRecord {
                    message_id: envelope.message_id.as_bytes().to_vec(),
                    member_id: sender.as_bytes().to_vec(),
                    outgoing: false,
                    sent_at_ms: envelope.sent_at_ms,
                    stored_at_ms: now_ms,
                    content: plain.to_vec(),
                    status: StoredStatus::Received as i32,
                    failure: String::new(),
                    circle_id: Vec::new(),
                };
                let message = Message::try_from(&record)?;
                self.put_new_message(writes, sender, &record, envelope.message_id);
                applied.events.push(Event::Message(message));
            }
            Kind::ContactRequest(_) => {
                writes.put(Space::MessageIds, &index, &[]);
            }
            Kind::Receipt(receipt) => {
                self.apply_receipt(writes, sender, receipt)?;
                writes.put(Space::MessageIds, &index, &[]);
            }
            Kind::Circle(control) => {
                writes.put(Space::MessageIds, &index, &[]);
                let events = self.apply_control(sender, control.clone(), writes, rng, now_ms)?;
                applied.events.extend(events);
            }
        }
        Ok(applied)
    }

    fn apply_receipt(
        &self,
        writes: &mut WriteSet,
        sender: MemberId,
        receipt: &pb::Receipt,
    ) -> Result<(), StoreError> {
        let status = match pb::receipt::Kind::try_from(receipt.kind) {
            Ok(pb::receipt::Kind::Delivered) => StoredStatus::Delivered,
            Ok(pb::receipt::Kind::Read) => StoredStatus::Read,
            _ => return Ok(()),
        };
        for id in &receipt.message_ids {
            if let Ok(id) = <[u8; 16]>::try_from(id.as_slice()) {
                self.set_outgoing_status(writes, sender, MessageId::from_bytes(id), status, "")?;
            }
        }
        Ok(())
    }
}

/// Whether `session` came from the first message tagged `tag`.
fn accepted_from(session: &SessionRecord, tag: &ReplayTag) -> bool {
    session.accepted.as_ref().is_some_and(|accepted| {
        accepted.signed_prekey_id == tag.signed_prekey_id
            && accepted.ephemeral == tag.ephemeral.as_bytes()
    })
}

fn decrypt_refusal(error: DecryptError) -> Refusal {
    match error {
        DecryptError::Duplicate => RejectReason::Replayed.into(),
        _ => RejectReason::Undecryptable.into(),
    }
}

/// The contact a request describes (identity fields are added by the caller).
fn contact_from_request(
    request: &pb::ContactRequest,
    now_ms: u64,
) -> Result<ContactRecord, Refusal> {
    let relay: hearth_protocol::address::RelayAddress =
        request.relay.parse().map_err(|_| RejectReason::Malformed)?;
    if request.mailbox_id.len() != 32
        || request.send_token.is_empty()
        || request.send_token.len() > MAX_TOKEN_LEN
    {
        return Err(RejectReason::Malformed.into());
    }
    let mut contact = ContactRecord::reached_at(
        request.display_name.chars().take(MAX_NAME_CHARS).collect(),
        relay.to_string(),
        request.mailbox_id.clone(),
        request.send_token.clone(),
    );
    contact.added_at_ms = now_ms;
    Ok(contact)
}
