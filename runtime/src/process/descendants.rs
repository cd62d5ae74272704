//! Descendants that left their child's process group, found by the
//! child's own tag.
//!
//! `setsid`, a double fork, Ray, MPI launchers and Python's
//! `start_new_session=True` take a process out of its parent's group and
//! session: a signal to the group, the parent-death signal (direct child
//! only) and the group's watchdog all miss it. Every managed child gets
//! [`ENV_CHILD`], unique to it (the test process's owner tag and a serial),
//! and its descendants inherit it with the rest of the environment. At the
//! child's stop and at teardown, every process of ours that carries the tag
//! and is not in the child's group is an escapee: found in /proc, pinned
//! with a pidfd, its tag read again, then SIGTERM, the child's grace,
//! SIGKILL. When the test process dies instead (SIGKILL included), the
//! group's watchdog runs this executable again as a sweeper
//! ([`SWEEP_ARG`]) that kills the tagged processes before the watchdog
//! kills the group.
//!
//! What is not caught: a descendant that drops the variable from its
//! environment (`env -i`, a daemon that scrubs its env) *and* leaves the
//! group; one that changes uid (setuid programs, `sudo`) or enters another
//! PID namespace; and, when the test process is SIGKILLed, escapees of an
//! executable that was deleted or replaced meanwhile (cargo rebuilt it):
//! `dynamo-test clean` still finds those by the owner tag. A cgroup would
//! catch more and is not used: it needs root or a delegated subtree.

use std::sync::atomic::{AtomicU64, Ordering};

use super::pinned::{check_proc, PinnedProcess};
use super::sweep::owner_tag;
use crate::sys::procfs::{self, ProcStat};
use crate::sys::signal::current_uid;

/// Env var naming the managed child a process descends from:
/// `<owner tag>/<serial>`.
pub const ENV_CHILD: &str = "DYNAMO_TEST_CHILD";

/// The argument that turns this executable into a sweeper (with
/// [`ENV_SWEEP`] naming the tag to sweep).
pub(crate) const SWEEP_ARG: &str = "--dynamo-test-sweep-escapees";

/// Env var giving the sweeper the child tag whose processes it kills.
pub(crate) const ENV_SWEEP: &str = "DYNAMO_TEST_SWEEP";

/// A fresh tag for a child about to start.
pub(crate) fn new_child_tag() -> String {
    static SERIAL: AtomicU64 = AtomicU64::new(1);
    let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
    format!("{}/{serial}", owner_tag())
}

/// A tagged process outside the child's group, pinned.
#[derive(Debug)]
pub(crate) struct Escapee {
    pub(crate) process: PinnedProcess,
    pub(crate) command: String,
}

impl std::fmt::Display for Escapee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} ({})", self.process.pid(), self.command)
    }
}

/// Every process of ours carrying `tag` outside group `pgid` (`None`:
/// whatever its group) that started at or after `since` (clock ticks since
/// boot: the child's start, which every descendant follows), pinned.
/// Processes we cannot reach (another uid, another PID namespace) are left
/// alone, and their environment is never read (a read can block on a
/// process stuck in the kernel); nothing if /proc shows another namespace
/// than ours.
pub(crate) fn find(tag: &str, pgid: Option<u32>, since: u64) -> Vec<Escapee> {
    if check_proc().is_err() {
        return Vec::new();
    }
    let (me, uid) = (std::process::id(), current_uid());
    procfs::pids()
        .into_iter()
        .filter(|&pid| pid != me && procfs::owner_uid(pid) == Some(uid))
        .filter_map(|pid| ProcStat::read(pid).map(|stat| (pid, stat)))
        .filter(|(_, stat)| stat.is_live() && stat.start_time >= since)
        .filter(|(_, stat)| Some(stat.pgrp) != pgid)
        .filter(|(pid, _)| procfs::environ_var(*pid, ENV_CHILD).as_deref() == Some(tag))
        .filter_map(|(pid, stat)| pin_tagged(pid, stat.start_time, tag))
        .collect()
}

/// Pins `pid` and reads its tag again after the pin: a number reused by
/// another process between the scan and the pin is never taken.
fn pin_tagged(pid: u32, start_time: u64, tag: &str) -> Option<Escapee> {
    let process = PinnedProcess::pin(pid, start_time).ok()?;
    if procfs::environ_var(pid, ENV_CHILD).as_deref() != Some(tag) {
        return None;
    }
    let command = procfs::command_line(pid).unwrap_or_else(|| "?".to_string());
    Some(Escapee { process, command })
}

/// Whether any of `escapees` still runs.
pub(crate) fn any_running(escapees: &[Escapee]) -> bool {
    escapees.iter().any(|e| e.process.is_running())
}

/// The sweeper's work, run from the pre-main hook: SIGKILL to every
/// process carrying the tag in [`ENV_SWEEP`].
fn sweep_from_env() {
    let Some(tag) = std::env::var_os(ENV_SWEEP).and_then(|t| t.into_string().ok()) else {
        return;
    };
    // Two rounds: a process may fork while the first round kills.
    for _ in 0..2 {
        for escapee in find(&tag, None, 0) {
            let _ = escapee.process.kill();
        }
    }
}

// The sweeper's pre-main hook. `#[ctor(unsafe)]` is ctor's required marker:
// code before `main` runs without Rust's runtime setup.
// SAFETY: it runs before `main` in every process that links this crate and
// does nothing unless argv[1] is SWEEP_ARG *and* DYNAMO_TEST_SWEEP is set,
// which only a watchdog of this harness does; then it reads /proc, sends
// signals through pidfds and exits without returning to `main`. It uses the
// parts of std that work without the runtime's setup (env, files, exit).
#[ctor::ctor(unsafe)]
fn sweeper_hook() {
    // From /proc: `args_os` is empty in a constructor on some libcs (musl).
    let args = procfs::arguments(std::process::id()).unwrap_or_default();
    let asked = args.get(1).is_some_and(|a| a == SWEEP_ARG);
    if asked && std::env::var_os(ENV_SWEEP).is_some() {
        let _ = std::panic::catch_unwind(sweep_from_env);
        std::process::exit(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn tagged_sleeper(tag: &str, own_group: bool) -> std::process::Child {
        let mut cmd = Command::new("sleep");
        cmd.arg("30").env(ENV_CHILD, tag).stdout(Stdio::null());
        if own_group {
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        }
        cmd.spawn().unwrap()
    }

    #[test]
    fn tags_are_unique_and_name_this_process() {
        let (a, b) = (new_child_tag(), new_child_tag());
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("{}/", owner_tag())), "{a}");
    }

    #[test]
    fn finds_only_its_tag_outside_the_group() {
        let tag = new_child_tag();
        let mut mine = tagged_sleeper(&tag, true);
        let mut other = tagged_sleeper(&new_child_tag(), true);
        let found = find(&tag, None, 0);
        assert_eq!(
            found.iter().map(|e| e.process.pid()).collect::<Vec<_>>(),
            [mine.id()]
        );
        assert!(found[0].command.contains("sleep 30"), "{}", found[0]);
        // Inside the group that is being stopped anyway: not an escapee.
        assert!(find(&tag, Some(mine.id()), 0).is_empty());
        // Started before `since`: not a descendant of a child started then.
        let later = found[0].process.pid();
        let its_start = ProcStat::read(later).unwrap().start_time;
        assert!(find(&tag, None, its_start + 1).is_empty());
        assert!(found[0].process.kill().unwrap());
        mine.wait().unwrap();
        assert!(!any_running(&found));
        other.kill().unwrap();
        other.wait().unwrap();
    }
}
