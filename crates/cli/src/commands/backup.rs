//! `backup [-o FILE] [-c TYPE] CONTAINER`.

use std::io::IsTerminal;

use anyhow::bail;
use cd_engine::backup::{self, BackupOutput, BackupRequest};
use cd_engine::report::Reporter;
use cd_engine::{human_bytes, Store};

use crate::args::BackupArgs;
use crate::exit::ExitStatus;

pub fn run(store: &Store, args: &BackupArgs) -> anyhow::Result<ExitStatus> {
    let printer = args.verbosity.printer();
    let output = match &args.output {
        Some(path) => BackupOutput::File(path.clone()),
        None => {
            if std::io::stdout().is_terminal() {
                bail!(
                    "refusing to write a backup to a terminal; use -o FILE or redirect stdout \
                     ('chroot-distro backup {} > {}.tar')",
                    args.container,
                    args.container
                );
            }
            BackupOutput::Stream(Box::new(std::io::stdout()))
        }
    };
    let summary = backup::backup(
        store,
        BackupRequest {
            name: args.container.clone(),
            output,
            compression: args.compress.clone(),
            cancel: super::cancel_flag(),
        },
        &printer,
    )?;
    let target = args
        .output
        .as_ref()
        .map_or_else(|| "stdout".to_string(), |p| p.display().to_string());
    printer.info(&format!(
        "backed up '{}' to {target}: {} entries, {} of file data",
        args.container,
        summary.stats.entries,
        human_bytes(summary.stats.bytes)
    ));
    Ok(ExitStatus::Success)
}
