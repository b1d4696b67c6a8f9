//! The relay as its operator runs it, as a real `hearth-relay` process: a
//! private relay registers only with operator tokens, tokens are listed and
//! revoked from another process while it runs, and its logs hold no tokens,
//! mailbox ids or content.

use std::time::Duration;

use bytes::Bytes;
use hearth_client::RelayErrorCode;
use hearth_tests::{
    Owner, RelayProcess, assert_refused, client_message_id, connect, drain, relay_binary, within,
};

/// Upper bound for receiving an expected batch of deliveries.
const DRAIN: Duration = Duration::from_secs(15);

/// Runs `hearth-relay ARGS...` to completion and returns its stdout's last
/// line; panics if it fails.
fn run_cli(args: &[&str]) -> String {
    let stdout = run_cli_stdout(args);
    stdout.lines().last().unwrap_or_default().trim().to_owned()
}

/// Runs `hearth-relay ARGS...` to completion and returns its whole stdout;
/// panics if it fails.
fn run_cli_stdout(args: &[&str]) -> String {
    let output = std::process::Command::new(relay_binary())
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "hearth-relay {args:?} failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_relay_registers_only_with_an_operator_token_and_each_use_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProcess::start_with(dir.path(), &["--registration", "token"], &[]).await;
    let data = dir.path().to_str().unwrap();

    let alice = Owner::random();
    let refused = alice.try_register(relay.address(), None).await;
    assert_refused(refused, RelayErrorCode::RegistrationRequired);
    let refused = alice
        .try_register(relay.address(), Some("hrt_not-a-token-anyone-issued"))
        .await;
    assert_refused(refused, RelayErrorCode::Unauthorized);

    // The operator issues a one-use token while the relay runs.
    let token = run_cli(&["token", "create", "--data", data, "--uses", "1"]);
    assert!(token.starts_with("hrt_"), "unexpected token line {token:?}");
    alice
        .try_register(relay.address(), Some(&token))
        .await
        .unwrap();
    let bob = Owner::random();
    assert_refused(
        bob.try_register(relay.address(), Some(&token)).await,
        RelayErrorCode::Unauthorized,
    );

    // Its use is durable: still spent after a restart.
    relay.restart().await;
    assert_refused(
        bob.try_register(relay.address(), Some(&token)).await,
        RelayErrorCode::Unauthorized,
    );
    alice.connect(relay.address()).await;
}

/// The id `hearth-relay token list` shows for `token`.
fn token_id(token: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))[..12].to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_listed_and_revoked_from_another_process_while_the_relay_runs() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start_with(dir.path(), &["--registration", "token"], &[]).await;
    let data = dir.path().to_str().unwrap();
    let group = run_cli(&[
        "token",
        "create",
        "--data",
        data,
        "--uses",
        "5",
        "--label",
        "Tuesday group",
    ]);
    let alex = run_cli(&[
        "token",
        "create",
        "--data",
        data,
        "--uses",
        "5",
        "--expires",
        "7d",
        "--label",
        "Alex",
    ]);
    Owner::random()
        .try_register(relay.address(), Some(&alex))
        .await
        .unwrap();

    // The list names each token by id and label, never by the token.
    let listing = run_cli_stdout(&["token", "list", "--data", data]);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two tokens:\n{listing}");
    assert!(lines[0].starts_with("ID"), "{listing}");
    assert!(lines[1].starts_with(&token_id(&group)) && lines[1].ends_with("Tuesday group"));
    assert!(lines[2].starts_with(&token_id(&alex)) && lines[2].ends_with("Alex"));
    for token in [&group, &alex] {
        let secret = token.strip_prefix("hrt_").unwrap();
        assert!(
            !listing.contains(secret),
            "the list shows a token:\n{listing}"
        );
    }

    // Revoked by id from another process: the running relay refuses it at
    // once, and keeps accepting the other token.
    run_cli(&["token", "revoke", "--data", data, &token_id(&alex)]);
    assert_refused(
        Owner::random()
            .try_register(relay.address(), Some(&alex))
            .await,
        RelayErrorCode::Unauthorized,
    );
    Owner::random()
        .try_register(relay.address(), Some(&group))
        .await
        .unwrap();
    let listing = run_cli_stdout(&["token", "list", "--data", data]);
    assert!(!listing.contains(&token_id(&alex)), "{listing}");
    assert!(listing.contains(&token_id(&group)), "{listing}");

    // Revoking what is not there is a usage error that changes nothing.
    let output = std::process::Command::new(relay_binary())
        .args(["token", "revoke", "--data", data, &token_id(&alex)])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no registration token has the id"),
        "{stderr}"
    );
    Owner::random()
        .try_register(relay.address(), Some(&group))
        .await
        .unwrap();
}

