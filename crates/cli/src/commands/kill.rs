//! `kill CONTAINER`: SIGTERM, SIGKILL after a short grace period, release the namespace.

use std::time::Duration;

use cd_engine::report::Reporter;
use cd_engine::session::describe_stop;
use cd_engine::Store;

use crate::args::ContainerArg;
use crate::exit::ExitStatus;
use crate::printer::{Printer, Verbosity};

/// `kill` is the abrupt counterpart of `unmount` (two seconds): processes get one second to
/// exit on SIGTERM.
const GRACE: Duration = Duration::from_secs(1);

pub fn run(store: &Store, args: &ContainerArg) -> anyhow::Result<ExitStatus> {
    let report = store.kill(&args.container, GRACE)?;
    Printer::new(Verbosity::Normal).info(&describe_stop(&args.container, "stopped", &report));
    Ok(ExitStatus::Success)
}
