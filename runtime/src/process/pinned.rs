//! Signalling a process found by its number: only that process, and only
//! if it is ours to signal.
//!
//! Two things can make a pid read from /proc (or from a record) the wrong
//! target:
//! - **Reuse.** A number names a process only until that process is
//!   reaped; then the kernel may give it to any new process. A check
//!   ("same start time") followed by `kill(pid)` leaves a gap in which the
//!   number can change hands. [`PinnedProcess::pin`] closes the gap: it
//!   opens a pidfd first, *then* checks the identity. If the process
//!   found earlier still has the number after the open, it had it at the
//!   open too (a dead process does not come back), so the pidfd is that
//!   process; and a pidfd's signal reaches that process or nobody, never a
//!   later holder of the number.
//! - **Boundaries.** Some processes in /proc are not ours to judge or
//!   stop ([`check_reach`]): another user's (root sees them all), and
//!   those of a PID namespace below ours (a container's), whose owner tags
//!   name pids of *their* namespace. And if /proc itself belongs to
//!   another PID namespace than this process (`unshare --pid --fork`
//!   without `--mount-proc`), none of its numbers are ours.

use crate::sys::pidfd::PidFd;
use crate::sys::procfs::{self, ProcStat, ProcStatus};
use crate::sys::signal::{current_uid, Signal};

/// Why a process found by its number is not signalled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreachable {
    /// /proc shows another PID namespace than this process's: its numbers
    /// are not the ones our signals take.
    #[error(
        "/proc shows another PID namespace than this process's (our pid {pid} is not its /proc/self): \
         nothing found there is signalled; mount this namespace's /proc (`unshare --pid --fork --mount-proc`)"
    )]
    ForeignProc {
        /// Our own pid.
        pid: u32,
    },
    /// The process is gone (or a zombie).
    #[error("pid {pid} is gone")]
    Gone {
        /// The pid.
        pid: u32,
    },
    /// The number now belongs to another process.
    #[error(
        "pid {pid} now belongs to another process (started at tick {found}, expected {expected}): not signalled"
    )]
    Reused {
        /// The pid.
        pid: u32,
        /// The start time (clock ticks since boot) of the process found earlier.
        expected: u64,
        /// The start time of the process that has the number now.
        found: u64,
    },
    /// The process runs as another user.
    #[error(
        "pid {pid} runs as uid {uid}, not as ours ({ours}): left alone; only that user's tools may stop it"
    )]
    OtherUser {
        /// The pid.
        pid: u32,
        /// Its uid (the effective one if only that differs).
        uid: u32,
        /// Our uid.
        ours: u32,
    },
    /// The process lives in a PID namespace below ours (a container).
    #[error(
        "pid {pid} lives in another PID namespace (its pids there: {ns_pids}): left alone; \
         run the command inside that namespace"
    )]
    OtherNamespace {
        /// The pid (in our namespace).
        pid: u32,
        /// Its pids in the nested namespaces, ours first.
        ns_pids: String,
    },
    /// Whose the process is could not be read.
    #[error("cannot tell whose pid {pid} is ({reason}): left alone")]
    Unknown {
        /// The pid.
        pid: u32,
        /// What could not be read.
        reason: String,
    },
    /// No pidfd: without one a signal could reach a reused number.
    #[error(
        "cannot pin pid {pid} with a pidfd ({error}): not signalled, since a plain kill could reach a reused pid \
         (pidfd_open needs Linux 5.3 or later)"
    )]
    NoPidfd {
        /// The pid.
        pid: u32,
        /// Why `pidfd_open` failed.
        error: String,
    },
    /// The kernel refused the signal.
    #[error("signalling pid {pid}: {error}")]
    Refused {
        /// The pid.
        pid: u32,
        /// The error.
        error: String,
    },
}

impl Unreachable {
    /// Whether the process found is simply no longer there (gone, or its
    /// number now someone else's): nothing to do, nothing wrong.
    pub fn is_gone(&self) -> bool {
        matches!(self, Unreachable::Gone { .. } | Unreachable::Reused { .. })
    }
}

/// Fails unless /proc shows this process's own PID namespace.
pub fn check_proc() -> Result<(), Unreachable> {
    if procfs::shows_own_pid_namespace() {
        Ok(())
    } else {
        Err(Unreachable::ForeignProc {
            pid: std::process::id(),
        })
    }
}

/// Whether `pid` is ours to judge and signal: it runs (not a zombie), as
/// our uid (real and effective), in our PID namespace. Returns its stat.
/// Assumes /proc shows our namespace ([`check_proc`]).
pub fn check_reach(pid: u32) -> Result<ProcStat, Unreachable> {
    let stat = ProcStat::read(pid)
        .filter(ProcStat::is_live)
        .ok_or(Unreachable::Gone { pid })?;
    let status = ProcStatus::read(pid).ok_or_else(|| Unreachable::Unknown {
        pid,
        reason: format!("/proc/{pid}/status has no Uid or NSpid line"),
    })?;
    check_status(pid, &status, current_uid())?;
    Ok(stat)
}

/// The boundary rules on a status read from /proc.
fn check_status(pid: u32, status: &ProcStatus, ours: u32) -> Result<(), Unreachable> {
    if status.ns_pids.len() != 1 {
        let ns_pids = status
            .ns_pids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        return Err(Unreachable::OtherNamespace { pid, ns_pids });
    }
    for uid in [status.uid, status.euid] {
        if uid != ours {
            return Err(Unreachable::OtherUser { pid, uid, ours });
        }
    }
    Ok(())
}

