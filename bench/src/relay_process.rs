//! The relay under test: the real `hearth-relay` binary as a child process,
//! and samples of its CPU time and memory from `/proc`.

use std::collections::VecDeque;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hearth_client::RelayAddress;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// What the relay prints on stdout once it listens, before its address.
const LISTENING: &str = "listening on ";

/// How long the relay may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the relay may take to shut down gracefully after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// How many of the relay's last output lines are kept for error messages.
const TAIL_LINES: usize = 40;

/// How to start the relay.
#[derive(Clone, Debug)]
pub(crate) struct RelaySettings {
    /// The `hearth-relay` binary.
    pub(crate) binary: PathBuf,
    /// Folder in which the run's temporary data folder is made (the
    /// system's temporary folder when `None`).
    pub(crate) data_parent: Option<PathBuf>,
    /// `HEARTH_*` variables for the relay. Inherited `HEARTH_*` variables
    /// are removed so that runs are reproducible.
    pub(crate) env: Vec<(String, String)>,
}

/// A running relay process on a loopback port, with a fresh data folder
/// that is deleted when this is dropped. Dropping it also kills the process.
#[derive(Debug)]
pub(crate) struct RelayProcess {
    child: Child,
    pid: u32,
    address: RelayAddress,
    output: Arc<Mutex<VecDeque<String>>>,
    data_dir: tempfile::TempDir,
    settings: RelaySettings,
    listen: String,
}

impl RelayProcess {
    /// Starts `hearth-relay run --data DIR --listen 127.0.0.1:PORT
    /// --registration open` and waits until it prints its address.
    pub(crate) async fn start(settings: &RelaySettings) -> anyhow::Result<Self> {
        if !settings.binary.is_file() {
            bail!(
                "the relay binary {} does not exist; build it with `cargo build --release -p hearth-relay` \
                 or pass --relay-bin",
                settings.binary.display()
            );
        }
        let data_dir = make_data_dir(settings.data_parent.as_deref())?;
        let listen = format!("127.0.0.1:{}", free_udp_port()?);
        Self::spawn(settings, data_dir, listen).await
    }

    /// Stops the relay gracefully and starts it again on the same data
    /// folder and port; returns it once it printed its address again, with
    /// the moment the new process was started.
    pub(crate) async fn restart(self) -> anyhow::Result<(Self, Instant)> {
        let (settings, listen) = (self.settings.clone(), self.listen.clone());
        let data_dir = self.stop_keeping_data().await?;
        let started = Instant::now();
        Ok((Self::spawn(&settings, data_dir, listen).await?, started))
    }

    /// Runs the binary on `data_dir`, listening on `listen`.
    async fn spawn(
        settings: &RelaySettings,
        data_dir: tempfile::TempDir,
        listen: String,
    ) -> anyhow::Result<Self> {
        let mut command = Command::new(&settings.binary);
        command
            .args(["run", "--data"])
            .arg(data_dir.path())
            .args(["--listen", &listen, "--registration", "open"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("HEARTH_") {
                command.env_remove(name);
            }
        }
        command.envs(settings.env.iter().map(|(k, v)| (k, v)));
        let mut child = command
            .spawn()
            .with_context(|| format!("starting the relay {}", settings.binary.display()))?;
        let pid = child.id().context("the relay exited at once")?;
        let output = Arc::new(Mutex::new(VecDeque::new()));
        let (address_tx, address_rx) = oneshot::channel();
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(keep_lines(stdout, Arc::clone(&output), Some(address_tx)));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(keep_lines(stderr, Arc::clone(&output), None));
        }
        let mut relay = Self {
            child,
            pid,
            address: placeholder_address(),
            output,
            data_dir,
            settings: settings.clone(),
            listen,
        };
        relay.address = relay.wait_listening(address_rx).await?;
        Ok(relay)
    }

    /// Waits for the address line, failing if the relay exits or is slow.
    async fn wait_listening(
        &mut self,
        address: oneshot::Receiver<String>,
    ) -> anyhow::Result<RelayAddress> {
        let line = tokio::select! {
            line = tokio::time::timeout(START_TIMEOUT, address) => match line {
                Ok(Ok(line)) => line,
                Ok(Err(_)) => bail!("the relay closed its stdout before listening\n{}", self.tail()),
                Err(_) => bail!("the relay did not listen within {START_TIMEOUT:?}\n{}", self.tail()),
            },
            status = self.child.wait() => {
                // Give the output readers a moment to collect the last lines.
                tokio::time::sleep(Duration::from_millis(100)).await;
                bail!("the relay exited before listening ({})\n{}", describe(status), self.tail())
            }
        };
        parse_listening(&line).with_context(|| format!("reading the relay's address from {line:?}"))
    }

