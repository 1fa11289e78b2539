//! `install`: placeholder until its issue lands.

use crate::args::InstallArgs;
use crate::exit::ExitStatus;

pub fn run(_store: &cd_engine::Store, _args: &InstallArgs) -> anyhow::Result<ExitStatus> {
    super::not_available("install")
}
