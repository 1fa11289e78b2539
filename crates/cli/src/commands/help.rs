//! `help [COMMAND]`: the same text as `COMMAND --help`.

use anyhow::bail;
use clap::CommandFactory;

use crate::args::{Cli, HelpArgs};
use crate::exit::ExitStatus;

pub fn run(args: &HelpArgs) -> anyhow::Result<ExitStatus> {
    let mut root = Cli::command();
    let Some(name) = &args.command else {
        root.print_long_help()?;
        return Ok(ExitStatus::Success);
    };
    root.build();
    let found = root
        .get_subcommands()
        .find(|c| c.get_name() == name || c.get_all_aliases().any(|a| a == name))
        .cloned();
    match found {
        Some(mut sub) => {
            let sub_name = sub.get_name().to_string();
            sub = sub.bin_name(format!("chroot-distro {sub_name}"));
            sub.print_long_help()?;
            Ok(ExitStatus::Success)
        }
        None => bail!("unknown command '{name}'; run 'chroot-distro help' for the list"),
    }
}
