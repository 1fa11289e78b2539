//! What is executed: `run`'s Entrypoint/Cmd table, the login shell, and the `--get-chroot-cmd`
//! rendering.

use crate::error::RuntimeError;

/// The inner command of `run` (spec table "Entrypoint and Cmd resolution"): arguments after
/// `--` replace `Cmd` and are appended to `Entrypoint`.
pub fn resolve_run_command(
    entrypoint: &[String],
    cmd: &[String],
    args: &[String],
) -> Result<Vec<String>, RuntimeError> {
    let tail = if args.is_empty() { cmd } else { args };
    let command: Vec<String> = entrypoint.iter().chain(tail).cloned().collect();
    if command.is_empty() {
        return Err(RuntimeError::NoCommand);
    }
    Ok(command)
}

/// How the user's shell is started without a command: `argv[0]` is `-NAME`, the convention every
/// shell honours for a login shell.
pub(crate) fn login_argv0(shell: &str) -> String {
    let base = shell.rsplit('/').next().unwrap_or(shell);
    format!("-{base}")
}

/// Quote `word` for a POSIX shell; plain words stay unquoted.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

pub(crate) fn shell_join<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| shell_quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn run_table() {
        let ep = v(&["/ep"]);
        let cmd = v(&["c"]);
        let args = v(&["a", "b"]);
        let none: Vec<String> = vec![];
        assert_eq!(
            resolve_run_command(&ep, &cmd, &none).unwrap(),
            v(&["/ep", "c"])
        );
        assert_eq!(
            resolve_run_command(&ep, &cmd, &args).unwrap(),
            v(&["/ep", "a", "b"])
        );
        assert_eq!(resolve_run_command(&none, &cmd, &none).unwrap(), v(&["c"]));
        assert_eq!(
            resolve_run_command(&none, &cmd, &args).unwrap(),
            v(&["a", "b"])
        );
        assert_eq!(resolve_run_command(&ep, &none, &none).unwrap(), v(&["/ep"]));
        assert_eq!(
            resolve_run_command(&ep, &none, &args).unwrap(),
            v(&["/ep", "a", "b"])
        );
        assert!(matches!(
            resolve_run_command(&none, &none, &none),
            Err(RuntimeError::NoCommand)
        ));
        assert_eq!(
            resolve_run_command(&none, &none, &args).unwrap(),
            v(&["a", "b"])
        );
    }

    #[test]
    fn login_shell_argv0() {
        assert_eq!(login_argv0("/bin/bash"), "-bash");
        assert_eq!(login_argv0("sh"), "-sh");
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/bin/sh"), "/bin/sh");
        assert_eq!(shell_quote("PATH=/a:/b"), "PATH=/a:/b");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_join(&["echo", "$HOME"]), "echo '$HOME'");
    }
}