    /// The relay's address (`hearth://<fingerprint>@127.0.0.1:<port>`).
    pub(crate) fn address(&self) -> &RelayAddress {
        &self.address
    }

    /// The relay's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The relay's data folder.
    pub(crate) fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The relay's CPU time and memory now.
    pub(crate) fn sample(&self) -> anyhow::Result<ProcessSample> {
        ProcessSample::of(self.pid)
            .with_context(|| format!("sampling the relay process\n{}", self.tail()))
    }

    /// Stops the relay gracefully (SIGTERM), killing it if it takes longer
    /// than 20 s. Fails if it did not exit cleanly.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        self.stop_keeping_data().await.map(drop)
    }

    /// Stops the relay like [`RelayProcess::stop`] and hands back its data
    /// folder (deleted when that is dropped).
    async fn stop_keeping_data(mut self) -> anyhow::Result<tempfile::TempDir> {
        if let Ok(Some(status)) = self.child.try_wait() {
            bail!("the relay had already exited ({status})\n{}", self.tail());
        }
        let signalled = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        if !signalled.is_ok_and(|s| s.success()) {
            self.child.kill().await.context("killing the relay")?;
            bail!("could not send SIGTERM to the relay; killed it");
        }
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(self.data_dir),
            Ok(status) => bail!(
                "the relay exited badly ({})\n{}",
                describe(status),
                self.tail()
            ),
            Err(_) => {
                self.child.kill().await.context("killing the relay")?;
                bail!("the relay did not stop within {STOP_TIMEOUT:?} after SIGTERM; killed it")
            }
        }
    }

    /// The relay's last output lines, for error messages.
    fn tail(&self) -> String {
        let lines = self.output.lock().unwrap_or_else(PoisonError::into_inner);
        let text: Vec<&str> = lines.iter().map(String::as_str).collect();
        format!("--- last relay output ---\n{}", text.join("\n"))
    }
}

/// Describes how a child exited.
fn describe(status: std::io::Result<std::process::ExitStatus>) -> String {
    match status {
        Ok(status) => status.to_string(),
        Err(error) => format!("waiting failed: {error}"),
    }
}

/// Reads `stream` line by line into the tail buffer; the first line with
/// [`LISTENING`] goes to `address`.
async fn keep_lines(
    stream: impl AsyncRead + Unpin,
    output: Arc<Mutex<VecDeque<String>>>,
    mut address: Option<oneshot::Sender<String>>,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.contains(LISTENING)
            && let Some(sender) = address.take()
        {
            // The receiver is gone only if start-up already failed.
            let _ = sender.send(line.clone());
        }
        let mut tail = output.lock().unwrap_or_else(PoisonError::into_inner);
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}

/// The address in a `... listening on hearth://...` line.
pub(crate) fn parse_listening(line: &str) -> anyhow::Result<RelayAddress> {
    let (_, rest) = line.split_once(LISTENING).context("no `listening on`")?;
    let address = rest
        .split_whitespace()
        .next()
        .context("no address after `listening on`")?;
    address.parse().map_err(|e| anyhow::anyhow!("{e}"))
}

/// A stand-in until the real address is read.
fn placeholder_address() -> RelayAddress {
    RelayAddress {
        fingerprint: hearth_client::Fingerprint([0; 32]),
        host: "127.0.0.1".into(),
        port: 0,
    }
}

/// A fresh data folder for one run.
fn make_data_dir(parent: Option<&Path>) -> anyhow::Result<tempfile::TempDir> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("hearth-bench-");
    match parent {
        Some(parent) => builder.tempdir_in(parent),
        None => builder.tempdir(),
    }
    .context("creating the relay's data folder")
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
fn free_udp_port() -> anyhow::Result<u16> {
    let socket = UdpSocket::bind("127.0.0.1:0").context("binding a UDP socket on 127.0.0.1")?;
    Ok(socket.local_addr()?.port())
}

