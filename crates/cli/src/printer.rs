//! The printer owns quiet/verbose and progress bars; engine use cases talk to it as a Reporter.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use cd_engine::report::{Progress, Reporter};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

impl Verbosity {
    pub fn from_flags(quiet: bool, verbose: bool) -> Self {
        match (quiet, verbose) {
            (true, _) => Verbosity::Quiet,
            (false, true) => Verbosity::Verbose,
            _ => Verbosity::Normal,
        }
    }
}

pub struct Printer {
    verbosity: Verbosity,
    bars: MultiProgress,
    show_bars: bool,
}

impl Printer {
    pub fn new(verbosity: Verbosity) -> Self {
        // Bars go to stderr, only on a terminal, and not when every file is being logged.
        let show_bars = verbosity == Verbosity::Normal
            && std::io::stderr().is_terminal()
            && std::env::var_os("CD_NO_PROGRESS").is_none();
        let target = if show_bars {
            ProgressDrawTarget::stderr_with_hz(10)
        } else {
            ProgressDrawTarget::hidden()
        };
        // indicatif hides itself on terminals it cannot drive (no or a dumb TERM); its
        // `println` then prints nothing, so status lines must go straight to stderr.
        let show_bars = show_bars && !target.is_hidden();
        Printer {
            verbosity,
            bars: MultiProgress::with_draw_target(target),
            show_bars,
        }
    }

    fn line(&self, text: &str) {
        if self.show_bars {
            let _ = self.bars.println(text);
        } else {
            let _ = writeln!(std::io::stderr(), "{text}");
        }
    }

    /// Output meant for stdout (tables, names): printed at every verbosity.
    pub fn out(&self, text: &str) -> std::io::Result<()> {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{text}")
    }
}

impl Reporter for Printer {
    fn info(&self, msg: &str) {
        if self.verbosity != Verbosity::Quiet {
            self.line(msg);
        }
    }

    fn warn(&self, msg: &str) {
        self.line(&format!("warning: {msg}"));
    }

    fn verbose(&self, msg: &str) {
        if self.verbosity == Verbosity::Verbose {
            self.line(msg);
        }
    }

    fn progress(&self, label: &str, total: u64) -> Box<dyn Progress> {
        if !self.show_bars {
            return Box::new(Bar(ProgressBar::hidden()));
        }
        let bar = self.bars.add(ProgressBar::new(total));
        let style = ProgressStyle::with_template(
            "{prefix:>14} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>11} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Box::new(Bar(bar))
    }
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn set_position(&self, done: u64) {
        self.0.set_position(done);
    }
    fn set_total(&self, total: u64) {
        self.0.set_length(total);
    }
    fn set_message(&self, msg: &str) {
        self.0.set_message(msg.to_string());
    }
    fn finish(&self) {
        self.0.finish();
    }
    fn is_visible(&self) -> bool {
        !self.0.is_hidden()
    }
}
