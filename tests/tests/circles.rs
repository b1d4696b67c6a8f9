//! Circles through the `hearth` binary, against a real relay process: a
//! facilitator and five members sharing every kind of post, answering,
//! reporting progress and seeing who is due; invite links that work once
//! and expire, renaming, rules and leaving; forged roster changes and badly signed posts from a
//! compromised member device (the SDK's test hooks), and tampered and
//! replayed circle messages, all refused. What circles keep from whom is
//! in `circle_privacy.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use hearth_client::CircleId;
use hearth_tests::RelayProcess;
use hearth_tests::attacker::{replay_and_tamper, waiting_envelopes};
use hearth_tests::cli::{field, kind, last_line};
use hearth_tests::member::{Member, form_circle, settle};
use serde_json::Value;

/// The feed's lines by message id.
fn by_id(lines: &[Value]) -> BTreeMap<String, Value> {
    lines.iter().map(|l| (text(&l["id"]), l.clone())).collect()
}

/// `key` → `value` of each line.
fn pairs(lines: &[&Value], key: &str, value: &str) -> BTreeMap<String, String> {
    lines
        .iter()
        .map(|l| (text(&l[key]), text(&l[value])))
        .collect()
}

/// Owned pairs, to compare with [`pairs`].
fn expected(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// `SystemTime::now() + ahead` as RFC 3339.
fn rfc3339_in(ahead: Duration) -> String {
    humantime::format_rfc3339_seconds(SystemTime::now() + ahead).to_string()
}

/// Six people: Fran, who will facilitate, and five members.
async fn six(relay: &RelayProcess) -> Vec<Member> {
    let mut people = Vec::new();
    for name in ["Fran", "Ana", "Ben", "Cai", "Dev", "Eli"] {
        people.push(Member::new(relay, name).await);
    }
    people
}

/// The ids of what the circle's members posted.
struct Posts {
    check_in: String,
    gathering: String,
    walk: String,
    call: String,
    support: String,
    reaction: String,
    all: BTreeSet<String>,
}

#[tokio::test(flavor = "multi_thread")]
async fn a_facilitator_and_five_members_share_every_kind_of_post() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProcess::start(dir.path()).await;
    let people = six(&relay).await;
    let everyone: Vec<&Member> = people.iter().collect();
    let circle = form_circle("Tuesday group", everyone[0], &everyone[1..]).await;
    everyone_sees_the_roster(&circle, &everyone, &["Fran"]).await;

    let posts = post_every_kind(&circle, &everyone).await;
    every_feed_holds_every_post(&circle, &everyone, &posts).await;
    the_text_feed_reads_well(&circle, &everyone, &posts).await;
    due_shows_the_overdue_member(&circle, &everyone, &posts).await;

    // A member can't change the roster; a facilitator can share the role.
    let [fran, ana, ben, ..] = &everyone[..] else {
        unreachable!()
    };
    let refused = ben.fails(&["circle", "remove", &circle, "Cai"], 1).await;
    assert!(refused.contains("facilitator"), "{refused}");
    let promoted = fran.ok(&["circle", "promote", &circle, "Ana"]).await;
    assert!(
        promoted.contains("Ana now facilitates Tuesday group"),
        "{promoted}"
    );
    settle(&everyone).await;
    everyone_sees_the_roster(&circle, &everyone, &["Fran", "Ana"]).await;
    mistakes_are_usage_errors(&circle, ana, &posts.gathering).await;
    assert!(relay.terminate().await.success());
}

/// Each member sees every member's name, id and role (`facilitators` by
/// name, the others members).
async fn everyone_sees_the_roster(circle: &str, everyone: &[&Member], facilitators: &[&str]) {
    let roster: BTreeMap<String, String> = everyone
        .iter()
        .map(|p| {
            let role = if facilitators.contains(&p.name.as_str()) {
                "facilitator"
            } else {
                "member"
            };
            (format!("{} {}", p.name, p.id), role.to_owned())
        })
        .collect();
    for person in everyone {
        let members = person.json(&["circle", "members", circle, "--json"]).await;
        let seen: BTreeMap<String, String> = members
            .iter()
            .map(|m| {
                let who = format!("{} {}", text(&m["name"]), text(&m["member_id"]));
                (who, text(&m["role"]))
            })
            .collect();
        assert_eq!(seen, roster, "{}'s view of the roster", person.name);
    }
}

