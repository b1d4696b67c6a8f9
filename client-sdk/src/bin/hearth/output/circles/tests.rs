use hearth_client::{
    Cadence, CircleMember, Goal, GoalView, MemberId, MessageId, Reaction, RsvpAnswer,
};
use serde_json::{Value, json};

use super::*;

/// 2030-03-07T17:00:00Z.
const AT: u64 = 1_899_133_200_000;

fn message(content: Content, urgent: bool) -> CircleMessage {
    CircleMessage {
        id: MessageId::from_bytes([0xab; 16]),
        circle: CircleId::from_bytes([7; 16]),
        sender: MemberId::from_bytes([2; 16]),
        sender_name: "Sam".into(),
        direction: Direction::Incoming,
        sent_at_ms: 1_700_000_000_123,
        stored_at_ms: 1_700_000_000_200,
        content,
        urgent,
    }
}

fn parsed(content: Content, urgent: bool) -> Value {
    let line = message_json(&message(content, urgent), "Tuesday group");
    assert!(!line.contains('\n'));
    serde_json::from_str(&line).unwrap()
}

fn gathering() -> Gathering {
    Gathering {
        kind: GatheringKind::VideoCall,
        starts_at_ms: AT,
        time_zone: "Europe/Berlin".into(),
        duration_minutes: 45,
        link: "https://meet.example/t".into(),
        note: "monthly".into(),
    }
}

#[test]
fn a_circle_message_carries_the_circle_and_the_common_fields() {
    let value = parsed(Content::Text("hi all".into()), false);
    assert_eq!(value["kind"], "message");
    assert_eq!(value["circle"], CircleId::from_bytes([7; 16]).to_string());
    assert_eq!(value["circle_name"], "Tuesday group");
    assert_eq!(value["id"], "ab".repeat(16));
    assert_eq!(value["direction"], "in");
    assert_eq!(value["from"], MemberId::from_bytes([2; 16]).to_string());
    assert_eq!(value["from_name"], "Sam");
    assert_eq!(value["sent_at"], "2023-11-14T22:13:20.123Z");
    assert_eq!(value["sent_at_ms"], 1_700_000_000_123u64);
    assert_eq!(value["type"], "text");
    assert_eq!(value["text"], "hi all");
    assert_eq!(value.get("urgent"), None, "only support requests say");
}

#[test]
fn each_kind_has_its_own_fields() {
    let check_in = parsed(
        Content::CheckIn(CheckIn {
            mood: 7,
            energy: None,
            note: "ok".into(),
            tags: vec!["sleep".into()],
        }),
        false,
    );
    assert_eq!(check_in["type"], "check_in");
    assert_eq!(check_in["mood"], 7);
    assert_eq!(check_in.get("energy"), None);
    assert_eq!(check_in["tags"], json!(["sleep"]));
    let meeting = parsed(Content::Gathering(gathering()), false);
    assert_eq!(meeting["meeting"], "video_call");
    assert_eq!(meeting["at"], "2030-03-07T17:00:00.000Z");
    assert_eq!(meeting["at_ms"], AT);
    assert_eq!(
        meeting["at_local"],
        "2030-03-07T18:00:00+01:00[Europe/Berlin]"
    );
    assert_eq!(meeting["tz"], "Europe/Berlin");
    assert_eq!(meeting["minutes"], 45);
    let target = MessageId::from_bytes([1; 16]);
    let rsvp = parsed(
        Content::Rsvp(Rsvp {
            gathering: target,
            answer: RsvpAnswer::Maybe,
        }),
        false,
    );
    assert_eq!(
        (rsvp["gathering"].as_str(), rsvp["answer"].as_str()),
        (Some(&*target.to_string()), Some("maybe"))
    );
    let goal = parsed(
        Content::Goal(Goal {
            text: "walk".into(),
            cadence: Cadence::Once,
            due_at_ms: Some(AT),
        }),
        false,
    );
    assert_eq!(
        (goal["every"].as_str(), goal["due"].as_str()),
        (Some("once"), Some("2030-03-07T17:00:00.000Z"))
    );
    let progress = parsed(
        Content::GoalProgress(GoalProgress {
            goal: target,
            note: String::new(),
            done: true,
        }),
        false,
    );
    assert_eq!(progress["done"], true);
    let support = parsed(Content::SupportRequest { note: "now".into() }, true);
    assert_eq!(
        (support["type"].as_str(), support["urgent"].as_bool()),
        (Some("support_request"), Some(true))
    );
    let reaction = parsed(
        Content::Reaction(Reaction {
            target,
            emoji: String::new(),
        }),
        false,
    );
    assert_eq!(reaction["emoji"], "");
    assert_eq!(parsed(Content::Unsupported, false)["type"], "unsupported");
}

