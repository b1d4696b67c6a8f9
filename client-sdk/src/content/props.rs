//! Property tests: every valid content survives sending and receiving, and
//! no bytes make decoding panic or disagree with encoding.

use proptest::prelude::*;

use super::validate::{MAX_DURATION_MINUTES, MAX_SCALE, MAX_TIME_MS};
use super::*;

fn message_id() -> impl Strategy<Value = MessageId> {
    any::<[u8; 16]>().prop_map(MessageId::from_bytes)
}

fn note() -> impl Strategy<Value = String> {
    "\\PC{0,40}"
}

fn scale() -> impl Strategy<Value = u8> {
    1..=MAX_SCALE
}

fn check_in() -> impl Strategy<Value = CheckIn> {
    let tags = prop::collection::vec("\\PC{1,32}", 0..=16);
    (scale(), prop::option::of(scale()), note(), tags).prop_map(|(mood, energy, note, tags)| {
        CheckIn {
            mood,
            energy,
            note,
            tags,
        }
    })
}

fn resource() -> impl Strategy<Value = Resource> {
    let url = "[hH][tT][tT][pP][sS]?://[a-z0-9.-]{1,20}(:[0-9]{1,5})?(/[A-Za-z0-9_~%.-]{0,10}){0,3}(\\?[a-z=&]{0,10})?";
    (url, "\\PC{0,60}", note()).prop_map(|(url, title, note)| Resource { url, title, note })
}

fn gathering() -> impl Strategy<Value = Gathering> {
    let kind = prop_oneof![
        Just(GatheringKind::CoffeeChat),
        Just(GatheringKind::VideoCall)
    ];
    (
        kind,
        1..=MAX_TIME_MS,
        "[A-Za-z0-9_+/-]{1,64}",
        1..=MAX_DURATION_MINUTES,
        "\\PC{0,60}",
        note(),
    )
        .prop_map(
            |(kind, starts_at_ms, time_zone, duration_minutes, link, note)| Gathering {
                kind,
                starts_at_ms,
                time_zone,
                duration_minutes,
                link,
                note,
            },
        )
}

fn rsvp() -> impl Strategy<Value = Rsvp> {
    let answer = prop_oneof![
        Just(RsvpAnswer::Yes),
        Just(RsvpAnswer::No),
        Just(RsvpAnswer::Maybe)
    ];
    (message_id(), answer).prop_map(|(gathering, answer)| Rsvp { gathering, answer })
}

fn goal() -> impl Strategy<Value = Goal> {
    let cadence = prop_oneof![
        Just(Cadence::Once),
        Just(Cadence::Daily),
        Just(Cadence::Weekly)
    ];
    let due = prop::option::of(1..=MAX_TIME_MS);
    ("[a-z]\\PC{0,60}", cadence, due).prop_map(|(text, cadence, due_at_ms)| Goal {
        text,
        cadence,
        due_at_ms,
    })
}

fn content() -> impl Strategy<Value = Content> {
    prop_oneof![
        "\\PC{0,80}".prop_map(Content::Text),
        check_in().prop_map(Content::CheckIn),
        resource().prop_map(Content::Resource),
        gathering().prop_map(Content::Gathering),
        rsvp().prop_map(Content::Rsvp),
        goal().prop_map(Content::Goal),
        (message_id(), note(), any::<bool>()).prop_map(|(goal, note, done)| {
            Content::GoalProgress(GoalProgress { goal, note, done })
        }),
        note().prop_map(|note| Content::SupportRequest { note }),
        (message_id(), "[^\\s\\p{Cc}]{0,4}")
            .prop_map(|(target, emoji)| Content::Reaction(Reaction { target, emoji })),
    ]
}

proptest! {
    #[test]
    fn valid_content_round_trips(
        content in content(),
        id in message_id(),
        sent_at_ms in any::<u64>(),
        epoch in any::<u64>(),
    ) {
        let kind = to_kind(&content).expect("generated content is valid");
        let bytes = encode_in_epoch(id, sent_at_ms, epoch, kind);
        let expected = Envelope { message_id: id, sent_at_ms, epoch, kind: Kind::Shown(content) };
        prop_assert_eq!(decode(&bytes), Ok(expected));
        prop_assert!(decodes_consistently(&bytes));
    }

    #[test]
    fn arbitrary_bytes_decode_consistently(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        prop_assert!(decodes_consistently(&bytes));
    }
}
