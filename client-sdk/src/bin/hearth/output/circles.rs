//! How circles, their members, their messages and due goals print: one
//! JSON object per line, or text for people.
//!
//! A circle message's JSON carries the fields of a 1:1 message line that
//! make sense for a circle (`kind` `"message"`, `id`, `direction`, `from`,
//! `from_name`, `sent_at`, `sent_at_ms`, `type`), the `circle` (and its
//! `circle_name`), and its kind's own fields.

use std::fmt::Write as _;

use hearth_client::circles::feed::{CircleMessage, GoalView};
use hearth_client::circles::{Circle, CircleId, CircleMember, CircleState, Role};
use hearth_client::{
    CheckIn, Content, Direction, Gathering, GatheringKind, GoalProgress, Reaction, Resource, Rsvp,
};
use serde::Serialize;

use super::{clean, json, short_time};
use crate::when;

/// A circle message as one JSON line.
#[derive(Debug, Serialize)]
struct MessageLine<'a> {
    kind: &'static str,
    circle: String,
    circle_name: &'a str,
    id: String,
    direction: &'static str,
    from: String,
    from_name: &'a str,
    sent_at: String,
    sent_at_ms: u64,
    #[serde(rename = "type")]
    content_type: &'static str,
    #[serde(flatten)]
    fields: Fields<'a>,
}

/// The fields of each kind of content (absent where they don't apply).
#[derive(Debug, Default, Serialize)]
struct Fields<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mood: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    energy: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meeting: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    at_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    at_local: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tz: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    minutes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gathering: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    goal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    every: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    due: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    done: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    urgent: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    emoji: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
}

/// A circle message, as JSON.
pub(crate) fn message_json(message: &CircleMessage, circle_name: &str) -> String {
    json(&MessageLine {
        kind: "message",
        circle: message.circle.to_string(),
        circle_name,
        id: message.id.to_string(),
        direction: direction(message.direction),
        from: message.sender.to_string(),
        from_name: &message.sender_name,
        sent_at: when::utc(message.sent_at_ms),
        sent_at_ms: message.sent_at_ms,
        content_type: content_type(&message.content),
        fields: fields(message),
    })
}

fn direction(direction: Direction) -> &'static str {
    match direction {
        Direction::Incoming => "in",
        Direction::Outgoing => "out",
    }
}

/// The `type` of a message's content.
fn content_type(content: &Content) -> &'static str {
    match content {
        Content::Text(_) => "text",
        Content::CheckIn(_) => "check_in",
        Content::Resource(_) => "resource",
        Content::Gathering(_) => "gathering",
        Content::Rsvp(_) => "rsvp",
        Content::Goal(_) => "goal",
        Content::GoalProgress(_) => "goal_progress",
        Content::SupportRequest { .. } => "support_request",
        Content::Reaction(_) => "reaction",
        _ => "unsupported",
    }
}

fn fields(message: &CircleMessage) -> Fields<'_> {
    match &message.content {
        Content::Text(text) => Fields {
            text: Some(text),
            ..Fields::default()
        },
        Content::CheckIn(check_in) => check_in_fields(check_in),
        Content::Resource(resource) => Fields {
            url: Some(&resource.url),
            title: Some(&resource.title),
            note: Some(&resource.note),
            ..Fields::default()
        },
        Content::Gathering(gathering) => gathering_fields(gathering),
        Content::Rsvp(rsvp) => Fields {
            gathering: Some(rsvp.gathering.to_string()),
            answer: Some(rsvp.answer.as_str()),
            ..Fields::default()
        },
        Content::Goal(goal) => Fields {
            text: Some(&goal.text),
            every: Some(goal.cadence.as_str()),
            due: goal.due_at_ms.map(when::utc),
            ..Fields::default()
        },
        Content::GoalProgress(progress) => Fields {
            goal: Some(progress.goal.to_string()),
            note: Some(&progress.note),
            done: Some(progress.done),
            ..Fields::default()
        },
        Content::SupportRequest { note } => Fields {
            note: Some(note),
            urgent: Some(message.urgent),
            ..Fields::default()
        },
        Content::Reaction(reaction) => Fields {
            target: Some(reaction.target.to_string()),
            emoji: Some(&reaction.emoji),
            ..Fields::default()
        },
        _ => Fields::default(),
    }
}

fn check_in_fields(check_in: &CheckIn) -> Fields<'_> {
    Fields {
        mood: Some(check_in.mood),
        energy: check_in.energy,
        note: Some(&check_in.note),
        tags: Some(&check_in.tags),
        ..Fields::default()
    }
}

