//! The `hearth-relay` command line, run as a real process.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use hearth_protocol::address::RelayAddress;

const BINARY: &str = env!("CARGO_BIN_EXE_hearth-relay");

/// The relay binary with no `HEARTH_*` variables inherited from the caller.
fn relay() -> Command {
    let mut command = Command::new(BINARY);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HEARTH_") {
            command.env_remove(name);
        }
    }
    command.env("NO_COLOR", "1");
    command
}

fn run(args: &[&str]) -> Output {
    relay().args(args).output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn last_line(output: &Output) -> String {
    stdout(output)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[track_caller]
fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

#[test]
fn help_of_every_command_exits_zero() {
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["address", "--help"],
        &["token", "--help"],
        &["token", "create", "--help"],
        &["token", "list", "--help"],
        &["token", "revoke", "--help"],
    ] {
        let output = run(args);
        assert_success(&output);
        assert!(
            stdout(&output).contains("Usage"),
            "{args:?} printed no usage:\n{}",
            stdout(&output)
        );
    }
}

#[test]
fn address_prints_a_stable_pinned_address() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let first = run(&["address", "--data", data]);
    assert_success(&first);
    let line = last_line(&first);
    let (fingerprint, host_port) = line
        .strip_prefix("hearth://")
        .and_then(|rest| rest.split_once('@'))
        .unwrap_or_else(|| panic!("not a relay address: {line:?}"));
    assert_eq!(fingerprint.len(), 43, "{line}");
    assert!(
        fingerprint
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{line}"
    );
    assert_eq!(
        host_port, "127.0.0.1:4433",
        "default listen 0.0.0.0:4433 is reached on loopback"
    );
    let parsed: RelayAddress = line.parse().unwrap();
    assert_eq!(parsed.to_string(), line);

    let second = run(&["address", "--data", data]);
    assert_success(&second);
    assert_eq!(
        last_line(&second),
        line,
        "the identity is created once and reused"
    );

    let elsewhere = run(&[
        "address",
        "--data",
        data,
        "--listen",
        "127.0.0.1:7001",
        "--public-host",
        "relay.example",
    ]);
    assert_success(&elsewhere);
    assert_eq!(
        last_line(&elsewhere),
        format!("hearth://{fingerprint}@relay.example:7001")
    );
}

#[test]
fn token_create_prints_a_token_and_stores_only_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let output = run(&[
        "token",
        "create",
        "--data",
        data,
        "--uses",
        "2",
        "--expires",
        "7d",
    ]);
    assert_success(&output);
    let token = last_line(&output);
    assert!(
        token.starts_with("hrt_") && token.len() > 20,
        "unexpected token line {token:?}"
    );

    let files: Vec<_> = std::fs::read_dir(dir.path().join("registration-tokens"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "one token file: {files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("uses = 2"), "{text}");
    assert!(text.contains("expires_at_ms"), "{text}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    let token_body = &token["hrt_".len()..];
    assert!(
        !text.contains(token_body) && !name.contains(token_body),
        "the token itself was stored"
    );

    let another = run(&["token", "create", "--data", data]);
    assert_success(&another);
    assert_ne!(last_line(&another), token, "every token is fresh");
}

#[test]
fn token_list_shows_ids_and_labels_and_revoke_removes_one_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let empty = run(&["token", "list", "--data", data]);
    assert_success(&empty);
    assert_eq!(stdout(&empty), "");
    assert!(
        stderr(&empty).contains("no registration tokens"),
        "{}",
        stderr(&empty)
    );

    let created = run(&["token", "create", "--data", data, "--label", "Sam (Monday)"]);
    assert_success(&created);
    let sam = last_line(&created);
    let created = run(&[
        "token",
        "create",
        "--data",
        data,
        "--uses",
        "3",
        "--expires",
        "2d",
    ]);
    assert_success(&created);
    let group = last_line(&created);

    let listed = run(&["token", "list", "--data", data]);
    assert_success(&listed);
    let listing = stdout(&listed);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two tokens:\n{listing}");
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["ID", "CREATED", "EXPIRES", "USES", "LABEL"]
    );
    let sam_line: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(sam_line[0].len(), 12, "{listing}");
    assert!(sam_line[1].ends_with('Z'), "a UTC creation time: {listing}");
    assert_eq!(sam_line[2..], ["never", "1", "Sam", "(Monday)"]);
    let group_line: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(group_line.len(), 4, "no label: {listing}");
    assert_eq!(group_line[3], "3");
    for token in [&sam, &group] {
        assert!(!listing.contains(&token["hrt_".len()..]), "{listing}");
    }

    let revoked = run(&["token", "revoke", "--data", data, sam_line[0]]);
    assert_success(&revoked);
    assert!(
        stderr(&revoked).contains(sam_line[0]),
        "{}",
        stderr(&revoked)
    );
    let listing = stdout(&run(&["token", "list", "--data", data]));
    assert!(!listing.contains(sam_line[0]), "{listing}");
    assert!(listing.contains(group_line[0]), "{listing}");
    // The token itself also names it.
    assert_success(&run(&["token", "revoke", "--data", data, &group]));
    let empty = run(&["token", "list", "--data", data]);
    assert_eq!(stdout(&empty), "");
}

