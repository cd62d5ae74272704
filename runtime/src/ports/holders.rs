//! Who listens on a port: from /proc, the way `netstat -tulpn` finds out.

use std::fs;

use crate::sys::procfs;

/// A process that has a listening TCP socket on a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Its pid, when visible (other users' processes may hide their fds).
    pub pid: Option<u32>,
    /// Its command line, when visible.
    pub command: Option<String>,
}

impl std::fmt::Display for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.pid, &self.command) {
            (Some(pid), Some(cmd)) => write!(f, "pid {pid} ({cmd})"),
            (Some(pid), None) => write!(f, "pid {pid}"),
            _ => f.write_str("a process this user cannot see (another user's?)"),
        }
    }
}

/// The processes listening on TCP `port` (IPv4 or IPv6, any address).
pub fn listeners(port: u16) -> Vec<Listener> {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return Vec::new();
    }
    let sockets: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    let mut found: Vec<Listener> = Vec::new();
    for pid in procfs::pids() {
        if holds_any(pid, &sockets) {
            found.push(Listener {
                pid: Some(pid),
                command: procfs::command_line(pid),
            });
        }
    }
    if found.is_empty() {
        // Listening, but by a process whose fds this user cannot read.
        found.push(Listener {
            pid: None,
            command: None,
        });
    }
    found
}

/// Whether one of `pid`'s open files is one of `sockets` (`socket:[inode]`).
fn holds_any(pid: u32, sockets: &[String]) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(|fd| fs::read_link(fd.ok()?.path()).ok())
        .any(|link| sockets.iter().any(|s| link.as_os_str() == s.as_str()))
}

/// Whether anything listens on TCP `port`.
pub fn is_listening(port: u16) -> bool {
    !listening_inodes(port).is_empty()
}

/// Socket inodes of listening TCP sockets on `port`, from /proc/net/tcp{,6}.
fn listening_inodes(port: u16) -> Vec<String> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is ADDR:PORT in hex; st 0A is LISTEN; inode is field 9.
            let (Some(local), Some(state), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            let listening = *state == "0A";
            let on_port = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
                == Some(port);
            if listening && on_port {
                inodes.push(inode.to_string());
            }
        }
    }
    inodes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_this_process_listening() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(is_listening(port));
        // Other tests of this binary spawn children: one forked but not yet
        // exec'd briefly shares our sockets, so look for us among the holders.
        let found = listeners(port);
        let us = found
            .iter()
            .find(|l| l.pid == Some(std::process::id()))
            .unwrap_or_else(|| panic!("{found:?}"));
        assert!(us
            .to_string()
            .starts_with(&format!("pid {} (", std::process::id())));
        drop(listener);
        assert!(!listeners(port)
            .iter()
            .any(|l| l.pid == Some(std::process::id())));
    }
}
