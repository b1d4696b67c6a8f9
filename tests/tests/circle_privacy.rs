//! What circles keep from whom, through the `hearth` binary against a real
//! relay process: a removed member and a newcomer read nothing outside
//! their time in the circle, a sub-circle stays unknown to the rest of the
//! circle (both checked on the relay's disk too), and the relay's disk and
//! logs hold no circle id, name, roster or plaintext.

use std::collections::BTreeSet;

use hearth_client::{CircleId, Invite, MemberId};
use hearth_tests::attacker::{Needles, StoredEnvelope, send_raw, waiting_envelopes};
use hearth_tests::cli::{field, kind, last_line};
use hearth_tests::member::{Member, form_circle, settle};
use hearth_tests::{RelayProcess, stored_counts};
use serde_json::Value;

/// Hands `envelopes`, taken from someone else's mailbox on the relay's disk,
/// to `to`'s `mailbox`: `to`'s next sync shows none of them and refuses each.
async fn hand_over(
    relay: &RelayProcess,
    envelopes: &[StoredEnvelope],
    to: &Member,
    mailbox: &Invite,
) {
    for envelope in envelopes {
        let StoredEnvelope {
            sealed_header,
            body,
        } = envelope.clone();
        send_raw(relay.address(), mailbox, sealed_header, body).await;
    }
    let saw = to.json(&["sync", "--json"]).await;
    assert_eq!(
        kind(&saw, "message"),
        Vec::<Value>::new(),
        "{} reads nothing: {saw:?}",
        to.name
    );
    assert_eq!(kind(&saw, "rejected").len(), envelopes.len(), "{saw:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_member_reads_nothing_new_and_a_newcomer_nothing_old() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProcess::start(dir.path()).await;
    let fran = Member::new(&relay, "Fran").await;
    let ana = Member::new(&relay, "Ana").await;
    let ben = Member::new(&relay, "Ben").await;
    let eli = Member::new(&relay, "Eli").await;
    let gus = Member::new(&relay, "Gus").await;
    let (ben_box, eli_box, gus_box) = (
        ben.mailbox().await,
        eli.mailbox().await,
        gus.mailbox().await,
    );
    let circle = form_circle("Tuesday group", &fran, &[&ana, &ben, &eli]).await;
    let members = [&fran, &ana, &ben, &eli];
    for person in &members {
        person
            .post(&["say", &circle, &format!("before, from {}", person.name)])
            .await;
    }
    // The relay's disk gives away what waits for Ben (ciphertext only).
    assert!(relay.terminate().await.success());
    let before: Vec<StoredEnvelope> = waiting_envelopes(dir.path(), ben_box.mailbox_id);
    assert!(!before.is_empty(), "the posts wait for Ben");
    relay.restart().await;
    settle(&members).await;
    let said_before: Vec<String> = members
        .iter()
        .map(|p| format!("before, from {}", p.name))
        .collect();

    // Eli is removed, and learns it.
    let removed = fran.ok(&["circle", "remove", &circle, "Eli"]).await;
    assert!(
        removed.contains("Removed Eli from Tuesday group"),
        "{removed}"
    );
    let printed = settle(&members).await;
    let changes = kind(&printed[3], "circle_changed");
    assert_eq!(
        changes.last().map(|c| c["state"].clone()),
        Some("removed".into()),
        "{printed:?}"
    );
    let listed = eli.circles().await;
    assert_eq!(listed[0]["state"], "removed");
    for person in [&fran, &ana, &ben] {
        let members = person.json(&["circle", "members", &circle, "--json"]).await;
        assert_eq!(
            field(&members, "name").len(),
            3,
            "{}: {members:?}",
            person.name
        );
        assert!(!field(&members, "member_id").contains(&eli.id));
    }

    // Ana writes after the removal. Nothing at all waits for Eli on the
    // relay; what waits for Ben, handed to Eli, opens for nobody but Ben.
    let secret = "after the removal: only the three of us";
    ana.post(&["say", &circle, secret]).await;
    assert!(relay.terminate().await.success());
    assert_eq!(
        waiting_envelopes(dir.path(), eli_box.mailbox_id),
        [],
        "nothing is sent to Eli"
    );
    let for_ben = waiting_envelopes(dir.path(), ben_box.mailbox_id);
    assert!(!for_ben.is_empty(), "the post waits for Ben");
    // One multi-recipient send: the relay holds one envelope for each of
    // Fran and Ben and a single body for both.
    assert_eq!(
        stored_counts(dir.path()),
        (1, 2),
        "(bodies, envelopes) on the relay"
    );
    relay.restart().await;
    hand_over(&relay, &for_ben, &eli, &eli_box).await;
    assert!(!eli.ok(&["feed", &circle, "--json"]).await.contains(secret));
    for person in [&fran, &ben] {
        let got = kind(&person.json(&["sync", "--json"]).await, "message");
        assert_eq!(field(&got, "text"), [secret], "{} reads it", person.name);
    }

    // Gus joins later: he sees what is said from then on, nothing before,
    // and the old envelopes handed to him open for nobody but Ben.
    let out = fran.ok(&["circle", "invite", &circle]).await;
    gus.ok(&["circle", "join", &last_line(&out)]).await;
    let now_members = [&fran, &ana, &ben, &gus];
    settle(&now_members).await;
    assert_eq!(gus.feed_texts(&circle).await, Vec::<String>::new());
    ben.post(&["say", &circle, "welcome, Gus"]).await;
    settle(&now_members).await;
    assert_eq!(gus.feed_texts(&circle).await, ["welcome, Gus"]);
    hand_over(&relay, &before, &gus, &gus_box).await;
    assert_eq!(gus.feed_texts(&circle).await, ["welcome, Gus"]);
    // The others still have the whole story.
    let mut story = said_before.clone();
    story.extend([secret.to_owned(), "welcome, Gus".to_owned()]);
    let ben_story: BTreeSet<String> = ben.feed_texts(&circle).await.into_iter().collect();
    assert_eq!(ben_story, story.into_iter().collect());
    assert!(relay.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sub_circle_of_three_forms_and_the_other_three_see_nothing_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProcess::start(dir.path()).await;
    let mut people = Vec::new();
    for name in ["Fran", "Ana", "Ben", "Cai", "Dev", "Eli"] {
        people.push(Member::new(&relay, name).await);
    }
    let [fran, ana, ben, cai, dev, eli] = &people[..] else {
        unreachable!()
    };
    let everyone: Vec<&Member> = people.iter().collect();
    let mut outsiders = Vec::new();
    for person in [cai, dev, eli] {
        outsiders.push((person, person.mailbox().await));
    }
    let circle = form_circle("Tuesday group", fran, &everyone[1..]).await;

    // A member (not the facilitator) forms it.
    let members = format!("Fran,{}", ben.id);
    let out = ana
        .ok(&[
            "circle",
            "sub",
            &circle,
            "Night owls",
            "--members",
            &members,
        ])
        .await;
    let sub = last_line(&out);
    assert_eq!(sub.len(), 26, "{out}");
    assert_ne!(sub, circle);
    let printed = settle(&everyone).await;
    let insiders = [fran, ana, ben];
    for person in insiders {
        let listed = person.circles().await;
        let this: Vec<&Value> = listed.iter().filter(|c| c["id"] == sub.as_str()).collect();
        assert_eq!(this.len(), 1, "{}: {listed:?}", person.name);
        assert_eq!(this[0]["state"], "active");
        assert_eq!(this[0]["members"], 3);
        assert_eq!(this[0]["parent"], circle.as_str());
        assert_eq!(this[0]["name"], "Night owls");
        let members = person
            .json(&["circle", "members", "Night owls", "--json"])
            .await;
        let names: BTreeSet<String> = field(&members, "name").into_iter().collect();
        assert_eq!(
            names,
            BTreeSet::from(["Ana".into(), "Ben".into(), "Fran".into()])
        );
    }

    // They talk; the relay stores nothing for the other three.
    let posts = [
        ana.post(&["say", &sub, "just us three tonight"]).await,
        ben.post(&["checkin", &sub, "--mood", "3", "--note", "can't sleep"])
            .await,
        fran.post(&["say", "Night owls", "I'm here"]).await,
    ];
    assert!(relay.terminate().await.success());
    for (person, mailbox) in &outsiders {
        assert_eq!(
            waiting_envelopes(dir.path(), mailbox.mailbox_id),
            [],
            "{}",
            person.name
        );
    }
    relay.restart().await;
    let mut printed_after = settle(&everyone).await;
    for (printed, after) in printed.iter().zip(&mut printed_after) {
        after.extend(printed.iter().cloned());
    }
    for person in insiders {
        let feed = person.feed(&sub).await;
        let ids: BTreeSet<String> = field(&feed, "id").into_iter().collect();
        assert_eq!(ids, posts.iter().cloned().collect(), "{}", person.name);
    }
    for (index, (person, _)) in outsiders.iter().enumerate() {
        let listed = person.circles().await;
        assert_eq!(field(&listed, "id"), [circle.as_str()], "{}", person.name);
        let seen = &printed_after[3 + index];
        assert!(
            seen.iter()
                .all(|l| l["circle"] != sub.as_str() && l["id"] != sub.as_str()),
            "{}: {seen:?}",
            person.name
        );
        let shown = serde_json::to_string(seen).unwrap();
        for secret in ["Night owls", "just us three", "can't sleep", "I'm here"] {
            assert!(!shown.contains(secret), "{} saw {secret:?}", person.name);
        }
        person.fails(&["feed", &sub], 1).await;
        assert_eq!(person.feed(&circle).await, Vec::<Value>::new());
    }
    assert!(relay.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_relay_keeps_no_circle_id_name_roster_or_plaintext_on_disk_or_in_its_logs() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProcess::start_with_debug_logs(dir.path()).await;
    let tag = || hex::encode(rand::random::<[u8; 6]>());
    let names = [
        format!("Fran {}", tag()),
        format!("Ana {}", tag()),
        format!("Ben {}", tag()),
    ];
    let fran = Member::new(&relay, &names[0]).await;
    let ana = Member::new(&relay, &names[1]).await;
    let ben = Member::new(&relay, &names[2]).await;
    let circle_name = format!("Circle {}", tag());
    let circle = form_circle(&circle_name, &fran, &[&ana, &ben]).await;
    let everyone = [&fran, &ana, &ben];

    let said = format!("I had a hard day {}", tag());
    let note = format!("slept badly {}", tag());
    let url = format!("https://example.org/{}", tag());
    let title = format!("A helpful read {}", tag());
    let link = format!("https://meet.example/{}", tag());
    let goal = format!("walk every day {}", tag());
    let progress = format!("walked twenty minutes {}", tag());
    let support = format!("please call me {}", tag());
    ana.post(&["say", &circle, &said]).await;
    ben.post(&["checkin", &circle, "--mood", "4", "--note", &note])
        .await;
    fran.post(&["share", &circle, &url, "--title", &title])
        .await;
    let gathering = fran
        .post(&[
            "gather",
            &circle,
            "--at",
            "2030-01-01T10:00:00Z",
            "--link",
            &link,
        ])
        .await;
    ana.post(&["rsvp", &circle, &gathering, "yes"]).await;
    let goal_id = ben
        .post(&["goal", "add", &circle, &goal, "--every", "daily"])
        .await;
    settle(&everyone).await;
    ben.post(&["goal", "progress", &circle, &goal_id, "--note", &progress])
        .await;
    let sub_name = format!("Sub {}", tag());
    let out = fran
        .ok(&["circle", "sub", &circle, &sub_name, "--members", &ana.id])
        .await;
    let sub = last_line(&out);
    settle(&everyone).await;
    // Left unread: still on the relay's disk at the end.
    ana.post(&["support", &circle, "--note", &support]).await;
    assert!(relay.terminate().await.success());

    let mut needles: Vec<(String, Vec<u8>)> = vec![
        ("the circle's name".into(), circle_name.clone().into_bytes()),
        (
            "the sub-circle's name".into(),
            sub_name.clone().into_bytes(),
        ),
    ];
    for (what, text) in [
        ("a text", &said),
        ("a check-in note", &note),
        ("a shared link", &url),
        ("a shared title", &title),
        ("a call link", &link),
        ("a goal", &goal),
        ("a progress note", &progress),
        ("a call for support", &support),
    ] {
        needles.push((what.into(), text.clone().into_bytes()));
    }
    for (what, id) in [("the circle id", &circle), ("the sub-circle id", &sub)] {
        let parsed: CircleId = id.parse().unwrap();
        needles.push((what.into(), parsed.as_bytes().to_vec()));
        needles.push((what.into(), id.clone().into_bytes()));
        needles.push((what.into(), id.to_uppercase().into_bytes()));
    }
    for (person, name) in everyone.iter().zip(&names) {
        needles.push((format!("{name}'s name"), name.clone().into_bytes()));
        let member: MemberId = person.id.parse().unwrap();
        needles.push((format!("{name}'s member id"), member.as_bytes().to_vec()));
        needles.push((
            format!("{name}'s member id"),
            person.id.clone().into_bytes(),
        ));
        needles.push((
            format!("{name}'s member id"),
            person.id.to_uppercase().into_bytes(),
        ));
    }
    let search = Needles::new(&needles);
    assert!(
        !search
            .found_in(format!("..{circle_name}..").as_bytes())
            .is_empty(),
        "the search finds what it looks for"
    );
    let output = relay.output();
    assert!(
        output.contains("listening on"),
        "the relay's log was captured"
    );
    search.assert_absent(dir.path(), 3, &output);
}
