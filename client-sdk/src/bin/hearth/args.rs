//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use hearth_client::{MessageId, RelayAddress};

use crate::when::parse_lifetime;

/// Hearth: end-to-end encrypted messages for peer-support circles.
///
/// Set up this device with `hearth init`, exchange contact links with
/// `hearth contact invite` and `hearth contact accept`, then `hearth dm` and
/// `hearth sync`. Circles: `hearth circle create`, `circle invite`,
/// `circle join`, then `say`, `checkin`, `share`, `gather`, `goal`, `feed`.
/// Nothing is interactive, so every command works in scripts.
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
        /// and the content's fields such as text; circle posts also carry
        /// circle, and circle changes show as circle_changed).
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
    /// Circles: create, invite, join, list, members, remove, leave,
    /// promote, demote, rename, rules, sub.
    #[command(subcommand)]
    Circle(CircleCommand),
    /// Tell a circle how you are doing.
    Checkin(CheckinArgs),
    /// Write to a circle.
    Say {
        /// The circle: its id, or a name only one of your circles has.
        circle: String,
        /// The message; `-` reads it from standard input.
        #[arg(allow_hyphen_values = true)]
        text: String,
    },
    /// Share a link (an article, a video, a hotline) with a circle.
    Share(ShareArgs),
    /// Propose a coffee chat or a video call to a circle. Prints the
    /// gathering's id as the last line.
    Gather(GatherArgs),
    /// Answer a gathering.
    Rsvp {
        /// The circle: its id, or a name only one of your circles has.
        circle: String,
        /// The gathering's id (as `gather` and `feed` print it).
        gathering: MessageId,
        /// Whether you come.
        #[arg(value_enum)]
        answer: Answer,
    },
    /// Goals the circle holds you accountable to.
    #[command(subcommand)]
    Goal(GoalCommand),
    /// Goals of every circle whose owner is due or overdue for a check-in.
    Due {
        /// As of this time (RFC 3339) instead of now.
        #[arg(long, value_name = "RFC3339")]
        at: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Ask a circle for support now; its facilitators see it as urgent.
    Support {
        /// The circle: its id, or a name only one of your circles has.
        circle: String,
        #[command(flatten)]
        note: Note,
    },
    /// React to a circle message with an emoji ("" removes your reaction).
    React {
        /// The circle: its id, or a name only one of your circles has.
        circle: String,
        /// The message's id (as `feed --json` prints it).
        message: MessageId,
        /// One emoji.
        emoji: String,
    },
    /// Show a circle's history, oldest first.
    Feed {
        /// The circle: its id, or a name only one of your circles has.
        circle: String,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

/// `hearth circle ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum CircleCommand {
    /// Start a circle, with you as its facilitator. Prints its id as the
    /// last line.
    Create {
        /// Its name (members see it; the relay never does).
        name: String,
    },
    /// Make an invite link to a circle you facilitate. Hand it to one
    /// person (it works once); it is printed as the last line.
    Invite {
        /// The circle: its id, or a name only one of your circles has.
        circle: String,
        /// How long the link works: 30m, 48h, 7d...
        #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_lifetime)]
        expires: Duration,
    },
    /// Ask to join a circle with an invite link. You are in once a
    /// facilitator's device welcomes you (`hearth sync` shows it). Prints
    /// the circle's id as the last line.
    Join {
        /// The link (hearth://invite/...).
        link: String,
    },
    /// List your circles: name, id, your role, members, state.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// List a circle's members: name, member id, role.
    Members {
        /// The circle: its id, or a name only one of your circles has.
        circle: String,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Remove a member from a circle you facilitate. They can read nothing
    /// sent after that.
    Remove {
        /// The circle: its id, or a name only one of your circles has.
        circle: String,
        /// The member: a member id, or a name only one member has.
        member: String,
    },
    /// Leave a circle.
    Leave {
        /// The circle: its id, or a name only one of your circles has.
        circle: String,
    },
    /// Make a member a facilitator of a circle you facilitate.
    Promote {
        /// The circle: its id, or a name only one of your circles has.
        circle: String,
        /// The member: a member id, or a name only one member has.
        member: String,
    },
    /// Make a facilitator a member again (a circle keeps at least one
    /// facilitator).
    Demote {
        /// The circle: its id, or a name only one of your circles has.
        circle: String,
        /// The member: a member id, or a name only one member has.
        member: String,
    },
    /// Rename a circle you facilitate.
    Rename {
        /// The circle: its id, or a name only one of your circles has.
        circle: String,
        /// The new name.
        name: String,
    },
    /// Set the rules of a circle you facilitate (members see them with
    /// `circle list`).
    Rules {
        /// The circle: its id, or a name only one of your circles has.
        circle: String,
        /// The rules; `-` reads them from standard input.
        #[arg(allow_hyphen_values = true)]
        rules: String,
    },
    /// Form a smaller circle from members of a circle. Prints its id as the
    /// last line.
    Sub {
        /// The circle the members come from.
        circle: String,
        /// The new circle's name.
        name: String,
        /// Who joins you there: member ids or names, comma-separated.
        #[arg(long, value_name = "M1,M2,...", value_delimiter = ',', required = true, num_args = 1..)]
        members: Vec<String>,
    },
}

/// `--note TEXT`, for the posts that take one.
#[derive(Debug, Args)]
pub(crate) struct Note {
    /// A few words; `-` reads them from standard input.
    #[arg(
        long = "note",
        value_name = "TEXT",
        default_value = "",
        allow_hyphen_values = true
    )]
    pub(crate) text: String,
}

