//! `hearth-relay`: runs a Hearth relay, prints its address and issues,
//! lists and revokes registration tokens.
//!
//! Settings come from defaults, a TOML file (`--config` or `HEARTH_CONFIG`),
//! `HEARTH_*` environment variables and flags, each overriding the one
//! before. Exit codes: 0 success, 1 runtime error, 2 usage or configuration
//! error.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand, ValueEnum};
use hearth_relay::config::{Config, ConfigError};
use hearth_relay::core::RegistrationMode;
use hearth_relay::registration::{self, RegistrationError};
use hearth_relay::tls::RelayIdentity;

/// jemalloc instead of the system allocator: fjall frees a flushed memtable
/// entry by entry while holding a lock, which glibc's malloc makes slow
/// enough to stall commits (p99 at 7,500 sends/s: 24–58 ms with glibc,
/// 15–19 ms with jemalloc; docs/BENCHMARKS.md).
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A Hearth relay: durable store-and-forward of opaque encrypted envelopes
/// over QUIC. Without a command, runs the relay.
#[derive(Debug, Parser)]
#[command(name = "hearth-relay", version, args_conflicts_with_subcommands = true)]
struct Cli {
    /// What to do (default: run).
    #[command(subcommand)]
    command: Option<Command>,
    /// Flags of `run`, when no command is given.
    #[command(flatten)]
    run: RunArgs,
}

/// The relay's commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the relay until SIGINT or SIGTERM (the default command).
    Run(RunArgs),
    /// Print the relay's address, hearth://<fingerprint>@<host>:<port>,
    /// creating its identity if missing.
    Address(AddressArgs),
    /// Manage registration tokens (needed to register on a private relay).
    #[command(subcommand)]
    Token(TokenCommand),
}

/// Registration token commands.
#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Issue a registration token and print it. Works while the relay runs.
    Create(TokenCreateArgs),
    /// List issued registration tokens: id, creation, expiry, uses allowed
    /// and label (never the tokens themselves).
    List(TokenListArgs),
    /// Revoke a registration token by its id (from `token list`) or the
    /// token itself. Works while the relay runs: its next registration
    /// refuses the token.
    Revoke(TokenRevokeArgs),
}

/// Where the settings come from.
#[derive(Debug, Args)]
struct SourceArgs {
    /// Configuration file (TOML); see hearth-relay.example.toml for every option.
    #[arg(long, value_name = "FILE", env = "HEARTH_CONFIG")]
    config: Option<PathBuf>,
    /// Folder for the store, the identity and registration tokens [default: hearth-data].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

/// Where the relay is reached.
#[derive(Debug, Args)]
struct EndpointArgs {
    /// UDP address to listen on [default: 0.0.0.0:4433].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Host name or IP printed in the relay address [default: the listen IP, or 127.0.0.1].
    #[arg(long, value_name = "HOST")]
    public_host: Option<String>,
}

/// Flags of `run`.
#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    endpoint: EndpointArgs,
    /// Who may register mailboxes [default: token].
    #[arg(long, value_enum)]
    registration: Option<Registration>,
}

/// Flags of `address`.
#[derive(Debug, Args)]
struct AddressArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    endpoint: EndpointArgs,
}

/// Flags of `token create`.
#[derive(Debug, Args)]
struct TokenCreateArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// How many mailboxes the token may register.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    uses: u32,
    /// How long the token stays valid, e.g. 7d or 12h [default: forever].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    expires: Option<Duration>,
    /// A note of whom the token is for, shown by `token list` (up to 64 characters).
    #[arg(long, value_name = "TEXT")]
    label: Option<String>,
}

/// Flags of `token list`.
#[derive(Debug, Args)]
struct TokenListArgs {
    #[command(flatten)]
    source: SourceArgs,
}

/// Flags of `token revoke`.
#[derive(Debug, Args)]
struct TokenRevokeArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// The token's id as `token list` shows it (or a longer start of its
    /// hash), or the token itself.
    #[arg(value_name = "ID")]
    id: String,
}

/// `--registration` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Registration {
    /// Only holders of a token from `hearth-relay token create` (a private relay).
    Token,
    /// Anyone (a public relay).
    Open,
}

