//! A child's process group: signal it, see whether anyone in it is alive.
//!
//! The group's id is the leader's pid, so it is ours only while the leader
//! is not reaped: a reaped pid may be reused, and a signal to `-pgid` would
//! then reach a stranger. [`Reaper`] therefore observes the leader's exit
//! without reaping it (`waitid(WNOWAIT)`) and reaps only when told that the
//! group is taken care of.

use std::process::{Child, ExitStatus};
use std::sync::mpsc;

use crate::sys::procfs::{self, ProcStat};
pub(crate) use crate::sys::signal::signal_group as signal;
use crate::sys::signal::wait_exit_unreaped;

/// Whether a process of group `pgid` other than zombies and `except` (the
/// group's watchdog) is still running (a leader that exited stays in the
/// group as a zombie until reaped).
pub(crate) fn has_live_members(pgid: u32, except: Option<u32>) -> bool {
    procfs::pids()
        .into_iter()
        .filter(|&pid| Some(pid) != except)
        .any(|pid| member_state(pid, pgid).is_some_and(|state| state != 'Z'))
}

/// The state letter of `pid` if it belongs to group `pgid`.
fn member_state(pid: u32, pgid: u32) -> Option<char> {
    ProcStat::read(pid)
        .filter(|stat| stat.pgrp == pgid)
        .map(|stat| stat.state)
}

/// Waits for a child's exit without reaping it, reports the status, and
/// reaps it once released (or when the release handle is dropped).
pub(crate) struct Reaper {
    release: mpsc::Sender<()>,
}

impl Reaper {
    /// Starts a thread that waits for `child` to exit, passes its status
    /// to `exited`, then waits for the release and reaps. Returns the
    /// handle that releases it.
    pub(crate) fn watch(
        child: Child,
        exited: impl FnOnce(ExitStatus) + Send + 'static,
    ) -> std::io::Result<Reaper> {
        let (release, released) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("dynamo-test-reaper".into())
            .spawn(move || {
                let mut child = child;
                match wait_exit_unreaped(child.id()) {
                    Some(status) => exited(status),
                    // Dropping `exited` tells its waiters there is no status.
                    None => drop(exited),
                }
                // A dropped sender (Err) also releases.
                let _ = released.recv();
                let _ = child.wait();
            })?;
        Ok(Reaper { release })
    }

    /// Lets the reaper reap: the group will not be signalled again.
    pub(crate) fn release(self) {
        let _ = self.release.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::process::Command;

    fn exit_of(script: &str) -> ExitStatus {
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let reaper = Reaper::watch(child, move |s| tx.send(s).unwrap()).unwrap();
        let status = rx.recv().unwrap();
        reaper.release();
        status
    }

    #[test]
    fn exit_codes_and_signals_are_reported() {
        assert_eq!(exit_of("exit 3").code(), Some(3));
        assert_eq!(exit_of("kill -s KILL $$").signal(), Some(9));
    }

    #[test]
    fn an_exited_leader_stays_unreaped_until_released() {
        let child = Command::new("true").process_group(0).spawn().unwrap();
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        let reaper = Reaper::watch(child, move |s| tx.send(s).unwrap()).unwrap();
        assert!(rx.recv().unwrap().success());
        assert_eq!(member_state(pid, pid), Some('Z'), "a zombie keeps the pid");
        assert!(
            !has_live_members(pid, None),
            "a zombie is not a live member"
        );
        reaper.release();
        let gone = (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            member_state(pid, pid).is_none()
        });
        assert!(gone, "reaped after the release");
    }

    #[test]
    fn a_grandchild_outliving_the_leader_is_a_live_member() {
        let child = Command::new("/bin/sh")
            .args(["-c", "sleep 30 & exit 0"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id();
        let (tx, rx) = mpsc::channel();
        let reaper = Reaper::watch(child, move |s| tx.send(s).unwrap()).unwrap();
        assert!(rx.recv().unwrap().success());
        assert!(has_live_members(pgid, None), "the sleep is still running");
        let sleep = procfs::pids()
            .into_iter()
            .find(|&p| p != pgid && member_state(p, pgid).is_some());
        assert!(!has_live_members(pgid, sleep), "all but the one excepted");
        signal(pgid, crate::sys::signal::Signal::KILL);
        let gone = (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            !has_live_members(pgid, None)
        });
        reaper.release();
        assert!(gone, "SIGKILL to the group reaches the grandchild");
    }
}
