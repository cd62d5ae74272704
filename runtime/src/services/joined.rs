//! A keeper this process is a user of: the connection that counts it as a
//! user, what the keeper said of its service, and what the keeper's
//! goodbye means for the tests that use the instance.
//!
//! The keeper says nothing after its answer to `use` but, when it ends,
//! `bye <reason>`: readable means gone. The reason is read without
//! blocking and kept, so that the tests that were using the instance can
//! say it died (and how), and the next one can say it restarts it.

use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::keeper::protocol::KeeperInfo;
use super::kind::ServiceKind;
use crate::sys::unix_socket;

/// A joined keeper.
#[derive(Debug)]
pub(crate) struct JoinedKeeper {
    stream: UnixStream,
    info: KeeperInfo,
    /// Whether this process started it (else it joined another's).
    started_here: bool,
    /// The keeper's uid, from `SO_PEERCRED`.
    keeper_uid: Option<u32>,
    /// The keeper's goodbye, once read.
    goodbye: Option<String>,
    /// The service log's tail when the goodbye was read (the next keeper
    /// appends to the same file).
    tail: Option<String>,
}

impl JoinedKeeper {
    /// `said`: what the keeper sent during the health wait (perhaps its
    /// goodbye already).
    pub(crate) fn new(
        stream: UnixStream,
        info: KeeperInfo,
        started_here: bool,
        keeper_uid: Option<u32>,
        said: &str,
    ) -> JoinedKeeper {
        let mut keeper = JoinedKeeper {
            stream,
            info,
            started_here,
            keeper_uid,
            goodbye: None,
            tail: None,
        };
        if let Some(reason) = goodbye_in(said) {
            keeper.said_goodbye(reason);
        }
        keeper
    }

    fn said_goodbye(&mut self, reason: String) {
        let log = std::path::Path::new(&self.info.log);
        self.tail = Some(keeper_log_tail(log, self.keeper_uid));
        self.goodbye = Some(reason);
    }

    /// Whether this process started it.
    pub(crate) fn started_here(&self) -> bool {
        self.started_here
    }

    /// Whether the keeper has ended (said goodbye or closed).
    pub(crate) fn is_gone(&self) -> bool {
        self.goodbye.is_some()
            || unix_socket::poll_readable(&[self.stream.as_fd()], Duration::ZERO)
                .map_or(true, |ready| ready.first().copied().unwrap_or(true))
    }

    /// Why the keeper ended, if it has: `died: killed by signal 9 ...`,
    /// `no user left for 2s`, ... (`closed` when it said nothing).
    pub(crate) fn goodbye(&mut self) -> Option<&str> {
        if self.goodbye.is_none() && self.is_gone() {
            let reason = read_goodbye(&self.stream);
            self.said_goodbye(reason);
        }
        self.goodbye.as_deref()
    }

    /// `shared etcd (pid 4242, started by this run on port 2379)`.
    pub(crate) fn describe(&self, kind: ServiceKind) -> String {
        let by = if self.started_here {
            "started by this run".to_string()
        } else {
            format!("started by keeper pid {}", self.info.keeper_pid)
        };
        format!(
            "shared {} (pid {}, {by} on port {})",
            kind.name(),
            self.info.service_pid,
            self.info.port
        )
    }

    /// For a failing test: what became of the instance, if its keeper ended
    /// because the service died (with the log's tail), or was stopped.
    pub(crate) fn death_note(&mut self, kind: ServiceKind) -> Option<String> {
        let goodbye = self.goodbye()?.to_string();
        let what = self.describe(kind);
        let log = &self.info.log;
        let tail = self.tail.clone().unwrap_or_default();
        Some(match goodbye.strip_prefix("died: ") {
            Some(how) => format!(
                "{what} died during the test: {how}\nlog {log}:\n{tail}\n\
                 the next test that needs it restarts it"
            ),
            // Killed without a word: its service may run on, keeperless.
            None if goodbye == "closed" => format!(
                "the keeper of {what} ended without a word (killed?) during the test; its \
                 service may still run without it (`dynamo-test clean` stops it)\nlog {log}:\n{tail}"
            ),
            None => format!(
                "{what} was stopped during the test: {goodbye}; the next test that needs it \
                 starts it again"
            ),
        })
    }
}

/// The reason in a `bye <reason>` line of `said`, if there is one.
fn goodbye_in(said: &str) -> Option<String> {
    said.lines()
        .find_map(|l| l.strip_prefix("bye "))
        .map(|r| r.trim().to_string())
}

/// What a gone keeper sent after its answer to `use`: `bye <reason>`.
fn read_goodbye(stream: &UnixStream) -> String {
    let mut said = Vec::new();
    if stream.set_nonblocking(true).is_ok() {
        let mut buf = [0u8; 512];
        let mut reader = stream;
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || said.len() > 4096 {
                break;
            }
            said.extend_from_slice(&buf[..n]);
        }
    }
    goodbye_in(&String::from_utf8_lossy(&said)).unwrap_or_else(|| "closed".to_string())
}

/// The tail of a joined keeper's log, whose path the keeper itself named:
/// shown only if it is a regular file (not a symlink) of the keeper's
/// uid, so that another user's keeper cannot make us print a file of ours.
pub(crate) fn keeper_log_tail(log: &std::path::Path, keeper_uid: Option<u32>) -> String {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        // Not a symlink; and a FIFO must not block the open.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(log);
    let Ok(file) = file else {
        return "(cannot open it, or it is a symlink)".to_string();
    };
    match (file.metadata(), keeper_uid) {
        (Ok(meta), Some(uid)) if meta.is_file() && meta.uid() == uid => {
            crate::process::tail_of(file, crate::process::TAIL_LINES)
        }
        _ => format!(
            "(not shown: not a regular file of the keeper's uid {})",
            keeper_uid.map_or("(unknown)".to_string(), |u| u.to_string())
        ),
    }
}
