//! A watchdog that kills a child's process group if the test process dies.
//!
//! `PR_SET_PDEATHSIG` covers the direct child only; grandchildren survive a
//! SIGKILLed test. The watchdog is a `/bin/sh` that reads from a pipe whose
//! write end only the test process holds. When the pipe closes (the test
//! process died) it first runs this executable as a sweeper for the child's
//! descendants that left the group (`descendants.rs`, at most 10 s), then
//! sends SIGKILL to the group. (Teardown does not close the pipe: it kills
//! the group, the watchdog with it, after stopping the descendants itself.)
//!
//! **It is a member of the group it guards**, and signals only its own
//! group (`kill -s KILL 0`). That is what makes the signal safe. A signal
//! to `-pgid` reaches whatever group has that number *now*; the number
//! stays the child's group only while some process is in it (the kernel
//! does not reuse a pid that a live group still uses as its id). When the
//! test process dies, the leader (our child) dies of its parent-death
//! signal and is reparented to init, which reaps it at once; once the
//! last member is gone the number is free, and a new process may lead a
//! group of that number. A watchdog outside the group could not tell its
//! group from such a newcomer. A watchdog inside the group keeps the
//! number in use for as long as it runs, so the group it signals is the
//! child's, by construction, with no check to race.
//!
//! Designs not taken: checking the leader's start time before the kill
//! (the leader is the first to die, so there is nothing left to check); a
//! pidfd (it pins a process, not a group number, and a watchdog holding
//! one cannot be `sh`); making the watchdog the child's parent (the test
//! process would lose the exit status, the unreaped leader that keeps the
//! group ours during teardown, and the parent-death signal, which the
//! kernel ties to the spawning thread, see `spawner.rs`).
//!
//! Living in the group has two consequences, both handled by the caller
//! (`managed.rs`): teardown's wait for the group to empty does not count
//! the watchdog ([`Watchdog::pid`]), and teardown's final SIGKILL to the
//! group takes the watchdog along; [`Watchdog::dismiss`] then only reaps
//! it. The watchdog ignores SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1,
//! SIGUSR2 and SIGALRM, so teardown's SIGTERM to the group (or a child's
//! `kill 0`) does not end it. nextest's SIGTERM goes to the *test's* group,
//! which the watchdog is not in.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use super::descendants::{ENV_SWEEP, SWEEP_ARG};
use super::reaper::reap_in_background;

/// `$0` of the watchdog shell: how it shows in `ps`.
const NAME: &str = "dynamo-test-watchdog";

/// `$1`: the executable to run as the sweeper; `$2`: its argument. The
/// sweeper gets 10 s: should it hang (a process stuck in the kernel), the
/// group is killed all the same.
const SCRIPT: &str = r#"trap '' TERM INT HUP QUIT USR1 USR2 ALRM; read -r line; "$1" "$2" </dev/null >/dev/null 2>&1 & s=$!; (sleep 10; kill -s KILL 0) & wait "$s"; kill -s KILL 0"#;

/// An armed watchdog in one process group. Dropped, it fires: the group
/// is killed.
pub(crate) struct Watchdog {
    /// `None` once dismissed.
    child: Option<Child>,
    pid: u32,
}

impl Watchdog {
    /// Arms a watchdog in process group `pgid`, which must be the group of
    /// an unreaped child of ours (so that it exists and is ours); should it
    /// fire, it sweeps the processes tagged `child_tag` first.
    pub(crate) fn arm(pgid: u32, child_tag: &str) -> std::io::Result<Watchdog> {
        let pgid = i32::try_from(pgid).map_err(std::io::Error::other)?;
        // Without our own path there is no sweeper: `true` stands in.
        let sweeper = std::env::current_exe().unwrap_or_else(|_| "true".into());
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(SCRIPT)
            .arg(NAME)
            .arg(sweeper)
            .arg(SWEEP_ARG)
            .env(ENV_SWEEP, child_tag)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(pgid);
        // A test process may itself run under another test (tagged by it):
        // our helper is not that test's, and a sweep must not take it.
        let child = super::sweep::strip_owner_tag(&mut cmd).spawn()?;
        let pid = child.id();
        Ok(Watchdog {
            child: Some(child),
            pid,
        })
    }

    /// Sends it SIGCONT (after a SIGSTOP of its group). It is our unreaped
    /// child, so its pid is its own.
    pub(crate) fn wake(&self) {
        if let Some(child) = &self.child {
            crate::sys::signal::signal_child(child.id(), crate::sys::signal::Signal::CONT);
        }
    }

    /// Its pid (a member of the group it guards).
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The group was just SIGKILLed, this watchdog with it: only reap it.
    /// (Should it see its pipe close first, it signals the same group,
    /// which it still belongs to: harmless.)
    pub(crate) fn dismiss(mut self) {
        if let Some(child) = self.child.take() {
            reap_in_background(child);
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Closing its stdin fires it.
            drop(child.stdin.take());
            reap_in_background(child);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::procfs::ProcStat;
    use std::os::unix::process::ExitStatusExt;
    use std::time::Duration;

    #[test]
    fn the_watchdog_lives_in_the_group_and_kills_it_when_dropped() {
        let mut leader = Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = leader.id();
        let watchdog = Watchdog::arm(pgid, "no-such-tag").unwrap();
        // Wait until its traps are set (SIGTERM in its ignored mask).
        let ignores_term = |pid: u32| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            status
                .lines()
                .find_map(|l| l.strip_prefix("SigIgn:"))
                .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
                .is_some_and(|mask| mask & (1 << (libc::SIGTERM - 1)) != 0)
        };
        assert!((0..400).any(|_| {
            std::thread::sleep(Duration::from_millis(5));
            ignores_term(watchdog.pid())
        }));
        let its_group = ProcStat::read(watchdog.pid()).map(|s| s.pgrp);
        assert_eq!(its_group, Some(pgid), "a member of the group it guards");
        // Teardown's SIGTERM to the group does not end it.
        crate::sys::signal::signal_group(pgid, crate::sys::signal::Signal::TERM);
        assert_eq!(leader.wait().unwrap().signal(), Some(libc::SIGTERM));
        std::thread::sleep(Duration::from_millis(50));
        let watchdog_pid = watchdog.pid();
        assert!(ProcStat::read(watchdog_pid).is_some_and(|s| s.is_live()));
        drop(watchdog);
        let gone = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(5));
            !ProcStat::read(watchdog_pid).is_some_and(|s| s.is_live())
        });
        assert!(gone, "fired: it killed its group, itself included");
    }
}
