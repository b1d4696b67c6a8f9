//! Devices driven through the `hearth` binary, as people and scripts use
//! it: each in its own folder, each command a child process with a clean
//! environment, its output kept for assertions.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

use crate::{RelayProcess, hearth_binary, within_for};

/// How long one `hearth` command may take (a connection attempt to a relay
/// that is down gives up after 10 s).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// What a `hearth` command did.
#[derive(Debug)]
pub struct Run {
    /// Its exit status.
    pub status: ExitStatus,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
}

/// A device driven through the `hearth` binary, in its own folder.
#[derive(Debug)]
pub struct Device {
    home: tempfile::TempDir,
    passphrase: Option<&'static str>,
}

impl Default for Device {
    fn default() -> Self {
        Self::new()
    }
}

impl Device {
    /// A device whose store is unlocked by a key file.
    pub fn new() -> Self {
        let home = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary folder: {e}"));
        Self {
            home,
            passphrase: None,
        }
    }

    /// A device whose store is unlocked by `passphrase`.
    pub fn with_passphrase(passphrase: &'static str) -> Self {
        Self {
            passphrase: Some(passphrase),
            ..Self::new()
        }
    }

    /// Its folder.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// `hearth --home HOME ARGS...` with a clean environment (no `HEARTH_*`
    /// variable of the test's own, such as `HEARTH_PASSPHRASE` or the crash
    /// switch of the `test-hooks` feature), plus `envs`.
    pub fn command(&self, args: &[&str], envs: &[(&str, &str)]) -> Command {
        let mut command = Command::new(hearth_binary());
        command.arg("--home").arg(self.home()).args(args);
        for (name, _) in std::env::vars_os() {
            if name
                .to_str()
                .is_some_and(|name| name.starts_with("HEARTH_"))
            {
                command.env_remove(name);
            }
        }
        command
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if let Some(passphrase) = self.passphrase {
            command.env("HEARTH_PASSPHRASE", passphrase);
        }
        command
    }

    /// Runs `hearth ARGS...` with `envs`.
    pub async fn run_with(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        let what = format!("hearth {}", args.join(" "));
        let output = within_for(COMMAND_TIMEOUT, &what, self.command(args, envs).output())
            .await
            .unwrap_or_else(|e| panic!("running {what} failed: {e}"));
        let text = |bytes: Vec<u8>| {
            String::from_utf8(bytes).unwrap_or_else(|e| panic!("{what} printed non-UTF-8: {e}"))
        };
        Run {
            status: output.status,
            stdout: text(output.stdout),
            stderr: text(output.stderr),
        }
    }

    /// Runs `hearth ARGS...`.
    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[]).await
    }

    /// Runs a command that must succeed quietly; returns its stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args).await;
        assert!(
            run.status.success() && run.stderr.is_empty(),
            "hearth {args:?} failed: {run:?}"
        );
        run.stdout
    }

    /// Runs a command that must succeed; parses each line of its stdout.
    pub async fn json(&self, args: &[&str]) -> Vec<Value> {
        json_lines(&self.ok(args).await)
    }

    /// Runs a command that must fail with `code`; returns its one-line reason.
    pub async fn fails(&self, args: &[&str], code: i32) -> String {
        let run = self.run(args).await;
        assert_eq!(run.status.code(), Some(code), "hearth {args:?}: {run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "one line: {run:?}");
        assert!(run.stderr.starts_with("hearth: "), "{run:?}");
        run.stderr
    }

    /// `hearth init`; returns the member id (the last line).
    pub async fn init(&self, relay: &RelayProcess, name: &str) -> String {
        let address = relay.address().to_string();
        let out = self
            .ok(&["init", "--relay", &address, "--name", name])
            .await;
        let id = last_line(&out);
        assert_eq!(id.len(), 26, "a member id: {out}");
        id
    }

    /// `hearth dm`; returns the output line.
    pub async fn dm(&self, to: &str, text: &str) -> String {
        self.ok(&["dm", to, text]).await
    }

    /// The messages of one `hearth sync --json`.
    pub async fn sync(&self) -> Vec<Value> {
        kind(&self.json(&["sync", "--json"]).await, "message")
    }
}

/// The last line of `text` ("" if none).
pub fn last_line(text: &str) -> String {
    text.lines().last().unwrap_or_default().to_owned()
}

/// Each line of `text` as JSON; panics on a line that is not.
pub fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

/// The lines whose `kind` is `kind`.
pub fn kind(lines: &[Value], kind: &str) -> Vec<Value> {
    lines
        .iter()
        .filter(|line| line["kind"] == kind)
        .cloned()
        .collect()
}

/// The string field `name` of each line ("" where it is missing).
pub fn field(lines: &[Value], name: &str) -> Vec<String> {
    lines
        .iter()
        .map(|line| line[name].as_str().unwrap_or_default().to_owned())
        .collect()
}