/// Whether the process that has `pid` now is the one found earlier (same
/// start time) and ours to signal.
fn check_identity(pid: u32, start_time: u64) -> Result<(), Unreachable> {
    let stat = check_reach(pid)?;
    if stat.start_time != start_time {
        return Err(Unreachable::Reused {
            pid,
            expected: start_time,
            found: stat.start_time,
        });
    }
    Ok(())
}

/// A process found by its number, held by a pidfd after its identity and
/// reach were checked: its signals reach that process or nobody.
#[derive(Debug)]
pub struct PinnedProcess {
    pid: u32,
    start_time: u64,
    fd: PidFd,
}

impl PinnedProcess {
    /// Pins the process that was found as `pid` started at `start_time`
    /// (clock ticks since boot, `/proc/<pid>/stat`): opens a pidfd, then
    /// checks that the number still names that process and that it is
    /// ours ([`check_reach`]).
    pub fn pin(pid: u32, start_time: u64) -> Result<PinnedProcess, Unreachable> {
        check_proc()?;
        let fd = match PidFd::open(pid) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                return Err(Unreachable::Gone { pid })
            }
            Err(e) => {
                return Err(Unreachable::NoPidfd {
                    pid,
                    error: e.to_string(),
                })
            }
        };
        // After the open: see the module docs for why this order pins it.
        check_identity(pid, start_time)?;
        Ok(PinnedProcess {
            pid,
            start_time,
            fd,
        })
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether it still runs (not exited, not a zombie).
    pub fn is_running(&self) -> bool {
        procfs::is_running(self.pid, self.start_time)
    }

    /// Sends it SIGTERM. `Ok(false)`: it is already gone.
    pub fn terminate(&self) -> Result<bool, Unreachable> {
        self.send(Signal::TERM)
    }

    /// Sends it SIGKILL. `Ok(false)`: it is already gone.
    pub fn kill(&self) -> Result<bool, Unreachable> {
        self.send(Signal::KILL)
    }

    /// Sends it `signal`. `Ok(false)`: it is already gone.
    pub(crate) fn send(&self, signal: Signal) -> Result<bool, Unreachable> {
        match self.fd.send(signal) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(false),
            Err(e) => Err(Unreachable::Refused {
                pid: self.pid,
                error: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Command;

    fn sleeper() -> std::process::Child {
        Command::new("sleep").arg("30").spawn().unwrap()
    }

    #[test]
    fn a_pid_whose_start_time_changed_is_not_signalled() {
        let mut child = sleeper();
        let pid = child.id();
        let started = ProcStat::read(pid).unwrap().start_time;
        // As if the process found earlier had died and `pid` gone to this one.
        let stale = PinnedProcess::pin(pid, started + 1).unwrap_err();
        assert_eq!(
            stale,
            Unreachable::Reused {
                pid,
                expected: started + 1,
                found: started
            }
        );
        assert!(stale.is_gone());
        assert!(stale.to_string().contains("not signalled"), "{stale}");
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(child.try_wait().unwrap().is_none(), "it was signalled");

        let pinned = PinnedProcess::pin(pid, started).unwrap();
        assert!(pinned.is_running());
        assert_eq!(pinned.kill(), Ok(true));
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
        assert!(!pinned.is_running());
        assert_eq!(
            pinned.kill(),
            Ok(false),
            "reaped: gone, and no one else hit"
        );
    }

    #[test]
    fn a_gone_pid_is_gone() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let err = PinnedProcess::pin(pid, 1).unwrap_err();
        assert!(err.is_gone(), "{err}");
    }

    #[test]
    fn other_users_and_nested_namespaces_are_beyond_reach() {
        let ours = |ns_pids: Vec<u32>| ProcStatus {
            uid: 1000,
            euid: 1000,
            ns_pids,
        };
        assert_eq!(check_status(7, &ours(vec![7]), 1000), Ok(()));
        let nested = check_status(7, &ours(vec![7, 1]), 1000).unwrap_err();
        assert_eq!(
            nested,
            Unreachable::OtherNamespace {
                pid: 7,
                ns_pids: "7 1".into()
            }
        );
        assert!(nested.to_string().contains("left alone"), "{nested}");
        let other = check_status(7, &ours(vec![7]), 0).unwrap_err();
        assert_eq!(
            other,
            Unreachable::OtherUser {
                pid: 7,
                uid: 1000,
                ours: 0
            }
        );
        let setuid = ProcStatus {
            uid: 1000,
            euid: 0,
            ns_pids: vec![7],
        };
        assert!(matches!(
            check_status(7, &setuid, 1000),
            Err(Unreachable::OtherUser { uid: 0, .. })
        ));
        assert!(!nested.is_gone() && !other.is_gone());
    }

    #[test]
    fn a_process_of_another_uid_is_not_pinned() {
        if current_uid() != 0 {
            eprintln!("skipped: needs root to start a process as uid 65534 (CI runs as root)");
            return;
        }
        let mut child = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(["sleep", "30"])
            .spawn()
            .unwrap();
        let pid = child.id();
        // setpriv execs sleep in the same process: wait for the uid change.
        let mut started = None;
        for _ in 0..200 {
            if ProcStatus::read(pid).is_some_and(|s| s.uid == 65534) {
                started = ProcStat::read(pid).map(|s| s.start_time);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let started = started.expect("setpriv changed the uid");
        let err = PinnedProcess::pin(pid, started).unwrap_err();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            matches!(
                err,
                Unreachable::OtherUser {
                    uid: 65534,
                    ours: 0,
                    ..
                }
            ),
            "{err}"
        );
    }
}
