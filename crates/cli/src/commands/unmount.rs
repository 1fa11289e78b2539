//! `unmount CONTAINER`: end the sessions and release the container's mounts.

use cd_engine::report::Reporter;
use cd_engine::session::describe_stop;
use cd_engine::Store;

use crate::args::ContainerArg;
use crate::exit::ExitStatus;
use crate::printer::{Printer, Verbosity};

pub fn run(store: &Store, args: &ContainerArg) -> anyhow::Result<ExitStatus> {
    let report = store.unmount(&args.container)?;
    Printer::new(Verbosity::Normal).info(&describe_stop(&args.container, "unmounted", &report));
    Ok(ExitStatus::Success)
}
