//! `rename OLD NEW`.

use cd_engine::report::Reporter;
use cd_engine::Store;

use crate::args::RenameArgs;
use crate::exit::ExitStatus;
use crate::printer::{Printer, Verbosity};

pub fn run(store: &Store, args: &RenameArgs) -> anyhow::Result<ExitStatus> {
    store.rename(&args.old, &args.new)?;
    Printer::new(Verbosity::from_flags(args.quiet, false)).info(&format!(
        "renamed container '{}' to '{}'",
        args.old, args.new
    ));
    Ok(ExitStatus::Success)
}
