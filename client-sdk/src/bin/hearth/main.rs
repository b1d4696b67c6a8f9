//! `hearth`: Hearth from a terminal or a script, a thin layer over the
//! [`hearth_client`] SDK.
//!
//! Every command is non-interactive. The device lives in `--home DIR`
//! (default `~/.hearth`, or `HEARTH_HOME`); its store is unlocked by
//! `HEARTH_PASSPHRASE` or, if that is unset, by the key file `DIR/key` that
//! `hearth init` creates. Errors print one line on stderr and exit with 1
//! (something failed) or 2 (the command line is wrong).
#![forbid(unsafe_code)]

mod args;
mod circle;
mod commands;
mod home;
mod output;
mod posts;
mod when;

use std::process::ExitCode;

use clap::Parser as _;

use args::Cli;
use home::UsageError;

/// Exit status of a command that failed.
const EXIT_FAILURE: u8 = 1;
/// Exit status of a command line that is wrong.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return clap_exit(&error),
    };
    init_logging();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(&anyhow::Error::new(error).context("starting the runtime")),
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

/// Help and version go to stdout with status 0; a wrong command line is
/// one line on stderr with status 2.
fn clap_exit(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            }
        }
        _ => {
            // The reason is the first paragraph of clap's message.
            let rendered = error.render().to_string();
            let reason: Vec<&str> = rendered
                .lines()
                .take_while(|line| !line.trim().is_empty())
                .map(str::trim)
                .collect();
            let reason = reason.join(" ");
            let reason = reason.trim_start_matches("error: ");
            eprintln!("hearth: {reason} (see hearth --help)");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Prints `error` as one line and picks the exit status.
fn fail(error: &anyhow::Error) -> ExitCode {
    eprintln!("hearth: error: {}", one_line(error));
    if error.downcast_ref::<UsageError>().is_some() {
        ExitCode::from(EXIT_USAGE)
    } else {
        ExitCode::from(EXIT_FAILURE)
    }
}

/// `error` and its causes on one line, skipping a cause that its parent
/// already spells out.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string().replace(['\n', '\r'], " ");
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Logs go to stderr, filtered by `HEARTH_LOG` (default: errors only, so
/// scripts see nothing but the command's output). The SDK never logs
/// content, keys or tokens.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HEARTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("the link is damaged")]
    struct Damaged;

    #[derive(Debug, thiserror::Error)]
    #[error("invalid invite link: {0}")]
    struct Invalid(#[source] Damaged);

    #[test]
    fn an_error_is_one_line_without_repeats() {
        let error = anyhow::Error::new(Invalid(Damaged)).context("accepting\nthe link");
        assert_eq!(
            one_line(&error),
            "accepting the link: invalid invite link: the link is damaged"
        );
    }
}
