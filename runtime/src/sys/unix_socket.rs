//! Abstract Unix sockets (Linux): names with the scope of the network
//! namespace, shared by every uid and mount namespace, with no file
//! behind them, released when the last descriptor closes (a SIGKILLed
//! holder's at once). Binding a held name fails with `EADDRINUSE`, which
//! makes a bound name a lock; connecting to a listening one reaches its
//! holder whoever and wherever it is.
//!
//! std opens every socket close-on-exec; [`inheritable`] lifts that for
//! one child.

use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::FdFlags;
use rustix::net::SendFlags;

use super::procfs;

fn address(name: &str) -> io::Result<SocketAddr> {
    SocketAddr::from_abstract_name(name.as_bytes())
}

/// Binds and listens on the abstract name `name`. `AddrInUse` while
/// another socket holds it.
pub(crate) fn listen(name: &str) -> io::Result<UnixListener> {
    UnixListener::bind_addr(&address(name)?)
}

/// Connects to the listener on the abstract name `name`.
/// `ConnectionRefused` when nothing listens there.
pub(crate) fn connect(name: &str) -> io::Result<UnixStream> {
    UnixStream::connect_addr(&address(name)?)
}

/// Whether the abstract name `name` is bound now (by anyone): a bind
/// attempt that fails with `EADDRINUSE`. (A successful attempt holds the
/// name for the microseconds until it is closed again.)
pub(crate) fn is_bound(name: &str) -> io::Result<bool> {
    match listen(name) {
        Ok(_probe) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Ok(true),
        Err(e) => Err(e),
    }
}

/// Writes all of `bytes` with `MSG_NOSIGNAL`: a peer that has gone away
/// is an `EPIPE` error, never a SIGPIPE (which a process whose Rust
/// runtime did not start, like a keeper, does not ignore).
pub(crate) fn send_all(stream: &UnixStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match rustix::net::send(stream, bytes, SendFlags::NOSIGNAL) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The peer's pid and uid as the kernel recorded them at connect
/// (`SO_PEERCRED`); the pid is 0 when the peer's PID namespace hides it.
///
/// Read with `getsockopt` itself: rustix's wrapper types the pid as
/// non-zero, and a peer from another PID namespace (a container) has pid 0.
pub(crate) fn peer(stream: &UnixStream) -> Option<(u32, u32)> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::ucred>()).ok()?;
    // SAFETY: `cred` and `len` are valid for writes and `len` is the size of
    // the `ucred` that SO_PEERCRED writes; the descriptor stays open for the
    // call (borrowed from `stream`). No safe wrapper accepts a pid of 0.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0).then(|| (u32::try_from(cred.pid).unwrap_or(0), cred.uid))
}

/// Runs `f` with `fd` inheritable (close-on-exec off), then turns
/// close-on-exec back on: for a single-threaded process spawning one
/// child that must hold `fd` (no other thread may spawn meanwhile).
pub(crate) fn inheritable<T>(fd: BorrowedFd<'_>, f: impl FnOnce() -> T) -> io::Result<T> {
    rustix::io::fcntl_setfd(fd, FdFlags::empty())?;
    let result = f();
    rustix::io::fcntl_setfd(fd, FdFlags::CLOEXEC)?;
    Ok(result)
}

