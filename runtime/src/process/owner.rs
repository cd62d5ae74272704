//! What a managed process needs from whoever owns it (a test's context).
//!
//! The process module never sees the context: the context implements this
//! hook and hands itself to [`ProcessBuilder`](super::ProcessBuilder).

use std::path::PathBuf;

use super::ManagedProcess;

/// The owner of managed processes: where their logs go, what env they
/// inherit, and who stops them at the end.
pub(crate) trait Owner: Send + Sync {
    /// Env vars every child gets first (the builder's own settings win).
    fn child_env(&self) -> Vec<(String, String)>;

    /// A fresh, empty log path for a process called `name`, never shared
    /// with another process of the owner.
    fn new_log_path(&self, name: &str) -> PathBuf;

    /// Takes `process` in: stopped at the owner's teardown (its log is
    /// shown on failure because it came from [`Owner::new_log_path`]).
    fn adopt(&self, process: &ManagedProcess);

    /// A harness line in the owner's output.
    fn note(&self, message: &str);
}
