use super::*;
use crate::content::{Cadence, GatheringKind, GoalProgress, Reaction, Rsvp};

const DAY: u64 = 24 * 60 * 60 * 1000;
const WEEK: u64 = 7 * DAY;
const T0: u64 = 1_767_225_600_000;

const ANA: MemberId = MemberId::from_bytes([1; 16]);
const BEN: MemberId = MemberId::from_bytes([2; 16]);
const CAL: MemberId = MemberId::from_bytes([3; 16]);

fn id(n: u8) -> MessageId {
    MessageId::from_bytes([n; 16])
}

fn message(n: u8, sender: MemberId, sent_at_ms: u64, content: Content) -> CircleMessage {
    CircleMessage {
        id: id(n),
        circle: CircleId::from_bytes([9; 16]),
        sender,
        sender_name: format!("member {}", sender.as_bytes()[0]),
        direction: if sender == ANA {
            Direction::Outgoing
        } else {
            Direction::Incoming
        },
        sent_at_ms,
        stored_at_ms: sent_at_ms + 5,
        content,
        urgent: false,
    }
}

fn gathering() -> Gathering {
    Gathering {
        kind: GatheringKind::CoffeeChat,
        starts_at_ms: T0 + WEEK,
        time_zone: "Europe/Berlin".into(),
        duration_minutes: 60,
        link: "Café Luna".into(),
        note: String::new(),
    }
}

fn rsvp(n: u8, sender: MemberId, at: u64, gathering: u8, answer: RsvpAnswer) -> CircleMessage {
    let rsvp = Rsvp {
        gathering: id(gathering),
        answer,
    };
    message(n, sender, at, Content::Rsvp(rsvp))
}

fn goal(cadence: Cadence, due_at_ms: Option<u64>) -> Content {
    Content::Goal(Goal {
        text: "walk in the morning".into(),
        cadence,
        due_at_ms,
    })
}

fn progress(n: u8, sender: MemberId, at: u64, goal: u8, done: bool) -> CircleMessage {
    let progress = GoalProgress {
        goal: id(goal),
        note: format!("progress {n}"),
        done,
    };
    message(n, sender, at, Content::GoalProgress(progress))
}

fn react(n: u8, sender: MemberId, at: u64, target: u8, emoji: &str) -> CircleMessage {
    let reaction = Reaction {
        target: id(target),
        emoji: emoji.into(),
    };
    message(n, sender, at, Content::Reaction(reaction))
}

/// The status and next due time of the only goal in `feed` at `now`.
fn due_at(feed: &[CircleMessage], now: u64) -> (DueStatus, Option<u64>) {
    let views = goals(feed, now);
    assert_eq!(views.len(), 1);
    (views[0].status, views[0].next_due_at_ms)
}

#[test]
fn rsvps_keep_each_members_latest_answer() {
    let feed = [
        message(1, ANA, T0, Content::Gathering(gathering())),
        rsvp(2, BEN, T0 + 10, 1, RsvpAnswer::Yes),
        rsvp(3, CAL, T0 + 30, 1, RsvpAnswer::Maybe),
        rsvp(4, BEN, T0 + 20, 1, RsvpAnswer::No),
        // Arrived later but written earlier: does not replace Ben's "no".
        rsvp(5, BEN, T0 + 15, 1, RsvpAnswer::Maybe),
        // Same time as Cal's "maybe": the later one in the feed wins.
        rsvp(6, CAL, T0 + 30, 1, RsvpAnswer::Yes),
        rsvp(7, ANA, T0 + 40, 1, RsvpAnswer::Yes),
    ];
    let views = gatherings(&feed);
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].id, id(1));
    assert_eq!(views[0].proposer, ANA);
    assert_eq!(views[0].gathering, gathering());
    assert_eq!(
        views[0].rsvps,
        [
            (BEN, RsvpAnswer::No),
            (CAL, RsvpAnswer::Yes),
            (ANA, RsvpAnswer::Yes)
        ]
    );
}

#[test]
fn rsvps_go_to_their_own_gathering_and_nowhere_else() {
    let video = Gathering {
        kind: GatheringKind::VideoCall,
        ..gathering()
    };
    let feed = [
        // An answer that arrived before its gathering still counts.
        rsvp(1, CAL, T0 + 5, 3, RsvpAnswer::Maybe),
        message(2, ANA, T0, Content::Gathering(gathering())),
        message(3, BEN, T0, Content::Gathering(video.clone())),
        message(4, BEN, T0, goal(Cadence::Daily, None)),
        rsvp(5, CAL, T0 + 10, 2, RsvpAnswer::No),
        // To a gathering not in the feed, and to a goal: ignored.
        rsvp(6, CAL, T0 + 10, 77, RsvpAnswer::Yes),
        rsvp(7, CAL, T0 + 10, 4, RsvpAnswer::Yes),
        // A repeated message id is one gathering.
        message(2, ANA, T0, Content::Gathering(gathering())),
    ];
    let views = gatherings(&feed);
    assert_eq!(views.len(), 2);
    assert_eq!((views[0].id, views[1].id), (id(2), id(3)));
    assert_eq!(views[0].rsvps, [(CAL, RsvpAnswer::No)]);
    assert_eq!(views[1].gathering, video);
    assert_eq!(views[1].rsvps, [(CAL, RsvpAnswer::Maybe)]);
}

