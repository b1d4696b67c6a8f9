//! Validated requests: wire types become domain types here, so nothing
//! unvalidated reaches the core's logic.

use bytes::Bytes;
use ed25519_dalek::Signature;
use hearth_proto::relay::{self as pb, ErrorCode, request::Kind};

use super::config::CoreConfig;
use crate::ids::{ClientMessageId, MailboxId, TokenHash};

/// The only protocol version this relay speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// Most sequence numbers in one `Ack`.
pub const MAX_ACK_SEQS: usize = 4096;
/// Longest send token accepted.
pub(crate) const MAX_SEND_TOKEN_BYTES: usize = 256;
/// Longest registration token accepted.
pub(crate) const MAX_REGISTRATION_TOKEN_BYTES: usize = 256;

/// A request that failed validation: a typed code and a message that never
/// holds content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub(crate) code: ErrorCode,
    pub(crate) message: &'static str,
}

fn invalid(code: ErrorCode, message: &'static str) -> Invalid {
    Invalid { code, message }
}

fn bad(message: &'static str) -> Invalid {
    invalid(ErrorCode::BadRequest, message)
}

#[derive(Debug)]
pub(crate) struct Recipient {
    pub(crate) mailbox: MailboxId,
    pub(crate) token: TokenHash,
    pub(crate) sealed_header: Bytes,
}

#[derive(Debug)]
pub(crate) struct Send {
    pub(crate) id: ClientMessageId,
    /// The client says this resends an id it sent before.
    pub(crate) retry: bool,
    pub(crate) body: Bytes,
    pub(crate) recipients: Vec<Recipient>,
}

#[derive(Debug)]
pub(crate) struct Publish {
    pub(crate) mailbox: MailboxId,
    pub(crate) signed_bundle: Option<Bytes>,
    pub(crate) one_time: Vec<Bytes>,
    pub(crate) one_time_pq: Vec<Bytes>,
    pub(crate) last_resort: Option<Bytes>,
}

#[derive(Debug)]
pub(crate) enum Request {
    GetChallenge,
    Sync,
    Register {
        mailbox: MailboxId,
        key: [u8; 32],
        signature: Signature,
        token: Option<TokenHash>,
    },
    Authenticate {
        mailbox: MailboxId,
        signature: Signature,
    },
    Send(Send),
    Ack {
        mailbox: MailboxId,
        through: Option<u64>,
        seqs: Vec<u64>,
    },
    AddSendToken {
        mailbox: MailboxId,
        hash: TokenHash,
    },
    RevokeSendToken {
        mailbox: MailboxId,
        hash: TokenHash,
    },
    Publish(Publish),
    Fetch {
        mailbox: MailboxId,
        token: TokenHash,
    },
    PrekeyCounts {
        mailbox: MailboxId,
    },
}

fn mailbox(bytes: &[u8]) -> Result<MailboxId, Invalid> {
    MailboxId::from_slice(bytes).ok_or(bad("mailbox id must be 32 bytes"))
}

fn signature(bytes: &[u8]) -> Result<Signature, Invalid> {
    Signature::from_slice(bytes).map_err(|_| bad("signature must be 64 bytes"))
}

fn send_token(token: &[u8]) -> Result<TokenHash, Invalid> {
    if token.is_empty() || token.len() > MAX_SEND_TOKEN_BYTES {
        return Err(invalid(
            ErrorCode::Unauthorized,
            "send token is missing or too long",
        ));
    }
    Ok(TokenHash::of(token))
}

fn token_hash(bytes: &[u8]) -> Result<TokenHash, Invalid> {
    TokenHash::from_slice(bytes).ok_or(bad("token hash must be 32 bytes"))
}

fn optional(bytes: Bytes) -> Option<Bytes> {
    (!bytes.is_empty()).then_some(bytes)
}

