//! A watchdog that kills a child's process group if the test process dies.
//!
//! `PR_SET_PDEATHSIG` covers the direct child only; grandchildren survive a
//! SIGKILLed test. The watchdog is a `/bin/sh` in its own process group
//! (so nextest's SIGTERM to the test's group does not reach it) that reads
//! one line from a pipe whose write end only the test process holds. When
//! the test ends normally it writes `done`; when the test dies the pipe
//! closes with no line, and the watchdog kills the child's whole group.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use super::reaper::reap_in_background;

const SCRIPT: &str =
    r#"trap '' TERM INT HUP; read -r line; [ "$line" = done ] || kill -s KILL -- "-$0""#;

/// An armed watchdog for one process group. Dropping it without
/// [`Watchdog::disarm`] fires it: the group is killed.
pub(crate) struct Watchdog {
    /// `None` once disarmed.
    child: Option<Child>,
}

impl Watchdog {
    /// Arms a watchdog for process group `pgid`.
    pub(crate) fn arm(pgid: u32) -> std::io::Result<Watchdog> {
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg(pgid.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        Ok(Watchdog { child: Some(child) })
    }

    /// Tells the watchdog that the group is taken care of.
    pub(crate) fn disarm(mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(b"done\n");
            }
            reap_in_background(child);
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Closing stdin without "done" fires the watchdog.
            drop(child.stdin.take());
            reap_in_background(child);
        }
    }
}
