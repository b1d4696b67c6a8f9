use super::*;

const ID: MessageId = MessageId::from_bytes([3; 16]);
const OTHER: MessageId = MessageId::from_bytes([4; 16]);

fn check_in() -> CheckIn {
    CheckIn {
        mood: 7,
        energy: Some(3),
        note: "slept badly, work was fine".into(),
        tags: vec!["sleep".into(), "work".into()],
    }
}

fn resource() -> Resource {
    Resource {
        url: "https://example.org/breathing?x=1#top".into(),
        title: "Box breathing".into(),
        note: "helps me".into(),
    }
}

fn gathering() -> Gathering {
    Gathering {
        kind: GatheringKind::VideoCall,
        starts_at_ms: 1_767_225_600_000,
        time_zone: "America/Argentina/Buenos_Aires".into(),
        duration_minutes: 45,
        link: "https://meet.example.org/abc".into(),
        note: "bring tea".into(),
    }
}

fn goal() -> Goal {
    Goal {
        text: "walk every morning".into(),
        cadence: Cadence::Daily,
        due_at_ms: None,
    }
}

/// One valid value of every kind people see.
fn every_kind() -> Vec<Content> {
    vec![
        Content::Text("hello".into()),
        Content::Text(String::new()),
        Content::CheckIn(check_in()),
        Content::CheckIn(CheckIn {
            mood: 1,
            energy: None,
            note: String::new(),
            tags: Vec::new(),
        }),
        Content::Resource(resource()),
        Content::Gathering(gathering()),
        Content::Gathering(Gathering {
            kind: GatheringKind::CoffeeChat,
            time_zone: "UTC".into(),
            link: String::new(),
            ..gathering()
        }),
        Content::Rsvp(Rsvp {
            gathering: OTHER,
            answer: RsvpAnswer::Yes,
        }),
        Content::Rsvp(Rsvp {
            gathering: OTHER,
            answer: RsvpAnswer::No,
        }),
        Content::Rsvp(Rsvp {
            gathering: OTHER,
            answer: RsvpAnswer::Maybe,
        }),
        Content::Goal(goal()),
        Content::Goal(Goal {
            cadence: Cadence::Weekly,
            ..goal()
        }),
        Content::Goal(Goal {
            cadence: Cadence::Once,
            due_at_ms: Some(1_767_225_600_000),
            ..goal()
        }),
        Content::Goal(Goal {
            cadence: Cadence::Once,
            ..goal()
        }),
        Content::GoalProgress(GoalProgress {
            goal: OTHER,
            note: "day 3".into(),
            done: false,
        }),
        Content::GoalProgress(GoalProgress {
            goal: OTHER,
            note: String::new(),
            done: true,
        }),
        Content::SupportRequest {
            note: "rough night".into(),
        },
        Content::SupportRequest {
            note: String::new(),
        },
        Content::Reaction(Reaction {
            target: OTHER,
            emoji: "🫶".into(),
        }),
        Content::Reaction(Reaction {
            target: OTHER,
            emoji: String::new(),
        }),
    ]
}

/// Encodes a wire kind, skipping `to_kind`'s validation (what a modified
/// client could send).
fn raw(kind: pb::content::Kind) -> Vec<u8> {
    encode(ID, 42, kind)
}

/// The error `to_kind` gives for `content`, and checks that `decode` gives
/// the same for the same content sent by a client that skipped validation.
fn rejection(content: Content, wire: pb::content::Kind) -> ContentError {
    let sending = to_kind(&content).expect_err("the app may not send it");
    assert_eq!(decode(&raw(wire)), Err(sending), "{content:?}");
    sending
}

fn invalid_check_in(check_in: CheckIn) -> ContentError {
    let wire = pb::content::Kind::CheckIn(check_in.to_pb());
    rejection(Content::CheckIn(check_in), wire)
}

fn invalid_resource(resource: Resource) -> ContentError {
    let wire = pb::content::Kind::Resource(resource.to_pb());
    rejection(Content::Resource(resource), wire)
}

