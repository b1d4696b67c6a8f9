//! How the fjall store lays out its keys and values (the table in the
//! parent module's documentation): fixed-layout big-endian keys, values
//! with a format version byte first. Decoding never trusts the disk: a value
//! of the wrong length or version is [`StoreError::Corrupt`], never a panic.

use super::*;

// ---- keys -------------------------------------------------------------

pub(super) fn token_key(mailbox: &MailboxId, hash: &TokenHash) -> [u8; 64] {
    let mut key = [0; 64];
    key[..32].copy_from_slice(&mailbox.0);
    key[32..].copy_from_slice(&hash.0);
    key
}

pub(super) fn envelope_key(mailbox: &MailboxId, seq: u64) -> [u8; 40] {
    let mut key = [0; 40];
    key[..32].copy_from_slice(&mailbox.0);
    key[32..].copy_from_slice(&seq.to_be_bytes());
    key
}

pub(super) fn prekey_key(mailbox: &MailboxId, kind: PrekeyKind, index: u64) -> [u8; 41] {
    let mut key = [0; 41];
    key[..32].copy_from_slice(&mailbox.0);
    key[32] = match kind {
        PrekeyKind::OneTimeX25519 => KIND_X25519,
        PrekeyKind::OneTimePq => KIND_PQ,
    };
    key[33..].copy_from_slice(&index.to_be_bytes());
    key
}

pub(super) fn bundle_key(mailbox: &MailboxId, slot: u8) -> [u8; 33] {
    let mut key = [0; 33];
    key[..32].copy_from_slice(&mailbox.0);
    key[32] = slot;
    key
}

pub(super) fn decode_u64_key(key: &[u8], what: &'static str) -> Result<u64, StoreError> {
    let bytes = key.try_into().map_err(|_| StoreError::Corrupt(what))?;
    Ok(u64::from_be_bytes(bytes))
}

pub(super) fn decode_token_key(key: &[u8]) -> Result<(MailboxId, TokenHash), StoreError> {
    let (mailbox, hash) = key
        .split_first_chunk::<32>()
        .filter(|(_, hash)| hash.len() == 32)
        .ok_or(StoreError::Corrupt("send token key"))?;
    let hash = TokenHash::from_slice(hash).ok_or(StoreError::Corrupt("send token key"))?;
    Ok((MailboxId(*mailbox), hash))
}

pub(super) fn decode_envelope_key(key: &[u8]) -> Result<(MailboxId, u64), StoreError> {
    let (mailbox, seq) = key
        .split_first_chunk::<32>()
        .ok_or(StoreError::Corrupt("envelope key"))?;
    Ok((MailboxId(*mailbox), decode_u64_key(seq, "envelope key")?))
}

pub(super) fn decode_prekey_key(key: &[u8]) -> Result<(MailboxId, PrekeyKind, u64), StoreError> {
    const WHAT: &str = "prekey key";
    let (mailbox, rest) = key
        .split_first_chunk::<32>()
        .ok_or(StoreError::Corrupt(WHAT))?;
    let (kind, index) = rest.split_first().ok_or(StoreError::Corrupt(WHAT))?;
    let kind = match *kind {
        KIND_X25519 => PrekeyKind::OneTimeX25519,
        KIND_PQ => PrekeyKind::OneTimePq,
        _ => return Err(StoreError::Corrupt(WHAT)),
    };
    Ok((MailboxId(*mailbox), kind, decode_u64_key(index, WHAT)?))
}

pub(super) fn decode_bundle_key(key: &[u8]) -> Result<(MailboxId, u8), StoreError> {
    match key.split_first_chunk::<32>() {
        Some((mailbox, &[slot @ (SLOT_SIGNED_BUNDLE | SLOT_LAST_RESORT)])) => {
            Ok((MailboxId(*mailbox), slot))
        }
        _ => Err(StoreError::Corrupt("bundle key")),
    }
}

// ---- values -----------------------------------------------------------

/// Reads a value: checks the version byte, then hands out fixed-size fields.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Starts reading a value of record type `what` (named in errors).
    pub(super) fn open(value: &'a [u8], what: &'static str) -> Result<Self, StoreError> {
        match value.split_first() {
            Some((&FORMAT_V1, bytes)) => Ok(Self { bytes, what }),
            _ => Err(StoreError::Corrupt(what)),
        }
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let (head, rest) = self
            .bytes
            .split_first_chunk::<N>()
            .ok_or(StoreError::Corrupt(self.what))?;
        self.bytes = rest;
        Ok(*head)
    }

    pub(super) fn u32(&mut self) -> Result<u32, StoreError> {
        self.array().map(u32::from_be_bytes)
    }

    pub(super) fn u64(&mut self) -> Result<u64, StoreError> {
        self.array().map(u64::from_be_bytes)
    }

    /// The next `len` bytes.
    pub(super) fn take(&mut self, len: usize) -> Result<&'a [u8], StoreError> {
        if len > self.bytes.len() {
            return Err(StoreError::Corrupt(self.what));
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    /// The remaining bytes (an opaque tail).
    pub(super) fn rest(self) -> &'a [u8] {
        self.bytes
    }

    /// Requires that nothing is left.
    pub(super) fn finish(self) -> Result<(), StoreError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Corrupt(self.what))
        }
    }
}

