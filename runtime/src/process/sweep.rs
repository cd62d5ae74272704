//! Finding (and stopping) tagged processes whose owner is gone.
//!
//! Every child the harness starts carries `DYNAMO_TEST_OWNER=<pid>:<start
//! time>` naming the test process. If that process no longer exists (or
//! its pid now belongs to a process started at another time), the child is
//! an orphan. Nothing without the tag is ever touched, and nothing is
//! matched by name.

use crate::sys::procfs::{self, ProcStat};
use crate::sys::signal;

/// Env var tagging a child with its owner: `<pid>:<start time in clock ticks>`.
pub const ENV_OWNER: &str = "DYNAMO_TEST_OWNER";
/// Env var carrying the child's name in its test (for listings).
pub const ENV_OWNER_NAME: &str = "DYNAMO_TEST_PROCESS";

/// A tagged process whose owner is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    /// Its pid.
    pub pid: u32,
    /// Its name in the test, from [`ENV_OWNER_NAME`].
    pub name: String,
    /// The dead owner's pid.
    pub owner_pid: u32,
    /// Its command line.
    pub command: String,
}

/// The owner tag of the current process.
pub(crate) fn owner_tag() -> String {
    // The same for the whole life of this process: read /proc once.
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let pid = std::process::id();
        format!("{pid}:{}", start_time(pid).unwrap_or(0))
    })
    .clone()
}

/// A process's start time (clock ticks since boot), from `/proc/<pid>/stat`.
pub fn start_time(pid: u32) -> Option<u64> {
    ProcStat::read(pid).map(|stat| stat.start_time)
}

/// Whether the tag names a live process (same pid, same start time).
pub fn owner_alive(tag: &str) -> bool {
    let Some((pid, started)) = tag.split_once(':') else {
        return false;
    };
    let (Ok(pid), Ok(started)) = (pid.parse::<u32>(), started.parse::<u64>()) else {
        return false;
    };
    if started == 0 {
        // The owner could not read its own start time (no /proc?): the pid
        // alone must do, so that a live test's children are never orphans.
        return signal::exists(pid);
    }
    procfs::is_running(pid, started)
}

/// Every tagged process of this user whose owner is dead.
pub fn find_orphans() -> Vec<Orphan> {
    procfs::pids().into_iter().filter_map(orphan).collect()
}

/// `pid` as an orphan: tagged, and its owner dead.
pub fn orphan(pid: u32) -> Option<Orphan> {
    let tag = procfs::environ_var(pid, ENV_OWNER)?;
    if owner_alive(&tag) {
        return None;
    }
    let owner_pid = tag.split(':').next()?.parse().ok()?;
    Some(Orphan {
        pid,
        name: procfs::environ_var(pid, ENV_OWNER_NAME).unwrap_or_default(),
        owner_pid,
        command: procfs::command_line(pid).unwrap_or_default(),
    })
}

/// SIGKILLs each orphan after checking again that it is still one.
/// Returns the ones stopped.
pub fn stop_orphans(orphans: &[Orphan]) -> Vec<Orphan> {
    orphans
        .iter()
        .filter(|o| orphan(o.pid).is_some_and(|now| now.owner_pid == o.owner_pid))
        .filter(|o| signal::signal_process(o.pid, signal::Signal::KILL))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_tag_is_alive_and_a_forged_one_is_not() {
        let tag = owner_tag();
        assert!(owner_alive(&tag), "{tag}");
        let pid = std::process::id();
        assert!(!owner_alive(&format!("{pid}:1")));
        assert!(!owner_alive("nonsense"));
    }
}
