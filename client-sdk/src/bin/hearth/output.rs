//! What the commands print: one JSON object per line (`--json`), or text
//! for people, with control characters from other members escaped so a
//! message can't rewrite the terminal.

pub(crate) mod circles;

use std::collections::HashMap;
use std::fmt::Write as _;

use hearth_client::circles::{Circle, CircleId, JoinRefusal};
use hearth_client::{
    Contact, Content, Direction, Event, FailureReason, MemberId, Message, MessageStatus,
    RejectReason,
};
use serde::Serialize;

use crate::when;

/// Display names of members and circles, for printing.
#[derive(Debug)]
pub(crate) struct Names {
    own: MemberId,
    own_name: String,
    contacts: HashMap<MemberId, String>,
    circles: HashMap<CircleId, String>,
}

impl Names {
    /// Names of ourselves and of `contacts`.
    pub(crate) fn new(own: MemberId, own_name: &str, contacts: &[Contact]) -> Self {
        Self {
            own,
            own_name: own_name.to_owned(),
            contacts: contacts
                .iter()
                .map(|c| (c.member_id, c.display_name.clone()))
                .collect(),
            circles: HashMap::new(),
        }
    }

    /// Learns a contact added meanwhile.
    pub(crate) fn add(&mut self, contact: &Contact) {
        self.contacts
            .insert(contact.member_id, contact.display_name.clone());
    }

    /// Learns a circle's (new) name.
    pub(crate) fn add_circle(&mut self, circle: &Circle) {
        self.circles.insert(circle.id, circle.name.clone());
    }

    /// The circle's name ("" if unknown).
    pub(crate) fn circle(&self, circle: CircleId) -> &str {
        self.circles.get(&circle).map_or("", String::as_str)
    }

    /// The member's display name ("" if unknown or unnamed).
    pub(crate) fn name(&self, member: MemberId) -> &str {
        if member == self.own {
            return &self.own_name;
        }
        self.contacts.get(&member).map_or("", String::as_str)
    }

    /// What to call `member` in text: its name, or its member id.
    fn label(&self, member: MemberId) -> String {
        match self.name(member) {
            "" => member.to_string(),
            name => clean(name),
        }
    }
}

/// A message as one JSON line.
#[derive(Debug, Serialize)]
struct MessageLine<'a> {
    kind: &'static str,
    id: String,
    direction: &'static str,
    from: String,
    from_name: &'a str,
    to: String,
    to_name: &'a str,
    sent_at: String,
    sent_at_ms: u64,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<&'static str>,
    #[serde(rename = "type")]
    content_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

/// A contact as one JSON line.
#[derive(Debug, Serialize)]
struct ContactLine<'a> {
    kind: &'static str,
    member_id: String,
    name: &'a str,
    safety_number: String,
    verified: bool,
    added_at: String,
}

/// Any other event as one JSON line.
#[derive(Debug, Default, Serialize)]
struct EventLine<'a> {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    will_retry: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    circle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    circle_name: Option<&'a str>,
}

/// A message, as JSON.
pub(crate) fn message_json(message: &Message, names: &Names) -> String {
    let (from, to) = match message.direction {
        Direction::Incoming => (message.member, names.own),
        Direction::Outgoing => (names.own, message.member),
    };
    let (content_type, text) = content(&message.content);
    let (status, failure) = status(message.status);
    json(&MessageLine {
        kind: "message",
        id: message.id.to_string(),
        direction: match message.direction {
            Direction::Incoming => "in",
            Direction::Outgoing => "out",
        },
        from: from.to_string(),
        from_name: names.name(from),
        to: to.to_string(),
        to_name: names.name(to),
        sent_at: timestamp(message.sent_at_ms),
        sent_at_ms: message.sent_at_ms,
        status,
        failure,
        content_type,
        text,
    })
}

/// A message, as a line of text.
pub(crate) fn message_text(message: &Message, names: &Names) -> String {
    let who = match message.direction {
        Direction::Incoming => names.label(message.member),
        Direction::Outgoing => "you".to_owned(),
    };
    let body = match content(&message.content) {
        (_, Some(text)) => clean(text),
        (kind, None) => format!("[{kind} content: update hearth to see it]"),
    };
    let mut line = format!("[{}] {who}: {body}", short_time(message.sent_at_ms));
    match (message.direction, status(message.status)) {
        (Direction::Outgoing, ("queued", _)) => line.push_str("  (queued)"),
        (Direction::Outgoing, ("failed", failure)) => {
            let _ = write!(line, "  (not delivered: {})", failure.unwrap_or("refused"));
        }
        _ => {}
    }
    line
}