impl Request {
    /// Validates a decoded wire request against the core's limits.
    pub(crate) fn parse(request: pb::Request, config: &CoreConfig) -> Result<Self, Invalid> {
        if request.version != PROTOCOL_VERSION {
            return Err(invalid(
                ErrorCode::UnsupportedVersion,
                "unsupported protocol version (this relay speaks version 1)",
            ));
        }
        let kind = request.kind.ok_or(bad("unknown or missing request type"))?;
        Ok(match kind {
            Kind::GetChallenge(_) => Self::GetChallenge,
            Kind::Sync(_) => Self::Sync,
            Kind::Register(r) => {
                if r.registration_token.len() > MAX_REGISTRATION_TOKEN_BYTES {
                    return Err(bad("registration token is too long"));
                }
                let key = r.mailbox_key[..]
                    .try_into()
                    .map_err(|_| bad("mailbox key must be 32 bytes"))?;
                let token = (!r.registration_token.is_empty())
                    .then(|| TokenHash::of(r.registration_token.as_bytes()));
                Self::Register {
                    mailbox: mailbox(&r.mailbox_id)?,
                    key,
                    signature: signature(&r.signature)?,
                    token,
                }
            }
            Kind::Authenticate(a) => Self::Authenticate {
                mailbox: mailbox(&a.mailbox_id)?,
                signature: signature(&a.signature)?,
            },
            Kind::Send(s) => Self::Send(parse_send(s, config)?),
            Kind::Ack(a) => {
                if a.seqs.len() > MAX_ACK_SEQS {
                    return Err(bad("too many sequence numbers in one ack"));
                }
                Self::Ack {
                    mailbox: mailbox(&a.mailbox_id)?,
                    through: a.through,
                    seqs: a.seqs,
                }
            }
            Kind::AddSendToken(t) => Self::AddSendToken {
                mailbox: mailbox(&t.mailbox_id)?,
                hash: token_hash(&t.token_hash)?,
            },
            Kind::RevokeSendToken(t) => Self::RevokeSendToken {
                mailbox: mailbox(&t.mailbox_id)?,
                hash: token_hash(&t.token_hash)?,
            },
            Kind::PublishPrekeys(p) => Self::Publish(parse_publish(p, config)?),
            Kind::FetchPrekeys(f) => Self::Fetch {
                mailbox: mailbox(&f.mailbox_id)?,
                token: send_token(&f.send_token)?,
            },
            Kind::PrekeyCounts(c) => Self::PrekeyCounts {
                mailbox: mailbox(&c.mailbox_id)?,
            },
        })
    }
}

fn parse_send(send: pb::Send, config: &CoreConfig) -> Result<Send, Invalid> {
    let id = send.client_message_id[..]
        .try_into()
        .map(ClientMessageId)
        .map_err(|_| bad("client message id must be 16 bytes"))?;
    if send.body.len() > config.max_body_bytes {
        return Err(invalid(
            ErrorCode::EnvelopeTooLarge,
            "message body exceeds the relay's limit",
        ));
    }
    if send.recipients.is_empty() {
        return Err(bad("a send needs at least one recipient"));
    }
    if send.recipients.len() > config.max_recipients {
        return Err(bad("too many recipients in one send"));
    }
    let recipients = send
        .recipients
        .into_iter()
        .map(|r| {
            if r.sealed_header.len() > config.max_header_bytes {
                return Err(invalid(
                    ErrorCode::EnvelopeTooLarge,
                    "sealed header exceeds the relay's limit",
                ));
            }
            Ok(Recipient {
                mailbox: mailbox(&r.mailbox_id)?,
                token: send_token(&r.send_token)?,
                sealed_header: r.sealed_header,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Send {
        id,
        retry: send.retry,
        body: send.body,
        recipients,
    })
}

fn parse_publish(p: pb::PublishPrekeys, config: &CoreConfig) -> Result<Publish, Invalid> {
    let too_large = |b: &Bytes| b.len() > config.max_prekey_bytes;
    let singles = [&p.signed_bundle, &p.last_resort_pq_prekey];
    if singles
        .into_iter()
        .chain(&p.one_time_prekeys)
        .chain(&p.one_time_pq_prekeys)
        .any(too_large)
    {
        return Err(bad("a prekey exceeds the relay's size limit"));
    }
    if p.one_time_prekeys
        .iter()
        .chain(&p.one_time_pq_prekeys)
        .any(Bytes::is_empty)
    {
        return Err(bad("a one-time prekey is empty"));
    }
    Ok(Publish {
        mailbox: mailbox(&p.mailbox_id)?,
        signed_bundle: optional(p.signed_bundle),
        one_time: p.one_time_prekeys,
        one_time_pq: p.one_time_pq_prekeys,
        last_resort: optional(p.last_resort_pq_prekey),
    })
}
