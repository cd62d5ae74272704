//! Waiting on the read end of a pipe (`poll`), so that two readers (a
//! child's log forwarder and the drain at its exit) can share one without
//! either blocking on an empty pipe.

use std::os::fd::AsFd;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;

/// Blocks until `pipe` has data or every writer has closed it.
pub(crate) fn wait_readable(pipe: impl AsFd) -> std::io::Result<()> {
    poll_once(pipe, None).map(|_| ())
}

/// Whether a read of `pipe` would return at once (data, or the end).
pub(crate) fn readable_now(pipe: impl AsFd) -> bool {
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    poll_once(pipe, Some(&now)).unwrap_or(false)
}

/// One `poll` of `pipe` for input (retried on EINTR); whether it is ready.
fn poll_once(pipe: impl AsFd, timeout: Option<&Timespec>) -> std::io::Result<bool> {
    // POLLHUP (every writer gone) is reported whether asked for or not; a
    // read then returns the end of the stream at once.
    let mut fds = [PollFd::new(&pipe, PollFlags::IN)];
    loop {
        match poll(&mut fds, timeout) {
            Ok(_) => break,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let revents = fds[0].revents();
    if revents.contains(PollFlags::NVAL) {
        return Err(Errno::BADF.into());
    }
    Ok(revents.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_pipe_is_readable_once_written_or_closed() {
        let (reader, writer) = std::io::pipe().unwrap();
        assert!(!readable_now(&reader));
        let mut writer = writer;
        writer.write_all(b"x").unwrap();
        assert!(readable_now(&reader));
        wait_readable(&reader).unwrap();
        let (reader, writer) = std::io::pipe().unwrap();
        drop(writer);
        assert!(readable_now(&reader));
    }
}