/// A contact, as JSON.
pub(crate) fn contact_json(contact: &Contact, kind: &'static str) -> String {
    json(&ContactLine {
        kind,
        member_id: contact.member_id.to_string(),
        name: &contact.display_name,
        safety_number: contact.safety_number.to_string(),
        verified: contact.verified,
        added_at: timestamp(contact.added_at_ms),
    })
}

/// A contact, as text (two lines).
pub(crate) fn contact_text(contact: &Contact) -> String {
    let name = match contact.display_name.as_str() {
        "" => "(no name)".to_owned(),
        name => clean(name),
    };
    let verified = if contact.verified {
        "verified"
    } else {
        "not verified"
    };
    format!(
        "{name}  {}  {verified}\n    safety number: {}",
        contact.member_id, contact.safety_number
    )
}

/// An event of a sync, as a line of JSON or text; `None` for events the
/// CLI does not show (connection changes).
pub(crate) fn event_line(event: &Event, names: &Names, as_json: bool) -> Option<String> {
    let line = match event {
        Event::Message(message) if as_json => message_json(message, names),
        Event::Message(message) => message_text(message, names),
        Event::ContactAdded(contact) if as_json => contact_json(contact, "contact_added"),
        Event::ContactAdded(contact) => format!(
            "new contact: {}\n    compare the safety number with them, then run: hearth contact verify {} NUMBER",
            contact_text(contact),
            contact.member_id
        ),
        Event::MessageSent { to, id } if as_json => json(&EventLine {
            kind: "sent",
            id: Some(id.to_string()),
            to: Some(to.to_string()),
            to_name: Some(names.name(*to)),
            ..EventLine::default()
        }),
        Event::MessageSent { to, id } => format!("sent to {}: {id}", names.label(*to)),
        Event::DeliveryFailed {
            to,
            id,
            reason,
            will_retry,
        } if as_json => json(&EventLine {
            kind: "delivery_failed",
            id: Some(id.to_string()),
            to: Some(to.to_string()),
            to_name: Some(names.name(*to)),
            reason: Some(failure_name(*reason)),
            will_retry: Some(*will_retry),
            ..EventLine::default()
        }),
        Event::DeliveryFailed {
            to,
            id,
            reason,
            will_retry,
        } => format!(
            "could not deliver {id} to {}: {}{}",
            names.label(*to),
            failure_text(*reason),
            if *will_retry { " (will retry)" } else { "" }
        ),
        Event::Rejected { reason } if as_json => json(&EventLine {
            kind: "rejected",
            reason: Some(reject_name(*reason)),
            ..EventLine::default()
        }),
        Event::Rejected { reason } => format!(
            "refused an incoming message: {}",
            reject_name(*reason).replace('_', " ")
        ),
        Event::CircleMessage(message) if as_json => {
            circles::message_json(message, names.circle(message.circle))
        }
        Event::CircleMessage(message) => {
            let name = names.circle(message.circle);
            let label = if name.is_empty() {
                message.circle.to_string()
            } else {
                name.to_owned()
            };
            circles::message_text(message, Some(&label))
        }
        Event::CircleChanged(circle) if as_json => circles::circle_json(circle, "circle_changed"),
        Event::CircleChanged(circle) => format!("circle changed: {}", circles::circle_text(circle)),
        Event::CircleJoinRefused { circle, reason } if as_json => json(&EventLine {
            kind: "circle_join_refused",
            reason: Some(refusal_name(*reason)),
            circle: Some(circle.to_string()),
            circle_name: Some(names.circle(*circle)),
            ..EventLine::default()
        }),
        Event::CircleJoinRefused { circle, reason } => format!(
            "could not join {}: {}",
            match names.circle(*circle) {
                "" => circle.to_string(),
                name => clean(name),
            },
            reason
        ),
        _ => return None,
    };
    Some(line)
}

/// `(type, text)` of a message's content.
fn content(content: &Content) -> (&'static str, Option<&str>) {
    match content {
        Content::Text(text) => ("text", Some(text)),
        _ => ("unsupported", None),
    }
}

/// `(status, failure reason)` names.
fn status(status: MessageStatus) -> (&'static str, Option<&'static str>) {
    match status {
        MessageStatus::Received => ("received", None),
        MessageStatus::Queued => ("queued", None),
        MessageStatus::Sent => ("sent", None),
        MessageStatus::Delivered => ("delivered", None),
        MessageStatus::Read => ("read", None),
        MessageStatus::Failed(reason) => ("failed", Some(failure_name(reason))),
        _ => ("unknown", None),
    }
}

/// A failure reason's JSON name.
pub(crate) fn failure_name(reason: FailureReason) -> &'static str {
    match reason {
        FailureReason::MailboxFull => "mailbox_full",
        FailureReason::RateLimited => "rate_limited",
        FailureReason::Unauthorized => "unauthorized",
        FailureReason::UnknownMailbox => "unknown_mailbox",
        FailureReason::TooLarge => "too_large",
        _ => "refused",
    }
}

