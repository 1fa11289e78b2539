//! The command-line surface, as clap definitions only. Commands turn these into engine calls.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Run 'chroot-distro help COMMAND' or 'chroot-distro COMMAND --help' for details.
Data: $XDG_DATA_HOME/chroot-distro (containers), $XDG_CACHE_HOME/chroot-distro (downloads).";

#[derive(Debug, Parser)]
#[command(
    name = "chroot-distro",
    version,
    about = "Run Linux distributions and OCI images in native chroot containers",
    long_about = "Run Linux distributions and OCI images in native chroot containers.\n\n\
        Containers are created from Docker/OCI images or rootfs archives and entered with the \
        host kernel's chroot, bind mounts and, on request, namespaces. No daemon is needed.",
    after_help = AFTER_HELP,
    disable_help_subcommand = true,
    propagate_version = true,
    max_term_width = 120
)]
pub struct Cli {
    /// Do not re-run through sudo/doas/pkexec/su when not root (CHROOT_DISTRO_NO_ELEVATE=1)
    #[arg(long, global = true)]
    pub no_elevate: bool,

    /// On Termux, prefer sudo over su for elevation (CHROOT_DISTRO_USE_SUDO=1)
    #[arg(long, global = true)]
    pub use_sudo: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install a container from an image, a local archive or a URL
    #[command(visible_aliases = ["add", "i", "in", "ins"])]
    Install(InstallArgs),

    /// Build an image from a Dockerfile
    Build(BuildArgs),

    /// Push a locally built image to a registry
    Push(PushArgs),

    /// Start a shell (or a command) inside a container
    #[command(visible_alias = "sh")]
    Login(LoginArgs),

    /// Run the image-defined entrypoint of a container
    Run(LoginArgs),

    /// List installed containers
    #[command(visible_aliases = ["li", "ls"])]
    List(ListArgs),

    /// List running containers
    Ps(PsArgs),

    /// Search Docker Hub for images
    #[command(visible_aliases = ["find", "se"])]
    Search(SearchArgs),

    /// Show files added, changed or deleted relative to the image
    Diff(ContainerArg),

    /// Delete a container and all its data
    #[command(visible_alias = "rm")]
    Remove(RemoveArgs),

    /// End sessions and release a container's mounts
    #[command(visible_aliases = ["umount", "um"])]
    Unmount(ContainerArg),

    /// Forcibly stop a running container (SIGTERM, then SIGKILL)
    #[command(visible_aliases = ["k", "stop"])]
    Kill(ContainerArg),

    /// Rename a container
    Rename(RenameArgs),

    /// Reinstall a container from its recorded image (all data is lost)
    Reset(ResetArgs),

    /// Archive a container to a tar file (or stdout)
    #[command(visible_aliases = ["bak", "bkp"])]
    Backup(BackupArgs),

    /// Restore a container from a backup archive (or stdin)
    Restore(RestoreArgs),

    /// Copy files between the host and containers
    #[command(visible_alias = "cp")]
    Copy(CopyArgs),

    /// Synchronise files between the host and containers, copying only what differs
    Sync(SyncArgs),

    /// Delete downloaded layers and manifests
    #[command(visible_aliases = ["clear", "cl"])]
    ClearCache(VerbosityArgs),

    /// Show help for a command
    #[command(visible_aliases = ["h", "he", "hel"])]
    Help(HelpArgs),

    /// Print a shell completion script (bash, zsh or fish)
    Completion(CompletionArgs),
}

