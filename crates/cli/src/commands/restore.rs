//! `restore [BACKUP_FILE]` (stdin when omitted).

use cd_engine::report::Reporter;
use cd_engine::restore;
use cd_engine::Store;

use crate::args::RestoreArgs;
use crate::exit::ExitStatus;

pub fn run(store: &Store, args: &RestoreArgs) -> anyhow::Result<ExitStatus> {
    let printer = args.verbosity.printer();
    let summary = restore::restore(
        store,
        args.file.as_deref(),
        Box::new(std::io::stdin()),
        &printer,
        super::cancel_flag(),
    )?;
    printer.info(&format!(
        "restored container '{}' ({} entries)",
        summary.name, summary.entries
    ));
    Ok(ExitStatus::Success)
}