#[test]
fn progress_counts_only_from_the_goals_owner() {
    let feed = [
        message(1, ANA, T0, goal(Cadence::Daily, None)),
        progress(2, BEN, T0 + DAY, 1, true),
        progress(3, ANA, T0 + 2 * DAY, 1, false),
        progress(4, CAL, T0 + 3 * DAY, 1, false),
        // Progress on a goal not in the feed is dropped.
        progress(5, ANA, T0 + 3 * DAY, 99, true),
    ];
    let views = goals(&feed, T0 + 2 * DAY + 1);
    assert_eq!(views.len(), 1);
    let view = &views[0];
    assert_eq!(view.id, id(1));
    assert_eq!(view.owner, ANA);
    assert_eq!(view.owner_name, "member 1");
    assert!(!view.done, "Ben's done does not finish Ana's goal");
    assert_eq!(
        view.progress,
        [ProgressEntry {
            id: id(3),
            at_ms: T0 + 2 * DAY,
            note: "progress 3".into(),
            done: false,
        }]
    );
    // Cal's later progress does not move the anchor either.
    assert_eq!(view.next_due_at_ms, Some(T0 + 3 * DAY));
    assert_eq!(view.status, DueStatus::OnTrack);
}

#[test]
fn progress_is_ordered_by_sent_time_and_the_latest_is_the_anchor() {
    let feed = [
        message(1, BEN, T0, goal(Cadence::Weekly, None)),
        progress(2, BEN, T0 + 3 * DAY, 1, false),
        // Arrived last, written first.
        progress(3, BEN, T0 + DAY, 1, false),
    ];
    let view = &goals(&feed, T0 + 4 * DAY)[0];
    let order: Vec<_> = view.progress.iter().map(|p| p.id).collect();
    assert_eq!(order, [id(3), id(2)]);
    assert_eq!(view.next_due_at_ms, Some(T0 + 3 * DAY + WEEK));
}

#[test]
fn a_daily_goal_without_progress_is_due_a_day_after_it_was_set() {
    let feed = [message(1, ANA, T0, goal(Cadence::Daily, None))];
    let next = Some(T0 + DAY);
    assert_eq!(due_at(&feed, T0), (DueStatus::OnTrack, next));
    assert_eq!(due_at(&feed, T0 + DAY - 1), (DueStatus::OnTrack, next));
    assert_eq!(due_at(&feed, T0 + DAY), (DueStatus::Due, next));
    assert_eq!(due_at(&feed, T0 + 2 * DAY - 1), (DueStatus::Due, next));
    assert_eq!(due_at(&feed, T0 + 2 * DAY), (DueStatus::Overdue, next));
    assert_eq!(due_at(&feed, T0 + 30 * DAY), (DueStatus::Overdue, next));
}

#[test]
fn a_daily_goal_is_due_a_day_after_the_owners_latest_progress() {
    let p = T0 + 5 * DAY + 123;
    let feed = [
        message(1, ANA, T0, goal(Cadence::Daily, None)),
        progress(2, ANA, T0 + DAY, 1, false),
        progress(3, ANA, p, 1, false),
    ];
    let next = Some(p + DAY);
    assert_eq!(due_at(&feed, p + DAY - 1), (DueStatus::OnTrack, next));
    assert_eq!(due_at(&feed, p + DAY), (DueStatus::Due, next));
    assert_eq!(due_at(&feed, p + 2 * DAY - 1), (DueStatus::Due, next));
    assert_eq!(due_at(&feed, p + 2 * DAY), (DueStatus::Overdue, next));
}

#[test]
fn a_weekly_goal_is_due_a_week_after_its_anchor() {
    let feed = [message(1, CAL, T0, goal(Cadence::Weekly, None))];
    let next = Some(T0 + WEEK);
    assert_eq!(due_at(&feed, T0 + WEEK - 1), (DueStatus::OnTrack, next));
    assert_eq!(due_at(&feed, T0 + WEEK), (DueStatus::Due, next));
    assert_eq!(due_at(&feed, T0 + 2 * WEEK - 1), (DueStatus::Due, next));
    assert_eq!(due_at(&feed, T0 + 2 * WEEK), (DueStatus::Overdue, next));

    let p = T0 + 10 * DAY;
    let with_progress = [
        message(1, CAL, T0, goal(Cadence::Weekly, None)),
        progress(2, CAL, p, 1, false),
    ];
    let next = Some(p + WEEK);
    assert_eq!(
        due_at(&with_progress, p + WEEK - 1),
        (DueStatus::OnTrack, next)
    );
    assert_eq!(due_at(&with_progress, p + WEEK), (DueStatus::Due, next));
    assert_eq!(
        due_at(&with_progress, p + 2 * WEEK - 1),
        (DueStatus::Due, next)
    );
    assert_eq!(
        due_at(&with_progress, p + 2 * WEEK),
        (DueStatus::Overdue, next)
    );
}

