//! Relay settings: defaults, a TOML file, `HEARTH_*` environment variables
//! and command-line flags, in increasing order of precedence.

//!
//! The file is TOML: top-level keys name [`Config`] fields (durations are
//! humantime strings such as `"12s"` or `"30days"`, sizes are integers in
//! bytes, `registration = "token" | "open"`), and a `[limits]` table holds
//! the core's limits ([`CoreConfig`]); rates are strings such as `"10/min"`.
//! `server/hearth-relay.example.toml` lists every key with its default.
//! Unknown keys are an error.
//!
//! Each top-level key can also be set by `HEARTH_<KEY>` in upper case
//! (`data_dir` is `HEARTH_DATA`), and each `[limits]` key by
//! `HEARTH_LIMITS_<KEY>`. Other `HEARTH_*` variables are ignored.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use hearth_protocol::address::{Fingerprint, RelayAddress};
use serde::{Deserialize, Deserializer};

use crate::core::{CoreConfig, RegistrationMode};

/// Everything a relay needs to run. Every field has a documented default.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// UDP address to listen on (default `0.0.0.0:4433`).
    pub listen: SocketAddr,
    /// Folder for the store, the TLS identity and registration tokens
    /// (default `./hearth-data`).
    pub data_dir: PathBuf,
    /// Host name or IP printed in the relay address (default: the listen IP,
    /// or `127.0.0.1` when listening on the unspecified address).
    pub public_host: Option<String>,
    /// Operator-supplied certificate chain (PEM); with `key_file`, replaces
    /// the generated self-signed identity. The fingerprint pins its key.
    pub cert_file: Option<PathBuf>,
    /// Operator-supplied private key (PEM).
    pub key_file: Option<PathBuf>,
    /// Most concurrent connections (default 20,000); more are refused.
    pub max_connections: usize,
    /// Most concurrent connections from one IPv4 address or IPv6 /64
    /// (default 256); more are closed at once with "too many connections
    /// from your address". Raise it for members behind a shared NAT.
    pub max_connections_per_ip: usize,
    /// QUIC keep-alive interval (default 12 s).
    pub keep_alive: Duration,
    /// Idle timeout after which a silent connection is closed (default 60 s).
    pub idle_timeout: Duration,
    /// UDP socket send and receive buffer size requested from the OS
    /// (default 8 MiB); the size granted is logged.
    pub udp_buffer_bytes: usize,
    /// Generic segmentation offload (default on). Turn off on kernels or
    /// virtual NICs where it misbehaves.
    pub gso: bool,
    /// How often expired envelopes are swept (default 60 s).
    pub expiry_sweep: Duration,
    /// Log filter in `tracing` env-filter syntax (default `info`, with the
    /// storage engine's chatter at `warn`).
    pub log: String,
    /// Limits and policies of the relay core.
    pub core: CoreConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 4433)),
            data_dir: PathBuf::from("hearth-data"),
            public_host: None,
            cert_file: None,
            key_file: None,
            max_connections: 20_000,
            max_connections_per_ip: 256,
            keep_alive: Duration::from_secs(12),
            idle_timeout: Duration::from_secs(60),
            udp_buffer_bytes: 8 * 1024 * 1024,
            gso: true,
            expiry_sweep: Duration::from_secs(60),
            log: "info,fjall=warn,lsm_tree=warn".to_owned(),
            core: CoreConfig::default(),
        }
    }
}

impl Config {
    /// Sets registration mode (shorthand used by tests and tools).
    pub fn with_registration(mut self, mode: RegistrationMode) -> Self {
        self.core.registration = mode;
        self
    }
}

/// Why the relay's settings could not be loaded. Each variant names the
/// file, key or variable at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The configuration file is not valid TOML, has an unknown key or a
    /// wrong value.
    #[error("{path}{}: {message}", Location(*line, key.as_deref()))]
    File {
        /// The file.
        path: PathBuf,
        /// Line of the error (1-based), when known.
        line: Option<usize>,
        /// The key at fault (`limits.max_body_bytes`), when known.
        key: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A `HEARTH_*` environment variable has a wrong value.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A setting is out of range or contradicts another.
    #[error("setting `{key}`: {message}")]
    Invalid {
        /// The setting at fault, named as in the file.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Formats the optional line and key of a [`ConfigError::File`].
struct Location<'a>(Option<usize>, Option<&'a str>);

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.0 {
            write!(f, ":{line}")?;
        }
        if let Some(key) = self.1 {
            write!(f, ": `{key}`")?;
        }
        Ok(())
    }
}