/// Waits until one of `fds` is readable (or hung up), at most `timeout`;
/// which ones are. A signal ends the wait early with none ready.
pub(crate) fn poll_readable(fds: &[BorrowedFd<'_>], timeout: Duration) -> io::Result<Vec<bool>> {
    let mut polled: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::from_borrowed_fd(fd.as_fd(), PollFlags::IN))
        .collect();
    let timeout = Timespec {
        tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    match rustix::event::poll(&mut polled, Some(&timeout)) {
        Ok(_) => {}
        Err(rustix::io::Errno::INTR) => return Ok(vec![false; fds.len()]),
        Err(e) => return Err(e.into()),
    }
    let ready = PollFlags::IN | PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL;
    Ok(polled
        .iter()
        .map(|p| p.revents().intersects(ready))
        .collect())
}

/// The abstract names starting with `prefix` that a socket *listens* on
/// in this network namespace (from `/proc/net/unix`), without the prefix,
/// sorted, each once.
pub(crate) fn listening_names(prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = unix_table()
        .into_iter()
        .filter(|s| s.listening)
        .filter_map(|s| s.name.strip_prefix(prefix).map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The pids of the processes holding a socket bound to the abstract name
/// `name` (any state), as far as this user may look into their fds.
pub(crate) fn holders(name: &str) -> Vec<u32> {
    let sockets: Vec<String> = unix_table()
        .into_iter()
        .filter(|s| s.name == name)
        .map(|s| format!("socket:[{}]", s.inode))
        .collect();
    if sockets.is_empty() {
        return Vec::new();
    }
    procfs::pids()
        .into_iter()
        .filter(|&pid| {
            fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
                fds.filter_map(|fd| fs::read_link(fd.ok()?.path()).ok())
                    .any(|link| sockets.iter().any(|s| link.as_os_str() == s.as_str()))
            })
        })
        .collect()
}

/// One row of `/proc/net/unix` with an abstract name.
struct UnixSocket {
    name: String,
    inode: String,
    listening: bool,
}

/// The abstract-name rows of `/proc/net/unix`: `Num RefCount Protocol
/// Flags Type St Inode Path`, where a listener has flag `__SO_ACCEPTCON`
/// (0x10000) and an abstract path is shown as `@name`.
///
/// Read twice and united, as `abstract_socket::bound_names` does: one read
/// may skip a row while other sockets close.
fn unix_table() -> Vec<UnixSocket> {
    let read = || fs::read_to_string("/proc/net/unix").unwrap_or_default();
    let (first, second) = (read(), read());
    let mut rows = parse_unix_table(&first);
    let mut seen: std::collections::HashSet<String> =
        rows.iter().map(|r| r.inode.clone()).collect();
    for row in parse_unix_table(&second) {
        if seen.insert(row.inode.clone()) {
            rows.push(row);
        }
    }
    rows
}

fn parse_unix_table(text: &str) -> Vec<UnixSocket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = u32::from_str_radix(fields.get(3)?, 16).ok()?;
            let name = fields.get(7)?.strip_prefix('@')?;
            Some(UnixSocket {
                name: name.to_string(),
                inode: fields.get(6)?.to_string(),
                listening: flags & 0x1_0000 != 0,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unique(tag: &str) -> String {
        format!(
            "dynamo-test/unit/{tag}/{}/{}",
            std::process::id(),
            fastrand::u64(..)
        )
    }

    #[test]
    fn a_bound_name_excludes_a_second_bind_and_is_found_listening() {
        let name = unique("lock");
        assert!(!is_bound(&name).unwrap());
        let held = listen(&name).unwrap();
        assert_eq!(listen(&name).unwrap_err().kind(), io::ErrorKind::AddrInUse);
        assert!(is_bound(&name).unwrap());
        let prefix = name.rsplit_once('/').unwrap().0.to_string() + "/";
        let last = name.rsplit_once('/').unwrap().1;
        assert_eq!(listening_names(&prefix), vec![last.to_string()]);
        assert!(holders(&name).contains(&std::process::id()));
        drop(held);
        assert!(!is_bound(&name).unwrap());
        assert!(listening_names(&prefix).is_empty());
    }

    #[test]
    fn a_connection_sees_its_peer_and_eof_when_it_goes() {
        use std::io::Read;
        let name = unique("conn");
        assert_eq!(
            connect(&name).unwrap_err().kind(),
            io::ErrorKind::ConnectionRefused
        );
        let listener = listen(&name).unwrap();
        let client = connect(&name).unwrap();
        let (mut served, _) = listener.accept().unwrap();
        let me = std::process::id();
        assert_eq!(peer(&served).map(|(pid, _)| pid), Some(me));
        send_all(&client, b"hi\n").unwrap();
        let ready = poll_readable(&[served.as_fd()], Duration::from_secs(1)).unwrap();
        assert_eq!(ready, vec![true]);
        let mut buf = [0u8; 8];
        assert_eq!(served.read(&mut buf).unwrap(), 3);
        drop(client);
        assert_eq!(served.read(&mut buf).unwrap(), 0, "EOF");
        assert!(send_all(&served, b"x").is_err(), "EPIPE, not SIGPIPE");
    }

    #[test]
    fn the_table_parser_takes_abstract_names_and_listeners() {
        let text = "Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 4242 @dynamo-test/keeper/etcd/2379\n\
            0000000000000000: 00000003 00000000 00000000 0001 03 4243 @dynamo-test/keeper/etcd/2379\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 4244 /run/some.sock\n\
            0000000000000000: 00000002 00000000 00000000 0002 01 4245\n";
        let rows = parse_unix_table(text);
        assert_eq!(rows.len(), 2);
        assert!(rows[0].listening && !rows[1].listening);
        assert_eq!(rows[0].name, "dynamo-test/keeper/etcd/2379");
        assert_eq!(rows[1].inode, "4243");
    }
}