/// `hearth checkin`.
#[derive(Debug, Args)]
pub(crate) struct CheckinArgs {
    /// The circle: its id, or a name only one of your circles has.
    pub(crate) circle: String,
    /// How you feel, 1 (worst) to 10 (best).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=10))]
    pub(crate) mood: u8,
    /// Your energy, 1 to 10.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=10))]
    pub(crate) energy: Option<u8>,
    #[command(flatten)]
    pub(crate) note: Note,
    /// Tags, comma-separated (sleep,work).
    #[arg(long, value_name = "TAG,...", value_delimiter = ',')]
    pub(crate) tags: Vec<String>,
}

/// `hearth share`.
#[derive(Debug, Args)]
pub(crate) struct ShareArgs {
    /// The circle: its id, or a name only one of your circles has.
    pub(crate) circle: String,
    /// The link (http or https).
    pub(crate) url: String,
    /// Its title.
    #[arg(long, value_name = "TITLE", default_value = "")]
    pub(crate) title: String,
    #[command(flatten)]
    pub(crate) note: Note,
}

/// `hearth gather`.
#[derive(Debug, Args)]
pub(crate) struct GatherArgs {
    /// The circle: its id, or a name only one of your circles has.
    pub(crate) circle: String,
    /// When it starts: RFC 3339 with an offset (2025-03-07T18:00:00+01:00),
    /// or without one when --tz says where (2025-03-07T18:00).
    #[arg(long, value_name = "RFC3339")]
    pub(crate) at: String,
    /// The IANA time zone meant, e.g. Europe/Berlin [default: UTC].
    #[arg(long, value_name = "ZONE")]
    pub(crate) tz: Option<String>,
    /// How long, in minutes.
    #[arg(long, default_value = "60", value_parser = clap::value_parser!(u32).range(1..=1440))]
    pub(crate) minutes: u32,
    /// The call's link, or the place.
    #[arg(long, value_name = "URL", default_value = "")]
    pub(crate) link: String,
    #[command(flatten)]
    pub(crate) note: Note,
    /// A coffee chat or a video call [default: a video call when --link is
    /// an http(s) link, else a coffee chat].
    #[arg(long, value_enum)]
    pub(crate) kind: Option<GatheringKindArg>,
}

/// `hearth goal ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum GoalCommand {
    /// Set yourself a goal. Prints its id as the last line.
    Add {
        /// The circle: its id, or a name only one of your circles has.
        circle: String,
        /// The goal.
        #[arg(allow_hyphen_values = true)]
        text: String,
        /// How often you check in on it [default: once].
        #[arg(long, value_enum)]
        every: Option<Every>,
        /// When a one-off goal is due (RFC 3339).
        #[arg(long, value_name = "RFC3339", conflicts_with = "every")]
        due: Option<String>,
    },
    /// Report progress on one of your goals.
    Progress {
        /// The circle: its id, or a name only one of your circles has.
        circle: String,
        /// The goal's id (as `goal add` and `feed` print it).
        goal: MessageId,
        #[command(flatten)]
        note: Note,
        /// The goal is reached: no more check-ins are due.
        #[arg(long)]
        done: bool,
    },
}

/// An answer to a gathering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Answer {
    /// I come.
    Yes,
    /// I don't.
    No,
    /// Perhaps.
    Maybe,
}

/// How often a goal wants a check-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Every {
    /// Every 24 hours.
    Daily,
    /// Every 7 days.
    Weekly,
}

/// What kind of gathering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GatheringKindArg {
    /// Meeting in person.
    Coffee,
    /// A call.
    Video,
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
