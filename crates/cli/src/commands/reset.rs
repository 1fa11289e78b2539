//! `reset CONTAINER`: rebuild from the recorded image; the old tree stays until the new one
//! is complete.

use cd_engine::install::{self, InstallOptions};
use cd_engine::Store;

use crate::args::ResetArgs;
use crate::exit::ExitStatus;
use crate::printer::{Printer, Verbosity};

pub fn run(store: &Store, args: &ResetArgs) -> anyhow::Result<ExitStatus> {
    let printer = Printer::new(Verbosity::from_flags(args.quiet, false));
    let opts = InstallOptions {
        cancel: super::cancel_flag(),
        ..InstallOptions::default()
    };
    let summary = install::reset(store, &args.container, &opts, &printer)?;
    super::install::print_hints(&printer, "Reset", &summary);
    Ok(ExitStatus::Success)
}
