//! `list` and `ps`: installed and running containers.

use cd_engine::report::Reporter;
use cd_engine::store::ContainerInfo;
use cd_engine::{human_bytes, Store};

use crate::args::{ListArgs, OutputFormat, PsArgs};
use crate::exit::ExitStatus;
use crate::printer::{Printer, Verbosity};

pub fn run(store: &Store, args: &ListArgs) -> anyhow::Result<ExitStatus> {
    let containers = store.list()?;
    render(&containers, args.quiet, args.format, true)
}

/// `ps`: containers with something inside (a live namespace holder or a process whose root is
/// the rootfs), the same test `kill` and `remove` use; a container merely locked by another
/// command is not running.
pub fn run_ps(store: &Store, args: &PsArgs) -> anyhow::Result<ExitStatus> {
    let containers: Vec<ContainerInfo> = store
        .list()?
        .into_iter()
        .filter(|c| args.all || c.status.is_running())
        .collect();
    render(&containers, args.quiet, args.format, false)
}

fn render(
    containers: &[ContainerInfo],
    quiet: bool,
    format: OutputFormat,
    suggest_install: bool,
) -> anyhow::Result<ExitStatus> {
    let printer = Printer::new(Verbosity::Normal);
    if let OutputFormat::Json = format {
        printer.out(&serde_json::to_string_pretty(containers)?)?;
        return Ok(ExitStatus::Success);
    }
    if quiet {
        for c in containers {
            printer.out(&c.name)?;
        }
        return Ok(ExitStatus::Success);
    }
    if containers.is_empty() {
        if suggest_install {
            printer.info(
                "no containers installed; create one with 'chroot-distro install ubuntu:24.04'",
            );
        } else {
            printer.info("no running containers");
        }
        return Ok(ExitStatus::Success);
    }
    let rows: Vec<[String; 4]> = containers
        .iter()
        .map(|c| {
            [
                c.name.clone(),
                human_bytes(c.size_bytes),
                c.source.clone(),
                c.status.to_string(),
            ]
        })
        .collect();
    printer.out(&table(["NAME", "SIZE", "SOURCE", "STATUS"], &rows))?;
    Ok(ExitStatus::Success)
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header_row: Vec<String> = header.iter().map(|s| s.to_string()).collect();
    for row in std::iter::once(header_row.as_slice()).chain(rows.iter().map(|r| r.as_slice())) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.pop();
    out
}