impl From<Registration> for RegistrationMode {
    fn from(value: Registration) -> Self {
        match value {
            Registration::Token => Self::Token,
            Registration::Open => Self::Open,
        }
    }
}

/// Why a command failed, and so which exit code it gets.
#[derive(Debug)]
enum Failure {
    /// Bad usage or settings: exit code 2.
    Usage(String),
    /// Failure while doing the work: exit code 1.
    Runtime(String),
}

impl From<ConfigError> for Failure {
    fn from(err: ConfigError) -> Self {
        Self::Usage(err.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => run(&cli.run),
        Some(Command::Run(args)) => run(&args),
        Some(Command::Address(args)) => address(&args),
        Some(Command::Token(TokenCommand::Create(args))) => create_token(&args),
        Some(Command::Token(TokenCommand::List(args))) => list_tokens(&args),
        Some(Command::Token(TokenCommand::Revoke(args))) => revoke_token(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => fail(&message, 2),
        Err(Failure::Runtime(message)) => fail(&message, 1),
    }
}

/// Prints a one-line error and returns the exit code.
fn fail(message: &str, code: u8) -> ExitCode {
    eprintln!("hearth-relay: error: {}", message.replace('\n', " "));
    ExitCode::from(code)
}

/// `hearth-relay run`.
fn run(args: &RunArgs) -> Result<(), Failure> {
    let mut config = load_config(&args.source)?;
    args.endpoint.apply(&mut config);
    if let Some(registration) = args.registration {
        config.core.registration = registration.into();
    }
    config.validate()?;
    init_tracing(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| Failure::Runtime(format!("starting the async runtime: {err}")))?;
    runtime
        .block_on(hearth_relay::net::run(config))
        .map_err(|err| Failure::Runtime(format!("{err:#}")))
}

/// `hearth-relay address`.
fn address(args: &AddressArgs) -> Result<(), Failure> {
    let mut config = load_config(&args.source)?;
    args.endpoint.apply(&mut config);
    config.validate()?;
    init_tracing(&config)?;
    let identity =
        RelayIdentity::for_config(&config).map_err(|err| Failure::Runtime(err.to_string()))?;
    println!("{}", config.relay_address(identity.fingerprint));
    Ok(())
}

/// `hearth-relay token create`.
fn create_token(args: &TokenCreateArgs) -> Result<(), Failure> {
    let config = load_config(&args.source)?;
    config.validate()?;
    init_tracing(&config)?;
    let token = registration::create(
        &config.data_dir,
        args.uses,
        args.expires,
        args.label.as_deref(),
        now_ms(),
        &mut rand::rng(),
    )
    .map_err(|err| match err {
        RegistrationError::BadLabel => Failure::Usage(err.to_string()),
        err => Failure::Runtime(err.to_string()),
    })?;
    if config.core.registration == RegistrationMode::Open {
        eprintln!("note: registration is open on this relay, so nobody needs this token");
    }
    let uses = match args.uses {
        1 => "1 mailbox".to_owned(),
        n => format!("{n} mailboxes"),
    };
    let expiry = match args.expires {
        Some(ttl) => format!(", valid for {}", humantime::format_duration(ttl)),
        None => String::new(),
    };
    eprintln!(
        "Registration token for {uses}{expiry}. Give it only to the person who may register:"
    );
    println!("{token}");
    Ok(())
}

/// `hearth-relay token list`: one line per token on stdout, oldest first.
fn list_tokens(args: &TokenListArgs) -> Result<(), Failure> {
    let config = load_config(&args.source)?;
    config.validate()?;
    init_tracing(&config)?;
    let tokens =
        registration::list(&config.data_dir).map_err(|err| Failure::Runtime(err.to_string()))?;
    if tokens.is_empty() {
        eprintln!("no registration tokens");
        return Ok(());
    }
    let now = now_ms();
    println!(
        "{:<12}  {:<20}  {:<20}  {:>4}  LABEL",
        "ID", "CREATED", "EXPIRES", "USES"
    );
    for token in tokens {
        let created = token.created_at.map_or_else(|| "-".to_owned(), timestamp);
        let expires = match token.expires_at {
            None => "never".to_owned(),
            Some(at) if at <= now => format!("expired {}", timestamp(at)),
            Some(at) => timestamp(at),
        };
        let label = token.label.unwrap_or_default();
        println!(
            "{:<12}  {created:<20}  {expires:<20}  {:>4}  {label}",
            token.id, token.uses
        );
    }
    Ok(())
}

/// `hearth-relay token revoke ID`.
fn revoke_token(args: &TokenRevokeArgs) -> Result<(), Failure> {
    let config = load_config(&args.source)?;
    config.validate()?;
    init_tracing(&config)?;
    let id = registration::revoke(&config.data_dir, &args.id).map_err(|err| match err {
        RegistrationError::Io { .. } => Failure::Runtime(err.to_string()),
        err => Failure::Usage(err.to_string()),
    })?;
    eprintln!("Revoked registration token {id}; it registers no more mailboxes.");
    Ok(())
}

/// Milliseconds since the Unix epoch, now.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// A UTC time to the second, e.g. `2025-01-31T09:30:00Z`.
fn timestamp(ms: u64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Defaults, then the configuration file, then `HEARTH_*` variables, then
/// `--data`.
fn load_config(source: &SourceArgs) -> Result<Config, Failure> {
    let env = std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)));
    let mut config = Config::load(source.config.as_deref(), env)?;
    if let Some(data) = &source.data {
        config.data_dir.clone_from(data);
    }
    Ok(config)
}