impl Command {
    /// The canonical name, used in messages and for elevation decisions.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Install(_) => "install",
            Command::Build(_) => "build",
            Command::Push(_) => "push",
            Command::Login(_) => "login",
            Command::Run(_) => "run",
            Command::List(_) => "list",
            Command::Ps(_) => "ps",
            Command::Search(_) => "search",
            Command::Diff(_) => "diff",
            Command::Remove(_) => "remove",
            Command::Unmount(_) => "unmount",
            Command::Kill(_) => "kill",
            Command::Rename(_) => "rename",
            Command::Reset(_) => "reset",
            Command::Backup(_) => "backup",
            Command::Restore(_) => "restore",
            Command::Copy(_) => "copy",
            Command::Sync(_) => "sync",
            Command::ClearCache(_) => "clear-cache",
            Command::Help(_) => "help",
            Command::Completion(_) => "completion",
        }
    }
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Image reference (ubuntu:24.04), local archive path (./rootfs.tar.xz) or http(s) URL
    #[arg(value_name = "IMAGE|PATH|URL")]
    pub source: String,

    /// Container name (default: the image name or the archive's file name)
    #[arg(
        short = 'n',
        long,
        value_name = "NAME",
        conflicts_with = "override_alias"
    )]
    pub name: Option<String>,

    /// Same as --name
    #[arg(long, value_name = "NAME")]
    pub override_alias: Option<String>,

    /// Target CPU architecture: aarch64, arm, i686, riscv64, x86_64 or linux/arm64, ...
    #[arg(short = 'a', long, value_name = "ARCH")]
    pub architecture: Option<String>,

    /// Allow plain HTTP to a non-loopback registry
    #[arg(long)]
    pub allow_insecure: bool,

    /// Suppress non-error output
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Build context directory
    #[arg(value_name = "PATH", default_value = ".")]
    pub context: PathBuf,

    /// Dockerfile to use instead of PATH/Dockerfile ('-' reads stdin)
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<String>,

    /// Image reference to assign (repeatable)
    #[arg(short = 't', long = "tag", value_name = "REF")]
    pub tags: Vec<String>,

    /// Set a build-time ARG (repeatable)
    #[arg(long = "build-arg", value_name = "K=V")]
    pub build_args: Vec<String>,

    /// Target CPU architecture (default: host)
    #[arg(long, value_name = "ARCH")]
    pub architecture: Option<String>,

    /// Stop after the named stage
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,

    /// Write an OCI image-layout tarball to FILE (repeatable)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub outputs: Vec<PathBuf>,

    /// Install the built image as container NAME
    #[arg(long, value_name = "NAME")]
    pub install_as: Option<String>,

    /// Disable the per-step build cache
    #[arg(long)]
    pub no_cache: bool,

    #[command(flatten)]
    pub verbosity: VerbosityArgs,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Image reference that was built with 'build -t'
    #[arg(value_name = "IMAGE")]
    pub image: String,

    /// Push the manifest built for this architecture (default: host)
    #[arg(long, value_name = "ARCH")]
    pub architecture: Option<String>,

    /// Suppress non-error output
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Container name
    #[arg(value_name = "CONTAINER")]
    pub container: String,

    /// Command and arguments to run (after --)
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,

    /// Log in as USER: name, uid, name:group or uid:gid (default: root)
    #[arg(short, long, value_name = "USER")]
    pub user: Option<String>,

    /// Add PID, UTS and IPC namespaces and skip host integration binds
    #[arg(long, conflicts_with = "minimal")]
    pub isolated: bool,

    /// Bare chroot: core pseudo-filesystems and a stripped environment only
    #[arg(long)]
    pub minimal: bool,

    /// Bind the invoking user's home into the guest home
    #[arg(long)]
    pub shared_home: bool,

    /// Bind the host /tmp to /tmp in the guest (default: a fresh /tmp)
    #[arg(long)]
    pub shared_tmp: bool,

    /// Share the host display (X11, Wayland), audio and D-Bus session sockets
    #[arg(long, visible_alias = "shared-x11")]
    pub shared_display: bool,

    /// Bind-mount a host path into the guest (repeatable); DST must be absolute
    #[arg(short, long = "bind", value_name = "SRC[:DST]")]
    pub binds: Vec<String>,

    /// Hostname inside the container (default: the container name)
    #[arg(long, value_name = "STRING")]
    pub hostname: Option<String>,

    /// Initial working directory (default: the user's home; for run: the image WorkingDir)
    #[arg(short, long, value_name = "PATH")]
    pub work_dir: Option<String>,

    /// Set a guest environment variable (repeatable)
    #[arg(short, long = "env", value_name = "VAR=VALUE")]
    pub env: Vec<String>,

    /// Print the assembled environment and chroot command line, and exit
    #[arg(long)]
    pub get_chroot_cmd: bool,
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print only container names, one per line
    #[arg(short, long)]
    pub quiet: bool,

    /// Output format
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all installed containers, not just running ones
    #[arg(short, long)]
    pub all: bool,

    /// Print only container names, one per line
    #[arg(short, long)]
    pub quiet: bool,

    /// Output format
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Search term
    #[arg(value_name = "TERM")]
    pub term: String,

    /// Maximum number of results (1-100)
    #[arg(short, long, value_name = "N", default_value_t = 25,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct ContainerArg {
    /// Container name
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct VerbosityArgs {
    /// Log each file handled
    #[arg(short, long, conflicts_with = "quiet")]
    pub verbose: bool,

    /// Suppress non-error output
    #[arg(short, long)]
    pub quiet: bool,
}

