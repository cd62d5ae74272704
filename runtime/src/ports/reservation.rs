//! Reservations as abstract Unix socket names, scoped like the ports
//! themselves.
//!
//! A reservation of port P is a datagram socket bound to the abstract name
//! `dynamo-test/port/P`. Abstract names live in the network namespace, as
//! TCP ports do: every uid, every mount namespace (a container with its own
//! `/tmp`), every `TMPDIR` and state directory that shares the network
//! meets in one place, and a second bind of a held name fails with
//! `EADDRINUSE`, in another thread of the same process as in another
//! process. The kernel frees the name when the socket closes, so a
//! SIGKILLed holder frees its ports at once, with no expiry and nothing to
//! clean up; std opens sockets close-on-exec, so a child never inherits one.
//!
//! Who holds it is a second name (bound only by the holder of the first):
//! `dynamo-test/holder/P/<pid>/<pid namespace>/<since>/<label>`, with
//! `dynamo-test/label/P/<k>/<more label>` names for a label too long for
//! one name (107 bytes each). `/proc/net/unix` lists every name of the
//! network namespace to any uid, so "who holds what" needs no fd scan.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::range::PortRange;
use crate::sys::abstract_socket::{self, MAX_NAME_LEN};
use crate::sys::procfs;

/// The first part of every name the harness binds.
pub(crate) const PREFIX: &str = "dynamo-test";

/// How many names a holder record may take (the first plus continuations):
/// room for a label of about 200 bytes; a longer one is cut.
const MAX_RECORD_NAMES: usize = 3;

/// Marks a label that was cut to fit.
const CUT: &str = "…";

/// Who holds a reservation, as its holder name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Process id of the holder, in its own PID namespace.
    pub pid: u32,
    /// The inode of the holder's PID namespace (`/proc/<pid>/ns/pid`), if
    /// it could read it: a `pid` from another namespace (a container)
    /// names another process here, or none.
    pub pid_namespace: Option<u64>,
    /// The test (or other label) the port was reserved for; cut (ending in
    /// `…`) if longer than about 200 bytes.
    pub label: String,
    /// When the reservation was made (to the second).
    pub since: SystemTime,
    /// The holder's command line, when it is in our PID namespace and
    /// readable (filled in when reservations are listed).
    pub command: Option<String>,
}

impl Holder {
    /// The current process, holding for `label`, from now.
    pub(crate) fn me(label: &str) -> Holder {
        Holder {
            pid: std::process::id(),
            pid_namespace: procfs::own_pid_namespace(),
            label: label.to_string(),
            since: SystemTime::now(),
            command: None,
        }
    }

    /// Whether `pid` names the holder in this process's PID namespace.
    pub fn in_our_pid_namespace(&self) -> bool {
        self.pid_namespace.is_some() && self.pid_namespace == procfs::own_pid_namespace()
    }
}

impl fmt::Display for Holder {
    /// `pid 42 (suite::test) running /path/to/bin args`, or `pid 7 in PID
    /// namespace 4026532571, not ours (suite::test)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {}", self.pid)?;
        if !self.in_our_pid_namespace() {
            match self.pid_namespace {
                Some(ns) => write!(f, " in PID namespace {ns}, not ours")?,
                None => write!(f, " in an unknown PID namespace")?,
            }
        }
        write!(f, " ({})", self.label)?;
        if let Some(command) = &self.command {
            write!(f, " running {}", shorten(command, 80))?;
        }
        Ok(())
    }
}

/// A live reservation, as the names in the network namespace show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The reserved port.
    pub port: u16,
    /// Who holds it, when its holder name says (it may be mid-write, or the
    /// name held by a process that is not the harness).
    pub holder: Option<Holder>,
}

/// The names of one reservation; dropping it releases the port.
#[derive(Debug)]
pub(crate) struct Claim {
    /// The holder record's names. Declared first, so they are dropped
    /// before the port's name: a listing never shows a record of a port
    /// that someone else holds by then.
    records: Vec<UnixDatagram>,
    _port: UnixDatagram,
}

/// The names of reservations under one prefix (tests use a private one).
#[derive(Debug, Clone)]
pub(crate) struct Names {
    prefix: String,
}

impl Names {
    /// Names under `prefix` (`dynamo-test` for the real thing).
    pub(crate) fn new(prefix: &str) -> Names {
        Names {
            prefix: prefix.to_string(),
        }
    }

    /// The abstract name that reserves `port`.
    pub(crate) fn port_name(&self, port: u16) -> String {
        format!("{}/port/{port}", self.prefix)
    }

    /// Reserves `port`: `None` if someone in this network namespace holds it.
    pub(crate) fn try_reserve(&self, port: u16) -> io::Result<Option<Claim>> {
        Ok(
            abstract_socket::bind(self.port_name(port).as_bytes())?.map(|socket| Claim {
                records: Vec::new(),
                _port: socket,
            }),
        )
    }

