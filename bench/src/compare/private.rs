//! Private server instances for the peers' TLS rows. The shared local
//! services (Redis on 6379, Mosquitto on 1883, NATS on 4222, PostgreSQL
//! on 5432) are never reconfigured: each TLS row starts its own
//! `redis-server`, `mosquitto`, `nats-server` or PostgreSQL cluster on a
//! free port of 127.0.0.1, in a folder of its own under `--data-parent`,
//! with a certificate made for it ([`Certificate`]), and stops it and
//! removes the folder after the row, also after an error and when the row
//! is cancelled ([`Drop`] kills the instance's process group).
//!
//! Durability is set as in the plaintext rows: Redis with the AOF and
//! `appendfsync always`; Mosquitto with `persistence true` (as the shared
//! broker); NATS JetStream with file storage; PostgreSQL with
//! `fsync = on` and `synchronous_commit = on`. Other settings follow the
//! shared services' configuration on this machine.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rustls::ClientConfig;
use tokio::process::{Child, Command};

use super::server::ServerProbe;
use super::tls::{self, Certificate, HOST, PostgresTls, Preamble};

mod servers;
use servers::*;

/// Where Debian and Ubuntu install PostgreSQL's server binaries, one
/// folder per major version.
const POSTGRES_ROOT: &str = "/usr/lib/postgresql";
/// Folders searched after `PATH` (daemons live in `sbin`).
const SBIN: [&str; 3] = ["/usr/local/sbin", "/usr/sbin", "/sbin"];
/// How long an instance may take to accept TLS connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `initdb` may take.
const INITDB_TIMEOUT: Duration = Duration::from_secs(120);
/// How long an instance may take to stop after its stop signal.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of the server's log quoted in errors.
const LOG_TAIL_LINES: usize = 15;

/// A server a TLS row runs privately.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `redis-server` with a `tls-port` only.
    Redis,
    /// `mosquitto` with a TLS listener only.
    Mosquitto,
    /// `nats-server -js` with TLS required.
    Nats,
    /// A PostgreSQL cluster (`initdb`, `postgres`) with `ssl = on`.
    Postgres,
}

/// The binaries an instance runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Binaries {
    /// The server.
    server: PathBuf,
    /// PostgreSQL: `initdb`, beside the server.
    initdb: Option<PathBuf>,
}

impl Kind {
    /// The server program's name.
    pub(crate) fn program(self) -> &'static str {
        match self {
            Self::Redis => "redis-server",
            Self::Mosquitto => "mosquitto",
            Self::Nats => "nats-server",
            Self::Postgres => "postgres",
        }
    }

    /// The binaries on this machine, or which one is missing.
    pub(crate) fn binaries(self) -> anyhow::Result<Binaries> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        match self {
            Self::Postgres => {
                if let Some(bin) = newest_postgres_bin(Path::new(POSTGRES_ROOT)) {
                    return Ok(Binaries {
                        server: bin.join("postgres"),
                        initdb: Some(bin.join("initdb")),
                    });
                }
                match (
                    find_program("postgres", &path),
                    find_program("initdb", &path),
                ) {
                    (Some(server), Some(initdb)) => Ok(Binaries {
                        server,
                        initdb: Some(initdb),
                    }),
                    _ => bail!(
                        "no PostgreSQL server binaries (postgres and initdb) in {POSTGRES_ROOT}/*/bin or on PATH"
                    ),
                }
            }
            _ => {
                let server = find_program(self.program(), &path).with_context(|| {
                    format!(
                        "{} is not installed (not on PATH or in /usr/sbin)",
                        self.program()
                    )
                })?;
                Ok(Binaries {
                    server,
                    initdb: None,
                })
            }
        }
    }

    /// What a client does before its TLS handshake.
    fn preamble(self) -> Preamble {
        match self {
            Self::Redis | Self::Mosquitto => Preamble::None,
            Self::Nats => Preamble::NatsInfo,
            Self::Postgres => Preamble::PostgresSslRequest,
        }
    }

    /// The account the server runs as when this tool runs as root (as the
    /// shared service does); `None` keeps root (as the shared Redis and
    /// NATS run here). Mosquitto changes to its account by itself.
    fn service_user(self) -> Option<&'static str> {
        match self {
            Self::Mosquitto => Some("mosquitto"),
            Self::Postgres => Some("postgres"),
            Self::Redis | Self::Nats => None,
        }
    }

    /// The signal for a clean, prompt stop (PostgreSQL: fast shutdown).
    fn stop_signal(self) -> &'static str {
        match self {
            Self::Postgres => "INT",
            _ => "TERM",
        }
    }
}