impl Config {
    /// Loads the settings: defaults, then `file` (if any), then the
    /// `HEARTH_*` variables among `env`, each overriding the one before.
    /// Command-line flags are applied by the caller, who then calls
    /// [`Config::validate`] again.
    pub fn load(
        file: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            config
                .apply_toml(&text)
                .map_err(|err| file_error(path, &text, &err))?;
        }
        for (var, value) in env {
            let Some(name) = var.strip_prefix("HEARTH_") else {
                continue;
            };
            config
                .apply_env(name, &value)
                .map_err(|message| ConfigError::Env { var, message })?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks that the settings are in range and consistent.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.into(),
            })
        };
        let core = &self.core;
        if self.cert_file.is_some() != self.key_file.is_some() {
            return invalid("cert_file", "cert_file and key_file must be set together");
        }
        if self.max_connections == 0 {
            return invalid("max_connections", "must be at least 1");
        }
        if self.max_connections_per_ip == 0 {
            return invalid("max_connections_per_ip", "must be at least 1");
        }
        if core.auth_timeout.is_zero() {
            return invalid("auth_timeout", "must be longer than zero");
        }
        if core.send_records_per_mailbox == 0 {
            return invalid("limits.send_records_per_mailbox", "must be at least 1");
        }
        if self.idle_timeout.is_zero() || self.keep_alive >= self.idle_timeout {
            return invalid("keep_alive", "must be shorter than idle_timeout");
        }
        if self.expiry_sweep.is_zero() {
            return invalid("expiry_sweep", "must be longer than zero");
        }
        if core.max_body_bytes > core.max_frame_bytes {
            return invalid(
                "limits.max_body_bytes",
                "must not exceed limits.max_frame_bytes",
            );
        }
        if core.delivery_window == 0 || core.delivery_batch == 0 {
            return invalid(
                "limits.delivery_window",
                "delivery_window and delivery_batch must be at least 1",
            );
        }
        for (key, rate) in [
            ("limits.rate_limit", core.rate_limit),
            ("limits.prekey_fetch_limit", core.prekey_fetch_limit),
        ] {
            if rate.burst < 1.0 {
                return invalid(key, "burst must be at least 1");
            }
        }
        Ok(())
    }

    /// Host name or IP printed in the relay's address: `public_host`, or
    /// the listen IP, or loopback when listening on the unspecified address
    /// (`127.0.0.1`, or `::1` for `[::]`).
    pub fn relay_host(&self) -> String {
        if let Some(host) = &self.public_host {
            return host.clone();
        }
        match self.listen.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => Ipv4Addr::LOCALHOST.to_string(),
            IpAddr::V6(ip) if ip.is_unspecified() => Ipv6Addr::LOCALHOST.to_string(),
            ip => ip.to_string(),
        }
    }

    /// The relay's address for a fingerprint: [`Config::relay_host`] and the
    /// listen port.
    pub fn relay_address(&self, fingerprint: Fingerprint) -> RelayAddress {
        RelayAddress {
            fingerprint,
            host: self.relay_host(),
            port: self.listen.port(),
        }
    }

    /// Applies the settings of a TOML document.
    fn apply_toml(&mut self, text: &str) -> Result<(), toml::de::Error> {
        let file: FileConfig = toml::from_str(text)?;
        file.apply(self);
        Ok(())
    }

    /// Applies one `HEARTH_<name>` variable; unknown names are ignored.
    fn apply_env(&mut self, name: &str, value: &str) -> Result<(), String> {
        if let Some(limit) = name.strip_prefix("LIMITS_") {
            return apply_limit_env(&mut self.core, limit, value);
        }
        match name {
            "LISTEN" => self.listen = parse(value, "an address such as 0.0.0.0:4433")?,
            "DATA" | "DATA_DIR" => self.data_dir = non_empty(value)?.into(),
            "PUBLIC_HOST" => self.public_host = optional(value).map(str::to_owned),
            "CERT_FILE" => self.cert_file = optional(value).map(PathBuf::from),
            "KEY_FILE" => self.key_file = optional(value).map(PathBuf::from),
            "MAX_CONNECTIONS" => self.max_connections = parse(value, "a whole number")?,
            "MAX_CONNECTIONS_PER_IP" => {
                self.max_connections_per_ip = parse(value, "a whole number")?;
            }
            "AUTH_TIMEOUT" => self.core.auth_timeout = parse_duration(value)?,
            "KEEP_ALIVE" => self.keep_alive = parse_duration(value)?,
            "IDLE_TIMEOUT" => self.idle_timeout = parse_duration(value)?,
            "UDP_BUFFER_BYTES" => self.udp_buffer_bytes = parse(value, "a size in bytes")?,
            "GSO" => self.gso = parse_bool(value)?,
            "EXPIRY_SWEEP" => self.expiry_sweep = parse_duration(value)?,
            "LOG" => self.log = non_empty(value)?.to_owned(),
            "REGISTRATION" => self.core.registration = parse_registration(value)?,
            _ => {}
        }
        Ok(())
    }
}