impl VerbosityArgs {
    /// The printer these flags ask for.
    pub fn printer(&self) -> crate::printer::Printer {
        crate::printer::Printer::new(crate::printer::Verbosity::from_flags(
            self.quiet,
            self.verbose,
        ))
    }
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Container name
    #[arg(value_name = "CONTAINER")]
    pub container: String,

    #[command(flatten)]
    pub verbosity: VerbosityArgs,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    /// Current container name
    #[arg(value_name = "OLDNAME")]
    pub old: String,

    /// New container name
    #[arg(value_name = "NEWNAME")]
    pub new: String,

    /// Suppress non-error output
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// Container name
    #[arg(value_name = "CONTAINER")]
    pub container: String,

    /// Suppress non-error output
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Container name
    #[arg(value_name = "CONTAINER")]
    pub container: String,

    /// Write to FILE instead of stdout (never overwrites)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Compression: gzip, bzip2, xz, zstd or none (default: from the file extension)
    #[arg(short = 'c', long = "compress", value_name = "TYPE",
          value_parser = ["gzip", "bzip2", "xz", "zstd", "none"])]
    pub compress: Option<String>,

    #[command(flatten)]
    pub verbosity: VerbosityArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Backup archive (stdin when omitted)
    #[arg(value_name = "BACKUP_FILE")]
    pub file: Option<PathBuf>,

    #[command(flatten)]
    pub verbosity: VerbosityArgs,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Source: a host path or CONTAINER:PATH
    #[arg(value_name = "[CONTAINER:]SRC")]
    pub source: String,

    /// Destination: a host path or CONTAINER:PATH
    #[arg(value_name = "[CONTAINER:]DEST")]
    pub dest: String,

    /// Copy directories recursively (symlinks are kept)
    #[arg(short, long)]
    pub recursive: bool,

    /// Move instead of copy (delete the source after success)
    #[arg(short, long = "move")]
    pub move_files: bool,

    /// Set the owner of copied files: USER[:GROUP] or :GROUP, looked up in the destination
    #[arg(long, value_name = "USER[:GROUP]")]
    pub chown: Option<String>,

    #[command(flatten)]
    pub verbosity: VerbosityArgs,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Source: a host path or CONTAINER:PATH
    #[arg(value_name = "[CONTAINER:]SRC")]
    pub source: String,

    /// Destination: a host path or CONTAINER:PATH
    #[arg(value_name = "[CONTAINER:]DEST")]
    pub dest: String,

    /// Compare by size and CRC32 instead of size and modification time
    #[arg(short = 'c', long)]
    pub checksum: bool,

    /// Delete destination entries that the source does not have
    #[arg(short, long)]
    pub delete: bool,

    /// Set the owner of synced files: USER[:GROUP] or :GROUP, looked up in the destination
    #[arg(long, value_name = "USER[:GROUP]")]
    pub chown: Option<String>,

    #[command(flatten)]
    pub verbosity: VerbosityArgs,
}

#[derive(Debug, Args)]
pub struct HelpArgs {
    /// Command to show help for
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// Shell to generate the script for
    #[arg(value_enum)]
    pub shell: Shell,
}