impl EndpointArgs {
    /// Overrides the settings these flags set.
    fn apply(&self, config: &mut Config) {
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(host) = &self.public_host {
            config.public_host = Some(host.clone());
        }
    }
}

/// Logs to stderr, filtered by the `log` setting.
fn init_tracing(config: &Config) -> Result<(), Failure> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .map_err(|err| Failure::Usage(format!("setting `log`: {err}")))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init()
        .map_err(|err| Failure::Runtime(format!("setting up logging: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_command_means_run_with_its_flags() {
        let cli =
            Cli::try_parse_from(["hearth-relay", "--data", "d", "--registration", "open"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.run.source.data, Some(PathBuf::from("d")));
        assert!(matches!(cli.run.registration, Some(Registration::Open)));
    }

    #[test]
    fn token_create_parses_uses_and_expiry() {
        let cli =
            Cli::try_parse_from(["hearth-relay", "token", "create", "--expires", "7d"]).unwrap();
        let Some(Command::Token(TokenCommand::Create(args))) = cli.command else {
            panic!()
        };
        assert_eq!(
            (args.uses, args.expires),
            (1, Some(Duration::from_secs(7 * 86400)))
        );
        assert!(Cli::try_parse_from(["hearth-relay", "token", "create", "--uses", "0"]).is_err());
        assert!(
            Cli::try_parse_from(["hearth-relay", "token", "create", "--expires", "x"]).is_err()
        );
    }

    #[test]
    fn token_create_takes_a_label_and_list_and_revoke_parse() {
        let cli =
            Cli::try_parse_from(["hearth-relay", "token", "create", "--label", "Alex"]).unwrap();
        let Some(Command::Token(TokenCommand::Create(args))) = cli.command else {
            panic!()
        };
        assert_eq!(args.label.as_deref(), Some("Alex"));
        let cli = Cli::try_parse_from(["hearth-relay", "token", "list", "--data", "d"]).unwrap();
        let Some(Command::Token(TokenCommand::List(args))) = cli.command else {
            panic!()
        };
        assert_eq!(args.source.data, Some(PathBuf::from("d")));
        let cli = Cli::try_parse_from(["hearth-relay", "token", "revoke", "0123456789ab"]).unwrap();
        let Some(Command::Token(TokenCommand::Revoke(args))) = cli.command else {
            panic!()
        };
        assert_eq!(args.id, "0123456789ab");
        assert!(
            Cli::try_parse_from(["hearth-relay", "token", "revoke"]).is_err(),
            "revoke needs an id"
        );
    }

    #[test]
    fn timestamps_are_utc_to_the_second() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(1_700_000_000_999), "2023-11-14T22:13:20Z");
    }
}