/// The forms a secret could take in a log line.
fn spellings(secret: &[u8]) -> Vec<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut forms = vec![
        hex::encode(secret),
        hex::encode_upper(secret),
        STANDARD.encode(secret),
        STANDARD_NO_PAD.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
        // Debug of a byte slice: "[1, 2, 3, ...".
        format!("{:?}", &secret[..secret.len().min(12)])
            .trim_end_matches(']')
            .to_owned(),
    ];
    if let Ok(text) = std::str::from_utf8(secret) {
        forms.push(text.to_owned());
    }
    forms
}

#[tokio::test(flavor = "multi_thread")]
async fn relay_logs_hold_no_tokens_mailbox_ids_or_content() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("HEARTH_LOG", "debug")];
    let mut relay = RelayProcess::start_with(dir.path(), &["--registration", "token"], &env).await;
    let registration_token = run_cli(&["token", "create", "--data", dir.path().to_str().unwrap()]);
    let bob = Owner::random();
    let bob_client = bob
        .try_register(relay.address(), Some(&registration_token))
        .await
        .unwrap();
    let sender = connect(relay.address()).await;

    let body = Bytes::from(format!(
        "BODY-MARKER-{}",
        hex::encode(rand::random::<[u8; 16]>())
    ));
    let recipient = bob.recipient();
    let header = recipient.sealed_header.clone();
    within(
        "send",
        sender.send_one(client_message_id(), recipient, body.clone()),
    )
    .await
    .unwrap();
    let wrong_token = Bytes::from(format!(
        "WRONG-TOKEN-{}",
        hex::encode(rand::random::<[u8; 16]>())
    ));
    let refused = sender.send_one(
        client_message_id(),
        bob.recipient_with_token(wrong_token.clone()),
        body.clone(),
    );
    assert_refused(within("send", refused).await, RelayErrorCode::Unauthorized);
    let bad = within("bad frame", sender.request_raw(&[0x03, 0xff, 0xff, 0xff])).await;
    assert_refused(bad, RelayErrorCode::BadFrame);
    let delivered = drain(&bob_client, 1, DRAIN).await;
    bob_client
        .ack_through(bob.mailbox_id, delivered[0].seq)
        .unwrap();
    within(
        "revoke",
        bob_client.revoke_send_token(bob.mailbox_id, &bob.send_token),
    )
    .await
    .unwrap();
    drop((bob_client, sender));
    assert!(relay.terminate().await.success());

    let logs = relay.output();
    assert!(
        logs.lines().count() >= 3,
        "the relay logged too little to judge:\n{logs}"
    );
    let mailbox_key = bob.key.verifying_key();
    let secrets: [(&str, &[u8]); 7] = [
        ("registration token", registration_token.as_bytes()),
        ("send token", &bob.send_token),
        ("wrong send token", &wrong_token),
        ("mailbox id", &bob.mailbox_id),
        ("mailbox key", mailbox_key.as_bytes()),
        ("body", &body),
        ("sealed header", &header),
    ];
    for (what, secret) in secrets {
        for form in spellings(secret) {
            assert!(
                !logs.contains(&form),
                "the logs hold the {what} (as {form:?}):\n{logs}"
            );
        }
    }
}
