//! The real `hearth-relay` binary as a child process.

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hearth_client::RelayAddress;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::binary::relay_binary;
use crate::within_for;

/// What the relay prints once it listens, followed by its address.
const LISTENING: &str = "listening on ";

/// How long a relay process may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The per-address connection cap of test relays: every test client
/// shares 127.0.0.1 (a test may still set its own).
const UNCAPPED_PER_ADDRESS: &str = "1000000";

/// How long a relay process may take to exit after a signal.
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// A UDP port on 127.0.0.1 that was free a moment ago (bound, then
/// released), so a relay can be restarted on the same port.
///
/// It is picked below the kernel's ephemeral range: the client endpoints
/// the tests open (on port 0) can then never take it while a relay is down
/// between a kill and its restart. No port is handed out twice per process.
pub fn free_udp_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let below = ephemeral_range_start().clamp(2048, 65535);
    let lowest = below / 2;
    for _ in 0..1000 {
        let port = rand::random_range(lowest..below);
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
        if handed_out.contains(&port) || UdpSocket::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        handed_out.insert(port);
        return port;
    }
    panic!("found no free UDP port in {lowest}..{below}");
}

/// The first port of the kernel's ephemeral range (Linux), or 32768.
fn ephemeral_range_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

/// The `hearth-relay` binary running as a child process on a fixed
/// loopback port, with every line it prints kept for inspection.
///
/// Dropping it kills the process.
#[derive(Debug)]
pub struct RelayProcess {
    data_dir: PathBuf,
    listen: SocketAddr,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    child: Option<Child>,
    output: Arc<Mutex<String>>,
    address: Option<RelayAddress>,
    starts: usize,
}

impl RelayProcess {
    /// Starts `hearth-relay run --data DATA_DIR --listen 127.0.0.1:PORT`
    /// (with open registration) on a free port and waits until it listens.
    pub async fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &["--registration", "open"], &[]).await
    }

    /// Like [`RelayProcess::start`], logging everything down to `debug`
    /// (for tests that search the logs for what must not be there).
    pub async fn start_with_debug_logs(data_dir: &Path) -> Self {
        Self::start_with(
            data_dir,
            &["--registration", "open"],
            &[("HEARTH_LOG", "debug")],
        )
        .await
    }

    /// Starts `hearth-relay run --data DATA_DIR --listen 127.0.0.1:PORT
    /// ARGS...` with extra environment variables `envs`, and waits until it
    /// listens.
    pub async fn start_with(data_dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut process = Self {
            data_dir: data_dir.to_path_buf(),
            listen: SocketAddr::from(([127, 0, 0, 1], free_udp_port())),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            envs: envs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            child: None,
            output: Arc::default(),
            address: None,
            starts: 0,
        };
        process.spawn().await;
        process
    }

    /// The relay's address, as it printed it.
    pub fn address(&self) -> &RelayAddress {
        match &self.address {
            Some(address) => address,
            None => panic!("the relay has not started"),
        }
    }

    /// The relay's data folder.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Everything the relay printed (stdout and stderr) across all its runs.
    pub fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many times the process was started.
    pub fn starts(&self) -> usize {
        self.starts
    }

    /// The running process's id.
    pub fn pid(&self) -> u32 {
        match self.child.as_ref().and_then(Child::id) {
            Some(pid) => pid,
            None => panic!("the relay process is not running"),
        }
    }

    /// Kills the process with SIGKILL (no chance to clean up) and waits for
    /// it to die.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let killed = within_for(EXIT_TIMEOUT, "kill the relay process", child.kill()).await;
            if let Err(error) = killed {
                panic!("killing the relay process failed: {error}");
            }
        }
    }

    /// Sends SIGTERM and waits for the process to exit; returns its status.
    pub async fn terminate(&mut self) -> ExitStatus {
        let pid = self.pid().to_string();
        match std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
        {
            Ok(status) if status.success() => {}
            Ok(status) => panic!("`kill -TERM {pid}` failed ({status})"),
            Err(error) => panic!("running `kill -TERM {pid}` failed: {error}"),
        }
        self.wait_for_exit().await
    }

    /// Waits for the process to exit by itself; returns its status.
    pub async fn wait_for_exit(&mut self) -> ExitStatus {
        let Some(mut child) = self.child.take() else {
            panic!("the relay process is not running");
        };
        match within_for(EXIT_TIMEOUT, "the relay process to exit", child.wait()).await {
            Ok(status) => status,
            Err(error) => panic!("waiting for the relay process failed: {error}"),
        }
    }

    /// Starts the relay again on the same port and data folder (killing it
    /// first if it still runs) and waits until it listens.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.spawn().await;
    }

    async fn spawn(&mut self) {
        let mut command = Command::new(relay_binary());
        command
            .arg("run")
            .arg("--data")
            .arg(&self.data_dir)
            .arg("--listen")
            .arg(self.listen.to_string())
            .args(&self.args)
            .env("NO_COLOR", "1")
            // Every test client connects from 127.0.0.1, and each `hearth`
            // command's connection may count until the relay's idle
            // timeout: the per-address cap would be every user's at once.
            .env("HEARTH_MAX_CONNECTIONS_PER_IP", UNCAPPED_PER_ADDRESS)
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting hearth-relay failed: {e}"));
        self.starts += 1;
        let (lines, mut receiver) = mpsc::unbounded_channel();
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(collect_lines(
                stdout,
                Arc::clone(&self.output),
                lines.clone(),
            ));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(collect_lines(stderr, Arc::clone(&self.output), lines));
        }
        self.child = Some(child);
        let waited = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = receiver.recv().await {
                if let Some((_, address)) = line.split_once(LISTENING) {
                    return Some(address.trim().to_owned());
                }
            }
            None
        })
        .await;
        let address = match waited {
            Ok(Some(address)) => address,
            Ok(None) => panic!(
                "hearth-relay exited before listening; it printed:\n{}",
                self.output()
            ),
            Err(_) => panic!(
                "hearth-relay did not listen within {START_TIMEOUT:?}; it printed:\n{}",
                self.output()
            ),
        };
        let address: RelayAddress = address.parse().unwrap_or_else(|e| {
            panic!("hearth-relay printed an unusable address {address:?}: {e}")
        });
        assert_eq!(
            address.port,
            self.listen.port(),
            "the relay listens on another port than asked"
        );
        self.address = Some(address);
    }
}

/// Appends every line of `stream` to `output` and forwards it to `lines`.
async fn collect_lines(
    stream: impl AsyncRead + Unpin,
    output: Arc<Mutex<String>>,
    lines: mpsc::UnboundedSender<String>,
) {
    let mut reader = BufReader::new(stream);
    let mut raw = Vec::new();
    while matches!(reader.read_until(b'\n', &mut raw).await, Ok(n) if n > 0) {
        let line = String::from_utf8_lossy(&raw)
            .trim_end_matches(['\n', '\r'])
            .to_owned();
        raw.clear();
        {
            let mut output = output.lock().unwrap_or_else(PoisonError::into_inner);
            output.push_str(&line);
            output.push('\n');
        }
        // Nobody listens once the relay started: that's fine.
        let _ = lines.send(line);
    }
}