/// Every kind of post, by different members; what arrives through `sync`
/// carries the circle and the kind's fields.
async fn post_every_kind(circle: &str, everyone: &[&Member]) -> Posts {
    let [fran, ana, ben, cai, dev, eli] = everyone else {
        unreachable!()
    };
    let text = ana.post(&["say", circle, "hello everyone"]).await;
    let check_in = ben
        .post(&[
            "checkin",
            circle,
            "--mood",
            "7",
            "--energy",
            "5",
            "--note",
            "slept well",
            "--tags",
            "sleep,work",
        ])
        .await;
    let resource = cai
        .post(&[
            "share",
            circle,
            "https://example.org/box-breathing",
            "--title",
            "Box breathing",
        ])
        .await;
    let gathering = fran
        .post(&[
            "gather",
            "Tuesday group",
            "--at",
            "2030-03-07T18:00",
            "--tz",
            "Europe/Berlin",
            "--minutes",
            "45",
            "--link",
            "https://meet.example/tuesday",
            "--note",
            "monthly call",
        ])
        .await;
    let every = |cadence| ["--every", cadence];
    let walk = dev
        .post(
            &[
                &["goal", "add", circle, "walk every day"][..],
                &every("daily"),
            ]
            .concat(),
        )
        .await;
    let call = eli
        .post(
            &[
                &["goal", "add", circle, "call my sister"][..],
                &every("weekly"),
            ]
            .concat(),
        )
        .await;
    let synced = settle(everyone).await;

    let fran_got = by_id(&kind(&synced[0], "message"));
    let line = &fran_got[&check_in];
    assert_eq!(line["circle"], circle);
    assert_eq!(line["circle_name"], "Tuesday group");
    assert_eq!(
        (text_of(line, "from"), text_of(line, "from_name")),
        (ben.id.clone(), "Ben".into())
    );
    assert_eq!(line["type"], "check_in");
    assert_eq!(
        (line["mood"].as_u64(), line["energy"].as_u64()),
        (Some(7), Some(5))
    );
    assert_eq!(line["note"], "slept well");
    assert_eq!(line["tags"], serde_json::json!(["sleep", "work"]));
    assert!(text_of(line, "sent_at").ends_with('Z'));
    assert_eq!(fran_got[&text]["text"], "hello everyone");
    assert_eq!(
        fran_got[&resource]["url"],
        "https://example.org/box-breathing"
    );
    assert_eq!(fran_got[&walk]["every"], "daily");
    let ana_got = by_id(&kind(&synced[1], "message"));
    let line = &ana_got[&gathering];
    assert_eq!(line["type"], "gathering");
    assert_eq!(line["meeting"], "video_call", "a web link makes it a call");
    assert_eq!(line["at"], "2030-03-07T17:00:00.000Z");
    assert_eq!(line["at_local"], "2030-03-07T18:00:00+01:00[Europe/Berlin]");
    assert_eq!(
        (text_of(line, "tz"), line["minutes"].as_u64()),
        ("Europe/Berlin".into(), Some(45))
    );

    // Answers, progress, a call for support and a reaction.
    let mut all: BTreeSet<String> = [&text, &check_in, &resource, &gathering, &walk, &call]
        .into_iter()
        .cloned()
        .collect();
    for (who, answer) in [(ana, "yes"), (ben, "maybe"), (cai, "no")] {
        all.insert(who.post(&["rsvp", circle, &gathering, answer]).await);
    }
    for (who, goal, note) in [(dev, &walk, "20 minutes"), (eli, &call, "we talked")] {
        all.insert(
            who.post(&["goal", "progress", circle, goal, "--note", note])
                .await,
        );
    }
    let note = "rough night, can someone call?";
    let support = eli.post(&["support", circle, "--note", note]).await;
    let reaction = ana.post(&["react", circle, &check_in, "💪"]).await;
    all.extend([support.clone(), reaction.clone()]);
    settle(everyone).await;
    Posts {
        check_in,
        gathering,
        walk,
        call,
        support,
        reaction,
        all,
    }
}

fn text_of(line: &Value, key: &str) -> String {
    text(&line[key])
}