/// The version byte followed by opaque bytes.
pub(super) fn versioned(bytes: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(1 + bytes.len());
    value.push(FORMAT_V1);
    value.extend_from_slice(bytes);
    value
}

pub(super) fn encode_u32(n: u32) -> [u8; 5] {
    let mut value = [FORMAT_V1; 5];
    value[1..].copy_from_slice(&n.to_be_bytes());
    value
}

pub(super) fn decode_u32(value: &[u8], what: &'static str) -> Result<u32, StoreError> {
    let mut reader = Reader::open(value, what)?;
    let n = reader.u32()?;
    reader.finish()?;
    Ok(n)
}

pub(super) fn encode_mailbox(record: &MailboxRecord) -> Vec<u8> {
    let mut value = Vec::with_capacity(49);
    value.push(FORMAT_V1);
    value.extend_from_slice(&record.key);
    value.extend_from_slice(&record.created_at.to_be_bytes());
    value.extend_from_slice(&record.reserved_seq.to_be_bytes());
    value
}

pub(super) fn decode_mailbox(value: &[u8]) -> Result<MailboxRecord, StoreError> {
    let mut reader = Reader::open(value, "mailbox")?;
    let record = MailboxRecord {
        key: reader.array()?,
        created_at: reader.u64()?,
        reserved_seq: reader.u64()?,
    };
    reader.finish()?;
    Ok(record)
}

/// Encodes an envelope: a shared-body envelope in format 1
/// (`1 ‖ body id ‖ stored_at ‖ expires_at ‖ size ‖ sealed header`), an inline
/// one in format 2 (`2 ‖ stored_at ‖ expires_at ‖ size ‖ client message id ‖
/// header length (u32) ‖ sealed header ‖ body`).
pub(super) fn encode_envelope(record: &EnvelopeRecord) -> Vec<u8> {
    let meta = &record.meta;
    let header = &record.sealed_header;
    match meta.body {
        BodyRef::Shared(id) => {
            let mut value = Vec::with_capacity(29 + header.len());
            value.push(FORMAT_V1);
            value.extend_from_slice(&id.0.to_be_bytes());
            push_times(&mut value, meta);
            value.extend_from_slice(header);
            value
        }
        BodyRef::Inline(message_id) => {
            let body = record.body.as_deref().unwrap_or_default();
            let mut value = Vec::with_capacity(41 + header.len() + body.len());
            value.push(FORMAT_V2);
            push_times(&mut value, meta);
            value.extend_from_slice(&message_id.0);
            // The frame limit bounds headers far below 4 GiB.
            let header_len = u32::try_from(header.len()).unwrap_or(u32::MAX);
            value.extend_from_slice(&header_len.to_be_bytes());
            value.extend_from_slice(header);
            value.extend_from_slice(body);
            value
        }
    }
}

/// `stored_at ‖ expires_at ‖ size`, common to both envelope formats.
pub(super) fn push_times(value: &mut Vec<u8>, meta: &EnvelopeMeta) {
    value.extend_from_slice(&meta.stored_at.to_be_bytes());
    value.extend_from_slice(&meta.expires_at.to_be_bytes());
    value.extend_from_slice(&meta.size.to_be_bytes());
}

/// An envelope value's metadata, sealed header and (inline envelopes only)
/// body, as views of the value.
pub(super) type EnvelopeView<'a> = (EnvelopeMeta, &'a [u8], Option<&'a [u8]>);

/// Decodes an envelope value of either format.
pub(super) fn decode_envelope(value: &[u8]) -> Result<EnvelopeView<'_>, StoreError> {
    const WHAT: &str = "envelope";
    let (&version, bytes) = value.split_first().ok_or(StoreError::Corrupt(WHAT))?;
    let mut reader = Reader { bytes, what: WHAT };
    match version {
        FORMAT_V1 => {
            let body = BodyRef::Shared(BodyId(reader.u64()?));
            let meta = EnvelopeMeta {
                body,
                stored_at: reader.u64()?,
                expires_at: reader.u64()?,
                size: reader.u32()?,
            };
            Ok((meta, reader.rest(), None))
        }
        FORMAT_V2 => {
            let (stored_at, expires_at, size) = (reader.u64()?, reader.u64()?, reader.u32()?);
            let message_id = ClientMessageId(reader.array()?);
            let header_len =
                usize::try_from(reader.u32()?).map_err(|_| StoreError::Corrupt(WHAT))?;
            let header = reader.take(header_len)?;
            let meta = EnvelopeMeta {
                body: BodyRef::Inline(message_id),
                stored_at,
                expires_at,
                size,
            };
            Ok((meta, header, Some(reader.rest())))
        }
        _ => Err(StoreError::Corrupt(WHAT)),
    }
}