fn invalid_gathering(gathering: Gathering) -> ContentError {
    let wire = pb::content::Kind::Gathering(gathering.to_pb());
    rejection(Content::Gathering(gathering), wire)
}

fn invalid_goal(goal: Goal) -> ContentError {
    let wire = pb::content::Kind::Goal(goal.to_pb());
    rejection(Content::Goal(goal), wire)
}

#[test]
fn text_round_trips() {
    let bytes = encode(ID, 42, text("hello"));
    let envelope = decode(&bytes).unwrap();
    assert_eq!(envelope.message_id, ID);
    assert_eq!(envelope.sent_at_ms, 42);
    assert_eq!(envelope.epoch, 0);
    assert_eq!(envelope.kind, Kind::Shown(Content::Text("hello".into())));
}

#[test]
fn every_kind_round_trips_with_its_epoch() {
    for (epoch, content) in (0u64..).zip(every_kind()) {
        let kind = to_kind(&content).unwrap();
        let bytes = encode_in_epoch(ID, 1_000 + epoch, epoch, kind);
        let envelope = decode(&bytes).unwrap();
        assert_eq!(
            envelope,
            Envelope {
                message_id: ID,
                sent_at_ms: 1_000 + epoch,
                epoch,
                kind: Kind::Shown(content),
            }
        );
        assert!(decodes_consistently(&bytes));
    }
}

#[test]
fn values_at_every_limit_are_accepted() {
    let at_limits = [
        Content::Text("x".repeat(crate::MAX_TEXT_BYTES)),
        Content::CheckIn(CheckIn {
            mood: 10,
            energy: Some(10),
            note: "n".repeat(4096),
            tags: vec!["é".repeat(32); 16],
        }),
        Content::CheckIn(CheckIn {
            energy: Some(1),
            ..check_in()
        }),
        Content::Resource(Resource {
            url: format!("HTTP://a/{}", "p".repeat(2048 - 9)),
            title: "é".repeat(200),
            note: "n".repeat(4096),
        }),
        Content::Gathering(Gathering {
            starts_at_ms: 253_402_300_799_999,
            time_zone: "Etc/GMT+1_-".repeat(6)[..64].to_owned(),
            duration_minutes: 1440,
            link: "l".repeat(2048),
            note: "n".repeat(4096),
            ..gathering()
        }),
        Content::Gathering(Gathering {
            starts_at_ms: 1,
            duration_minutes: 1,
            ..gathering()
        }),
        Content::Goal(Goal {
            text: "g".repeat(1024),
            cadence: Cadence::Once,
            due_at_ms: Some(253_402_300_799_999),
        }),
        Content::Reaction(Reaction {
            target: OTHER,
            emoji: "👍".repeat(4), // 16 bytes
        }),
    ];
    for content in at_limits {
        let bytes = encode(ID, 1, to_kind(&content).unwrap());
        assert_eq!(decode(&bytes).unwrap().kind, Kind::Shown(content));
    }
}

#[test]
fn check_in_limits() {
    let invalid = |field| ContentError::Invalid(field);
    for mood in [0, 11, 255] {
        let bad = CheckIn { mood, ..check_in() };
        assert_eq!(invalid_check_in(bad), invalid("check-in mood"));
    }
    for energy in [0, 11] {
        let bad = CheckIn {
            energy: Some(energy),
            ..check_in()
        };
        assert_eq!(invalid_check_in(bad), invalid("check-in energy"));
    }
    let long_note = CheckIn {
        note: "n".repeat(4097),
        ..check_in()
    };
    assert_eq!(invalid_check_in(long_note), invalid("check-in note"));
    for tags in [
        vec!["t".to_owned(); 17],
        vec!["é".repeat(33)],
        vec![String::new()],
    ] {
        let bad = CheckIn { tags, ..check_in() };
        assert_eq!(invalid_check_in(bad), invalid("check-in tags"));
    }
}

