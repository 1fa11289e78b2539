//! How use cases talk to the user without printing: the CLI implements this trait.

/// Messages and progress from a running use case.
pub trait Reporter: Sync {
    /// A normal status line (hidden with `--quiet`).
    fn info(&self, msg: &str);
    /// A warning (always shown).
    fn warn(&self, msg: &str);
    /// A per-item line shown only with `--verbose`.
    fn verbose(&self, msg: &str);
    /// A progress bar for `total` units (bytes unless said otherwise); hidden when not a TTY.
    fn progress(&self, label: &str, total: u64) -> Box<dyn Progress>;
}

pub trait Progress: Send + Sync {
    fn set_position(&self, done: u64);
    fn set_total(&self, total: u64);
    fn set_message(&self, msg: &str);
    fn finish(&self);
    /// Whether anyone will see it: work that only feeds a bar (a size estimate) can be skipped.
    fn is_visible(&self) -> bool;
}

/// A reporter that says nothing (library callers and tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

struct NoProgress;

impl Progress for NoProgress {
    fn set_position(&self, _: u64) {}
    fn set_total(&self, _: u64) {}
    fn set_message(&self, _: &str) {}
    fn finish(&self) {}
    fn is_visible(&self) -> bool {
        false
    }
}

impl Reporter for Silent {
    fn info(&self, _: &str) {}
    fn warn(&self, _: &str) {}
    fn verbose(&self, _: &str) {}
    fn progress(&self, _: &str, _: u64) -> Box<dyn Progress> {
        Box::new(NoProgress)
    }
}