/// Everyone's feed holds every post once, with the same content; everyone
/// sees the answers and the progress; support requests are urgent for the
/// facilitator only.
async fn every_feed_holds_every_post(circle: &str, everyone: &[&Member], posts: &Posts) {
    let fran_feed = by_id(&everyone[0].feed(circle).await);
    for person in everyone {
        let feed = person.feed(circle).await;
        let ids: BTreeSet<String> = field(&feed, "id").into_iter().collect();
        assert_eq!(ids, posts.all, "{}'s feed", person.name);
        assert_eq!(feed.len(), posts.all.len(), "once each for {}", person.name);
        for line in &feed {
            let id = text_of(line, "id");
            let mine = line["from"] == person.id.as_str();
            assert_eq!(line["direction"], if mine { "out" } else { "in" });
            for key in [
                "type", "from", "sent_at", "text", "mood", "url", "at", "answer", "goal",
            ] {
                assert_eq!(
                    line[key], fran_feed[&id][key],
                    "{}: {id} {key}",
                    person.name
                );
            }
        }
        let of_type =
            |kind: &str| -> Vec<&Value> { feed.iter().filter(|l| l["type"] == kind).collect() };
        assert_eq!(
            pairs(&of_type("rsvp"), "from_name", "answer"),
            expected(&[("Ana", "yes"), ("Ben", "maybe"), ("Cai", "no")]),
            "{}'s view of the answers",
            person.name
        );
        assert!(
            of_type("rsvp")
                .iter()
                .all(|l| l["gathering"] == posts.gathering.as_str())
        );
        assert_eq!(
            pairs(&of_type("goal_progress"), "goal", "note"),
            expected(&[(&posts.walk, "20 minutes"), (&posts.call, "we talked")]),
            "{}'s view of the progress",
            person.name
        );
        let request = feed
            .iter()
            .find(|l| l["id"] == posts.support.as_str())
            .unwrap();
        assert_eq!(request["type"], "support_request");
        assert_eq!(request["note"], "rough night, can someone call?");
        assert_eq!(request["urgent"], person.name == "Fran", "{}", person.name);
        let reaction = &by_id(&feed)[&posts.reaction];
        assert_eq!(
            (text_of(reaction, "target"), text_of(reaction, "emoji")),
            (posts.check_in.clone(), "💪".into())
        );
    }
}

/// The text feed, for people: the call in its own zone, the urgent call
/// for support flagged for the facilitator.
async fn the_text_feed_reads_well(circle: &str, everyone: &[&Member], posts: &Posts) {
    let (fran, ana) = (everyone[0], everyone[1]);
    let ana_text = ana.ok(&["feed", "Tuesday group"]).await;
    let call = format!(
        "Fran proposes a video call on 2030-03-07 18:00 CET (Europe/Berlin) for 45 min at https://meet.example/tuesday — monthly call  [id {}]",
        posts.gathering
    );
    assert!(ana_text.contains(&call), "{ana_text}");
    let check_in = "Ben checks in: mood 7/10, energy 5/10 [sleep, work] — slept well";
    assert!(ana_text.contains(check_in), "{ana_text}");
    assert!(ana_text.contains("Cai shares https://example.org/box-breathing \"Box breathing\""));
    assert!(!ana_text.contains("URGENT"), "{ana_text}");
    let fran_text = fran.ok(&["feed", circle]).await;
    let urgent = "URGENT: Eli needs support now — rough night, can someone call?";
    assert!(fran_text.contains(urgent), "{fran_text}");
    assert!(
        fran_text.contains("you propose a video call"),
        "{fran_text}"
    );
}

/// Nobody is due now; three days on, Dev's daily walk is overdue while
/// Eli's weekly call is not due yet.
async fn due_shows_the_overdue_member(circle: &str, everyone: &[&Member], posts: &Posts) {
    let (fran, dev) = (everyone[0], everyone[4]);
    assert_eq!(fran.json(&["due", "--json"]).await, Vec::<Value>::new());
    let later = rfc3339_in(Duration::from_secs(3 * 24 * 3600));
    for person in everyone {
        let due = person.json(&["due", "--json", "--at", &later]).await;
        assert_eq!(due.len(), 1, "{}: {due:?}", person.name);
        assert_eq!(due[0]["owner"], dev.id.as_str());
        assert_eq!(due[0]["owner_name"], "Dev");
        assert_eq!(due[0]["id"], posts.walk.as_str());
        assert_eq!(due[0]["circle"], circle);
        assert_eq!(due[0]["status"], "overdue");
        assert_eq!(due[0]["every"], "daily");
    }
    let due_text = fran.ok(&["due", "--at", &later]).await;
    let overdue = "(Tuesday group) Dev is overdue: walk every day (daily)";
    assert!(due_text.contains(overdue), "{due_text}");
}

