//! `copy [-r] [-m] [--chown USER[:GROUP]] [CONTAINER:]SRC [CONTAINER:]DEST`.

use cd_engine::report::Reporter;
use cd_engine::transfer::{self, TransferRequest};
use cd_engine::{human_bytes, Store};

use crate::args::CopyArgs;
use crate::exit::ExitStatus;

pub fn run(store: &Store, args: &CopyArgs) -> anyhow::Result<ExitStatus> {
    let printer = args.verbosity.printer();
    let req = TransferRequest {
        source: args.source.clone(),
        dest: args.dest.clone(),
        chown: args.chown.clone(),
        cancel: super::cancel_flag(),
    };
    let stats = transfer::copy(store, &req, args.recursive, args.move_files, &printer)?;
    let verb = if args.move_files { "moved" } else { "copied" };
    printer.info(&format!(
        "{verb} {} entr{} ({}) to {}",
        stats.copied,
        if stats.copied == 1 { "y" } else { "ies" },
        human_bytes(stats.bytes),
        args.dest
    ));
    if stats.skipped > 0 {
        printer.warn(&format!(
            "skipped {} special file(s) or mount point(s); see -v",
            stats.skipped
        ));
    }
    Ok(ExitStatus::Success)
}