#[test]
fn bad_flags_and_bad_config_files_exit_with_code_two_and_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(&["run", "--no-such-flag"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--no-such-flag"),
        "{}",
        stderr(&output)
    );

    let output = run(&["token", "create", "--uses", "0"]);
    assert_eq!(output.status.code(), Some(2));
    let data = dir.path().to_str().unwrap();
    let output = run(&["token", "create", "--data", data, "--label", "two\nlines"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("label"), "{}", stderr(&output));
    for id in ["0123456789ab", "xyz"] {
        let output = run(&["token", "revoke", "--data", data, id]);
        assert_eq!(output.status.code(), Some(2), "{id}");
        assert!(stderr(&output).contains(id), "{}", stderr(&output));
    }

    let unknown_key = dir.path().join("unknown.toml");
    std::fs::write(
        &unknown_key,
        "listen = \"127.0.0.1:4433\"\ncolour = \"blue\"\n",
    )
    .unwrap();
    let bad_value = dir.path().join("bad.toml");
    std::fs::write(&bad_value, "listen = \"not an address\"\n").unwrap();
    for (file, mention) in [(&unknown_key, "colour"), (&bad_value, "listen")] {
        let output = relay()
            .args([
                "run",
                "--data",
                dir.path().to_str().unwrap(),
                "--config",
                file.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        let message = stderr(&output);
        assert!(message.contains("error"), "{message}");
        assert!(
            message.contains(file.file_name().unwrap().to_str().unwrap()),
            "names the file: {message}"
        );
        assert!(message.contains(mention), "names the setting: {message}");
    }

    let missing = dir.path().join("missing.toml");
    let output = relay()
        .args(["run", "--config", missing.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("missing.toml"),
        "{}",
        stderr(&output)
    );
    assert!(!dir.path().join("hearth-data").exists(), "nothing started");
}

/// Kills the child when dropped, so a failing test leaves no relay behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn run_without_arguments_creates_hearth_data_in_the_working_folder_and_listens() {
    let cwd = tempfile::tempdir().unwrap();
    // No arguments; only the port comes from the environment, so the test
    // does not depend on 4433 being free.
    let listen = format!("127.0.0.1:{}", free_udp_port());
    let mut child = relay()
        .current_dir(cwd.path())
        .env("HEARTH_LISTEN", &listen)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let child = KillOnDrop(child);
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let line = loop {
        let line = received
            .recv_timeout(Duration::from_secs(30))
            .expect("the relay printed no listening line within 30 s");
        if line.contains("listening on") {
            break line;
        }
    };
    let address = line.split("listening on ").nth(1).unwrap().trim();
    let address: RelayAddress = address.parse().unwrap();
    assert_eq!(format!("{}:{}", address.host, address.port), listen);
    assert_data_folder(&cwd.path().join("hearth-data"));
    drop(child);
}

fn assert_data_folder(data: &Path) {
    assert!(data.is_dir(), "./hearth-data was not created");
    assert!(
        data.join("identity").is_dir(),
        "no identity in {}",
        data.display()
    );
    assert!(
        data.join("store").is_dir(),
        "no store in {}",
        data.display()
    );
}
