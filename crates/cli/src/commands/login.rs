//! `login [OPTIONS] CONTAINER [-- COMMAND ...]`, and the session code `run` shares with it.

use cd_engine::report::Reporter;
use cd_engine::session::SessionFlags;
use cd_engine::Store;
use cd_runtime::{EnterRequest, Mode};

use crate::args::LoginArgs;
use crate::exit::{report_error, ExitStatus};
use crate::printer::{Printer, Verbosity};

/// The status `login`/`run` exit with when the tool itself fails (ARCHITECTURE.md decision 7),
/// so it cannot be mistaken for the command's own 1 or 2.
const TOOL_ERROR: u8 = 125;

pub fn run(store: &Store, args: &LoginArgs) -> anyhow::Result<ExitStatus> {
    session(store, args, Mode::Login)
}

/// Enter the container (or, with `--get-chroot-cmd`, print the equivalent command line) and
/// exit with the command's status. Errors are reported here rather than returned, because their
/// exit status is 125/126/127, not the generic 1.
pub(super) fn session(store: &Store, args: &LoginArgs, mode: Mode) -> anyhow::Result<ExitStatus> {
    let printer = Printer::new(Verbosity::Normal);
    let req = match store.enter_request(&args.container, &flags(args, mode)) {
        Ok(req) => req,
        Err(e) => return Ok(tool_error(e.into(), TOOL_ERROR)),
    };
    if args.get_chroot_cmd {
        return match cd_runtime::render_command(&req) {
            Ok(line) => {
                printer.out(&line)?;
                Ok(ExitStatus::Success)
            }
            Err(e) => {
                let code = exit_code(e.exit_code());
                Ok(tool_error(e.into(), code))
            }
        };
    }
    // `enter` forks and changes namespaces: this process has no other thread (the printer draws
    // no progress bar here), as it requires.
    match cd_runtime::enter(&req, &mut |w| printer.warn(&w)) {
        Ok(code) => Ok(ExitStatus::Inner(exit_code(code))),
        Err(e) => {
            let code = exit_code(e.exit_code());
            Ok(tool_error(e.into(), code))
        }
    }
}

fn flags(args: &LoginArgs, mode: Mode) -> SessionFlags {
    SessionFlags {
        options: EnterRequest {
            user: args.user.clone(),
            work_dir: args.work_dir.clone(),
            shared_home: args.shared_home,
            shared_tmp: args.shared_tmp,
            shared_display: args.shared_display,
            hostname: args.hostname.clone(),
            isolated: args.isolated,
            minimal: args.minimal,
            mode,
            ..EnterRequest::default()
        },
        env: args.env.clone(),
        binds: args.binds.clone(),
        args: args.command.clone(),
    }
}

fn tool_error(err: anyhow::Error, code: u8) -> ExitStatus {
    report_error(&err);
    ExitStatus::Inner(code)
}

/// A wait status is 0..=255; anything else would be a runtime bug, reported as a tool error.
fn exit_code(code: i32) -> u8 {
    u8::try_from(code).unwrap_or(TOOL_ERROR)
}