/// `name` in the folders of `path` (a `PATH` value), then in the `sbin`
/// folders; it must be an executable file.
fn find_program(name: &str, path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .chain(SBIN.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// `<root>/<major>/bin` of the newest major version that has both
/// `postgres` and `initdb`.
fn newest_postgres_bin(root: &Path) -> Option<PathBuf> {
    let mut best: Option<(u32, PathBuf)> = None;
    for entry in std::fs::read_dir(root).ok()?.flatten() {
        let Some(major) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let bin = entry.path().join("bin");
        if !(bin.join("postgres").is_file() && bin.join("initdb").is_file()) {
            continue;
        }
        if best.as_ref().is_none_or(|(seen, _)| major > *seen) {
            best = Some((major, bin));
        }
    }
    best.map(|(_, bin)| bin)
}

/// A user's uid and primary gid from `/etc/passwd`'s text.
fn lookup_user(passwd: &str, name: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

/// Whether this process runs as root (effective uid 0).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Gives `path` and everything below it to `uid:gid`.
fn chown_tree(path: &Path, uid: u32, gid: u32) -> anyhow::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .with_context(|| format!("changing the owner of {}", path.display()))?;
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_tcp_port() -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind((HOST, 0)).context("binding a TCP socket on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// The last lines of an instance's log.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    let tail = lines[start..].join("\n");
    if tail.is_empty() {
        "(the server wrote no log)".into()
    } else {
        format!("server log:\n{tail}")
    }
}

/// Sends `signal` to process `target` (`-<pgid>` for a group); whether
/// `kill` succeeded.
fn send_signal(signal: &str, target: &str) -> bool {
    std::process::Command::new("kill")
        .args([&format!("-{signal}"), "--", target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One running private server.
pub(crate) struct Instance {
    kind: Kind,
    child: Option<Child>,
    pid: u32,
    port: u16,
    client_config: Arc<ClientConfig>,
    certificate: Certificate,
    tls_version: String,
    layout: Layout,
    dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("kind", &self.kind)
            .field("pid", &self.pid)
            .field("port", &self.port)
            .field("tls_version", &self.tls_version)
            .finish_non_exhaustive()
    }
}

impl Instance {
    /// Starts a `kind` server in a new folder under `data_parent` (the
    /// system's temporary folder without it) and waits until it completes
    /// a verified TLS handshake (PostgreSQL: until it answers a query).
    pub(crate) async fn start(kind: Kind, data_parent: Option<&Path>) -> anyhow::Result<Self> {
        let binaries = kind.binaries()?;
        let certificate = Certificate::generate()?;
        let client_config = Arc::new(certificate.client_config()?);
        let prefix = format!("hearth-bench-{}-tls-", kind.program());
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix);
        let dir = match data_parent {
            Some(parent) => builder.tempdir_in(parent),
            None => builder.tempdir(),
        }
        .context("creating the private instance's folder")?;
        let layout = Layout {
            dir: dir.path().to_owned(),
        };
        std::fs::write(layout.cert(), certificate.cert_pem()).context("writing the certificate")?;
        std::fs::write(layout.key(), certificate.key_pem()).context("writing the key")?;
        std::fs::set_permissions(layout.key(), std::fs::Permissions::from_mode(0o600))?;
        std::fs::set_permissions(layout.cert(), std::fs::Permissions::from_mode(0o644))?;
        if kind != Kind::Postgres {
            std::fs::create_dir(layout.data()).context("creating the data folder")?;
        }
        let port = free_tcp_port()?;
        if kind == Kind::Mosquitto {
            std::fs::write(layout.mosquitto_conf(), mosquitto_conf(port, &layout)?)
                .context("writing mosquitto.conf")?;
        }
        let account = match kind.service_user() {
            Some(user) if running_as_root() => {
                let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
                let ids = lookup_user(&passwd, user)
                    .with_context(|| format!("running as root, but there is no user {user}"))?;
                chown_tree(&layout.dir, ids.0, ids.1)?;
                Some(ids)
            }
            _ => None,
        };
        if let Some(initdb) = &binaries.initdb {
            run_initdb(initdb, &layout, account).await?;
        }
        let args = match kind {
            Kind::Redis => redis_args(port, &layout),
            Kind::Mosquitto => vec!["-c".into(), layout.mosquitto_conf().into()],
            Kind::Nats => nats_args(port, &layout),
            Kind::Postgres => postgres_args(port, &layout),
        };
        let log = std::fs::File::create(layout.log()).context("creating the server log")?;
        let mut command = Command::new(&binaries.server);
        command
            .args(&args)
            .current_dir(&layout.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .kill_on_drop(true);
        if kind == Kind::Postgres
            && let Some((uid, gid)) = account
        {
            command.uid(uid).gid(gid);
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", binaries.server.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let mut instance = Self {
            kind,
            child: Some(child),
            pid,
            port,
            client_config,
            certificate,
            tls_version: String::new(),
            layout,
            dir: Some(dir),
        };
        // From here on, dropping `instance` stops it and removes its folder.
        instance.tls_version = instance.wait_ready().await?;
        eprintln!(
            "    private {} (pid {pid}) on {HOST}:{port}, {}",
            kind.program(),
            instance.tls_version
        );
        Ok(instance)
    }

    /// Waits for a verified handshake; the negotiated version.
    async fn wait_ready(&mut self) -> anyhow::Result<String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last_error = None;
        let version = loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!(
                    "{} exited while starting ({status})\n{}",
                    self.kind.program(),
                    log_tail(&self.layout.log())
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not accept TLS connections within {START_TIMEOUT:?} (last: {})\n{}",
                    self.kind.program(),
                    last_error.map_or_else(|| "–".to_owned(), |e: anyhow::Error| format!("{e:#}")),
                    log_tail(&self.layout.log())
                );
            }
            match tls::negotiated_version(
                self.port,
                self.kind.preamble(),
                Arc::clone(&self.client_config),
            )
            .await
            {
                Ok(version) => break version,
                Err(error) => last_error = Some(error),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if self.kind == Kind::Postgres {
            // The postmaster negotiates TLS before it accepts queries.
            loop {
                match self.postgres_query().await {
                    Ok(()) => break,
                    Err(error) if Instant::now() >= deadline => {
                        return Err(error.context(format!(
                            "PostgreSQL did not answer within {START_TIMEOUT:?}\n{}",
                            log_tail(&self.layout.log())
                        )));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
        Ok(version)
    }

    /// One `SELECT 1` over TLS.
    async fn postgres_query(&self) -> anyhow::Result<()> {
        let tls = PostgresTls::new(Arc::clone(&self.client_config));
        let (client, connection) = tokio_postgres::connect(&self.postgres_config(), tls).await?;
        let driver = tokio::spawn(connection);
        let answered = client.simple_query("SELECT 1").await;
        drop(client);
        let _ = driver.await;
        answered?;
        Ok(())
    }

    /// The port it listens on (on [`HOST`]).
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Its certificate (clients pin it).
    pub(crate) fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// A client configuration that trusts only its certificate.
    pub(crate) fn client_config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.client_config)
    }

    /// The TLS version it negotiated with the probe, e.g. `TLS 1.3`.
    pub(crate) fn tls_version(&self) -> &str {
        &self.tls_version
    }

    /// PostgreSQL: the tokio-postgres connection string, TLS required.
    pub(crate) fn postgres_config(&self) -> String {
        format!(
            "host={HOST} port={} user=postgres dbname=postgres sslmode=require connect_timeout=10",
            self.port
        )
    }

    /// How to sample its CPU time: the server process and its children
    /// (PostgreSQL's backends, Redis's rewrite child).
    pub(crate) fn server_probe(&self) -> ServerProbe {
        ServerProbe::Tree(self.pid)
    }

    /// Stops it (its clean-stop signal, SIGKILL after
    /// [`STOP_TIMEOUT`]) and removes its folder.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        let program = self.kind.program();
        let mut result = Ok(());
        if let Some(mut child) = self.child.take() {
            match child.try_wait() {
                Ok(Some(status)) => {
                    result = Err(anyhow::anyhow!(
                        "{program} had exited during the row ({status})\n{}",
                        log_tail(&self.layout.log())
                    ));
                }
                _ => {
                    send_signal(self.kind.stop_signal(), &self.pid.to_string());
                    if tokio::time::timeout(STOP_TIMEOUT, child.wait())
                        .await
                        .is_err()
                    {
                        result = Err(anyhow::anyhow!(
                            "{program} did not stop within {STOP_TIMEOUT:?}; killed it"
                        ));
                    }
                }
            }
            // Whatever is left of its process group (backends, forks).
            send_signal("KILL", &format!("-{}", self.pid));
            let _ = child.wait().await;
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.path().display().to_string();
            dir.close().with_context(|| format!("removing {path}"))?;
        }
        result
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take()
            && !matches!(child.try_wait(), Ok(Some(_)))
        {
            send_signal("KILL", &format!("-{}", self.pid));
        }
        // `dir` is removed when it drops.
    }
}

/// Runs `initdb` (as `account` when given), quoting its output on failure.
async fn run_initdb(
    initdb: &Path,
    layout: &Layout,
    account: Option<(u32, u32)>,
) -> anyhow::Result<()> {
    let mut command = Command::new(initdb);
    command
        .args(initdb_args(layout))
        .current_dir(&layout.dir)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some((uid, gid)) = account {
        command.uid(uid).gid(gid);
    }
    let output = tokio::time::timeout(INITDB_TIMEOUT, command.output())
        .await
        .context("initdb did not finish within 120 s")?
        .with_context(|| format!("running {}", initdb.display()))?;
    if !output.status.success() {
        bail!(
            "initdb failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            dir: PathBuf::from("/var/tmp/hearth-bench-x"),
        }
    }

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// The value after `flag` in `args`.
    fn after<'a>(args: &'a [String], flag: &str) -> &'a str {
        let at = args.iter().position(|a| a == flag).unwrap();
        &args[at + 1]
    }

    #[test]
    fn redis_listens_only_on_tls_with_the_aof_fsynced_always() {
        let args = strings(&redis_args(7001, &layout()));
        assert_eq!(after(&args, "--port"), "0");
        assert_eq!(after(&args, "--tls-port"), "7001");
        assert_eq!(after(&args, "--bind"), "127.0.0.1");
        assert_eq!(after(&args, "--appendonly"), "yes");
        assert_eq!(after(&args, "--appendfsync"), "always");
        assert_eq!(after(&args, "--save"), "");
        assert_eq!(after(&args, "--dir"), "/var/tmp/hearth-bench-x/data");
        assert_eq!(
            after(&args, "--tls-key-file"),
            "/var/tmp/hearth-bench-x/key.pem"
        );
    }

    #[test]
    fn mosquitto_has_one_tls_listener_and_persistence() {
        let conf = mosquitto_conf(7002, &layout()).unwrap();
        assert!(conf.contains("\npersistence true\n"));
        assert!(conf.contains("persistence_location /var/tmp/hearth-bench-x/data/\n"));
        assert_eq!(conf.matches("listener ").count(), 1);
        assert!(conf.contains("listener 7002 127.0.0.1\n"));
        assert!(conf.contains("certfile /var/tmp/hearth-bench-x/cert.pem\n"));
        assert!(conf.contains("keyfile /var/tmp/hearth-bench-x/key.pem\n"));
        let spaced = Layout {
            dir: PathBuf::from("/var/tmp/a b"),
        };
        assert!(mosquitto_conf(7002, &spaced).is_err());
    }

    #[test]
    fn nats_runs_jetstream_in_its_folder_with_tls() {
        let args = strings(&nats_args(7003, &layout()));
        assert_eq!(after(&args, "-p"), "7003");
        assert_eq!(after(&args, "-sd"), "/var/tmp/hearth-bench-x/data");
        assert!(args.contains(&"-js".to_owned()) && args.contains(&"--tls".to_owned()));
        assert_eq!(
            after(&args, "--tlscert"),
            "/var/tmp/hearth-bench-x/cert.pem"
        );
    }

    #[test]
    fn postgres_keeps_fsync_and_synchronous_commit_on_with_ssl() {
        let args = strings(&postgres_args(7004, &layout()));
        for setting in [
            "port=7004",
            "listen_addresses=127.0.0.1",
            "ssl=on",
            "fsync=on",
            "synchronous_commit=on",
            "max_connections=100",
            "ssl_key_file=/var/tmp/hearth-bench-x/key.pem",
        ] {
            assert!(args.iter().any(|a| a == setting), "{setting} in {args:?}");
        }
        let init = strings(&initdb_args(&layout()));
        assert_eq!(after(&init, "-D"), "/var/tmp/hearth-bench-x/data");
        assert_eq!(after(&init, "-U"), "postgres");
    }

    #[test]
    fn programs_are_found_on_the_path_and_postgres_by_newest_major() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let tool = bin.join("some-server");
        std::fs::write(&tool, "").unwrap();
        assert_eq!(
            find_program("some-server", bin.as_os_str()),
            None,
            "not executable"
        );
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_program("some-server", bin.as_os_str()), Some(tool));
        assert_eq!(find_program("no-such-server-here", bin.as_os_str()), None);

        let root = dir.path().join("postgresql");
        for (major, complete) in [("9", true), ("15", true), ("16", false), ("x", true)] {
            let bin = root.join(major).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            std::fs::write(bin.join("postgres"), "").unwrap();
            if complete {
                std::fs::write(bin.join("initdb"), "").unwrap();
            }
        }
        assert_eq!(
            newest_postgres_bin(&root),
            Some(root.join("15").join("bin"))
        );
        assert_eq!(newest_postgres_bin(&dir.path().join("none")), None);
    }

    #[test]
    fn users_are_looked_up_in_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      postgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash\n\
                      broken:x:abc:1::/:/bin/sh\n";
        assert_eq!(lookup_user(passwd, "postgres"), Some((101, 104)));
        assert_eq!(lookup_user(passwd, "root"), Some((0, 0)));
        assert_eq!(lookup_user(passwd, "broken"), None);
        assert_eq!(lookup_user(passwd, "post"), None);
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let text: String = (0..40).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let tail = log_tail(&path);
        assert!(tail.ends_with("line 39"));
        assert!(!tail.contains("line 24\n") && tail.contains("line 25"));
        assert!(log_tail(&dir.path().join("missing")).contains("no log"));
    }

    /// Starts every private server installed here, checks a verified TLS
    /// 1.3 handshake, stops it and checks its folder and processes are
    /// gone; then the same when the instance is dropped instead (a
    /// cancelled row). Needs the servers: `cargo test -p hearth-bench
    /// private_instances -- --ignored`.
    #[tokio::test]
    #[ignore = "starts redis-server, mosquitto, nats-server and a PostgreSQL cluster"]
    async fn private_instances_start_speak_tls_and_leave_nothing_behind() {
        for kind in [Kind::Redis, Kind::Mosquitto, Kind::Nats, Kind::Postgres] {
            let instance = Instance::start(kind, None).await.unwrap();
            assert_eq!(instance.tls_version(), "TLS 1.3", "{kind:?}");
            let dir = instance.layout.dir.clone();
            let pid = instance.pid;
            assert!(instance.server_probe().sample().unwrap().rss_bytes > 0);
            instance.stop().await.unwrap();
            assert!(!dir.exists(), "{kind:?}: {} left behind", dir.display());
            assert!(!Path::new(&format!("/proc/{pid}")).exists());

            let dropped = Instance::start(kind, None).await.unwrap();
            let (dir, pid) = (dropped.layout.dir.clone(), dropped.pid);
            drop(dropped);
            assert!(!dir.exists(), "{kind:?}: {} left behind", dir.display());
            tokio::time::sleep(Duration::from_millis(500)).await;
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            assert!(
                state.is_empty() || state.contains(") Z "),
                "{kind:?}: pid {pid} still runs"
            );
        }
    }
}
