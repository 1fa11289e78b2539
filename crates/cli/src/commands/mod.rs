//! One thin file per command: turn arguments into an engine call and render the result.

mod backup;
mod clear_cache;
mod copy;
mod diff;
mod help;
mod install;
mod kill;
mod list;
mod login;
mod remove;
mod rename;
mod reset;
mod restore;
mod run;
mod sync;
mod unmount;

use anyhow::bail;

use crate::args::{Cli, Command};
use crate::exit::ExitStatus;

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitStatus> {
    let store = cd_engine::Store::from_env();
    match cli.command {
        Command::List(args) => list::run(&store, &args),
        Command::Ps(args) => list::run_ps(&store, &args),
        Command::Rename(args) => rename::run(&store, &args),
        Command::Remove(args) => remove::run(&store, &args),
        Command::ClearCache(args) => clear_cache::run(&store, &args),
        Command::Help(args) => help::run(&args),
        Command::Completion(args) => crate::completion::run(args.shell),
        Command::Backup(args) => backup::run(&store, &args),
        Command::Restore(args) => restore::run(&store, &args),
        Command::Diff(args) => diff::run(&store, &args),
        Command::Copy(args) => copy::run(&store, &args),
        Command::Sync(args) => sync::run(&store, &args),
        Command::Install(args) => install::run(&store, &args),
        Command::Reset(args) => reset::run(&store, &args),
        Command::Login(args) => login::run(&store, &args),
        Command::Run(args) => run::run(&store, &args),
        Command::Kill(args) => kill::run(&store, &args),
        Command::Unmount(args) => unmount::run(&store, &args),
        other => not_available(other.name()),
    }
}

/// Commands whose issue has not landed say so instead of pretending.
pub(crate) fn not_available(name: &str) -> anyhow::Result<ExitStatus> {
    bail!("'{name}' is not available yet")
}

/// Ctrl-C, SIGTERM and SIGHUP become a flag that long operations poll, so they stop at a safe
/// point and remove what they staged instead of dying half-way.
fn cancel_flag() -> Option<&'static std::sync::atomic::AtomicBool> {
    use cd_sys::signal::{cancel_flag_on, SIGHUP, SIGINT, SIGTERM};
    cancel_flag_on(&[SIGINT, SIGTERM, SIGHUP]).ok()
}
