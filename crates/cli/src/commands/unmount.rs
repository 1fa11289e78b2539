//! `unmount`: placeholder until its issue lands.

use crate::args::ContainerArg;
use crate::exit::ExitStatus;

pub fn run(_store: &cd_engine::Store, _args: &ContainerArg) -> anyhow::Result<ExitStatus> {
    super::not_available("unmount")
}