#[test]
fn a_one_off_goal_is_overdue_from_its_due_date_on() {
    let due = T0 + 3 * DAY;
    let feed = [
        message(1, BEN, T0, goal(Cadence::Once, Some(due))),
        // Progress without "done" does not change a one-off goal.
        progress(2, BEN, due - 1, 1, false),
    ];
    assert_eq!(due_at(&feed, T0), (DueStatus::OnTrack, Some(due)));
    assert_eq!(due_at(&feed, due - 1), (DueStatus::OnTrack, Some(due)));
    assert_eq!(due_at(&feed, due), (DueStatus::Overdue, Some(due)));
    assert_eq!(due_at(&feed, due + WEEK), (DueStatus::Overdue, Some(due)));
}

#[test]
fn a_one_off_goal_without_a_due_date_is_never_due() {
    let feed = [message(1, BEN, T0, goal(Cadence::Once, None))];
    for now in [0, T0, T0 + DAY, T0 + 365 * DAY, u64::MAX] {
        assert_eq!(due_at(&feed, now), (DueStatus::OnTrack, None));
    }
}

#[test]
fn a_goal_its_owner_reached_is_done_whatever_the_time() {
    for cadence in [Cadence::Once, Cadence::Daily, Cadence::Weekly] {
        let feed = [
            message(1, ANA, T0, goal(cadence, Some(T0 + DAY))),
            progress(2, ANA, T0 + 2 * DAY, 1, true),
            // A later progress without "done" does not reopen it.
            progress(3, ANA, T0 + 3 * DAY, 1, false),
        ];
        for now in [T0, T0 + 3 * DAY, T0 + 100 * WEEK] {
            let view = &goals(&feed, now)[0];
            assert!(view.done);
            assert_eq!((view.status, view.next_due_at_ms), (DueStatus::Done, None));
            assert_eq!(view.progress.len(), 2);
        }
    }
}

#[test]
fn due_times_saturate_instead_of_overflowing() {
    let feed = [message(1, ANA, u64::MAX - 5, goal(Cadence::Weekly, None))];
    assert_eq!(
        due_at(&feed, u64::MAX - 1),
        (DueStatus::OnTrack, Some(u64::MAX))
    );
    assert_eq!(
        due_at(&feed, u64::MAX),
        (DueStatus::Overdue, Some(u64::MAX))
    );
}

#[test]
fn goals_are_listed_in_feed_order_with_their_owners() {
    let feed = [
        message(1, BEN, T0, goal(Cadence::Daily, None)),
        message(2, CAL, T0 + 1, Content::Text("hi".into())),
        message(3, ANA, T0 + 2, goal(Cadence::Once, None)),
    ];
    let views = goals(&feed, T0);
    let owners: Vec<_> = views.iter().map(|v| (v.id, v.owner)).collect();
    assert_eq!(owners, [(id(1), BEN), (id(3), ANA)]);
    assert!(gatherings(&feed).is_empty());
    assert!(reactions(&feed).is_empty());
}

#[test]
fn reactions_keep_each_members_latest_and_empty_removes() {
    let feed = [
        message(1, ANA, T0, Content::Text("first day".into())),
        react(2, BEN, T0 + 1, 1, "👍"),
        react(3, CAL, T0 + 2, 1, "🫶"),
        react(4, BEN, T0 + 3, 1, "❤️"),
        // Written before Ben's heart, arrived after: ignored.
        react(5, BEN, T0 + 2, 1, "😢"),
        // Cal takes the reaction back.
        react(6, CAL, T0 + 4, 1, ""),
        // Same time as the removal, later in the feed: wins.
        react(7, CAL, T0 + 4, 1, "🌱"),
        // Ana removes hers: the target is left out.
        react(8, ANA, T0 + 5, 9, "👀"),
        react(9, ANA, T0 + 6, 9, ""),
        // A target not in the feed is kept.
        react(10, ANA, T0 + 7, 42, "🙏"),
    ];
    let map = reactions(&feed);
    let expected: BTreeMap<MessageId, Vec<(MemberId, String)>> = BTreeMap::from([
        (id(1), vec![(BEN, "❤️".into()), (CAL, "🌱".into())]),
        (id(42), vec![(ANA, "🙏".into())]),
    ]);
    assert_eq!(map, expected);
}

#[test]
fn due_statuses_have_names() {
    let names: Vec<_> = [
        DueStatus::OnTrack,
        DueStatus::Due,
        DueStatus::Overdue,
        DueStatus::Done,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(names, ["on-track", "due", "overdue", "done"]);
}

#[test]
fn the_fuzz_hook_accepts_any_bytes() {
    let goal = crate::content::to_kind(&goal(Cadence::Daily, None)).unwrap();
    let bytes = crate::content::encode_in_epoch(id(1), T0, 3, goal);
    assert!(fuzz_content_decode(&bytes));
    assert!(fuzz_content_decode(&[]));
    assert!(fuzz_content_decode(&[0xff, 0x00, 0x12]));
}
