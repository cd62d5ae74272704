//! Process file descriptors: a handle on one process that a reused pid
//! number cannot redirect (`pidfd_open`, `pidfd_send_signal`, Linux 5.3+),
//! through `rustix`.

use std::os::fd::OwnedFd;

use rustix::process::{Pid, PidfdFlags, Signal};

/// A pidfd: refers to the process that had the pid when it was opened,
/// for as long as it is open, whatever happens to the number.
#[derive(Debug)]
pub(crate) struct PidFd(OwnedFd);

impl PidFd {
    /// Opens a pidfd on the process that has `pid` now (in this process's
    /// PID namespace). Fails with `ESRCH` if there is none, `ENOSYS` before
    /// Linux 5.3.
    pub(crate) fn open(pid: u32) -> std::io::Result<PidFd> {
        let raw = i32::try_from(pid)
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| std::io::Error::from(rustix::io::Errno::SRCH))?;
        Ok(PidFd(rustix::process::pidfd_open(
            raw,
            PidfdFlags::empty(),
        )?))
    }

    /// Sends `signal` to that process, never to another; `ESRCH` once it
    /// has been reaped.
    pub(crate) fn send(&self, signal: Signal) -> std::io::Result<()> {
        Ok(rustix::process::pidfd_send_signal(&self.0, signal)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pidfd_signals_its_process_and_reports_a_reaped_one() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let fd = PidFd::open(child.id()).unwrap();
        fd.send(Signal::KILL).unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(child.wait().unwrap().signal(), Some(9));
        let err = fd.send(Signal::KILL).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ESRCH), "{err}");
        assert!(PidFd::open(u32::MAX).is_err());
    }
}
