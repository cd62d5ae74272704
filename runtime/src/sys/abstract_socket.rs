//! Linux abstract Unix socket names: bind one (exclusive in the network
//! namespace), and list the bound ones from `/proc/net/unix`.
//!
//! An abstract name has no file: it lives in the network namespace, the
//! same scope as a TCP port, so every uid and every mount namespace that
//! shares the network sees it. The kernel releases it when the last
//! descriptor closes (a SIGKILLed holder frees it at once), and std opens
//! sockets close-on-exec, so a child process never inherits one.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The longest abstract name: `sun_path` holds 108 bytes, the first is NUL.
pub(crate) const MAX_NAME_LEN: usize = 107;

const PROC_NET_UNIX: &str = "/proc/net/unix";

/// Binds a datagram socket to the abstract name `name`: `Ok(Some(socket))`
/// while we hold the name (until the socket is dropped), `Ok(None)` if
/// another socket in this network namespace holds it already.
pub(crate) fn bind(name: &[u8]) -> io::Result<Option<UnixDatagram>> {
    let addr = SocketAddr::from_abstract_name(name)?;
    match UnixDatagram::bind_addr(&addr) {
        Ok(socket) => Ok(Some(socket)),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every bound abstract name in this network namespace that starts with
/// `prefix`, as `/proc/net/unix` shows it (a NUL inside a name reads `@`).
///
/// The kernel prints the table in pieces, and a socket closed meanwhile
/// shifts the rest: one read may skip a name that was bound throughout.
/// Two reads, united, see every name that both of them should have.
pub(crate) fn bound_names(prefix: &[u8]) -> io::Result<Vec<Vec<u8>>> {
    let first = std::fs::read(PROC_NET_UNIX)?;
    let second = std::fs::read(PROC_NET_UNIX)?;
    let mut names: std::collections::BTreeSet<Vec<u8>> =
        parse_names(&first, prefix).into_iter().collect();
    names.extend(parse_names(&second, prefix));
    Ok(names.into_iter().collect())
}

/// The abstract names of a `/proc/net/unix` table that start with `prefix`.
fn parse_names(table: &[u8], prefix: &[u8]) -> Vec<Vec<u8>> {
    table
        .split(|b| *b == b'\n')
        .skip(1) // the header
        .filter_map(|line| path_field(line)?.strip_prefix(b"@"))
        .filter(|name| name.starts_with(prefix))
        .map(<[u8]>::to_vec)
        .collect()
}

/// The path of a `/proc/net/unix` line: whatever follows the seven fixed
/// fields (`Num RefCount Protocol Flags Type St Inode`) and one space. A
/// name may hold spaces, so the rest of the line is taken as it is.
fn path_field(line: &[u8]) -> Option<&[u8]> {
    let mut rest = line;
    for _ in 0..7 {
        let start = rest.iter().position(|b| *b != b' ')?;
        rest = &rest[start..];
        let end = rest.iter().position(|b| *b == b' ')?;
        rest = &rest[end..];
    }
    rest.strip_prefix(b" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_name_is_exclusive_listed_and_freed_on_drop() {
        let name = format!(
            "dynamo-test-unit/sys/{}/{}",
            std::process::id(),
            fastrand::u64(..)
        );
        let held = bind(name.as_bytes()).unwrap().expect("first bind");
        assert!(bind(name.as_bytes()).unwrap().is_none(), "second bind");
        let listed = bound_names(name.as_bytes()).unwrap();
        assert_eq!(listed, [name.as_bytes().to_vec()]);
        drop(held);
        assert!(bound_names(name.as_bytes()).unwrap().is_empty());
        assert!(bind(name.as_bytes()).unwrap().is_some(), "free again");
    }

    #[test]
    fn a_name_longer_than_sun_path_is_an_error() {
        let long = vec![b'x'; MAX_NAME_LEN + 1];
        assert!(bind(&long).is_err());
        let longest = format!("dynamo-test-unit/{}/", fastrand::u64(..));
        let mut longest = longest.into_bytes();
        longest.resize(MAX_NAME_LEN, b'y');
        assert!(bind(&longest).unwrap().is_some());
    }

    #[test]
    fn parses_names_with_spaces_padded_inodes_and_files() {
        let table = b"Num       RefCount Protocol Flags    Type St Inode Path\n\
ffff0001: 00000002 00000000 00000000 0002 01   123 @dynamo-test/port/20001\n\
ffff0002: 00000002 00000000 00000000 0002 01 45678 @dynamo-test/holder/20001/7/1/2/a b (c)\n\
ffff0003: 00000002 00000000 00010000 0001 01 45679 /run/systemd/notify\n\
ffff0004: 00000003 00000000 00000000 0001 03 45680\n\
ffff0005: 00000002 00000000 00000000 0002 01 45681 @other/name\n";
        let names = parse_names(table, b"dynamo-test/");
        assert_eq!(
            names,
            [
                b"dynamo-test/port/20001".to_vec(),
                b"dynamo-test/holder/20001/7/1/2/a b (c)".to_vec()
            ]
        );
    }
}