    /// Records `holder` for the reservation `claim` of `port`. Best effort:
    /// the record is for humans, the port's name is what counts.
    pub(crate) fn record(&self, claim: &mut Claim, port: u16, holder: &Holder) {
        for name in self.record_names(port, holder) {
            match abstract_socket::bind(name.as_bytes()) {
                Ok(Some(socket)) => claim.records.push(socket),
                // Taken (by a squatter) or failed (out of descriptors?): a
                // listing shows what it can.
                Ok(None) | Err(_) => break,
            }
        }
    }

    /// The names that record `holder` as the holder of `port`.
    fn record_names(&self, port: u16, holder: &Holder) -> Vec<String> {
        let since = holder
            .since
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let ns = holder
            .pid_namespace
            .map_or_else(|| "-".to_string(), |n| n.to_string());
        let head = format!("{}/holder/{port}/{}/{ns}/{since}/", self.prefix, holder.pid);
        let label = holder.label.replace(['\0', '\n'], " ");
        let mut rest = label.as_str();
        let mut names = Vec::new();
        for k in 0..MAX_RECORD_NAMES {
            let start = if k == 0 {
                head.clone()
            } else {
                format!("{}/label/{port}/{k}/", self.prefix)
            };
            let room = MAX_NAME_LEN.saturating_sub(start.len());
            let last = k + 1 == MAX_RECORD_NAMES;
            let (part, more) = if last && rest.len() > room {
                (
                    format!("{}{CUT}", cut(rest, room.saturating_sub(CUT.len())).0),
                    "",
                )
            } else {
                let (part, more) = cut(rest, room);
                (part.to_string(), more)
            };
            names.push(start + &part);
            rest = more;
            if rest.is_empty() {
                break;
            }
        }
        names
    }

    /// Every live reservation in this network namespace, by port.
    pub(crate) fn live(&self) -> io::Result<Vec<Reservation>> {
        let start = format!("{}/", self.prefix);
        let names = abstract_socket::bound_names(start.as_bytes())?;
        Ok(self.decode(&names, procfs::own_pid_namespace()))
    }

    /// Live reservations in `range`.
    pub(crate) fn live_in(&self, range: PortRange) -> io::Result<Vec<Reservation>> {
        let mut live = self.live()?;
        live.retain(|r| range.contains(r.port));
        Ok(live)
    }

    /// Reservations from the bound names (our prefix and a `/` included).
    fn decode(&self, names: &[Vec<u8>], own_ns: Option<u64>) -> Vec<Reservation> {
        let start = format!("{}/", self.prefix);
        let mut ports = BTreeSet::new();
        let mut heads: HashMap<u16, Holder> = HashMap::new();
        let mut parts: HashMap<u16, BTreeMap<usize, String>> = HashMap::new();
        for name in names {
            let name = String::from_utf8_lossy(name);
            let Some(rest) = name.strip_prefix(&start) else {
                continue;
            };
            if let Some(port) = rest.strip_prefix("port/") {
                if let Ok(port) = port.parse() {
                    ports.insert(port);
                }
            } else if let Some(record) = rest.strip_prefix("holder/") {
                if let Some((port, holder)) = decode_head(record) {
                    heads.insert(port, holder);
                }
            } else if let Some(more) = rest.strip_prefix("label/") {
                let mut fields = more.splitn(3, '/');
                let (Some(Ok(port)), Some(Ok(k)), Some(text)) = (
                    fields.next().map(str::parse),
                    fields.next().map(str::parse),
                    fields.next(),
                ) else {
                    continue;
                };
                parts.entry(port).or_default().insert(k, text.to_string());
            }
        }
        let mut commands: HashMap<u32, Option<String>> = HashMap::new();
        ports
            .into_iter()
            .map(|port| {
                let holder = heads.remove(&port).map(|mut h| {
                    // Continuations in order, as long as none is missing.
                    let more = parts.remove(&port).unwrap_or_default();
                    for (k, (at, text)) in more.into_iter().enumerate() {
                        if at != k + 1 {
                            break;
                        }
                        h.label.push_str(&text);
                    }
                    if h.pid_namespace.is_some() && h.pid_namespace == own_ns {
                        h.command = commands
                            .entry(h.pid)
                            .or_insert_with(|| procfs::command_line(h.pid))
                            .clone();
                    }
                    h
                });
                Reservation { port, holder }
            })
            .collect()
    }
}

/// `<port>/<pid>/<pid namespace or ->/<since>/<label>` (after `holder/`).
fn decode_head(record: &str) -> Option<(u16, Holder)> {
    let mut fields = record.splitn(5, '/');
    let port = fields.next()?.parse().ok()?;
    let pid = fields.next()?.parse().ok()?;
    let pid_namespace = match fields.next()? {
        "-" => None,
        ns => Some(ns.parse().ok()?),
    };
    let since = UNIX_EPOCH + Duration::from_secs(fields.next()?.parse().ok()?);
    let label = fields.next()?.to_string();
    let holder = Holder {
        pid,
        pid_namespace,
        label,
        since,
        command: None,
    };
    Some((port, holder))
}

