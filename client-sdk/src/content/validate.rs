//! The limits of every kind people see, checked the same way before
//! sending ([`super::to_kind`]) and after receiving ([`super::decode`]).
//!
//! Lengths in bytes are UTF-8 bytes; lengths in characters count Unicode
//! scalar values. A violation names the field (`"check-in mood"`), never
//! its value: content stays out of errors and logs.

use super::{CheckIn, Content, ContentError, Gathering, Goal, Reaction, Resource};
use crate::messages::MAX_TEXT_BYTES;

/// Longest note of any kind, in bytes.
pub(crate) const MAX_NOTE_BYTES: usize = 4 * 1024;
/// Highest mood and energy (the lowest is 1).
pub(crate) const MAX_SCALE: u8 = 10;
/// Most tags on a check-in.
pub(crate) const MAX_TAGS: usize = 16;
/// Longest tag, in characters.
pub(crate) const MAX_TAG_CHARS: usize = 32;
/// Longest resource address and gathering link, in bytes.
pub(crate) const MAX_URL_BYTES: usize = 2 * 1024;
/// Longest resource title, in characters.
pub(crate) const MAX_TITLE_CHARS: usize = 200;
/// Longest time zone name, in characters.
pub(crate) const MAX_TIME_ZONE_CHARS: usize = 64;
/// Longest gathering, in minutes (a day).
pub(crate) const MAX_DURATION_MINUTES: u32 = 24 * 60;
/// Longest goal, in bytes.
pub(crate) const MAX_GOAL_BYTES: usize = 1024;
/// Longest reaction, in bytes.
pub(crate) const MAX_EMOJI_BYTES: usize = 16;
/// The latest time a gathering or goal may name: 9999-12-31T23:59:59.999Z,
/// so every time prints as an RFC 3339 date.
pub(crate) const MAX_TIME_MS: u64 = 253_402_300_799_999;

/// Checks the limits of `content`.
pub(crate) fn content(content: &Content) -> Result<(), ContentError> {
    match content {
        Content::Text(text) => check(text.len() <= MAX_TEXT_BYTES, "text"),
        Content::CheckIn(check_in) => self::check_in(check_in),
        Content::Resource(resource) => self::resource(resource),
        Content::Gathering(gathering) => self::gathering(gathering),
        Content::Rsvp(_) | Content::Unsupported => Ok(()),
        Content::Goal(goal) => self::goal(goal),
        Content::GoalProgress(progress) => note(&progress.note, "progress note"),
        Content::SupportRequest { note } => self::note(note, "support note"),
        Content::Reaction(reaction) => self::reaction(reaction),
    }
}

fn check(ok: bool, field: &'static str) -> Result<(), ContentError> {
    if ok {
        Ok(())
    } else {
        Err(ContentError::Invalid(field))
    }
}

fn note(note: &str, field: &'static str) -> Result<(), ContentError> {
    check(note.len() <= MAX_NOTE_BYTES, field)
}

fn on_scale(value: u8) -> bool {
    (1..=MAX_SCALE).contains(&value)
}

fn check_in(check_in: &CheckIn) -> Result<(), ContentError> {
    check(on_scale(check_in.mood), "check-in mood")?;
    check(check_in.energy.is_none_or(on_scale), "check-in energy")?;
    note(&check_in.note, "check-in note")?;
    let tag_ok = |tag: &String| !tag.is_empty() && tag.chars().count() <= MAX_TAG_CHARS;
    check(
        check_in.tags.len() <= MAX_TAGS && check_in.tags.iter().all(tag_ok),
        "check-in tags",
    )
}

fn resource(resource: &Resource) -> Result<(), ContentError> {
    check(is_web_url(&resource.url), "resource url")?;
    check(
        resource.title.chars().count() <= MAX_TITLE_CHARS,
        "resource title",
    )?;
    note(&resource.note, "resource note")
}

/// An `http://` or `https://` address (scheme in any case) of at most
/// [`MAX_URL_BYTES`], with a host, without a user name (`https://good@evil`
/// misleads readers), spaces or control characters.
fn is_web_url(url: &str) -> bool {
    let after_scheme = ["https://", "http://"].iter().find_map(|scheme| {
        let prefix = url.get(..scheme.len())?;
        prefix
            .eq_ignore_ascii_case(scheme)
            .then(|| &url[scheme.len()..])
    });
    let Some(rest) = after_scheme else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    url.len() <= MAX_URL_BYTES
        && !authority.is_empty()
        && !authority.contains('@')
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn gathering(gathering: &Gathering) -> Result<(), ContentError> {
    check(
        (1..=MAX_TIME_MS).contains(&gathering.starts_at_ms),
        "gathering start",
    )?;
    check(is_time_zone(&gathering.time_zone), "gathering time zone")?;
    check(
        (1..=MAX_DURATION_MINUTES).contains(&gathering.duration_minutes),
        "gathering duration",
    )?;
    check(gathering.link.len() <= MAX_URL_BYTES, "gathering link")?;
    note(&gathering.note, "gathering note")
}

/// An IANA-like zone name: 1 to 64 characters of `A-Z a-z 0-9 _ + - /`.
fn is_time_zone(zone: &str) -> bool {
    (1..=MAX_TIME_ZONE_CHARS).contains(&zone.len())
        && zone
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-/".contains(&b))
}

fn goal(goal: &Goal) -> Result<(), ContentError> {
    check(
        !goal.text.trim().is_empty() && goal.text.len() <= MAX_GOAL_BYTES,
        "goal text",
    )?;
    check(
        goal.due_at_ms
            .is_none_or(|due| (1..=MAX_TIME_MS).contains(&due)),
        "goal due date",
    )
}

fn reaction(reaction: &Reaction) -> Result<(), ContentError> {
    check(
        reaction.emoji.len() <= MAX_EMOJI_BYTES
            && !reaction
                .emoji
                .chars()
                .any(|c| c.is_whitespace() || c.is_control()),
        "reaction emoji",
    )
}
