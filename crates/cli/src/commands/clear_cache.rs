//! `clear-cache`: delete downloaded layers and manifests.

use cd_engine::report::Reporter;
use cd_engine::{human_bytes, Store};

use crate::args::VerbosityArgs;
use crate::exit::ExitStatus;
use crate::printer::{Printer, Verbosity};

pub fn run(store: &Store, args: &VerbosityArgs) -> anyhow::Result<ExitStatus> {
    let printer = Printer::new(Verbosity::from_flags(args.quiet, args.verbose));
    let stats = cd_engine::cache::clear_cache(&store.paths, &printer)?;
    printer.info(&format!(
        "cleared the cache: {} file(s), {} freed",
        stats.files,
        human_bytes(stats.bytes)
    ));
    Ok(ExitStatus::Success)
}
