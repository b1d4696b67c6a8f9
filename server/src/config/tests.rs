//! Tests of loading the relay's settings.

use super::*;
use crate::core::RateLimit;

const EXAMPLE: &str = include_str!("../../hearth-relay.example.toml");

/// A configuration in which every setting differs from its default.
fn scrambled() -> Config {
    Config {
        listen: "10.1.2.3:7000".parse().unwrap(),
        data_dir: PathBuf::from("/var/lib/hearth"),
        public_host: Some("relay.example.org".into()),
        cert_file: Some(PathBuf::from("/etc/hearth/cert.pem")),
        key_file: Some(PathBuf::from("/etc/hearth/key.pem")),
        max_connections: 7,
        max_connections_per_ip: 3,
        keep_alive: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(30),
        udp_buffer_bytes: 1024,
        gso: false,
        expiry_sweep: Duration::from_secs(600),
        log: "debug".into(),
        core: CoreConfig {
            registration: RegistrationMode::Open,
            max_body_bytes: 1000,
            max_header_bytes: 100,
            max_recipients: 10,
            envelope_ttl: Duration::from_secs(3600),
            mailbox_max_envelopes: 11,
            mailbox_max_bytes: 12,
            rate_limit: RateLimit {
                per_second: 5.0,
                burst: 6.0,
            },
            prekey_fetch_limit: RateLimit {
                per_second: 2.0 / 3600.0,
                burst: 3.0,
            },
            max_prekeys_per_kind: 13,
            max_prekey_bytes: 14,
            delivery_window: 15,
            delivery_window_bytes: 16,
            delivery_batch: 17,
            max_frame_bytes: 2000,
            send_record_ttl: Duration::from_secs(60),
            send_records_per_mailbox: 19,
            auth_timeout: Duration::from_secs(4),
            max_bad_frames: 18,
        },
    }
}

const SCRAMBLED_TOML: &str = r#"
listen = "10.1.2.3:7000"
data_dir = "/var/lib/hearth"
public_host = "relay.example.org"
cert_file = "/etc/hearth/cert.pem"
key_file = "/etc/hearth/key.pem"
registration = "open"
max_connections = 7
max_connections_per_ip = 3
auth_timeout = "4s"
keep_alive = "5s"
idle_timeout = "30s"
udp_buffer_bytes = 1024
gso = false
expiry_sweep = "10min"
log = "debug"

[limits]
max_body_bytes = 1000
max_header_bytes = 100
max_recipients = 10
envelope_ttl = "1h"
mailbox_max_envelopes = 11
mailbox_max_bytes = 12
rate_limit = "5/s"
rate_limit_burst = 6
prekey_fetch_limit = "2/h"
prekey_fetch_limit_burst = 3
max_prekeys_per_kind = 13
max_prekey_bytes = 14
delivery_window = 15
delivery_window_bytes = 16
delivery_batch = 17
max_frame_bytes = 2000
send_record_ttl = "1min"
send_records_per_mailbox = 19
max_bad_frames = 18
"#;

