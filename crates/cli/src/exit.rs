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
            Some(
                cd_engine::EngineError::Interrupted | cd_engine::EngineError::InterruptedPartway(_)
            )
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
    let _ = writeln!(
        std::io::stderr(),
        "{line}",
        line = elide_long_words(&without_os_codes(&line))
    );
}

/// Words (paths, mostly) longer than this are shortened in the middle, so that a hostile or
/// absurd name cannot turn the one error line into pages.
const LONGEST_WORD: usize = 200;

fn elide_long_words(line: &str) -> String {
    line.split(' ')
        .map(|word| {
            let chars = word.chars().count();
            if chars <= LONGEST_WORD {
                return word.to_string();
            }
            let head: String = word.chars().take(100).collect();
            let tail: String = word.chars().skip(chars - 60).collect();
            format!("{head}…[{} characters]…{tail}", chars - 160)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Drop the " (os error 2)" that Rust appends to OS error texts: the words say it already.
fn without_os_codes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(" (os error ") {
        let tail = &rest[i + " (os error ".len()..];
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && tail[digits..].starts_with(')') {
            out.push_str(&rest[..i]);
            rest = &tail[digits + 1..];
        } else {
            out.push_str(&rest[..i + 1]);
            rest = &rest[i + 1..];
        }
    }
    out.push_str(rest);
    out
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
            let _ = writeln!(std::io::stderr(), "{}", usage_message(&err));
            ExitCode::from(2)
        }
    }
}

/// A clap error as one `error:` line (with the missing arguments or the tip folded in) and one
/// line saying where the usage is.
fn usage_message(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let lines: Vec<&str> = rendered.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut first = lines
        .first()
        .map_or("error: invalid usage", |l| l.trim_end())
        .to_string();
    let rest = lines.get(1..).unwrap_or_default();
    // Indented lines continue the first: the missing arguments after "...were not provided:",
    // or "[possible values: ...]" after an invalid value.
    let more: Vec<&str> = rest
        .iter()
        .take_while(|l| l.starts_with(' ') && !l.trim_start().starts_with("tip:"))
        .map(|l| l.trim())
        .collect();
    if !more.is_empty() {
        let sep = if first.ends_with(':') { ", " } else { " " };
        first = format!("{first} {}", more.join(sep));
    }
    if let Some(tip) = rest.iter().find(|l| l.trim_start().starts_with("tip:")) {
        first = format!("{first} ({})", tip.trim());
    }
    // "Usage: chroot-distro rename <OLD_NAME> <NEW_NAME>" names the command to ask about.
    let command = rest
        .iter()
        .find_map(|l| l.trim().strip_prefix("Usage: chroot-distro "))
        .and_then(|u| u.split_whitespace().next())
        .filter(|w| !w.starts_with(['[', '<']));
    match command {
        Some(c) => format!("{first}\nRun 'chroot-distro {c} --help' for usage."),
        None => format!("{first}\nRun 'chroot-distro --help' for usage."),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::usage_message;
    use crate::args::Cli;

    fn message(args: &[&str]) -> String {
        let argv = std::iter::once("chroot-distro").chain(args.iter().copied());
        let err = Cli::try_parse_from(argv).expect_err("a usage error");
        usage_message(&err)
    }

    #[test]
    fn absurdly_long_words_are_shortened_in_the_middle() {
        use super::elide_long_words;
        let path = format!("'/{}f'", "d/".repeat(5000));
        let line = elide_long_words(&format!("error: cannot create {path} in the container"));
        assert!(line.len() < 300, "{line}");
        assert!(line.starts_with("error: cannot create '/d/d/"), "{line}");
        assert!(line.ends_with("d/d/f' in the container"), "{line}");
        assert!(line.contains("[9844 characters]"), "{line}");
        let short = "error: cannot open ./x: no such file";
        assert_eq!(elide_long_words(short), short);
    }

    #[test]
    fn os_error_numbers_are_dropped_and_other_parentheses_kept() {
        use super::without_os_codes;
        assert_eq!(
            without_os_codes("cannot open x: No such file or directory (os error 2); retry"),
            "cannot open x: No such file or directory; retry"
        );
        assert_eq!(
            without_os_codes("a (os error x) b (1 process)"),
            "a (os error x) b (1 process)"
        );
    }

    #[test]
    fn missing_arguments_are_named_and_the_command_help_pointed_at() {
        let m = message(&["rename", "only-one"]);
        let (first, second) = m.split_once('\n').unwrap();
        assert!(first.starts_with("error: "), "{m}");
        assert!(first.ends_with("provided: <NEWNAME>"), "{m}");
        assert_eq!(second, "Run 'chroot-distro rename --help' for usage.");
        assert!(message(&["login"]).contains("<CONTAINER>"));
    }

    #[test]
    fn unknown_commands_and_flags_keep_clap_tips_on_one_line() {
        let m = message(&["instal", "x"]);
        assert_eq!(m.lines().count(), 2, "{m}");
        assert!(m.contains("'instal'") && m.contains("tip:"), "{m}");
        let m = message(&["backup", "c", "--compress", "lz4"]);
        assert!(
            m.contains("[possible values: gzip, bzip2, xz, zstd, none]"),
            "{m}"
        );
        let m = message(&["list", "--bogus"]);
        assert!(m.contains("'--bogus'"), "{m}");
        assert!(
            m.ends_with("Run 'chroot-distro list --help' for usage."),
            "{m}"
        );
    }
}