/// `text` split at the last char boundary at or before byte `max`.
fn cut(text: &str, max: usize) -> (&str, &str) {
    let mut at = max.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    text.split_at(at)
}

/// `text`, cut to `max` chars with `...` when longer.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private_names() -> Names {
        Names::new(&format!(
            "dynamo-test-unit/{}/{}",
            std::process::id(),
            fastrand::u32(..)
        ))
    }

    fn holder(label: &str) -> Holder {
        Holder {
            pid: 42,
            pid_namespace: Some(4026531836),
            label: label.into(),
            since: UNIX_EPOCH + Duration::from_secs(1234),
            command: None,
        }
    }

    fn names_of(n: &Names, port: u16, h: &Holder) -> Vec<Vec<u8>> {
        let mut all = vec![n.port_name(port).into_bytes()];
        all.extend(n.record_names(port, h).into_iter().map(String::into_bytes));
        all
    }

    #[test]
    fn a_holder_round_trips_through_its_names() {
        let n = Names::new(PREFIX);
        let h = holder("suite::a=b / c (d)");
        let names = names_of(&n, 20001, &h);
        assert_eq!(
            names[1],
            b"dynamo-test/holder/20001/42/4026531836/1234/suite::a=b / c (d)"
        );
        let got = n.decode(&names, None);
        assert_eq!(
            got,
            [Reservation {
                port: 20001,
                holder: Some(h)
            }]
        );
    }

    #[test]
    fn a_long_label_takes_more_names_and_a_very_long_one_is_cut() {
        let n = Names::new(PREFIX);
        // Multi-byte chars, so cuts must fall on char boundaries.
        let long: String = "tests::é_long_name".repeat(8);
        let h = holder(&long);
        let names = n.record_names(20001, &h);
        assert!(names.len() > 1, "{names:?}");
        assert!(names.iter().all(|name| name.len() <= MAX_NAME_LEN));
        let got = n.decode(&names_of(&n, 20001, &h), None);
        assert_eq!(got[0].holder.as_ref().unwrap().label, long);

        let huge: String = "ü".repeat(400);
        let names = n.record_names(20001, &holder(&huge));
        assert_eq!(names.len(), MAX_RECORD_NAMES);
        assert!(names.iter().all(|name| name.len() <= MAX_NAME_LEN));
        let got = n.decode(&names_of(&n, 20001, &holder(&huge)), None);
        let label = &got[0].holder.as_ref().unwrap().label;
        assert!(label.ends_with(CUT) && label.len() > 150, "{label}");
        assert!(huge.starts_with(label.trim_end_matches(CUT)));
    }

    #[test]
    fn records_without_their_port_and_garbage_are_ignored() {
        let n = Names::new(PREFIX);
        let names: Vec<Vec<u8>> = [
            "dynamo-test/port/20001",
            "dynamo-test/holder/20002/1/-/5/no port name: released",
            "dynamo-test/holder/x/1/2/3/bad port",
            "dynamo-test/port/notanumber",
            "dynamo-test/label/20001/2/a gap: part 1 is missing",
            "dynamo-test/port/20003",
            "dynamo-test/holder/20003/9/-/5/unknown namespace",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        let got = n.decode(&names, Some(1));
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!((got[0].port, &got[0].holder), (20001, &None));
        let h = got[1].holder.as_ref().unwrap();
        assert_eq!(
            (h.pid, h.pid_namespace, &*h.label),
            (9, None, "unknown namespace")
        );
        assert!(
            h.command.is_none(),
            "a pid of an unknown namespace is not looked up"
        );
    }

    #[test]
    fn a_reservation_excludes_other_claims_in_the_same_process_and_is_listed() {
        let n = private_names();
        let mut held = n.try_reserve(5000).unwrap().expect("first claim");
        n.record(&mut held, 5000, &Holder::me("t1"));
        assert!(n.try_reserve(5000).unwrap().is_none(), "second claim");
        let seen = n.live().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].port, 5000);
        let h = seen[0].holder.as_ref().unwrap();
        assert_eq!((h.pid, &*h.label), (std::process::id(), "t1"));
        assert!(h.in_our_pid_namespace());
        let command = procfs::command_line(std::process::id());
        assert_eq!(h.command, command);
        assert!(
            h.to_string()
                .starts_with(&format!("pid {} (t1) running ", h.pid)),
            "{h}"
        );
        drop(held);
        assert!(n.live().unwrap().is_empty());
        assert!(n.try_reserve(5000).unwrap().is_some());
    }

    #[test]
    fn a_holder_of_another_pid_namespace_says_so() {
        let mut h = holder("x");
        h.pid_namespace = Some(1);
        assert_eq!(h.to_string(), "pid 42 in PID namespace 1, not ours (x)");
        h.pid_namespace = None;
        assert_eq!(h.to_string(), "pid 42 in an unknown PID namespace (x)");
    }
}
