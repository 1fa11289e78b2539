//! `install IMAGE|PATH|URL`.

use cd_engine::install::{self, InstallOptions, InstallSummary};
use cd_engine::report::Reporter;
use cd_engine::Store;

use crate::args::InstallArgs;
use crate::exit::ExitStatus;
use crate::printer::{Printer, Verbosity};

pub fn run(store: &Store, args: &InstallArgs) -> anyhow::Result<ExitStatus> {
    let printer = Printer::new(Verbosity::from_flags(args.quiet, false));
    let opts = InstallOptions {
        name: args.name.clone().or_else(|| args.override_alias.clone()),
        architecture: args.architecture.clone(),
        allow_insecure: args.allow_insecure,
        cancel: super::cancel_flag(),
    };
    let summary = install::install(store, &args.source, &opts, &printer)?;
    print_hints(&printer, "Installed", &summary);
    Ok(ExitStatus::Success)
}

/// What to type next, as the published tool prints it.
pub(super) fn print_hints(printer: &Printer, done: &str, summary: &InstallSummary) {
    let name = &summary.name;
    printer.info(&format!("{done} container '{name}'"));
    printer.info(&format!("Start shell: chroot-distro login {name}"));
    if summary.has_entrypoint {
        printer.info(&format!("Run entrypoint: chroot-distro run {name}"));
    }
}
