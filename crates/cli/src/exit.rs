//! One exit-code policy: 0 ok, 1 failure, 2 usage error; login/run pass the inner status through.

use std::io::Write;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success,
    Failure,
    /// The status of a command run inside a container.
    Inner(u8),
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> ExitCode {
        match s {
            ExitStatus::Success => ExitCode::SUCCESS,
            ExitStatus::Failure => ExitCode::from(1),
            ExitStatus::Inner(code) => ExitCode::from(code),
        }
    }
}

/// 130 (like a shell) when the user interrupted the work, else 1.
pub fn status_for_error(err: &anyhow::Error) -> ExitStatus {
    let interrupted = err.chain().any(|c| {
        matches!(
            c.downcast_ref::<cd_engine::EngineError>(),
            Some(cd_engine::EngineError::Interrupted)
        )
    });
    if interrupted {
        ExitStatus::Inner(130)
    } else {
        ExitStatus::Failure
    }
}

/// Print `error: <message>` with its cause chain on one line. A closed stdout is not an error.
pub fn report_error(err: &anyhow::Error) {
    if is_broken_pipe(err) {
        return;
    }
    let mut line = format!("error: {err}");
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Usage errors: one line plus a hint, exit 2. Help and version requests print and exit 0.
pub fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        _ => {
            let rendered = err.render().to_string();
            let mut lines = rendered.lines().filter(|l| !l.trim().is_empty());
            let first = lines.next().unwrap_or("error: invalid usage").trim_end();
            let tip = lines
                .find(|l| l.trim_start().starts_with("tip:"))
                .map(|l| format!(" ({})", l.trim()))
                .unwrap_or_default();
            let _ = writeln!(
                std::io::stderr(),
                "{first}{tip}\nRun 'chroot-distro --help' or 'chroot-distro COMMAND --help' for usage."
            );
            ExitCode::from(2)
        }
    }
}