#[test]
fn check_in_numbers_too_large_for_a_byte_are_invalid_not_truncated() {
    // 257 would be 1 after a truncating cast.
    let mood = pb::CheckIn {
        mood: 257,
        ..check_in().to_pb()
    };
    assert_eq!(
        decode(&raw(pb::content::Kind::CheckIn(mood))),
        Err(ContentError::Invalid("check-in mood"))
    );
    let energy = pb::CheckIn {
        energy: Some(u32::MAX),
        ..check_in().to_pb()
    };
    assert_eq!(
        decode(&raw(pb::content::Kind::CheckIn(energy))),
        Err(ContentError::Invalid("check-in energy"))
    );
}

#[test]
fn resource_limits() {
    let invalid = ContentError::Invalid("resource url");
    for url in [
        "ftp://example.org/file",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "example.org",
        "https://",
        "https:///path",
        "https://user@evil.example/",
        "https://exa mple.org",
        "https://example.org/\n",
        "",
        "httpé://x",
    ] {
        let bad = Resource {
            url: url.into(),
            ..resource()
        };
        assert_eq!(invalid_resource(bad), invalid, "{url}");
    }
    let long_url = Resource {
        url: format!("https://a/{}", "p".repeat(2048 - 9)),
        ..resource()
    };
    assert_eq!(invalid_resource(long_url), invalid);
    let long_title = Resource {
        title: "t".repeat(201),
        ..resource()
    };
    assert_eq!(
        invalid_resource(long_title),
        ContentError::Invalid("resource title")
    );
    let long_note = Resource {
        note: "n".repeat(4097),
        ..resource()
    };
    assert_eq!(
        invalid_resource(long_note),
        ContentError::Invalid("resource note")
    );
}

#[test]
fn gathering_limits() {
    let invalid = |field| ContentError::Invalid(field);
    for minutes in [0, 1441] {
        let bad = Gathering {
            duration_minutes: minutes,
            ..gathering()
        };
        assert_eq!(invalid_gathering(bad), invalid("gathering duration"));
    }
    for starts_at_ms in [0, 253_402_300_800_000, u64::MAX] {
        let bad = Gathering {
            starts_at_ms,
            ..gathering()
        };
        assert_eq!(invalid_gathering(bad), invalid("gathering start"));
    }
    for zone in [
        "",
        "Europe/Berlin ",
        "Europe.Berlin",
        "Zürich",
        &"A".repeat(65),
    ] {
        let bad = Gathering {
            time_zone: zone.into(),
            ..gathering()
        };
        assert_eq!(
            invalid_gathering(bad),
            invalid("gathering time zone"),
            "{zone}"
        );
    }
    let long_link = Gathering {
        link: "l".repeat(2049),
        ..gathering()
    };
    assert_eq!(invalid_gathering(long_link), invalid("gathering link"));
    let long_note = Gathering {
        note: "n".repeat(4097),
        ..gathering()
    };
    assert_eq!(invalid_gathering(long_note), invalid("gathering note"));
}

#[test]
fn goal_limits() {
    let invalid = |field| ContentError::Invalid(field);
    for text in [String::new(), " \n".into(), "g".repeat(1025)] {
        let bad = Goal { text, ..goal() };
        assert_eq!(invalid_goal(bad), invalid("goal text"));
    }
    let late = Goal {
        due_at_ms: Some(253_402_300_800_000),
        ..goal()
    };
    assert_eq!(invalid_goal(late), invalid("goal due date"));
    // Zero means "no due date" on the wire, so the app cannot ask for it.
    let zero = Content::Goal(Goal {
        due_at_ms: Some(0),
        ..goal()
    });
    assert_eq!(to_kind(&zero), Err(invalid("goal due date")));
}

#[test]
fn notes_of_progress_and_support_requests_are_limited() {
    let progress = GoalProgress {
        goal: OTHER,
        note: "n".repeat(4097),
        done: false,
    };
    let wire = pb::content::Kind::GoalProgress(progress.to_pb());
    assert_eq!(
        rejection(Content::GoalProgress(progress), wire),
        ContentError::Invalid("progress note")
    );
    let note = "n".repeat(4097);
    let wire = pb::content::Kind::SupportRequest(pb::SupportRequest { note: note.clone() });
    assert_eq!(
        rejection(Content::SupportRequest { note }, wire),
        ContentError::Invalid("support note")
    );
}

