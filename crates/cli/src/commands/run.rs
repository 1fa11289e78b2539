//! `run [OPTIONS] CONTAINER [-- ARG ...]`: the image's Entrypoint/Cmd, as `login` enters.

use cd_engine::Store;
use cd_runtime::Mode;

use crate::args::LoginArgs;
use crate::exit::ExitStatus;

pub fn run(store: &Store, args: &LoginArgs) -> anyhow::Result<ExitStatus> {
    super::login::session(store, args, Mode::Run)
}