/// Applies one `HEARTH_LIMITS_<name>` variable; unknown names are ignored.
fn apply_limit_env(core: &mut CoreConfig, name: &str, value: &str) -> Result<(), String> {
    const COUNT: &str = "a whole number";
    const SIZE: &str = "a size in bytes";
    match name {
        "MAX_BODY_BYTES" => core.max_body_bytes = parse(value, SIZE)?,
        "MAX_HEADER_BYTES" => core.max_header_bytes = parse(value, SIZE)?,
        "MAX_RECIPIENTS" => core.max_recipients = parse(value, COUNT)?,
        "ENVELOPE_TTL" => core.envelope_ttl = parse_duration(value)?,
        "MAILBOX_MAX_ENVELOPES" => core.mailbox_max_envelopes = parse(value, COUNT)?,
        "MAILBOX_MAX_BYTES" => core.mailbox_max_bytes = parse(value, SIZE)?,
        "RATE_LIMIT" => core.rate_limit.per_second = parse_rate(value)?,
        "RATE_LIMIT_BURST" => core.rate_limit.burst = parse(value, "a number")?,
        "PREKEY_FETCH_LIMIT" => core.prekey_fetch_limit.per_second = parse_rate(value)?,
        "PREKEY_FETCH_LIMIT_BURST" => core.prekey_fetch_limit.burst = parse(value, "a number")?,
        "MAX_PREKEYS_PER_KIND" => core.max_prekeys_per_kind = parse(value, COUNT)?,
        "MAX_PREKEY_BYTES" => core.max_prekey_bytes = parse(value, SIZE)?,
        "DELIVERY_WINDOW" => core.delivery_window = parse(value, COUNT)?,
        "DELIVERY_WINDOW_BYTES" => core.delivery_window_bytes = parse(value, SIZE)?,
        "DELIVERY_BATCH" => core.delivery_batch = parse(value, COUNT)?,
        "MAX_FRAME_BYTES" => core.max_frame_bytes = parse(value, SIZE)?,
        "SEND_RECORD_TTL" => core.send_record_ttl = parse_duration(value)?,
        "SEND_RECORDS_PER_MAILBOX" => core.send_records_per_mailbox = parse(value, COUNT)?,
        "MAX_BAD_FRAMES" => core.max_bad_frames = parse(value, COUNT)?,
        _ => {}
    }
    Ok(())
}

/// Parses a value with [`FromStr`]; the error says what was expected.
fn parse<T: FromStr>(value: &str, expected: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("expected {expected}"))
}

/// A value that must not be empty.
fn non_empty(value: &str) -> Result<&str, String> {
    if value.is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(value)
    }
}

/// An optional value: empty means unset.
fn optional(value: &str) -> Option<&str> {
    Some(value).filter(|v| !v.is_empty())
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".to_owned()),
    }
}

/// `token` or `open`.
fn parse_registration(value: &str) -> Result<RegistrationMode, String> {
    match value.trim() {
        "token" => Ok(RegistrationMode::Token),
        "open" => Ok(RegistrationMode::Open),
        _ => Err("expected `token` or `open`".to_owned()),
    }
}

/// A humantime duration such as `12s`, `10min` or `30days`.
fn parse_duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value.trim())
        .map_err(|err| format!("expected a duration such as \"12s\" or \"30days\" ({err})"))
}

/// A rate such as `1000/s`, `10/min` or `100/h`, as events per second.
fn parse_rate(value: &str) -> Result<f64, String> {
    const EXPECTED: &str = "expected a rate such as \"1000/s\" or \"10/min\"";
    let (count, unit) = value.trim().split_once('/').ok_or(EXPECTED)?;
    let count: f64 = count.trim().parse().map_err(|_| EXPECTED)?;
    let seconds = match unit.trim() {
        "s" | "sec" | "second" => 1.0,
        "min" | "minute" => 60.0,
        "h" | "hour" => 3600.0,
        _ => return Err(EXPECTED.to_owned()),
    };
    if !count.is_finite() || count <= 0.0 {
        return Err(format!("{EXPECTED}, above zero"));
    }
    Ok(count / seconds)
}

