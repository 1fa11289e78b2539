//! `diff CONTAINER`: `A`/`C`/`D` lines on stdout, like `docker diff`.

use cd_engine::Store;

use crate::args::ContainerArg;
use crate::exit::ExitStatus;
use crate::printer::{Printer, Verbosity};

pub fn run(store: &Store, args: &ContainerArg) -> anyhow::Result<ExitStatus> {
    let printer = Printer::new(Verbosity::Normal);
    for change in cd_engine::diff::diff(store, &args.container)? {
        printer.out(&change.to_string())?;
    }
    Ok(ExitStatus::Success)
}
