//! `remove CONTAINER`.

use cd_engine::report::Reporter;
use cd_engine::{human_bytes, Store};

use crate::args::RemoveArgs;
use crate::exit::ExitStatus;

pub fn run(store: &Store, args: &RemoveArgs) -> anyhow::Result<ExitStatus> {
    let printer = args.verbosity.printer();
    let freed = store.remove(&args.container, &printer)?;
    printer.info(&format!(
        "removed container '{}' ({} freed)",
        args.container,
        human_bytes(freed)
    ));
    Ok(ExitStatus::Success)
}