#[test]
fn text_is_limited_like_direct_messages() {
    let long = "x".repeat(crate::MAX_TEXT_BYTES + 1);
    assert_eq!(
        rejection(Content::Text(long.clone()), text(&long)),
        ContentError::Invalid("text")
    );
}

#[test]
fn reaction_limits() {
    // 17 bytes; a family emoji (25 bytes) is too long as well.
    for emoji in ["👍👍👍👍a", "👩‍👩‍👧‍👦", "a b", "\u{7}", " "] {
        let bad = Reaction {
            target: OTHER,
            emoji: emoji.into(),
        };
        let wire = pb::content::Kind::Reaction(bad.to_pb());
        assert_eq!(
            rejection(Content::Reaction(bad), wire),
            ContentError::Invalid("reaction emoji"),
            "{emoji}"
        );
    }
}

#[test]
fn message_ids_in_content_must_be_16_bytes() {
    for len in [0, 15, 17, 32] {
        let id = vec![7; len];
        let cases = [
            (
                pb::content::Kind::Rsvp(pb::Rsvp {
                    gathering_id: id.clone(),
                    answer: pb::rsvp::Answer::Yes.into(),
                }),
                "rsvp gathering id",
            ),
            (
                pb::content::Kind::GoalProgress(pb::GoalProgress {
                    goal_id: id.clone(),
                    note: String::new(),
                    done: true,
                }),
                "progress goal id",
            ),
            (
                pb::content::Kind::Reaction(pb::Reaction {
                    target_id: id.clone(),
                    emoji: "👍".into(),
                }),
                "reaction target id",
            ),
        ];
        for (wire, field) in cases {
            assert_eq!(decode(&raw(wire)), Err(ContentError::Invalid(field)));
        }
    }
}

#[test]
fn unspecified_enum_values_are_invalid() {
    let gathering = pb::Gathering {
        kind: pb::gathering::Kind::Unspecified.into(),
        ..gathering().to_pb()
    };
    assert_eq!(
        decode(&raw(pb::content::Kind::Gathering(gathering))),
        Err(ContentError::Invalid("gathering kind"))
    );
    let rsvp = pb::Rsvp {
        gathering_id: vec![1; 16],
        answer: pb::rsvp::Answer::Unspecified.into(),
    };
    assert_eq!(
        decode(&raw(pb::content::Kind::Rsvp(rsvp))),
        Err(ContentError::Invalid("rsvp answer"))
    );
}

#[test]
fn enum_values_from_a_newer_client_are_unsupported_not_errors() {
    let unsupported = Ok(Kind::Shown(Content::Unsupported));
    let gathering = pb::Gathering {
        kind: 3,
        ..gathering().to_pb()
    };
    let bytes = raw(pb::content::Kind::Gathering(gathering));
    assert_eq!(decode(&bytes).map(|e| e.kind), unsupported);
    let rsvp = pb::Rsvp {
        gathering_id: vec![1; 16],
        answer: 4,
    };
    let bytes = raw(pb::content::Kind::Rsvp(rsvp));
    assert_eq!(decode(&bytes).map(|e| e.kind), unsupported);
    let goal = pb::Goal {
        cadence: 3,
        ..goal().to_pb()
    };
    let bytes = raw(pb::content::Kind::Goal(goal));
    assert_eq!(decode(&bytes).map(|e| e.kind), unsupported);
}

#[test]
fn an_unknown_kind_from_a_newer_client_is_unsupported_not_an_error() {
    // Field 99 (a kind this version does not know), length-delimited.
    let mut bytes = pb::Content {
        message_id: vec![1; 16],
        sent_at_ms: 7,
        epoch: 5,
        kind: None,
    }
    .encode_to_vec();
    bytes.extend_from_slice(&[0x9a, 0x06, 0x02, 0x08, 0x01]);
    let envelope = decode(&bytes).unwrap();
    assert_eq!(envelope.kind, Kind::Shown(Content::Unsupported));
    assert_eq!(envelope.sent_at_ms, 7);
    assert_eq!(envelope.epoch, 5);
    assert!(decodes_consistently(&bytes));
}

