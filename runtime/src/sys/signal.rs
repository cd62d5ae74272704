//! Group signals, the parent-death signal and exit waits, through `rustix`
//! (safe wrappers over the system calls).

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use rustix::process::{Pid, WaitId, WaitIdOptions};

pub(crate) use rustix::process::Signal;

fn pid_of(pid: u32) -> Option<Pid> {
    Pid::from_raw(i32::try_from(pid).ok()?)
}

/// Sends `signal` to process group `pgid`; an empty group is no error.
/// Only for a group whose number cannot have been reused: its leader is
/// our unreaped child, or the caller is a member. (A process found by its
/// number is signalled through a pidfd, see `pidfd.rs`.)
pub(crate) fn signal_group(pgid: u32, signal: Signal) {
    if let Some(pgid) = pid_of(pgid) {
        let _ = rustix::process::kill_process_group(pgid, signal);
    }
}

/// Whether a process `pid` exists (a zombie too): `kill(pid, 0)`.
pub(crate) fn exists(pid: u32) -> bool {
    pid_of(pid).is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok())
}

/// The uid this process runs as.
pub(crate) fn current_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// Between fork and exec of a child: ask the kernel to SIGKILL it when the
/// spawning thread's process dies, and die at once if the parent `parent`
/// is already gone (then no signal would come). Uses only
/// async-signal-safe system calls.
pub(crate) fn die_with_parent(parent: u32) -> std::io::Result<()> {
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
    let parent_now = rustix::process::getppid().map(|p| p.as_raw_pid());
    if parent_now != i32::try_from(parent).ok() {
        let _ = rustix::process::kill_process(rustix::process::getpid(), Signal::KILL);
    }
    Ok(())
}

/// `waitid(WEXITED | WNOWAIT)` on child `pid`: its exit status, leaving a
/// zombie that keeps the pid (and so its group id) ours. `None` if the
/// wait failed (not our child).
pub(crate) fn wait_exit_unreaped(pid: u32) -> Option<ExitStatus> {
    let pid = pid_of(pid)?;
    loop {
        match rustix::process::waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        ) {
            Ok(Some(status)) => return Some(exit_status(&status)),
            // Without WNOHANG, waitid returns only once the child exited.
            Ok(None) => continue,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return None,
        }
    }
}

/// A child's state, looked at without reaping it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChildState {
    /// It runs: its pid (and group id) are ours.
    Running,
    /// It exited and is an unreaped zombie: its pid (and group id) are
    /// still ours until it is reaped.
    Exited(ExitStatus),
    /// Not a child of ours any more (reaped, or never ours).
    NotOurs,
}

/// `waitid(WEXITED | WNOHANG | WNOWAIT)` on child `pid`: whether it runs
/// or exited, leaving it unreaped either way.
pub(crate) fn child_state(pid: u32) -> ChildState {
    let Some(id) = pid_of(pid) else {
        return ChildState::NotOurs;
    };
    loop {
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
        match rustix::process::waitid(WaitId::Pid(id), options) {
            // With WNOHANG, Linux fills in a zeroed status for a running child.
            Ok(Some(status)) if status.exited() || status.killed() || status.dumped() => {
                return ChildState::Exited(exit_status(&status))
            }
            Ok(_) => return ChildState::Running,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return ChildState::NotOurs,
        }
    }
}

/// Sends `signal` to the process group led by our child `leader`, only
/// while the leader is unreaped (running or a zombie): then no other
/// process can have that id as its pid or group id. Whether it was sent.
pub(crate) fn signal_child_group(leader: u32, signal: Signal) -> bool {
    if child_state(leader) == ChildState::NotOurs {
        return false;
    }
    pid_of(leader).is_some_and(|pgid| rustix::process::kill_process_group(pgid, signal).is_ok())
}

/// Sends `signal` to our child `pid`, only while it is unreaped (so the
/// number is still its own). Whether it was sent.
pub(crate) fn signal_child(pid: u32, signal: Signal) -> bool {
    if child_state(pid) == ChildState::NotOurs {
        return false;
    }
    pid_of(pid).is_some_and(|p| rustix::process::kill_process(p, signal).is_ok())
}

/// A pidfd: a handle on one process, readable once it has exited (a
/// wait on it can never be about a later holder of its number).
pub(crate) struct PidFd(std::os::fd::OwnedFd);

impl PidFd {
    /// Opens a pidfd on `pid` (Linux 5.3+). Open it on an unreaped child.
    pub(crate) fn open(pid: u32) -> std::io::Result<PidFd> {
        let pid = pid_of(pid).ok_or(std::io::ErrorKind::InvalidInput)?;
        Ok(PidFd(rustix::process::pidfd_open(
            pid,
            rustix::process::PidfdFlags::empty(),
        )?))
    }
}

impl std::os::fd::AsFd for PidFd {
    /// Readable once the process has exited.
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// The std form of a waitid status.
fn exit_status(status: &rustix::process::WaitIdStatus) -> ExitStatus {
    if let Some(code) = status.exit_status() {
        ExitStatus::from_raw((code & 0xff) << 8)
    } else {
        let signal = status.terminating_signal().unwrap_or(0);
        ExitStatus::from_raw(signal | if status.dumped() { 0x80 } else { 0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::process::CommandExt;

    #[test]
    fn a_child_is_seen_running_then_exited_without_being_reaped() {
        let mut child = std::process::Command::new("sleep")
            .arg("0.2")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        let pidfd = PidFd::open(pid).unwrap();
        assert_eq!(child_state(pid), ChildState::Running);
        assert!(signal_child_group(pid, Signal::TERM));
        let ready = crate::sys::unix_socket::poll_readable(
            &[pidfd.as_fd()],
            std::time::Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(ready, vec![true], "the pidfd turns readable at exit");
        let ChildState::Exited(status) = child_state(pid) else {
            panic!("not exited: {:?}", child_state(pid));
        };
        assert_eq!(status.signal(), Some(15));
        // Still unreaped: std's wait reaps it now, and then it is not ours.
        assert_eq!(child.wait().unwrap().signal(), Some(15));
        assert_eq!(child_state(pid), ChildState::NotOurs);
        assert!(!signal_child_group(pid, Signal::KILL));
    }

    #[test]
    fn exists_sees_us_and_not_a_pid_out_of_range() {
        assert!(exists(std::process::id()));
        assert!(!exists(u32::MAX));
    }
}
