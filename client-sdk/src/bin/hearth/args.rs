//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use hearth_client::RelayAddress;

/// Hearth: end-to-end encrypted messages for peer-support circles.
///
/// Set up this device with `hearth init`, exchange contact links with
/// `hearth contact invite` and `hearth contact accept`, then `hearth dm` and
/// `hearth sync`. Nothing is interactive, so every command works in scripts.
///
/// The device's store is encrypted. It is unlocked by the passphrase in
/// HEARTH_PASSPHRASE or, if that is unset, by the key file DIR/key (mode
/// 0600) that `hearth init` creates.
#[derive(Debug, Parser)]
#[command(name = "hearth", version, propagate_version = true)]
pub(crate) struct Cli {
    /// The folder holding this device [default: ~/.hearth]
    #[arg(long, global = true, value_name = "DIR", env = "HEARTH_HOME")]
    pub(crate) home: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Set up this device: create its encrypted store and register a
    /// mailbox on a relay. Prints the member id as the last line.
    Init(InitArgs),
    /// Show this device's name, member id and relay.
    Whoami {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Contacts: invite, accept, list, verify.
    #[command(subcommand)]
    Contact(ContactCommand),
    /// Send a text message to a contact.
    ///
    /// The message is stored and queued first, then handed to the relay at
    /// once if possible; the output says whether it was sent or stays
    /// queued for the next `hearth sync`.
    Dm {
        /// The contact: a member id, or a name only one contact has.
        member: String,
        /// The message; `-` reads it from standard input (so it does not
        /// show in the process list).
        #[arg(allow_hyphen_values = true)]
        text: String,
    },
    /// Connect, send what is queued, receive everything pending, and print
    /// each new item as it arrives.
    Sync {
        /// Keep listening this long (seconds, fractions allowed) even when
        /// nothing is pending.
        #[arg(long, value_name = "SECONDS", default_value = "0", value_parser = parse_seconds)]
        wait: Duration,
        /// One JSON object per line (kind, id, from, from_name, sent_at,
        /// and the content's fields such as text).
        #[arg(long)]
        json: bool,
    },
    /// Show the conversation with a contact, oldest first.
    History {
        /// The contact: a member id, or a name only one contact has.
        member: String,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

/// `hearth init`.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// The relay's address: hearth://FINGERPRINT@HOST:PORT
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) relay: RelayAddress,
    /// A registration token from the relay's operator (private relays).
    #[arg(long, value_name = "TOKEN", env = "HEARTH_REGISTRATION_TOKEN")]
    pub(crate) token: Option<String>,
    /// The name your contacts see.
    #[arg(long, value_name = "NAME", default_value = "")]
    pub(crate) name: String,
}

/// `hearth contact ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ContactCommand {
    /// Make a personal contact link. Hand it to one person (it works once);
    /// it is printed as the last line.
    Invite,
    /// Accept someone's contact link.
    Accept {
        /// The link (hearth://contact/...).
        link: String,
    },
    /// List contacts: name, member id, safety number, verified or not.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Mark a contact verified after comparing safety numbers out of band
    /// (in person, on a call).
    Verify {
        /// The contact: a member id, or a name only one contact has.
        member: String,
        /// The safety number as the contact reads it (60 digits; spaces
        /// are ignored, so it may be given as several arguments).
        #[arg(value_name = "SAFETY_NUMBER", required = true, num_args = 1..)]
        safety_number: Vec<String>,
    },
}

/// Longest `--wait` accepted.
const MAX_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("`{text}` is not a number of seconds"));
    }
    let wait = Duration::from_secs_f64(seconds.min(MAX_WAIT.as_secs_f64()));
    Ok(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }

    #[test]
    fn wait_takes_fractional_seconds_and_refuses_nonsense() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_seconds("0"), Ok(Duration::ZERO));
        assert_eq!(parse_seconds("1e12"), Ok(MAX_WAIT));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("NaN").is_err());
        assert!(parse_seconds("soon").is_err());
    }

    #[test]
    fn a_safety_number_may_come_in_groups() {
        let cli =
            Cli::try_parse_from(["hearth", "contact", "verify", "Sam", "12345", "67890"]).unwrap();
        let Command::Contact(ContactCommand::Verify {
            member,
            safety_number,
        }) = cli.command
        else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(member, "Sam");
        assert_eq!(safety_number, ["12345", "67890"]);
    }

    #[test]
    fn init_needs_a_valid_relay_address() {
        assert!(Cli::try_parse_from(["hearth", "init"]).is_err());
        assert!(Cli::try_parse_from(["hearth", "init", "--relay", "nonsense"]).is_err());
    }
}
