//! `run`: placeholder until its issue lands.

use crate::args::LoginArgs;
use crate::exit::ExitStatus;

pub fn run(_store: &cd_engine::Store, _args: &LoginArgs) -> anyhow::Result<ExitStatus> {
    super::not_available("run")
}
