//! The `hearth` binary as people and scripts use it, against a real relay
//! process: init, contact links, dm, sync --json, history --json, contact
//! list and verify, errors and exit codes, a relay SIGKILLed mid-conversation,
//! a member away for a while, and a `hearth` process killed between storing
//! a message and acknowledging it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use hearth_client::{TEST_EXIT_BEFORE_ACK_STATUS, TEST_EXIT_BEFORE_ACK_VAR};
use hearth_tests::cli::{COMMAND_TIMEOUT, Device, field, json_lines, kind, last_line};
use hearth_tests::{RelayProcess, stored_counts, within_for};
use rand::RngExt as _;
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;

/// `acceptor` accepts `inviter`'s link; `inviter`'s next sync shows the new
/// contact.
async fn meet(inviter: &Device, acceptor: &Device, acceptor_id: &str, acceptor_name: &str) {
    let out = inviter.ok(&["contact", "invite"]).await;
    let link = last_line(&out);
    assert!(link.starts_with("hearth://contact/"), "{out}");
    let accepted = acceptor.ok(&["contact", "accept", &link]).await;
    assert!(accepted.contains("request was sent"), "{accepted}");
    let lines = inviter.json(&["sync", "--json"]).await;
    let added = kind(&lines, "contact_added");
    assert_eq!(added.len(), 1, "{lines:?}");
    assert_eq!(added[0]["member_id"], acceptor_id);
    assert_eq!(added[0]["name"], acceptor_name);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_people_meet_and_talk_through_the_hearth_binary() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProcess::start(dir.path()).await;
    let dana = Device::new();
    let sam = Device::with_passphrase("correct horse battery staple");
    let dana_id = dana.init(&relay, "Dana").await;
    let sam_id = sam.init(&relay, "Sam").await;

    // Dana's store key is a private key file; Sam's comes from a passphrase.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let key = std::fs::metadata(dana.home().join("key")).unwrap();
        assert_eq!(key.permissions().mode() & 0o777, 0o600);
        assert_eq!(key.len(), 32);
    }
    assert!(!sam.home().join("key").exists());
    let who = dana.json(&["whoami", "--json"]).await;
    assert_eq!(who[0]["member_id"], dana_id);
    assert_eq!(who[0]["name"], "Dana");
    assert_eq!(who[0]["relay"], relay.address().to_string());

    meet(&dana, &sam, &sam_id, "Sam").await;
    let sent = sam.dm("Dana", "hi Dana, it's Sam").await;
    assert!(sent.starts_with("sent to Dana"), "{sent}");
    let got = dana.sync().await;
    assert_eq!(field(&got, "text"), ["hi Dana, it's Sam"]);
    assert_eq!(got[0]["from"], sam_id);
    assert_eq!(got[0]["from_name"], "Sam");
    assert_eq!(got[0]["type"], "text");
    assert_eq!(got[0]["id"].as_str().unwrap().len(), 32);
    assert!(got[0]["sent_at"].as_str().unwrap().ends_with('Z'));
    assert!(got[0]["sent_at_ms"].as_u64().unwrap() > 1_700_000_000_000);

    // By member id; text from stdin keeps it out of the process list.
    let mut reply = dana
        .command(&["dm", &sam_id, "-"], &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = reply.stdin.take().unwrap();
    stdin.write_all(b"hi Sam!\n").await.unwrap();
    drop(stdin);
    let reply = within_for(COMMAND_TIMEOUT, "dm from stdin", reply.wait_with_output())
        .await
        .unwrap();
    assert!(reply.status.success(), "{reply:?}");
    let got = sam.sync().await;
    assert_eq!(field(&got, "text"), ["hi Sam!"]);
    assert_eq!(got[0]["from"], dana_id);
    assert_eq!(
        dana.sync().await,
        Vec::<Value>::new(),
        "nothing shows twice"
    );

    // The conversation, oldest first, on both sides.
    let history = dana.json(&["history", "Sam", "--json"]).await;
    assert_eq!(field(&history, "text"), ["hi Dana, it's Sam", "hi Sam!"]);
    assert_eq!(field(&history, "direction"), ["in", "out"]);
    assert_eq!(field(&history, "from"), [sam_id.as_str(), dana_id.as_str()]);
    let history = sam.json(&["history", &dana_id, "--json"]).await;
    assert_eq!(field(&history, "direction"), ["out", "in"]);
    assert_eq!(field(&history, "status"), ["sent", "received"]);

    // Safety numbers match on both sides; verifying needs the right one.
    let dana_contacts = dana.json(&["contact", "list", "--json"]).await;
    let sam_contacts = sam.json(&["contact", "list", "--json"]).await;
    assert_eq!(dana_contacts.len(), 1);
    assert_eq!(dana_contacts[0]["name"], "Sam");
    assert_eq!(dana_contacts[0]["member_id"], sam_id);
    assert_eq!(dana_contacts[0]["verified"], false);
    let number = dana_contacts[0]["safety_number"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(number.chars().filter(char::is_ascii_digit).count(), 60);
    assert_eq!(sam_contacts[0]["safety_number"], number.as_str());
    let wrong = number.replace('1', "2").replace('0', "1");
    let refused = dana.fails(&["contact", "verify", "Sam", &wrong], 1).await;
    assert!(refused.contains("does not match"), "{refused}");
    let mut verify = vec!["contact", "verify", "Sam"];
    verify.extend(number.split(' '));
    let verified = dana.ok(&verify).await;
    assert!(verified.contains("Sam is verified"), "{verified}");
    let listed = dana.json(&["contact", "list", "--json"]).await;
    assert_eq!(listed[0]["verified"], true);
    let text = dana.ok(&["contact", "list"]).await;
    assert!(text.contains(&sam_id) && text.contains(&number), "{text}");

    // Errors: one line, status 1 (failed) or 2 (usage), no content.
    let unknown = dana.fails(&["dm", "Nobody", "a secret"], 1).await;
    assert!(unknown.contains("no such contact") && !unknown.contains("a secret"));
    dana.fails(&["dm", "Sam"], 2).await;
    dana.fails(&["sync", "--wait", "soon"], 2).await;
    dana.fails(&["frobnicate"], 2).await;
    let again = dana
        .fails(&["init", "--relay", &relay.address().to_string()], 1)
        .await;
    assert!(again.contains("already set up"), "{again}");
    let copy = Device::with_passphrase("not Sam's passphrase");
    copy_dir(sam.home(), copy.home());
    let wrong = copy.fails(&["whoami"], 1).await;
    assert!(wrong.contains("wrong storage key or passphrase"), "{wrong}");
    std::fs::rename(dana.home().join("key"), dana.home().join("key.away")).unwrap();
    let missing = dana.fails(&["whoami"], 1).await;
    assert!(missing.contains("no key file"), "{missing}");
    std::fs::rename(dana.home().join("key.away"), dana.home().join("key")).unwrap();
    let help = dana.ok(&["sync", "--help"]).await;
    assert!(help.contains("--wait") && help.contains("--json"), "{help}");

    assert!(relay.terminate().await.success());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_keeps_every_message_through_a_relay_sigkill_and_a_long_absence() {
    const EACH: usize = 5;
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProcess::start(dir.path()).await;
    let (dana, sam, carol) = (Device::new(), Device::new(), Device::new());
    let dana_id = dana.init(&relay, "Dana").await;
    let sam_id = sam.init(&relay, "Sam").await;
    let carol_id = carol.init(&relay, "Carol").await;
    meet(&dana, &sam, &sam_id, "Sam").await;
    meet(&dana, &carol, &carol_id, "Carol").await;
    meet(&sam, &carol, &carol_id, "Carol").await;

    sam.dm("Dana", "s1").await;
    assert_eq!(field(&dana.sync().await, "text"), ["s1"]);
    dana.dm("Sam", "d1").await;

    // The relay dies mid-conversation; Sam writes anyway.
    relay.kill().await;
    let queued = sam.dm("Dana", "s2, written while the relay was down").await;
    assert!(queued.starts_with("queued for Dana"), "{queued}");
    relay.restart().await;
    let lines = sam.json(&["sync", "--json"]).await;
    assert_eq!(field(&kind(&lines, "message"), "text"), ["d1"]);
    assert_eq!(kind(&lines, "sent").len(), 1, "the queued message went out");
    assert_eq!(
        field(&dana.sync().await, "text"),
        ["s2, written while the relay was down"]
    );
    assert_eq!(
        dana.sync().await,
        Vec::<Value>::new(),
        "nothing shows twice"
    );
    // In the order Sam saw them: he wrote s2 before d1 reached him.
    let history = sam.json(&["history", "Dana", "--json"]).await;
    assert_eq!(
        field(&history, "text"),
        ["s1", "s2, written while the relay was down", "d1"]
    );
    assert_eq!(field(&history, "status"), ["sent", "sent", "received"]);

    // Carol was away all along; both wrote to her.
    for i in 0..EACH {
        dana.dm("Carol", &format!("from dana {i}")).await;
        sam.dm(&carol_id, &format!("from sam {i}")).await;
    }
    let got = carol.sync().await;
    assert_eq!(got.len(), 2 * EACH, "{got:?}");
    let from = |id: &str| -> Vec<String> {
        let lines: Vec<Value> = got.iter().filter(|l| l["from"] == id).cloned().collect();
        field(&lines, "text")
    };
    let expected =
        |who: &str| -> Vec<String> { (0..EACH).map(|i| format!("from {who} {i}")).collect() };
    assert_eq!(from(&dana_id), expected("dana"));
    assert_eq!(from(&sam_id), expected("sam"));
    assert_eq!(carol.sync().await, Vec::<Value>::new());
    assert!(relay.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hearth_process_killed_before_acknowledging_shows_each_message_once() {
    const BURST: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProcess::start(dir.path()).await;
    let (dana, sam) = (Device::new(), Device::new());
    dana.init(&relay, "Dana").await;
    let sam_id = sam.init(&relay, "Sam").await;
    meet(&dana, &sam, &sam_id, "Sam").await;

    // Dana's sync stores the message, then dies before acknowledging it.
    sam.dm("Dana", "exactly once").await;
    let crashed = dana
        .run_with(&["sync", "--json"], &[(TEST_EXIT_BEFORE_ACK_VAR, "1")])
        .await;
    assert_eq!(
        crashed.status.code(),
        Some(TEST_EXIT_BEFORE_ACK_STATUS),
        "the process died between storing and acknowledging: {crashed:?}"
    );
    let shown_before = json_lines(&crashed.stdout);
    let history = dana.json(&["history", "Sam", "--json"]).await;
    assert_eq!(field(&history, "text"), ["exactly once"], "stored once");
    // The relay delivers it again; the restarted client knows it.
    let shown_after = dana.sync().await;
    assert_eq!(
        shown_after,
        Vec::<Value>::new(),
        "the redelivery is not shown"
    );
    assert!(
        kind(&shown_before, "message").len() <= 1,
        "{shown_before:?}"
    );
    let history = dana.json(&["history", "Sam", "--json"]).await;
    assert_eq!(field(&history, "text"), ["exactly once"]);

    // Now a burst, with `hearth sync` killed -9 at random moments.
    let burst: Vec<String> = (0..BURST).map(|i| format!("burst {i:02}")).collect();
    for text in &burst {
        sam.dm("Dana", text).await;
    }
    let mut killed_early = 0;
    for _ in 0..4 {
        let mut child = dana
            .command(&["sync", "--wait", "3"], &[])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let after = rand::rng().random_range(50..600);
        tokio::time::sleep(Duration::from_millis(after)).await;
        if child.try_wait().unwrap().is_none() {
            killed_early += 1;
        }
        child.start_kill().unwrap();
        within_for(COMMAND_TIMEOUT, "a killed hearth to exit", child.wait())
            .await
            .unwrap();
    }
    assert_eq!(killed_early, 4, "every sync was killed while running");
    dana.ok(&["sync"]).await;
    let history = dana.json(&["history", "Sam", "--json"]).await;
    let mut expected = vec!["exactly once".to_owned()];
    expected.extend(burst);
    assert_eq!(field(&history, "text"), expected, "each once, in order");

    // Every envelope was acknowledged in the end.
    assert!(relay.terminate().await.success());
    assert_eq!(stored_counts(dir.path()), (0, 0));
}