const SCRAMBLED_ENV: &[(&str, &str)] = &[
    ("HEARTH_LISTEN", "10.1.2.3:7000"),
    ("HEARTH_DATA", "/var/lib/hearth"),
    ("HEARTH_PUBLIC_HOST", "relay.example.org"),
    ("HEARTH_CERT_FILE", "/etc/hearth/cert.pem"),
    ("HEARTH_KEY_FILE", "/etc/hearth/key.pem"),
    ("HEARTH_REGISTRATION", "open"),
    ("HEARTH_MAX_CONNECTIONS", "7"),
    ("HEARTH_MAX_CONNECTIONS_PER_IP", "3"),
    ("HEARTH_AUTH_TIMEOUT", "4s"),
    ("HEARTH_KEEP_ALIVE", "5s"),
    ("HEARTH_IDLE_TIMEOUT", "30s"),
    ("HEARTH_UDP_BUFFER_BYTES", "1024"),
    ("HEARTH_GSO", "off"),
    ("HEARTH_EXPIRY_SWEEP", "10min"),
    ("HEARTH_LOG", "debug"),
    ("HEARTH_LIMITS_MAX_BODY_BYTES", "1000"),
    ("HEARTH_LIMITS_MAX_HEADER_BYTES", "100"),
    ("HEARTH_LIMITS_MAX_RECIPIENTS", "10"),
    ("HEARTH_LIMITS_ENVELOPE_TTL", "1h"),
    ("HEARTH_LIMITS_MAILBOX_MAX_ENVELOPES", "11"),
    ("HEARTH_LIMITS_MAILBOX_MAX_BYTES", "12"),
    ("HEARTH_LIMITS_RATE_LIMIT", "5/s"),
    ("HEARTH_LIMITS_RATE_LIMIT_BURST", "6"),
    ("HEARTH_LIMITS_PREKEY_FETCH_LIMIT", "2/hour"),
    ("HEARTH_LIMITS_PREKEY_FETCH_LIMIT_BURST", "3"),
    ("HEARTH_LIMITS_MAX_PREKEYS_PER_KIND", "13"),
    ("HEARTH_LIMITS_MAX_PREKEY_BYTES", "14"),
    ("HEARTH_LIMITS_DELIVERY_WINDOW", "15"),
    ("HEARTH_LIMITS_DELIVERY_WINDOW_BYTES", "16"),
    ("HEARTH_LIMITS_DELIVERY_BATCH", "17"),
    ("HEARTH_LIMITS_MAX_FRAME_BYTES", "2000"),
    ("HEARTH_LIMITS_SEND_RECORD_TTL", "1min"),
    ("HEARTH_LIMITS_SEND_RECORDS_PER_MAILBOX", "19"),
    ("HEARTH_LIMITS_MAX_BAD_FRAMES", "18"),
];

fn env(vars: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
    vars.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<Vec<_>>()
        .into_iter()
}

fn write_file(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("relay.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn load_text(text: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    Config::load(Some(&write_file(&dir, text)), env(&[]))
}

#[test]
fn example_file_sets_every_option_to_its_default() {
    // Applied over a configuration where everything differs, the example
    // must restore every default: a missing or wrong line fails here.
    let mut config = scrambled();
    config.public_host = None;
    config.cert_file = None;
    config.key_file = None;
    config.apply_toml(EXAMPLE).unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(load_text(EXAMPLE).unwrap(), Config::default());
    for optional in ["# public_host = ", "# cert_file = ", "# key_file = "] {
        assert!(EXAMPLE.contains(optional), "example documents {optional}");
    }
}

#[test]
fn file_sets_every_option() {
    assert_eq!(load_text(SCRAMBLED_TOML).unwrap(), scrambled());
}

#[test]
fn env_sets_every_option() {
    assert_eq!(Config::load(None, env(SCRAMBLED_ENV)).unwrap(), scrambled());
}

#[test]
fn no_file_and_no_env_is_the_default() {
    let unrelated = [
        ("PATH", "/bin"),
        ("HEARTH_CONFIG", "x.toml"),
        ("HEARTH_HOME", "/h"),
    ];
    assert_eq!(
        Config::load(None, env(&unrelated)).unwrap(),
        Config::default()
    );
}

#[test]
fn env_overrides_file_overrides_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        &dir,
        "listen = \"127.0.0.1:1000\"\nlog = \"warn\"\n[limits]\nmax_recipients = 5\n",
    );
    let vars = [
        ("HEARTH_LISTEN", "127.0.0.1:2000"),
        ("HEARTH_LIMITS_MAX_RECIPIENTS", "6"),
    ];
    let config = Config::load(Some(&file), env(&vars)).unwrap();
    assert_eq!(config.listen, "127.0.0.1:2000".parse().unwrap());
    assert_eq!(config.log, "warn");
    assert_eq!(config.core.max_recipients, 6);
    assert_eq!(config.max_connections, Config::default().max_connections);
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    for (text, name) in [
        ("listn = \"0.0.0.0:1\"\n", "listn"),
        ("[limits]\nmax_bodyy = 1\n", "max_bodyy"),
        ("[limitz]\nmax_body_bytes = 1\n", "limitz"),
    ] {
        let err = load_text(text).unwrap_err();
        assert!(matches!(err, ConfigError::File { .. }), "{err:?}");
        assert!(err.to_string().contains(name), "{text}: {err}");
        assert!(!err.to_string().contains('\n'), "one line: {err}");
    }
}

