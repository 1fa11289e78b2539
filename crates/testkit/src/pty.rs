//! An interactive shell session through a real terminal, driven by Python's `pty` module (the
//! one terminal emulator every test machine has).

use std::process::Command;

const SCRIPT: &str = include_str!("../scripts/pty_session.py");

/// What the shell session gave: its exit code and everything it printed on the terminal.
#[derive(Debug)]
pub struct PtySession {
    pub code: String,
    pub transcript: String,
}

/// Run `argv` on a new pty with the environment prepared in `python` (a `Command` for
/// `python3`, so callers choose what is inherited), wait for a `# ` prompt printed after
/// `after` (all output when empty), type `echo hi; tty; exit 3` and collect the result.
pub fn shell_session(mut python: Command, argv: &[&std::ffi::OsStr], after: &str) -> PtySession {
    let out = python
        .env("PTY_AFTER", after)
        .arg("-c")
        .arg(SCRIPT)
        .args(argv)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("python3 is needed for the pty test");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (code, transcript) = text.split_once('\n').unwrap_or((&text, ""));
    let transcript = format!(
        "{transcript}\n--- driver stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PtySession {
        code: code.to_string(),
        transcript,
    }
}