/// A failure reason in words.
pub(crate) fn failure_text(reason: FailureReason) -> &'static str {
    match reason {
        FailureReason::MailboxFull => "their mailbox is full",
        FailureReason::RateLimited => "their relay asks us to slow down",
        FailureReason::Unauthorized => "they no longer accept messages from you",
        FailureReason::UnknownMailbox => "their mailbox no longer exists",
        FailureReason::TooLarge => "the message is too large for their relay",
        _ => "their relay refused it",
    }
}

fn reject_name(reason: RejectReason) -> &'static str {
    match reason {
        RejectReason::Undecryptable => "undecryptable",
        RejectReason::Malformed => "malformed",
        RejectReason::UnknownSender => "unknown_sender",
        RejectReason::Replayed => "replayed",
        RejectReason::UnknownInvite => "unknown_invite",
        RejectReason::InviteAlreadyUsed => "invite_already_used",
        RejectReason::Unsupported => "unsupported",
        RejectReason::BadSignature => "bad_signature",
        RejectReason::Forged => "forged",
        RejectReason::TooManyHeld => "too_many_held",
        RejectReason::HeldTooLong => "held_too_long",
        _ => "other",
    }
}

/// A join refusal's JSON name.
fn refusal_name(reason: JoinRefusal) -> &'static str {
    match reason {
        JoinRefusal::Expired => "expired",
        JoinRefusal::AlreadyUsed => "already_used",
        JoinRefusal::UnknownInvite => "unknown_invite",
        JoinRefusal::NotAFacilitator => "not_a_facilitator",
        _ => "refused",
    }
}

/// Serializes a line; our line types always serialize.
pub(crate) fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| String::from("{}"))
}

/// RFC 3339 UTC with milliseconds.
fn timestamp(ms: u64) -> String {
    when::utc(ms)
}

/// RFC 3339 UTC to the second, for people.
fn short_time(ms: u64) -> String {
    when::utc_seconds(ms)
}

/// Text from another member, made safe for a terminal: control and
/// bidirectional-override characters are escaped; line breaks and tabs stay.
pub(crate) fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let bidi = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
        if (c.is_control() && c != '\n' && c != '\t') || bidi {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_client::MessageId;

    fn names() -> Names {
        Names {
            own: MemberId::from_bytes([1; 16]),
            own_name: "Dana".into(),
            contacts: HashMap::from([(MemberId::from_bytes([2; 16]), "Sam".to_owned())]),
            circles: HashMap::new(),
        }
    }

    fn message(direction: Direction, status: MessageStatus) -> Message {
        Message {
            id: MessageId::from_bytes([0xab; 16]),
            member: MemberId::from_bytes([2; 16]),
            direction,
            sent_at_ms: 1_700_000_000_123,
            stored_at_ms: 1_700_000_000_200,
            content: Content::Text("hi\u{1b}[2J there".into()),
            status,
        }
    }

    #[test]
    fn a_received_message_has_the_documented_json_fields() {
        let line = message_json(
            &message(Direction::Incoming, MessageStatus::Received),
            &names(),
        );
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["kind"], "message");
        assert_eq!(value["id"], "ab".repeat(16));
        assert_eq!(value["from"], MemberId::from_bytes([2; 16]).to_string());
        assert_eq!(value["from_name"], "Sam");
        assert_eq!(value["to_name"], "Dana");
        assert_eq!(value["sent_at"], "2023-11-14T22:13:20.123Z");
        assert_eq!(value["sent_at_ms"], 1_700_000_000_123u64);
        assert_eq!(value["type"], "text");
        assert_eq!(value["text"], "hi\u{1b}[2J there");
        assert_eq!(value["status"], "received");
        assert!(!line.contains('\u{1b}'), "JSON escapes control characters");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn text_output_escapes_terminal_controls_and_shows_status() {
        let line = message_text(
            &message(
                Direction::Outgoing,
                MessageStatus::Failed(FailureReason::Unauthorized),
            ),
            &names(),
        );
        assert!(!line.contains('\u{1b}'), "{line}");
        assert!(line.contains("you: hi\\u{1b}[2J there"), "{line}");
        assert!(line.ends_with("(not delivered: unauthorized)"), "{line}");
        assert_eq!(clean("a\nb\u{202e}c"), "a\nb\\u{202e}c");
    }

    #[test]
    fn connection_changes_are_not_printed() {
        let event = Event::ConnectionState(hearth_client::ConnectionState::Connected);
        assert_eq!(event_line(&event, &names(), true), None);
        let rejected = Event::Rejected {
            reason: RejectReason::Replayed,
        };
        assert_eq!(
            event_line(&rejected, &names(), true).unwrap(),
            r#"{"kind":"rejected","reason":"replayed"}"#
        );
    }
}
