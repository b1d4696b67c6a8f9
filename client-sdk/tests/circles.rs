//! Circles through the SDK against a real relay in this process: invites
//! and joining, every member reading every post, removal and epochs,
//! newcomers, refused links, roster changes by non-facilitators, and
//! sub-circles.

use std::time::Duration;

use hearth_client::{
    Cadence, CheckIn, Circle, CircleState, Content, Error, Event, Gathering, GatheringKind, Goal,
    GoalProgress, JoinRefusal, MemberId, RejectReason, Role, Rsvp, RsvpAnswer,
};

mod common;

use common::circles::*;
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_circle_forms_through_invites_and_every_member_reads_every_post() {
    let group = Group::new(&["Fran", "Ana", "Ben", "Cy"]).await;
    let [fran, ana, ben, cy] = [
        &group.clients[0],
        &group.clients[1],
        &group.clients[2],
        &group.clients[3],
    ];
    let id = group.circle("Tuesday group").await;
    for client in group.all() {
        let view = circle(client, id).await;
        assert_eq!(view.state, CircleState::Active, "{view:?}");
        assert_eq!(view.name, "Tuesday group");
        assert_eq!(view.members.len(), 4, "{view:?}");
        let me = view.members.iter().find(|m| m.is_me).unwrap();
        let expected = if client.member_id() == fran.member_id() {
            Role::Facilitator
        } else {
            Role::Member
        };
        assert_eq!(me.role, expected);
    }
    // Circle members are not personal contacts.
    assert!(ana.contacts().await.unwrap().is_empty());

    fran.post(id, Content::Text("welcome all".into()))
        .await
        .unwrap();
    ana.post(
        id,
        Content::CheckIn(CheckIn {
            mood: 6,
            energy: Some(4),
            note: "long day".into(),
            tags: vec!["work".into()],
        }),
    )
    .await
    .unwrap();
    let gathering = ben
        .post(
            id,
            Content::Gathering(Gathering {
                kind: GatheringKind::VideoCall,
                starts_at_ms: 1_800_000_000_000,
                time_zone: "Europe/Berlin".into(),
                duration_minutes: 45,
                link: "https://meet.example.org/x".into(),
                note: "coffee?".into(),
            }),
        )
        .await
        .unwrap();
    let hello = cy
        .post(id, Content::Text("hi, Cy here".into()))
        .await
        .unwrap();
    settle(&group.all()).await;
    cy.post(
        id,
        Content::Rsvp(Rsvp {
            gathering,
            answer: RsvpAnswer::Yes,
        }),
    )
    .await
    .unwrap();
    settle(&group.all()).await;

    ana.mark_read(id, &[hello]).await.unwrap();
    ben.mark_read(id, &[hello]).await.unwrap();
    settle(&group.all()).await;
    let mut readers = cy.read_by(id, hello).await.unwrap();
    readers.sort();
    let mut expected = vec![ana.member_id(), ben.member_id()];
    expected.sort();
    assert_eq!(readers, expected, "read receipts reach the author");
    for client in group.all() {
        let feed = client.feed(id).await.unwrap();
        assert_eq!(feed.len(), 5, "receipts are not posts: {feed:#?}");
        let mut senders: Vec<(MemberId, String)> = texts(&feed);
        senders.sort();
        let mut expected = vec![
            (fran.member_id(), "welcome all".to_owned()),
            (cy.member_id(), "hi, Cy here".to_owned()),
        ];
        expected.sort();
        assert_eq!(senders, expected);
        let views = hearth_client::gatherings(&feed);
        assert_eq!(views.len(), 1);
        assert_eq!(views[0].rsvps, vec![(cy.member_id(), RsvpAnswer::Yes)]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_member_reads_nothing_new_and_a_newcomer_nothing_old() {
    let group = Group::new(&["Fran", "Ana", "Ben"]).await;
    let [fran, ana, ben] = [&group.clients[0], &group.clients[1], &group.clients[2]];
    let id = group.circle("Evening circle").await;
    ana.post(id, Content::Text("before".into())).await.unwrap();
    settle(&group.all()).await;
    assert_eq!(feed_texts(ben, id).await.len(), 1);

    let epoch = circle(fran, id).await.epoch;
    let view = fran.remove_member(id, ben.member_id()).await.unwrap();
    assert_eq!(view.epoch, epoch + 1);
    assert_eq!(view.members.len(), 2);
    let events = settle(&group.all()).await;
    assert_eq!(circle(ben, id).await.state, CircleState::Removed);
    assert!(
        events[2]
            .iter()
            .any(|e| matches!(e, Event::CircleChanged(c) if c.state == CircleState::Removed)),
        "{:?}",
        events[2]
    );
    ana.post(id, Content::Text("after".into())).await.unwrap();
    fran.post(id, Content::Text("after too".into()))
        .await
        .unwrap();
    settle(&group.all()).await;
    assert_eq!(
        feed_texts(ben, id).await,
        [(ana.member_id(), "before".to_owned())],
        "the removed member reads nothing sent after the removal"
    );
    assert_eq!(feed_texts(fran, id).await.len(), 3);
    let refused = ben.post(id, Content::Text("still here?".into())).await;
    assert!(matches!(refused, Err(Error::NotInCircle)), "{refused:?}");

    // A newcomer sees what is said from now on, not before.
    let home = tempfile::tempdir().unwrap();
    let relay = group._relay.address();
    let dee = create(home.path(), key(9), &relay, "Dee").await;
    join(fran, &dee, id).await;
    let everyone = [fran, ana, ben, &dee];
    settle(&everyone).await;
    assert!(feed_texts(&dee, id).await.is_empty());
    ana.post(id, Content::Text("welcome Dee".into()))
        .await
        .unwrap();
    settle(&everyone).await;
    assert_eq!(
        feed_texts(&dee, id).await,
        [(ana.member_id(), "welcome Dee".to_owned())]
    );
    assert_eq!(feed_texts(ben, id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn goals_progress_and_due_check_ins_are_seen_by_everyone() {
    let group = Group::new(&["Fran", "Ana"]).await;
    let [fran, ana] = [&group.clients[0], &group.clients[1]];
    let id = group.circle("Accountability").await;
    let goal = ana
        .post(
            id,
            Content::Goal(Goal {
                text: "walk 20 minutes".into(),
                cadence: Cadence::Daily,
                due_at_ms: None,
            }),
        )
        .await
        .unwrap();
    ana.post(
        id,
        Content::GoalProgress(GoalProgress {
            goal,
            note: "done today".into(),
            done: false,
        }),
    )
    .await
    .unwrap();
    settle(&group.all()).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let day = 24 * 60 * 60 * 1000;
    for client in group.all() {
        assert!(client.due_at(now).await.unwrap().is_empty());
        let due = client.due_at(now + 3 * day).await.unwrap();
        assert_eq!(due.len(), 1, "{due:?}");
        assert_eq!(due[0].0, id);
        assert_eq!(due[0].1.owner, ana.member_id());
        assert_eq!(due[0].1.status, hearth_client::DueStatus::Overdue);
        assert_eq!(due[0].1.progress.len(), 1);
    }
    // A support request is urgent for the facilitator only.
    ana.post(
        id,
        Content::SupportRequest {
            note: "rough night".into(),
        },
    )
    .await
    .unwrap();
    settle(&group.all()).await;
    let last = |feed: Vec<hearth_client::CircleMessage>| feed.last().unwrap().urgent;
    assert!(last(fran.feed(id).await.unwrap()));
    assert!(!last(ana.feed(id).await.unwrap()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_used_link_is_refused_with_a_reason_and_members_cannot_change_the_roster() {
    let group = Group::new(&["Fran", "Ana", "Ben"]).await;
    let [fran, ana, ben] = [&group.clients[0], &group.clients[1], &group.clients[2]];
    let id = fran.create_circle("Small").await.unwrap().id;
    let link = fran
        .circle_invite(id, Duration::from_secs(3600))
        .await
        .unwrap();
    ana.join_circle(&link).await.unwrap();
    ben.join_circle(&link).await.unwrap();
    let events = settle(&group.all()).await;
    assert!(
        events[2].iter().any(|e| matches!(
            e,
            Event::CircleJoinRefused { circle, reason: JoinRefusal::AlreadyUsed } if *circle == id
        )),
        "{:?}",
        events[2]
    );
    assert_eq!(circle(ben, id).await.state, CircleState::Left);
    assert_eq!(circle(ana, id).await.state, CircleState::Active);

    // An expired link is refused before anything is sent.
    let expired = fran.circle_invite(id, Duration::ZERO).await.unwrap();
    let refused = ben.join_circle(&expired).await;
    assert!(matches!(refused, Err(Error::InviteExpired)), "{refused:?}");

    // A member is not a facilitator.
    let refused = ana.remove_member(id, fran.member_id()).await;
    assert!(
        matches!(refused, Err(Error::NotAFacilitator)),
        "{refused:?}"
    );
    let refused = ana.circle_invite(id, Duration::from_secs(60)).await;
    assert!(
        matches!(refused, Err(Error::NotAFacilitator)),
        "{refused:?}"
    );
    // Promoted, she is.
    fran.set_role(id, ana.member_id(), Role::Facilitator)
        .await
        .unwrap();
    settle(&group.all()).await;
    assert_eq!(circle(ana, id).await.my_role, Some(Role::Facilitator));
    let renamed = ana.rename_circle(id, "Small but mighty").await.unwrap();
    assert_eq!(renamed.name, "Small but mighty");
    settle(&group.all()).await;
    assert_eq!(circle(fran, id).await.name, "Small but mighty");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sub_circle_of_three_is_invisible_to_the_other_three() {
    let group = Group::new(&["Fran", "Ana", "Ben", "Cy", "Dee", "Eli"]).await;
    let id = group.circle("Big group").await;
    let ana = &group.clients[1];
    let (inside, outside) = group.clients.split_at(4);
    let chosen = [inside[2].member_id(), inside[3].member_id()];
    let sub = ana
        .create_sub_circle(id, "Night owls", &chosen)
        .await
        .unwrap();
    assert_eq!(sub.parent, Some(id));
    assert_eq!(sub.members.len(), 3);
    settle(&group.all()).await;
    ana.post(sub.id, Content::Text("just us".into()))
        .await
        .unwrap();
    inside[3]
        .post(sub.id, Content::Text("yes".into()))
        .await
        .unwrap();
    settle(&group.all()).await;
    for member in [ana, &inside[2], &inside[3]] {
        assert_eq!(feed_texts(member, sub.id).await.len(), 2);
        assert_eq!(circle(member, sub.id).await.members.len(), 3);
    }
    for other in outside.iter().chain([&group.clients[0]]) {
        assert!(
            other
                .circles()
                .await
                .unwrap()
                .iter()
                .all(|c| c.id != sub.id),
            "an outsider knows of the sub-circle"
        );
        let refused = other.feed(sub.id).await;
        assert!(matches!(refused, Err(Error::UnknownCircle)), "{refused:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_roster_change_signed_by_a_member_is_refused_by_everyone() {
    let group = Group::new(&["Fran", "Ana", "Ben"]).await;
    let [fran, ana, ben] = [&group.clients[0], &group.clients[1], &group.clients[2]];
    let id = group.circle("Guarded").await;
    // Ana's client misbehaves: it signs "Ben is removed" and sends it.
    ana.send_unauthorized_removal(id, ben.member_id())
        .await
        .unwrap();
    let events = settle(&group.all()).await;
    for (i, client) in [fran, ben].iter().enumerate() {
        assert!(
            events[[0, 2][i]].iter().any(|e| matches!(
                e,
                Event::Rejected {
                    reason: RejectReason::Forged
                }
            )),
            "{:?}",
            events[[0, 2][i]]
        );
        let view = circle(client, id).await;
        assert_eq!(view.members.len(), 3, "{view:?}");
        assert_eq!(view.state, CircleState::Active);
    }
    fran.post(id, Content::Text("still three".into()))
        .await
        .unwrap();
    settle(&group.all()).await;
    assert_eq!(feed_texts(ben, id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_badly_signed_circle_message_is_refused_and_the_circle_goes_on() {
    let group = Group::new(&["Fran", "Ana", "Ben"]).await;
    let [fran, ana, ben] = [&group.clients[0], &group.clients[1], &group.clients[2]];
    let id = group.circle("Signed").await;
    ana.post(id, Content::Text("first".into())).await.unwrap();
    settle(&group.all()).await;
    ana.post_with_bad_signature(id, "forged").await.unwrap();
    let events = settle(&group.all()).await;
    for i in [0, 2] {
        assert!(
            events[i].iter().any(|e| matches!(
                e,
                Event::Rejected {
                    reason: RejectReason::BadSignature
                }
            )),
            "{:?}",
            events[i]
        );
    }
    ana.post(id, Content::Text("third".into())).await.unwrap();
    settle(&group.all()).await;
    for client in [fran, ben] {
        let got: Vec<String> = feed_texts(client, id)
            .await
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert_eq!(got, ["first", "third"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_facilitators_changing_at_once_converge_on_one_roster() {
    let group = Group::new(&["Fran", "Gus", "Ana"]).await;
    let [fran, gus, ana] = [&group.clients[0], &group.clients[1], &group.clients[2]];
    let id = group.circle("Shared lead").await;
    fran.set_role(id, gus.member_id(), Role::Facilitator)
        .await
        .unwrap();
    settle(&group.all()).await;
    // Both sign a child of the same version before hearing of the other.
    fran.rename_circle(id, "Fran's name").await.unwrap();
    gus.set_circle_rules(id, "Be kind.").await.unwrap();
    settle(&group.all()).await;
    let mut views: Vec<Circle> = Vec::new();
    for client in [fran, gus, ana] {
        views.push(circle(client, id).await);
    }
    assert_eq!(views[0].version, views[1].version);
    assert_eq!(views[1].version, views[2].version);
    assert!(
        views
            .iter()
            .all(|v| v.name == views[0].name && v.rules == views[0].rules),
        "{views:#?}"
    );
    // One change won the fork; the other's facilitator made it again on
    // the winner by itself, so both hold.
    assert_eq!(views[0].name, "Fran's name", "{views:#?}");
    assert_eq!(views[0].rules, "Be kind.", "{views:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn leaving_and_removal_revoke_the_departed_members_send_tokens() {
    let group = Group::new(&["Fran", "Ana", "Ben"]).await;
    let [fran, ana, ben] = [&group.clients[0], &group.clients[1], &group.clients[2]];
    let id = group.circle("Doors").await;
    // Fellow members can message each other directly...
    ben.send_text(ana.member_id(), "psst").await.unwrap();
    settle(&group.all()).await;
    fran.remove_member(id, ben.member_id()).await.unwrap();
    settle(&group.all()).await;
    // ...until one is removed: the others revoked the tokens Ben held.
    let mut events = ben.events();
    ben.send_text(ana.member_id(), "still there?")
        .await
        .unwrap();
    sync(ben).await;
    let mut failed = false;
    while let Some(event) = events.try_recv() {
        failed |= matches!(
            event,
            Event::DeliveryFailed {
                reason: hearth_client::FailureReason::Unauthorized,
                ..
            }
        );
    }
    assert!(failed, "Ben could still reach Ana's mailbox");

    ana.leave_circle(id).await.unwrap();
    settle(&group.all()).await;
    assert_eq!(circle(ana, id).await.state, CircleState::Left);
    let view = circle(fran, id).await;
    assert_eq!(view.members.len(), 1, "{view:?}");
}
