//! `reset`: placeholder until its issue lands.

use crate::args::ResetArgs;
use crate::exit::ExitStatus;

pub fn run(_store: &cd_engine::Store, _args: &ResetArgs) -> anyhow::Result<ExitStatus> {
    super::not_available("reset")
}