#[test]
fn unsupported_content_cannot_be_sent() {
    assert_eq!(
        to_kind(&Content::Unsupported),
        Err(ContentError::Invalid("kind"))
    );
}

#[test]
fn circle_control_kinds_decode_as_control() {
    let circle_id = vec![9; 16];
    let cases = [
        (
            pb::content::Kind::CircleJoinRequest(pb::CircleJoinRequest {
                circle_id: circle_id.clone(),
                display_name: "Sam".into(),
                ..Default::default()
            }),
            "join request",
        ),
        (
            pb::content::Kind::CircleJoinRefused(pb::CircleJoinRefused {
                circle_id: circle_id.clone(),
                reason: pb::circle_join_refused::Reason::Expired.into(),
            }),
            "join refused",
        ),
        (
            pb::content::Kind::CircleWelcome(pb::CircleWelcome {
                roster: vec![1, 2, 3],
                ..Default::default()
            }),
            "welcome",
        ),
        (
            pb::content::Kind::CircleRosterUpdate(pb::CircleRosterUpdate {
                roster: vec![4, 5],
                cards: Vec::new(),
            }),
            "roster update",
        ),
        (
            pb::content::Kind::CircleKeys(pb::CircleKeys {
                circle_id,
                epoch: 2,
                reply_wanted: true,
                ..Default::default()
            }),
            "keys",
        ),
    ];
    for (wire, name) in cases {
        let expected = match wire.clone() {
            pb::content::Kind::CircleJoinRequest(m) => CircleControl::JoinRequest(m),
            pb::content::Kind::CircleJoinRefused(m) => CircleControl::JoinRefused(m),
            pb::content::Kind::CircleWelcome(m) => CircleControl::Welcome(m),
            pb::content::Kind::CircleRosterUpdate(m) => CircleControl::RosterUpdate(m),
            pb::content::Kind::CircleKeys(m) => CircleControl::Keys(m),
            _ => unreachable!(),
        };
        let envelope = decode(&encode_in_epoch(ID, 3, 2, wire)).unwrap();
        assert_eq!(envelope.kind, Kind::Circle(expected), "{name}");
        assert_eq!(envelope.epoch, 2);
    }
}

#[test]
fn contact_requests_and_receipts_still_decode() {
    let request = pb::ContactRequest {
        display_name: "Sam".into(),
        ..Default::default()
    };
    let bytes = encode(ID, 1, pb::content::Kind::ContactRequest(request.clone()));
    assert_eq!(decode(&bytes).unwrap().kind, Kind::ContactRequest(request));
    let receipt = pb::Receipt {
        kind: pb::receipt::Kind::Read.into(),
        message_ids: vec![vec![1; 16]],
    };
    let bytes = encode(ID, 1, pb::content::Kind::Receipt(receipt.clone()));
    assert_eq!(decode(&bytes).unwrap().kind, Kind::Receipt(receipt));
}

#[test]
fn malformed_content_is_an_error() {
    assert_eq!(decode(&[0xff]), Err(ContentError::Undecodable));
    let short_id = pb::Content {
        message_id: vec![1; 15],
        ..Default::default()
    }
    .encode_to_vec();
    assert_eq!(decode(&short_id), Err(ContentError::MessageId));
}

#[test]
fn decoding_arbitrary_bytes_never_panics() {
    // A cheap, deterministic stand-in for the fuzz target: mutations of
    // valid encodings of every kind.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for content in every_kind() {
        let bytes = encode_in_epoch(ID, 5, 1, to_kind(&content).unwrap());
        for _ in 0..200 {
            let mut mutated = bytes.clone();
            let at = (next() as usize) % mutated.len();
            mutated[at] = next() as u8;
            if next() % 3 == 0 {
                mutated.truncate((next() as usize) % (mutated.len() + 1));
            }
            assert!(decodes_consistently(&mutated), "{mutated:?}");
        }
    }
}