#[test]
fn wrong_values_in_the_file_name_key_and_line() {
    for (text, want_key, want_line) in [
        (
            "log = \"info\"\nmax_connections = \"many\"\n",
            "max_connections",
            2,
        ),
        ("registration = \"public\"\n", "registration", 1),
        (
            "gso = true\n[limits]\n\nenvelope_ttl = \"forever\"\n",
            "limits.envelope_ttl",
            4,
        ),
        ("[limits]\nrate_limit = \"fast\"\n", "limits.rate_limit", 2),
        ("listen = \"nowhere\"\n", "listen", 1),
    ] {
        let err = load_text(text).unwrap_err();
        let ConfigError::File { key, line, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(key.as_deref(), Some(want_key), "{text}: {err}");
        assert_eq!(*line, Some(want_line), "{text}: {err}");
        assert!(err.to_string().contains(want_key), "{err}");
    }
}

#[test]
fn wrong_values_in_env_name_the_variable() {
    for (var, value) in [
        ("HEARTH_MAX_CONNECTIONS", "many"),
        ("HEARTH_REGISTRATION", "public"),
        ("HEARTH_GSO", "maybe"),
        ("HEARTH_KEEP_ALIVE", "soon"),
        ("HEARTH_LISTEN", "nowhere"),
        ("HEARTH_LIMITS_PREKEY_FETCH_LIMIT", "10/fortnight"),
        ("HEARTH_LIMITS_RATE_LIMIT", "-1/s"),
        ("HEARTH_DATA", ""),
    ] {
        let err = Config::load(None, env(&[(var, value)])).unwrap_err();
        let ConfigError::Env { var: named, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(named, var);
        assert!(err.to_string().contains(var), "{err}");
    }
}

#[test]
fn inconsistent_settings_are_refused() {
    for (text, key) in [
        ("cert_file = \"c.pem\"\n", "cert_file"),
        (
            "keep_alive = \"60s\"\nidle_timeout = \"60s\"\n",
            "keep_alive",
        ),
        ("expiry_sweep = \"0s\"\n", "expiry_sweep"),
        ("max_connections = 0\n", "max_connections"),
        ("max_connections_per_ip = 0\n", "max_connections_per_ip"),
        ("auth_timeout = \"0s\"\n", "auth_timeout"),
        (
            "[limits]\nsend_records_per_mailbox = 0\n",
            "limits.send_records_per_mailbox",
        ),
        (
            "[limits]\nmax_body_bytes = 300000\n",
            "limits.max_body_bytes",
        ),
        ("[limits]\nrate_limit_burst = 0\n", "limits.rate_limit"),
    ] {
        let err = load_text(text).unwrap_err();
        let ConfigError::Invalid { key: named, .. } = &err else {
            panic!("{text}: {err:?}")
        };
        assert_eq!(*named, key);
    }
}

#[test]
fn missing_file_is_a_read_error_naming_it() {
    let err = Config::load(Some(Path::new("/nonexistent/relay.toml")), env(&[])).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/relay.toml"));
}

#[test]
fn relay_host_prefers_public_host_then_listen_ip_then_loopback() {
    let mut config = Config::default();
    assert_eq!(config.relay_host(), "127.0.0.1");
    config.listen = "[::]:4433".parse().unwrap();
    assert_eq!(config.relay_host(), "::1");
    config.listen = "10.0.0.5:4433".parse().unwrap();
    assert_eq!(config.relay_host(), "10.0.0.5");
    config.public_host = Some("relay.example.org".into());
    assert_eq!(config.relay_host(), "relay.example.org");
    let fingerprint = Fingerprint::of_spki(b"spki");
    let address = config.relay_address(fingerprint).to_string();
    assert_eq!(
        address,
        format!("hearth://{fingerprint}@relay.example.org:4433")
    );
}

#[test]
fn rates_accept_seconds_minutes_and_hours() {
    assert_eq!(parse_rate("1000/s"), Ok(1000.0));
    assert_eq!(parse_rate("10/min"), Ok(10.0 / 60.0));
    assert_eq!(parse_rate(" 36 / hour "), Ok(0.01));
    assert!(parse_rate("10").is_err());
    assert!(parse_rate("0/s").is_err());
    assert!(parse_rate("NaN/s").is_err());
}