fn gathering_fields(gathering: &Gathering) -> Fields<'_> {
    Fields {
        meeting: Some(snake(gathering.kind.as_str())),
        at: Some(when::utc(gathering.starts_at_ms)),
        at_ms: Some(gathering.starts_at_ms),
        at_local: Some(when::zoned(gathering.starts_at_ms, &gathering.time_zone)),
        tz: Some(&gathering.time_zone),
        minutes: Some(gathering.duration_minutes),
        link: Some(&gathering.link),
        note: Some(&gathering.note),
        ..Fields::default()
    }
}

/// A circle message, as a line of text; `circle_name` is shown when the
/// line stands among other circles' (in `sync`).
pub(crate) fn message_text(message: &CircleMessage, circle_name: Option<&str>) -> String {
    let who = match message.direction {
        Direction::Outgoing => "you".to_owned(),
        Direction::Incoming if message.sender_name.is_empty() => message.sender.to_string(),
        Direction::Incoming => clean(&message.sender_name),
    };
    let mut line = format!("[{}] ", short_time(message.sent_at_ms));
    if let Some(name) = circle_name {
        let _ = write!(line, "({}) ", clean(name));
    }
    if message.urgent {
        line.push_str("URGENT: ");
    }
    line.push_str(&who);
    line.push_str(&body(
        &message.content,
        message.direction == Direction::Outgoing,
    ));
    match message.content {
        Content::Gathering(_) | Content::Goal(_) => {
            let _ = write!(line, "  [id {}]", message.id);
        }
        _ => {}
    }
    line
}

/// A verb after the sender's name: `checks in`, or `check in` after "you".
struct Verb(bool);

impl Verb {
    fn of<'a>(&self, third_person: &'a str, after_you: &'a str) -> &'a str {
        if self.0 { after_you } else { third_person }
    }
}

/// What a message says, after its sender's name (`you` if `own`).
fn body(content: &Content, own: bool) -> String {
    let verb = Verb(own);
    match content {
        Content::Text(text) => format!(": {}", clean(text)),
        Content::CheckIn(check_in) => check_in_text(check_in, &verb),
        Content::Resource(resource) => resource_text(resource, &verb),
        Content::Gathering(gathering) => gathering_text(gathering, &verb),
        Content::Rsvp(Rsvp { gathering, answer }) => format!(
            " {} {} to gathering {gathering}",
            verb.of("answers", "answer"),
            answer.as_str()
        ),
        Content::Goal(goal) => {
            let mut text = format!(
                " {} ({}): {}",
                verb.of("sets a goal", "set a goal"),
                goal.cadence.as_str(),
                clean(&goal.text)
            );
            if let Some(due) = goal.due_at_ms {
                let _ = write!(text, ", due {}", short_time(due));
            }
            text
        }
        Content::GoalProgress(progress) => progress_text(progress, &verb),
        Content::SupportRequest { note } => format!(
            " {} support now{}",
            verb.of("needs", "need"),
            note_text(note)
        ),
        Content::Reaction(Reaction { target, emoji }) if emoji.is_empty() => format!(
            " {} the reaction to {target}",
            verb.of("takes back", "take back")
        ),
        Content::Reaction(Reaction { target, emoji }) => format!(
            " {} {} to {target}",
            verb.of("reacts", "react"),
            clean(emoji)
        ),
        _ => String::from(": [unsupported content: update hearth to see it]"),
    }
}

fn check_in_text(check_in: &CheckIn, verb: &Verb) -> String {
    let mut text = format!(
        " {}: mood {}/10",
        verb.of("checks in", "check in"),
        check_in.mood
    );
    if let Some(energy) = check_in.energy {
        let _ = write!(text, ", energy {energy}/10");
    }
    if !check_in.tags.is_empty() {
        let _ = write!(text, " [{}]", clean(&check_in.tags.join(", ")));
    }
    text + &note_text(&check_in.note)
}

fn resource_text(resource: &Resource, verb: &Verb) -> String {
    let mut text = format!(" {} {}", verb.of("shares", "share"), clean(&resource.url));
    if !resource.title.is_empty() {
        let _ = write!(text, " \"{}\"", clean(&resource.title));
    }
    text + &note_text(&resource.note)
}

fn gathering_text(gathering: &Gathering, verb: &Verb) -> String {
    let what = match gathering.kind {
        GatheringKind::CoffeeChat => "a coffee chat",
        GatheringKind::VideoCall => "a video call",
    };
    let mut text = format!(
        " {} {what} on {} for {} min",
        verb.of("proposes", "propose"),
        when::local(gathering.starts_at_ms, &gathering.time_zone),
        gathering.duration_minutes
    );
    if !gathering.link.is_empty() {
        let _ = write!(text, " at {}", clean(&gathering.link));
    }
    text + &note_text(&gathering.note)
}