/// Builds a [`ConfigError::File`] naming the line and key of a TOML error.
fn file_error(path: &Path, text: &str, err: &toml::de::Error) -> ConfigError {
    let message = err.message().replace('\n', " ");
    let Some(span) = err.span() else {
        return ConfigError::File {
            path: path.to_owned(),
            line: None,
            key: None,
            message,
        };
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    ConfigError::File {
        path: path.to_owned(),
        line: Some(line),
        key: key_at(before, text),
        message,
    }
}

/// The dotted key defined on the line where `before` ends: the text before
/// `=` on that line, prefixed by the table header above it.
fn key_at(before: &str, text: &str) -> Option<String> {
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let key = line
        .split_once('=')
        .map(|(key, _)| key.trim().trim_matches('"'))?;
    let table = before[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim());
    Some(match table {
        Some(table) => format!("{table}.{key}"),
        None => key.to_owned(),
    })
}

/// The TOML file: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    public_host: Option<String>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    #[serde(default, deserialize_with = "duration")]
    auth_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    keep_alive: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    idle_timeout: Option<Duration>,
    udp_buffer_bytes: Option<usize>,
    gso: Option<bool>,
    #[serde(default, deserialize_with = "duration")]
    expiry_sweep: Option<Duration>,
    log: Option<String>,
    registration: Option<RegistrationMode>,
    #[serde(default)]
    limits: LimitsFile,
}

/// The `[limits]` table of the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    max_body_bytes: Option<usize>,
    max_header_bytes: Option<usize>,
    max_recipients: Option<usize>,
    #[serde(default, deserialize_with = "duration")]
    envelope_ttl: Option<Duration>,
    mailbox_max_envelopes: Option<u32>,
    mailbox_max_bytes: Option<u64>,
    #[serde(default, deserialize_with = "rate")]
    rate_limit: Option<f64>,
    rate_limit_burst: Option<f64>,
    #[serde(default, deserialize_with = "rate")]
    prekey_fetch_limit: Option<f64>,
    prekey_fetch_limit_burst: Option<f64>,
    max_prekeys_per_kind: Option<usize>,
    max_prekey_bytes: Option<usize>,
    delivery_window: Option<usize>,
    delivery_window_bytes: Option<u64>,
    delivery_batch: Option<usize>,
    max_frame_bytes: Option<usize>,
    #[serde(default, deserialize_with = "duration")]
    send_record_ttl: Option<Duration>,
    send_records_per_mailbox: Option<usize>,
    max_bad_frames: Option<u32>,
}

/// Overwrites `$target` when `$value` is set.
macro_rules! set {
    ($target:expr, $value:expr) => {
        if let Some(value) = $value {
            $target = value;
        }
    };
}

impl FileConfig {
    /// Overwrites the settings this file sets.
    fn apply(self, config: &mut Config) {
        set!(config.listen, self.listen);
        set!(config.data_dir, self.data_dir);
        set!(config.public_host, self.public_host.map(Some));
        set!(config.cert_file, self.cert_file.map(Some));
        set!(config.key_file, self.key_file.map(Some));
        set!(config.max_connections, self.max_connections);
        set!(config.max_connections_per_ip, self.max_connections_per_ip);
        set!(config.core.auth_timeout, self.auth_timeout);
        set!(config.keep_alive, self.keep_alive);
        set!(config.idle_timeout, self.idle_timeout);
        set!(config.udp_buffer_bytes, self.udp_buffer_bytes);
        set!(config.gso, self.gso);
        set!(config.expiry_sweep, self.expiry_sweep);
        set!(config.log, self.log);
        set!(config.core.registration, self.registration);
        self.limits.apply(&mut config.core);
    }
}

impl LimitsFile {
    /// Overwrites the limits this table sets.
    fn apply(self, core: &mut CoreConfig) {
        set!(core.max_body_bytes, self.max_body_bytes);
        set!(core.max_header_bytes, self.max_header_bytes);
        set!(core.max_recipients, self.max_recipients);
        set!(core.envelope_ttl, self.envelope_ttl);
        set!(core.mailbox_max_envelopes, self.mailbox_max_envelopes);
        set!(core.mailbox_max_bytes, self.mailbox_max_bytes);
        set!(core.rate_limit.per_second, self.rate_limit);
        set!(core.rate_limit.burst, self.rate_limit_burst);
        set!(core.prekey_fetch_limit.per_second, self.prekey_fetch_limit);
        set!(core.prekey_fetch_limit.burst, self.prekey_fetch_limit_burst);
        set!(core.max_prekeys_per_kind, self.max_prekeys_per_kind);
        set!(core.max_prekey_bytes, self.max_prekey_bytes);
        set!(core.delivery_window, self.delivery_window);
        set!(core.delivery_window_bytes, self.delivery_window_bytes);
        set!(core.delivery_batch, self.delivery_batch);
        set!(core.max_frame_bytes, self.max_frame_bytes);
        set!(core.send_record_ttl, self.send_record_ttl);
        set!(core.send_records_per_mailbox, self.send_records_per_mailbox);
        set!(core.max_bad_frames, self.max_bad_frames);
    }
}

/// Deserializes a humantime duration string.
fn duration<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(de)?;
    parse_duration(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// Deserializes a rate string such as `"10/min"` into events per second.
fn rate<'de, D: Deserializer<'de>>(de: D) -> Result<Option<f64>, D::Error> {
    let text = String::deserialize(de)?;
    parse_rate(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests;
