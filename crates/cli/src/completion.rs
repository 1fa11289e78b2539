//! Shell completion scripts generated from the clap definitions, plus container-name completion
//! that asks `chroot-distro list -q` at completion time.

use clap::CommandFactory;
use clap_complete::{generate, shells};

use crate::args::{Cli, Shell};
use crate::exit::ExitStatus;

/// Commands whose first positional argument is a container name.
const CONTAINER_COMMANDS: &[&str] = &[
    "login", "sh", "run", "diff", "remove", "rm", "unmount", "umount", "um", "kill", "k", "stop",
    "rename", "reset", "backup", "bak", "bkp",
];

pub fn run(shell: Shell) -> anyhow::Result<ExitStatus> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    match shell {
        Shell::Bash => generate(shells::Bash, &mut cmd, "chroot-distro", &mut script),
        Shell::Zsh => generate(shells::Zsh, &mut cmd, "chroot-distro", &mut script),
        Shell::Fish => generate(shells::Fish, &mut cmd, "chroot-distro", &mut script),
    }
    let mut text = String::from_utf8_lossy(&script).into_owned();
    text.push_str(&names_extension(shell));
    print!("{text}");
    Ok(ExitStatus::Success)
}

fn names_extension(shell: Shell) -> String {
    let commands = CONTAINER_COMMANDS.join(" ");
    match shell {
        Shell::Bash => format!(
            r#"
_chroot_distro_names() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" sub="${{COMP_WORDS[1]}}"
    if [[ $COMP_CWORD -ge 2 && "$cur" != -* && " {commands} " == *" $sub "* ]]; then
        COMPREPLY=( $(compgen -W "$(chroot-distro list -q 2>/dev/null)" -- "$cur") )
        [[ ${{#COMPREPLY[@]}} -gt 0 ]] && return 0
    fi
    _chroot-distro "$@"
}}
complete -F _chroot_distro_names -o bashdefault -o default chroot-distro
"#
        ),
        Shell::Fish => format!(
            "\ncomplete -c chroot-distro -n '__fish_seen_subcommand_from {commands}' -f -a '(chroot-distro list -q 2>/dev/null)'\n"
        ),
        Shell::Zsh => format!(
            r#"
_chroot_distro_names() {{
    local -a names
    names=(${{(f)"$(chroot-distro list -q 2>/dev/null)"}})
    if (( CURRENT >= 3 )) && [[ " {commands} " == *" ${{words[2]}} "* && "${{words[CURRENT]}}" != -* ]] && (( ${{#names}} )); then
        compadd -a names && return 0
    fi
    _chroot-distro "$@"
}}
compdef _chroot_distro_names chroot-distro
"#
        ),
    }
}
