//! The `chroot-distro` binary: parse, elevate when needed, dispatch, map errors to exit codes.

mod args;
mod commands;
mod completion;
mod elevate;
mod exit;
mod printer;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::args::{Cli, Command};
use crate::exit::{report_error, ExitStatus};

fn main() -> ExitCode {
    let cli = match parse_args() {
        Ok(cli) => cli,
        Err(err) => return exit::usage_error(err),
    };
    match run(cli) {
        Ok(status) => status.into(),
        Err(err) => {
            report_error(&err);
            exit::status_for_error(&err).into()
        }
    }
}

/// The command line, with help in colour only on a terminal and never when
/// `CD_FORCE_NO_COLORS` (or the common `NO_COLOR`, which clap honours itself) is set.
fn parse_args() -> Result<Cli, clap::Error> {
    let mut command = Cli::command();
    if std::env::var_os("CD_FORCE_NO_COLORS").is_some_and(|v| !v.is_empty()) {
        command = command.color(clap::ColorChoice::Never);
    }
    let matches = command.try_get_matches()?;
    Cli::from_arg_matches(&matches)
}

fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    if let Err(err) = elevate::ensure_privileges(&cli) {
        // `login`/`run` keep 1 and 2 for the command inside: the tool's own failure is 125.
        if matches!(cli.command, Command::Login(_) | Command::Run(_)) {
            report_error(&err);
            return Ok(ExitStatus::Inner(125));
        }
        return Err(err);
    }
    commands::dispatch(cli)
}