fn progress_text(progress: &GoalProgress, verb: &Verb) -> String {
    let done = if progress.done { " (done!)" } else { "" };
    format!(
        " {} on goal {}{done}{}",
        verb.of("reports progress", "report progress"),
        progress.goal,
        note_text(&progress.note)
    )
}

/// An SDK name (`coffee-chat`) the way our JSON spells names (`coffee_chat`).
fn snake(name: &str) -> String {
    name.replace('-', "_")
}

/// ` — note`, or nothing.
fn note_text(note: &str) -> String {
    if note.is_empty() {
        String::new()
    } else {
        format!(" — {}", clean(note))
    }
}

/// A circle as one JSON line.
#[derive(Debug, Serialize)]
struct CircleLine<'a> {
    kind: &'static str,
    id: String,
    name: &'a str,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    members: usize,
    version: u64,
    epoch: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<String>,
    rules: &'a str,
}

/// A circle, as JSON (`kind` is `circle` in lists, `circle_changed` in
/// `sync`).
pub(crate) fn circle_json(circle: &Circle, kind: &'static str) -> String {
    json(&CircleLine {
        kind,
        id: circle.id.to_string(),
        name: &circle.name,
        state: circle.state.as_str(),
        role: circle.my_role.map(Role::as_str),
        members: circle.members.len(),
        version: circle.version,
        epoch: circle.epoch,
        parent: circle.parent.map(|parent| parent.to_string()),
        rules: &circle.rules,
    })
}

/// A circle, as a line of text.
pub(crate) fn circle_text(circle: &Circle) -> String {
    let mut line = format!("{}  {}", name_or_id(circle), circle.id);
    match circle.my_role {
        Some(my_role) if circle.state == CircleState::Active => {
            let _ = write!(line, "  {my_role}");
        }
        _ => {
            let _ = write!(line, "  {}", circle.state.as_str());
        }
    }
    let _ = write!(line, "  {} members", circle.members.len());
    line
}

/// A circle's name, or its id if it has none.
pub(crate) fn name_or_id(circle: &Circle) -> String {
    if circle.name.is_empty() {
        circle.id.to_string()
    } else {
        clean(&circle.name)
    }
}

/// A member of a circle as one JSON line.
#[derive(Debug, Serialize)]
struct MemberLine<'a> {
    kind: &'static str,
    circle: String,
    name: &'a str,
    member_id: String,
    role: &'static str,
    me: bool,
}

/// A member of `circle`, as JSON.
pub(crate) fn member_json(circle: CircleId, member: &CircleMember) -> String {
    json(&MemberLine {
        kind: "member",
        circle: circle.to_string(),
        name: &member.display_name,
        member_id: member.member_id.to_string(),
        role: member.role.as_str(),
        me: member.is_me,
    })
}

/// A member, as a line of text.
pub(crate) fn member_text(member: &CircleMember) -> String {
    let name = match member.display_name.as_str() {
        "" => "(no name)".to_owned(),
        name => clean(name),
    };
    let me = if member.is_me { "  (you)" } else { "" };
    format!("{name}  {}  {}{me}", member.member_id, member.role)
}

/// A goal whose owner is due, as one JSON line.
#[derive(Debug, Serialize)]
struct DueLine<'a> {
    kind: &'static str,
    circle: String,
    circle_name: &'a str,
    id: String,
    owner: String,
    owner_name: &'a str,
    text: &'a str,
    every: &'static str,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    due_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_progress_at: Option<String>,
}

/// A goal of `circle`, as JSON.
pub(crate) fn goal_json(circle: CircleId, circle_name: &str, goal: &GoalView) -> String {
    json(&DueLine {
        kind: "goal",
        circle: circle.to_string(),
        circle_name,
        id: goal.id.to_string(),
        owner: goal.owner.to_string(),
        owner_name: &goal.owner_name,
        text: &goal.goal.text,
        every: goal.goal.cadence.as_str(),
        status: snake(goal.status.as_str()),
        due_at: goal.next_due_at_ms.map(when::utc),
        last_progress_at: goal.progress.last().map(|entry| when::utc(entry.at_ms)),
    })
}

/// A goal of a circle named `circle_name`, as a line of text.
pub(crate) fn goal_text(circle_name: &str, goal: &GoalView) -> String {
    let owner = match goal.owner_name.as_str() {
        "" => goal.owner.to_string(),
        name => clean(name),
    };
    let mut line = format!(
        "({}) {owner} is {}: {} ({})",
        clean(circle_name),
        goal.status.as_str().replace('-', " "),
        clean(&goal.goal.text),
        goal.goal.cadence.as_str()
    );
    if let Some(due) = goal.next_due_at_ms {
        let _ = write!(line, ", due since {}", short_time(due));
    }
    let _ = write!(line, "  [id {}]", goal.id);
    line
}

#[cfg(test)]
mod tests;