pub(super) fn encode_send_record(record: &SendRecord) -> Vec<u8> {
    let mut value = Vec::with_capacity(13 + 4 * record.results.len());
    value.push(FORMAT_V1);
    value.extend_from_slice(&record.expires_at.to_be_bytes());
    // A send has at most a few hundred recipients (the frame limit bounds it).
    let count = u32::try_from(record.results.len()).unwrap_or(u32::MAX);
    value.extend_from_slice(&count.to_be_bytes());
    for result in &record.results {
        value.extend_from_slice(&result.to_be_bytes());
    }
    value
}

pub(super) fn decode_send_record(value: &[u8]) -> Result<SendRecord, StoreError> {
    const WHAT: &str = "send record";
    let mut reader = Reader::open(value, WHAT)?;
    let expires_at = reader.u64()?;
    let count = usize::try_from(reader.u32()?).map_err(|_| StoreError::Corrupt(WHAT))?;
    let tail = reader.rest();
    if Some(tail.len()) != count.checked_mul(4) {
        return Err(StoreError::Corrupt(WHAT));
    }
    let results = tail
        .chunks_exact(4)
        .map(|chunk| {
            let bytes = chunk.try_into().map_err(|_| StoreError::Corrupt(WHAT))?;
            Ok(i32::from_be_bytes(bytes))
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(SendRecord {
        expires_at,
        results,
    })
}

// ---- records (key and value) -----------------------------------------

pub(super) fn decode_mailbox_pair(
    key: &[u8],
    value: &[u8],
) -> Result<(MailboxId, MailboxRecord), StoreError> {
    let mailbox = MailboxId::from_slice(key).ok_or(StoreError::Corrupt("mailbox key"))?;
    Ok((mailbox, decode_mailbox(value)?))
}

/// An envelope's key and metadata; the sealed header and body are skipped,
/// not copied.
pub(super) fn decode_envelope_pair(
    key: &[u8],
    value: &[u8],
) -> Result<(MailboxId, u64, EnvelopeMeta), StoreError> {
    let (mailbox, seq) = decode_envelope_key(key)?;
    let (meta, _, _) = decode_envelope(value)?;
    Ok((mailbox, seq, meta))
}

pub(super) fn decode_send_record_pair(
    key: &[u8],
    value: &[u8],
) -> Result<(ClientMessageId, SendRecord), StoreError> {
    let id = key
        .try_into()
        .map_err(|_| StoreError::Corrupt("send record key"))?;
    Ok((ClientMessageId(id), decode_send_record(value)?))
}

pub(super) fn decode_uses_pair(key: &[u8], value: &[u8]) -> Result<(TokenHash, u32), StoreError> {
    let hash = TokenHash::from_slice(key).ok_or(StoreError::Corrupt("registration key"))?;
    Ok((hash, decode_u32(value, "registration uses")?))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn body_ref() -> impl Strategy<Value = BodyRef> {
        prop_oneof![
            any::<u64>().prop_map(|id| BodyRef::Shared(BodyId(id))),
            any::<[u8; 16]>().prop_map(|id| BodyRef::Inline(ClientMessageId(id))),
        ]
    }

    fn meta() -> impl Strategy<Value = EnvelopeMeta> {
        (body_ref(), any::<u64>(), any::<u64>(), any::<u32>()).prop_map(
            |(body, stored_at, expires_at, size)| EnvelopeMeta {
                body,
                stored_at,
                expires_at,
                size,
            },
        )
    }

    proptest! {
        #[test]
        fn envelope_value_round_trips(
            meta in meta(),
            header in prop::collection::vec(any::<u8>(), 0..300),
            body in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            let inline = matches!(meta.body, BodyRef::Inline(_));
            let body = inline.then(|| Bytes::from(body));
            let record = EnvelopeRecord { meta, sealed_header: Bytes::from(header), body };
            let value = encode_envelope(&record);
            prop_assert_eq!(value[0], if inline { FORMAT_V2 } else { FORMAT_V1 });
            let (decoded, header, body) = decode_envelope(&value).unwrap();
            prop_assert_eq!(decoded, meta);
            prop_assert_eq!(header, &record.sealed_header[..]);
            prop_assert_eq!(body, record.body.as_deref());
        }

        #[test]
        fn mailbox_value_round_trips(key in any::<[u8; 32]>(), created_at in any::<u64>(), reserved_seq in any::<u64>()) {
            let record = MailboxRecord { key, created_at, reserved_seq };
            prop_assert_eq!(decode_mailbox(&encode_mailbox(&record)).unwrap(), record);
        }

        #[test]
        fn send_record_value_round_trips(expires_at in any::<u64>(), results in prop::collection::vec(any::<i32>(), 0..40)) {
            let record = SendRecord { expires_at, results };
            prop_assert_eq!(decode_send_record(&encode_send_record(&record)).unwrap(), record);
        }

        #[test]
        fn prekey_key_round_trips(mailbox in any::<[u8; 32]>(), pq in any::<bool>(), index in any::<u64>()) {
            let kind = if pq { PrekeyKind::OneTimePq } else { PrekeyKind::OneTimeX25519 };
            let key = prekey_key(&MailboxId(mailbox), kind, index);
            prop_assert_eq!(decode_prekey_key(&key).unwrap(), (MailboxId(mailbox), kind, index));
        }

        /// Arbitrary bytes never panic a decoder: they decode or are `Corrupt`.
        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
            let corrupt = |r: Result<(), StoreError>| matches!(r, Ok(()) | Err(StoreError::Corrupt(_)));
            prop_assert!(corrupt(decode_mailbox(&bytes).map(drop)));
            prop_assert!(corrupt(decode_send_record(&bytes).map(drop)));
            prop_assert!(corrupt(decode_u32(&bytes, "u32").map(drop)));
            prop_assert!(corrupt(decode_token_key(&bytes).map(drop)));
            prop_assert!(corrupt(decode_envelope_key(&bytes).map(drop)));
            prop_assert!(corrupt(decode_prekey_key(&bytes).map(drop)));
            prop_assert!(corrupt(decode_bundle_key(&bytes).map(drop)));
            prop_assert!(corrupt(decode_envelope(&bytes).map(drop)));
        }
    }

    #[test]
    fn a_hand_written_v1_envelope_is_read() {
        // 1 ‖ body 7 ‖ stored_at 100 ‖ expires_at 200 ‖ size 300 ‖ header "hdr"
        let mut value = vec![1];
        value.extend_from_slice(&7u64.to_be_bytes());
        value.extend_from_slice(&100u64.to_be_bytes());
        value.extend_from_slice(&200u64.to_be_bytes());
        value.extend_from_slice(&300u32.to_be_bytes());
        value.extend_from_slice(b"hdr");
        let (meta, header, body) = decode_envelope(&value).unwrap();
        let expected = EnvelopeMeta {
            body: BodyRef::Shared(BodyId(7)),
            stored_at: 100,
            expires_at: 200,
            size: 300,
        };
        assert_eq!((meta, header, body), (expected, &b"hdr"[..], None));
    }

    #[test]
    fn an_inline_envelope_whose_header_length_lies_is_corrupt() {
        let record = EnvelopeRecord {
            meta: EnvelopeMeta {
                body: BodyRef::Inline(ClientMessageId([3; 16])),
                stored_at: 1,
                expires_at: 2,
                size: 3,
            },
            sealed_header: Bytes::from_static(b"header"),
            body: Some(Bytes::from_static(b"body")),
        };
        let mut value = encode_envelope(&record);
        // The header length sits after version, times, size and id.
        value[37..41].copy_from_slice(&11u32.to_be_bytes());
        assert!(matches!(
            decode_envelope(&value),
            Err(StoreError::Corrupt("envelope"))
        ));
        value[37..41].copy_from_slice(&10u32.to_be_bytes());
        let (_, header, body) = decode_envelope(&value).unwrap();
        assert_eq!((header, body), (&b"headerbody"[..], Some(&b""[..])));
    }

    #[test]
    fn truncated_or_padded_values_are_corrupt() {
        let record = MailboxRecord {
            key: [7; 32],
            created_at: 1,
            reserved_seq: 2,
        };
        let value = encode_mailbox(&record);
        assert!(matches!(
            decode_mailbox(&value[..48]),
            Err(StoreError::Corrupt("mailbox"))
        ));
        let mut padded = value.clone();
        padded.push(0);
        assert!(matches!(
            decode_mailbox(&padded),
            Err(StoreError::Corrupt("mailbox"))
        ));
        let mut future = value;
        future[0] = 2;
        assert!(matches!(
            decode_mailbox(&future),
            Err(StoreError::Corrupt("mailbox"))
        ));
        // A count that claims more results than the value holds.
        let mut lying = encode_send_record(&SendRecord {
            expires_at: 5,
            results: vec![1, 2],
        });
        lying[9..13].copy_from_slice(&3u32.to_be_bytes());
        assert!(matches!(
            decode_send_record(&lying),
            Err(StoreError::Corrupt("send record"))
        ));
    }
}
