//! The `chroot-distro` binary: parse, elevate when needed, dispatch, map errors to exit codes.

mod args;
mod commands;
mod completion;
mod elevate;
mod exit;
mod printer;

use std::process::ExitCode;

use clap::Parser;

use crate::args::Cli;
use crate::exit::{report_error, ExitStatus};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
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

fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    elevate::ensure_privileges(&cli)?;
    commands::dispatch(cli)
}