#[test]
fn text_lines_read_as_sentences_and_escape_terminal_controls() {
    let mut own = message(Content::Gathering(gathering()), false);
    own.direction = Direction::Outgoing;
    let line = message_text(&own, None);
    assert!(
        line.ends_with(&format!(
            "] you propose a video call on 2030-03-07 18:00 CET (Europe/Berlin) for 45 min at https://meet.example/t — monthly  [id {}]",
            "ab".repeat(16)
        )),
        "{line}"
    );
    let urgent = message(
        Content::SupportRequest {
            note: "\u{1b}[2Jhelp".into(),
        },
        true,
    );
    let line = message_text(&urgent, Some("Tuesday group"));
    assert!(
        line.ends_with("(Tuesday group) URGENT: Sam needs support now — \\u{1b}[2Jhelp"),
        "{line}"
    );
    let reaction = message(
        Content::Reaction(Reaction {
            target: MessageId::from_bytes([1; 16]),
            emoji: "🙏".into(),
        }),
        false,
    );
    assert!(message_text(&reaction, None).contains("Sam reacts 🙏 to 0101"));
}

#[test]
fn circles_members_and_due_goals_have_json_lines() {
    let me = CircleMember {
        member_id: MemberId::from_bytes([1; 16]),
        display_name: "Dana".into(),
        role: Role::Facilitator,
        is_me: true,
    };
    let circle = Circle {
        id: CircleId::from_bytes([7; 16]),
        name: "Tuesday group".into(),
        rules: "be kind".into(),
        state: CircleState::Active,
        my_role: Some(Role::Facilitator),
        members: vec![me.clone()],
        epoch: 2,
        version: 5,
        parent: None,
    };
    let value: Value = serde_json::from_str(&circle_json(&circle, "circle")).unwrap();
    assert_eq!(value["state"], "active");
    assert_eq!(value["role"], "facilitator");
    assert_eq!(value["members"], 1);
    assert_eq!(value.get("parent"), None);
    let member: Value = serde_json::from_str(&member_json(circle.id, &me)).unwrap();
    assert_eq!(
        (
            member["name"].as_str(),
            member["role"].as_str(),
            member["me"].as_bool()
        ),
        (Some("Dana"), Some("facilitator"), Some(true))
    );
    assert_eq!(member["member_id"], me.member_id.to_string());
    let goal = GoalView {
        id: MessageId::from_bytes([3; 16]),
        owner: me.member_id,
        owner_name: "Dana".into(),
        goal: Goal {
            text: "walk".into(),
            cadence: Cadence::Daily,
            due_at_ms: None,
        },
        progress: Vec::new(),
        done: false,
        status: hearth_client::DueStatus::OnTrack,
        next_due_at_ms: Some(AT),
    };
    let due: Value = serde_json::from_str(&goal_json(circle.id, "Tuesday group", &goal)).unwrap();
    assert_eq!(due["status"], "on_track");
    assert_eq!(due["every"], "daily");
    assert_eq!(due["due_at"], "2030-03-07T17:00:00.000Z");
    assert_eq!(due.get("last_progress_at"), None);
    assert!(
        goal_text("Tuesday group", &goal)
            .starts_with("(Tuesday group) Dana is on track: walk (daily)")
    );
}