/// The `hearth-relay` binary beside this executable (in
/// `target/release/` when run with `cargo run --release -p hearth-bench`).
pub(crate) fn default_relay_binary() -> PathBuf {
    let name = format!("hearth-relay{}", std::env::consts::EXE_SUFFIX);
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(&name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

/// The file system type of the mount holding `path` (from `/proc/mounts`),
/// e.g. `ext4` or `tmpfs`: fsync costs nothing on tmpfs.
pub(crate) fn filesystem_type(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, mount_point, fs_type) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(mount_point)
                .then(|| (mount_point.len(), fs_type.to_owned()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, fs_type)| fs_type)
}

/// A process's CPU time and memory at one moment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ProcessSample {
    /// When it was taken.
    pub(crate) at: Instant,
    /// User plus system CPU time so far, in seconds.
    pub(crate) cpu_seconds: f64,
    /// Resident set size (`VmRSS`) in bytes.
    pub(crate) rss_bytes: u64,
    /// Peak resident set size (`VmHWM`) in bytes.
    pub(crate) peak_rss_bytes: u64,
}

impl ProcessSample {
    /// Samples process `pid` from `/proc/<pid>/stat` and `/proc/<pid>/status`.
    pub(crate) fn of(pid: u32) -> anyhow::Result<Self> {
        let at = Instant::now();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .context("reading /proc/<pid>/stat")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .context("reading /proc/<pid>/status")?;
        let ticks = cpu_ticks(&stat).context("no utime/stime in /proc/<pid>/stat")?;
        let rss = status_kib(&status, "VmRSS:").context("no VmRSS (has the process exited?)")?;
        let peak = status_kib(&status, "VmHWM:").context("no VmHWM (has the process exited?)")?;
        Ok(Self {
            at,
            cpu_seconds: ticks as f64 / clock_ticks_per_second(),
            rss_bytes: rss * 1024,
            peak_rss_bytes: peak * 1024,
        })
    }

    /// This process (the load generator itself).
    pub(crate) fn of_self() -> anyhow::Result<Self> {
        Self::of(std::process::id())
    }

    /// CPU seconds used since `earlier`.
    pub(crate) fn cpu_since(&self, earlier: &Self) -> f64 {
        (self.cpu_seconds - earlier.cpu_seconds).max(0.0)
    }

    /// Wall-clock seconds since `earlier`.
    pub(crate) fn wall_since(&self, earlier: &Self) -> f64 {
        self.at.saturating_duration_since(earlier.at).as_secs_f64()
    }
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line. The
/// command name (field 2) is in parentheses and may hold spaces or `)`, so
/// fields are counted after its last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The value in KiB of a `Name:   1234 kB` line of `/proc/<pid>/status`.
fn status_kib(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// Clock ticks per second (`getconf CLK_TCK`, or 100).
fn clock_ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse::<f64>().ok())
            .filter(|ticks| *ticks > 0.0)
            .unwrap_or(100.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_skips_a_command_name_with_spaces_and_parens() {
        let stat = "1234 (hearth (relay) x) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 9 0 100 0 0";
        assert_eq!(cpu_ticks(stat), Some(300));
        assert_eq!(cpu_ticks("1234 (x) S 1 2"), None);
    }

    #[test]
    fn status_values_are_read_in_kib() {
        let status = "Name:\thearth-relay\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(10240));
        assert_eq!(status_kib(status, "VmHWM:"), Some(20480));
        assert_eq!(status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn sampling_this_process_sees_cpu_and_memory() {
        let before = ProcessSample::of_self().unwrap();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let after = ProcessSample::of_self().unwrap();
        assert!(after.rss_bytes > 1024 * 1024, "{after:?}");
        assert!(after.peak_rss_bytes >= after.rss_bytes);
        assert!(after.cpu_seconds >= before.cpu_seconds);
        assert!(clock_ticks_per_second() >= 1.0);
    }

    #[test]
    fn listening_line_yields_the_address() {
        let fingerprint = "q1n8ZkJmE0Gv5nF4lZq3E0D2wQ0ZK2hJtYgV8mX5b3c";
        let line = format!("hearth-relay listening on hearth://{fingerprint}@127.0.0.1:4433");
        let address = parse_listening(&line).unwrap();
        assert_eq!(address.host, "127.0.0.1");
        assert_eq!(address.port, 4433);
        assert_eq!(address.fingerprint.to_string(), fingerprint);
        assert!(parse_listening("starting up").is_err());
        assert!(parse_listening("listening on http://x").is_err());
    }

    #[test]
    fn filesystem_type_is_found_for_the_root() {
        assert!(filesystem_type(Path::new("/")).is_some());
    }

    #[test]
    fn missing_binary_is_a_clear_error() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let settings = RelaySettings {
            binary: PathBuf::from("/nonexistent/hearth-relay"),
            data_parent: None,
            env: vec![],
        };
        let error = runtime
            .block_on(RelayProcess::start(&settings))
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("cargo build --release -p hearth-relay"),
            "{error}"
        );
    }
}
