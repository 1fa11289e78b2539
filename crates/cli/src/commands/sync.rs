//! `sync [-c] [-d] [--chown USER[:GROUP]] [CONTAINER:]SRC [CONTAINER:]DEST`.

use cd_engine::report::Reporter;
use cd_engine::transfer::{self, TransferRequest};
use cd_engine::{human_bytes, Store};

use crate::args::SyncArgs;
use crate::exit::ExitStatus;

pub fn run(store: &Store, args: &SyncArgs) -> anyhow::Result<ExitStatus> {
    let printer = args.verbosity.printer();
    let req = TransferRequest {
        source: args.source.clone(),
        dest: args.dest.clone(),
        chown: args.chown.clone(),
        cancel: super::cancel_flag(),
    };
    let stats = transfer::sync(store, &req, args.checksum, args.delete, &printer)?;
    if stats.changed() {
        printer.info(&format!(
            "synced {}: {} written ({}), {} updated, {} deleted",
            args.dest,
            stats.copied,
            human_bytes(stats.bytes),
            stats.updated,
            stats.deleted
        ));
    } else {
        // Nothing to say: an up-to-date sync is silent (scripts run it repeatedly).
        printer.verbose(&format!("{} is up to date", args.dest));
    }
    Ok(ExitStatus::Success)
}
