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

    #[test]
    fn exists_sees_us_and_not_a_pid_out_of_range() {
        assert!(exists(std::process::id()));
        assert!(!exists(u32::MAX));
    }
}
