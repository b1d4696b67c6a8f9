//! Each private server's folder layout and its command line or config file:
//! TLS on a free port with the generated certificate, durability as on the
//! plaintext rows.

use super::*;

/// File locations inside an instance's folder.
#[derive(Clone, Debug)]
pub(super) struct Layout {
    pub(super) dir: PathBuf,
}

impl Layout {
    pub(super) fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }
    pub(super) fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }
    pub(super) fn data(&self) -> PathBuf {
        self.dir.join("data")
    }
    pub(super) fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }
    pub(super) fn mosquitto_conf(&self) -> PathBuf {
        self.dir.join("mosquitto.conf")
    }
}

/// `redis-server` arguments: TLS only, AOF with `appendfsync always`,
/// no RDB snapshots (as the shared server: `save ""`).
pub(super) fn redis_args(port: u16, layout: &Layout) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut pair = |name: &str, value: OsString| {
        args.push(format!("--{name}").into());
        args.push(value);
    };
    pair("port", "0".into());
    pair("tls-port", port.to_string().into());
    pair("bind", HOST.into());
    pair("tls-cert-file", layout.cert().into());
    pair("tls-key-file", layout.key().into());
    pair("tls-auth-clients", "no".into());
    pair("dir", layout.data().into());
    pair("appendonly", "yes".into());
    pair("appendfsync", "always".into());
    pair("save", "".into());
    pair("daemonize", "no".into());
    pair("logfile", "".into());
    pair("maxclients", "10000".into());
    args
}

/// `mosquitto.conf`: the shared broker's settings (persistence on,
/// anonymous clients) with one TLS listener.
pub(super) fn mosquitto_conf(port: u16, layout: &Layout) -> anyhow::Result<String> {
    let path = |p: PathBuf| -> anyhow::Result<String> {
        let text = p
            .to_str()
            .with_context(|| format!("{} is not UTF-8", p.display()))?;
        if text.contains(char::is_whitespace) {
            bail!("{text:?} holds white space, which mosquitto.conf cannot quote");
        }
        Ok(text.to_owned())
    };
    let mut conf = String::from("# hearth-bench: a private TLS broker for one benchmark row\n");
    let _ = writeln!(conf, "persistence true");
    let _ = writeln!(conf, "persistence_location {}/", path(layout.data())?);
    let _ = writeln!(conf, "log_dest stdout");
    let _ = writeln!(conf, "listener {port} {HOST}");
    let _ = writeln!(conf, "certfile {}", path(layout.cert())?);
    let _ = writeln!(conf, "keyfile {}", path(layout.key())?);
    let _ = writeln!(conf, "allow_anonymous true");
    Ok(conf)
}

/// `nats-server` arguments: JetStream with its file store in the
/// instance's folder, TLS required of every client.
pub(super) fn nats_args(port: u16, layout: &Layout) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "-a".into(),
        HOST.into(),
        "-p".into(),
        port.to_string().into(),
        "-js".into(),
        "-sd".into(),
    ];
    args.push(layout.data().into());
    args.extend(["--tls".into(), "--tlscert".into()]);
    args.push(layout.cert().into());
    args.push("--tlskey".into());
    args.push(layout.key().into());
    args
}

/// `initdb` arguments: a cluster owned by `postgres`, trusting local
/// connections (the instance only listens on 127.0.0.1 and a socket in
/// its own folder).
pub(super) fn initdb_args(layout: &Layout) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["-D".into()];
    args.push(layout.data().into());
    args.extend(
        ["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]
            .into_iter()
            .map(OsString::from),
    );
    args
}

/// `postgres` arguments: the shared cluster's settings (100 connections,
/// 128 MB shared buffers, WAL sizes), `fsync` and `synchronous_commit` on,
/// TLS on with the instance's certificate.
pub(super) fn postgres_args(port: u16, layout: &Layout) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["-D".into()];
    args.push(layout.data().into());
    let mut setting = |name: &str, value: &OsStr| {
        let mut pair = OsString::from(format!("{name}="));
        pair.push(value);
        args.push("-c".into());
        args.push(pair);
    };
    setting("port", OsStr::new(&port.to_string()));
    setting("listen_addresses", OsStr::new(HOST));
    setting("unix_socket_directories", layout.dir.as_os_str());
    setting("ssl", OsStr::new("on"));
    setting("ssl_cert_file", layout.cert().as_os_str());
    setting("ssl_key_file", layout.key().as_os_str());
    setting("fsync", OsStr::new("on"));
    setting("synchronous_commit", OsStr::new("on"));
    setting("full_page_writes", OsStr::new("on"));
    setting("max_connections", OsStr::new("100"));
    setting("shared_buffers", OsStr::new("128MB"));
    setting("max_wal_size", OsStr::new("1GB"));
    setting("min_wal_size", OsStr::new("80MB"));
    args
}