/// Mistakes on the command line: status 2, one line, no content.
async fn mistakes_are_usage_errors(circle: &str, member: &Member, gathering: &str) {
    member
        .fails(&["rsvp", circle, gathering, "perhaps"], 2)
        .await;
    member.fails(&["checkin", circle, "--mood", "11"], 2).await;
    let at = ["gather", circle, "--at", "2030-03-07T18:00"];
    let zone = member
        .fails(&[&at[..], &["--tz", "Mars/Olympus_Mons"]].concat(), 2)
        .await;
    assert!(zone.contains("not an IANA time zone"), "{zone}");
    let offset = member.fails(&at, 2).await;
    assert!(offset.contains("no offset"), "{offset}");
    let link = member
        .fails(&["share", circle, "ftp://example.org/file"], 2)
        .await;
    assert!(
        !link.contains("example.org"),
        "no content in errors: {link}"
    );
    let unknown = member.fails(&["feed", "Thursday group"], 1).await;
    assert!(unknown.contains("circle"), "{unknown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn invite_links_work_once_until_they_expire_and_members_can_leave() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProcess::start(dir.path()).await;
    let fran = Member::new(&relay, "Fran").await;
    let kim = Member::new(&relay, "Kim").await;
    let lee = Member::new(&relay, "Lee").await;
    let out = fran.ok(&["circle", "create", "Tuesday group"]).await;
    let circle = last_line(&out);

    // Kim and Lee both use the same link: the first request in wins.
    let out = fran.ok(&["circle", "invite", &circle]).await;
    let link = last_line(&out);
    kim.ok(&["circle", "join", &link]).await;
    lee.ok(&["circle", "join", &link]).await;
    let printed = settle(&[&fran, &kim, &lee]).await;
    let refused = kind(&printed[2], "circle_join_refused");
    assert_eq!(refused.len(), 1, "{printed:?}");
    assert_eq!(refused[0]["circle"], circle.as_str());
    assert_eq!(refused[0]["reason"], "already_used");
    assert_eq!(
        kind(&printed[1], "circle_join_refused"),
        Vec::<Value>::new()
    );
    let members = fran.json(&["circle", "members", &circle, "--json"]).await;
    let names: BTreeSet<String> = field(&members, "name").into_iter().collect();
    assert_eq!(names, BTreeSet::from(["Fran".into(), "Kim".into()]));
    let listed = lee.circles().await;
    assert_ne!(listed[0]["state"], "active", "{listed:?}");

    // A link that expired is refused before anything is sent.
    let out = fran
        .ok(&["circle", "invite", &circle, "--expires", "1s"])
        .await;
    let link = last_line(&out);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let expired = lee.fails(&["circle", "join", &link], 1).await;
    assert!(
        expired.contains("no longer valid") || expired.contains("expired"),
        "{expired}"
    );
    assert!(!expired.contains(&link), "no link in errors: {expired}");
    lee.fails(&["circle", "invite", &circle, "--expires", "soon"], 2)
        .await;

    // The facilitator renames the circle and sets its rules; Kim sees
    // both, then leaves.
    fran.ok(&["circle", "rename", &circle, "Tuesday evening group"])
        .await;
    fran.ok(&["circle", "rules", &circle, "What is said here stays here."])
        .await;
    settle(&[&fran, &kim]).await;
    let seen = kim.circle(&circle).await;
    assert_eq!(seen["name"], "Tuesday evening group");
    assert_eq!(seen["rules"], "What is said here stays here.");
    let left = kim.ok(&["circle", "leave", "Tuesday evening group"]).await;
    assert!(left.contains("You left Tuesday evening group"), "{left}");
    settle(&[&fran, &kim]).await;
    assert_eq!(kim.circle(&circle).await["state"], "left");
    assert_eq!(fran.circle(&circle).await["members"], 1);
    assert!(relay.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_roster_changes_tampered_and_replayed_circle_messages_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProcess::start(dir.path()).await;
    let fran = Member::new(&relay, "Fran").await;
    let ana = Member::new(&relay, "Ana").await;
    let ben = Member::new(&relay, "Ben").await;
    let ben_box = ben.mailbox().await;
    let circle = form_circle("Tuesday group", &fran, &[&ana, &ben]).await;
    let everyone = [&fran, &ana, &ben];

    // A member's roster changes: refused by their own device, and nobody's
    // roster changes.
    for args in [
        ["circle", "remove", circle.as_str(), "Ana"],
        ["circle", "promote", circle.as_str(), "Ben"],
    ] {
        let refused = ben.fails(&args, 1).await;
        assert!(refused.contains("facilitator"), "{refused}");
    }
    settle(&everyone).await;
    for person in &everyone {
        let members = person.json(&["circle", "members", &circle, "--json"]).await;
        let roles: BTreeMap<String, String> = members
            .iter()
            .map(|m| {
                (
                    m["name"].as_str().unwrap().to_owned(),
                    m["role"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            roles,
            BTreeMap::from([
                ("Ana".to_owned(), "member".to_owned()),
                ("Ben".to_owned(), "member".to_owned()),
                ("Fran".to_owned(), "facilitator".to_owned()),
            ]),
            "{}",
            person.name
        );
    }

    // Ben's device is compromised (driven here through the SDK's test
    // hooks): it signs "remove Ana" although Ben facilitates nothing, and
    // posts with a signature that does not verify. Everyone refuses both.
    let compromised = ben.open().await;
    let circle_id: CircleId = circle.parse().unwrap();
    compromised
        .send_unauthorized_removal(circle_id, ana.id.parse().unwrap())
        .await
        .unwrap();
    compromised
        .post_with_bad_signature(circle_id, "words Ben never signed")
        .await
        .unwrap();
    assert_eq!(
        compromised.queued().await.unwrap(),
        0,
        "the relay took both"
    );
    compromised.close().await;
    drop(compromised);
    for person in [&fran, &ana] {
        let lines = person.json(&["sync", "--json"]).await;
        assert_eq!(
            kind(&lines, "message"),
            Vec::<Value>::new(),
            "{}: {lines:?}",
            person.name
        );
        let mut reasons = field(&kind(&lines, "rejected"), "reason");
        reasons.sort();
        assert_eq!(
            reasons,
            ["bad_signature", "forged"],
            "{}: {lines:?}",
            person.name
        );
        assert!(
            !person.ok(&["feed", &circle]).await.contains("never signed"),
            "{}",
            person.name
        );
    }
    for person in &everyone {
        let members = person.json(&["circle", "members", &circle, "--json"]).await;
        assert_eq!(
            members.len(),
            3,
            "Ana is still in for {}: {members:?}",
            person.name
        );
    }

    // Ana's sender key reached everyone with her first post; the second
    // post is a bare sender-key message, captured from the relay's disk.
    ana.post(&["say", &circle, "warming up"]).await;
    settle(&everyone).await;
    let first = ana.post(&["say", &circle, "exactly once"]).await;
    assert!(relay.terminate().await.success());
    let waiting = waiting_envelopes(dir.path(), ben_box.mailbox_id);
    assert_eq!(waiting.len(), 1, "one envelope: the post");
    relay.restart().await;
    let got = kind(&ben.json(&["sync", "--json"]).await, "message");
    assert_eq!(field(&got, "id"), [first.as_str()]);

    // Replayed, tampered in the body, tampered in the header: each refused,
    // none shown; the feed holds the post once.
    replay_and_tamper(relay.address(), &ben_box, &waiting[0]).await;
    let lines = ben.json(&["sync", "--json"]).await;
    assert_eq!(kind(&lines, "message"), Vec::<Value>::new(), "{lines:?}");
    assert_eq!(
        field(&kind(&lines, "rejected"), "reason"),
        ["replayed", "undecryptable", "undecryptable"]
    );
    let feed = ben.feed(&circle).await;
    assert_eq!(feed.iter().filter(|l| l["id"] == first.as_str()).count(), 1);

    // The circle goes on.
    ben.post(&["say", &circle, "all good here"]).await;
    let printed = settle(&everyone).await;
    let texts = |who: usize| field(&kind(&printed[who], "message"), "text");
    assert_eq!(texts(0), ["exactly once", "all good here"], "Fran");
    assert_eq!(texts(1), ["all good here"], "Ana");
    assert!(relay.terminate().await.success());
}
