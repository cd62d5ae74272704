//! What /proc says about processes: the pids, and of one process its stat
//! (state, parent, group, identity as pid + start time), its status (whose
//! it is: uids, PID namespace depth), its PID namespace, command line and
//! environment variables. Every /proc reader of the harness goes through
//! here.
//!
//! The pids in /proc are those of the PID namespace that mounted it, which
//! need not be this process's (`unshare --pid --fork` without
//! `--mount-proc`): [`shows_own_pid_namespace`] tells.

use std::fs;
use std::os::unix::fs::MetadataExt;

/// The pids of every process visible in /proc.
pub fn pids() -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Whether the process `pid` started at `start_time` still runs: the same
/// pid and start time (not a reuse of the number), and not a zombie.
pub fn is_running(pid: u32, start_time: u64) -> bool {
    ProcStat::read(pid).is_some_and(|s| s.start_time == start_time && s.is_live())
}

/// A process's command line, spaces between the arguments.
pub fn command_line(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let text = String::from_utf8_lossy(&raw)
        .replace('\0', " ")
        .trim()
        .to_string();
    (!text.is_empty()).then_some(text)
}

/// A process's arguments, one string each.
pub fn arguments(pid: u32) -> Option<Vec<String>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// The uid owning `/proc/<pid>` (the process's effective uid, for a
/// dumpable process): a cheap look before reading anything of it.
pub fn owner_uid(pid: u32) -> Option<u32> {
    fs::metadata(format!("/proc/{pid}")).ok().map(|m| m.uid())
}

/// The value of env var `name` in a process's environment (as it was
/// started), if this user may read it and it is set.
pub fn environ_var(pid: u32, name: &str) -> Option<String> {
    let environ = fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{name}=");
    environ
        .split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(prefix.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The inode of the PID namespace of `pid` (`/proc/<pid>/ns/pid`): it
/// names the namespace across namespaces, where pids do not. Readable for
/// processes we may inspect (our own uid, or root); `None` otherwise.
pub fn pid_namespace(pid: u32) -> Option<u64> {
    fs::metadata(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|m| m.ino())
}

/// The inode of this process's own PID namespace (see [`pid_namespace`]).
///
/// Read once per process (each reservation's holder record names it); a
/// child forked without exec reads it again.
pub fn own_pid_namespace() -> Option<u64> {
    static OWN: std::sync::OnceLock<(u32, Option<u64>)> = std::sync::OnceLock::new();
    let read = || fs::metadata("/proc/self/ns/pid").ok().map(|m| m.ino());
    let pid = std::process::id();
    let (cached_pid, ns) = *OWN.get_or_init(|| (pid, read()));
    if cached_pid == pid {
        ns
    } else {
        read()
    }
}

/// Whether /proc shows this process's own PID namespace, so that its pids
/// are the numbers this process's signals and `pidfd_open` take: our
/// `NSpid` there is exactly our own pid.
pub fn shows_own_pid_namespace() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|text| ProcStatus::parse(&text))
        .is_some_and(|s| s.ns_pids == [std::process::id()])
}

/// Fields of `/proc/<pid>/status` that tell whose a process is (readable
/// for every process, whatever its owner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStatus {
    /// Real uid.
    pub uid: u32,
    /// Effective uid.
    pub euid: u32,
    /// `NSpid`: its pid in the PID namespace of this /proc, then in each
    /// nested namespace down to its own. One entry: it lives in the
    /// namespace of this /proc; more: in a namespace below it (a container).
    pub ns_pids: Vec<u32>,
}

impl ProcStatus {
    /// Reads the status of `pid`; `None` if there is no such process (or
    /// the kernel has no `NSpid` line, before Linux 4.1).
    pub fn read(pid: u32) -> Option<ProcStatus> {
        let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        Self::parse(&text)
    }

    fn parse(text: &str) -> Option<ProcStatus> {
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .map(|rest| {
                    rest.split_whitespace()
                        .map(str::parse::<u32>)
                        .collect::<Result<Vec<u32>, _>>()
                })
        };
        let uids = field("Uid")?.ok()?;
        let ns_pids = field("NSpid")?.ok()?;
        if ns_pids.is_empty() {
            return None;
        }
        Some(ProcStatus {
            uid: *uids.first()?,
            euid: *uids.get(1)?,
            ns_pids,
        })
    }
}

/// Fields of `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// State letter: `R`, `S`, `Z` (zombie), ...
    pub state: char,
    /// Parent pid.
    pub ppid: u32,
    /// Process group.
    pub pgrp: u32,
    /// Start time in clock ticks since boot: with the pid, an identity that
    /// survives pid reuse.
    pub start_time: u64,
}

impl ProcStat {
    /// Reads the stat of `pid`; `None` if there is no such process.
    pub fn read(pid: u32) -> Option<ProcStat> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Self::parse(&stat)
    }

    fn parse(stat: &str) -> Option<ProcStat> {
        // The command name (field 2) may hold spaces and parentheses: the
        // fields that follow start after its last ')'. They are field 3
        // (state) onwards, so field N is at index N - 3.
        let rest: Vec<&str> = stat
            .get(stat.rfind(')')? + 2..)?
            .split_whitespace()
            .collect();
        Some(ProcStat {
            state: rest.first()?.chars().next()?,
            ppid: rest.get(1)?.parse().ok()?,
            pgrp: rest.get(2)?.parse().ok()?,
            start_time: rest.get(19)?.parse().ok()?,
        })
    }

    /// Whether the process runs anything (a zombie or a dead one does not).
    pub fn is_live(&self) -> bool {
        self.state != 'Z' && self.state != 'X'
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_name_with_spaces_and_parentheses_is_skipped() {
        let stat = "42 (a (b) c) S 7 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 0 0";
        let parsed = ProcStat::parse(stat).unwrap();
        assert_eq!(
            parsed,
            ProcStat {
                state: 'S',
                ppid: 7,
                pgrp: 42,
                start_time: 12345
            }
        );
        assert_eq!(ProcStat::parse("42 (cut"), None);
        assert_eq!(ProcStat::parse("42 (x) S 1"), None);
    }

    #[test]
    fn this_process_is_seen_with_its_arguments_and_env() {
        let me = std::process::id();
        assert!(pids().contains(&me));
        let args = arguments(me).unwrap();
        assert_eq!(command_line(me).unwrap(), args.join(" "));
        let path = std::env::var("PATH").unwrap();
        assert_eq!(environ_var(me, "PATH"), Some(path));
        assert_eq!(environ_var(me, "DYNAMO_TEST_SURELY_UNSET_VAR"), None);
    }

    #[test]
    fn the_status_names_uids_and_namespace_pids() {
        let text =
            "Name:\tsleep\nUid:\t1000\t1001\t1000\t1000\nGid:\t5\t5\t5\t5\nNSpid:\t4242\t7\n";
        let status = ProcStatus::parse(text).unwrap();
        assert_eq!(
            status,
            ProcStatus {
                uid: 1000,
                euid: 1001,
                ns_pids: vec![4242, 7]
            }
        );
        assert_eq!(ProcStatus::parse("Uid:\t1\t1\t1\t1\n"), None, "no NSpid");
        assert_eq!(ProcStatus::parse("Uid:\tx\nNSpid:\t1\n"), None);

        let me = ProcStatus::read(std::process::id()).unwrap();
        assert_eq!(me.uid, crate::sys::signal::current_uid());
        assert_eq!(me.ns_pids, [std::process::id()]);
        assert!(shows_own_pid_namespace());
        let ns = own_pid_namespace().unwrap();
        assert_eq!(pid_namespace(std::process::id()), Some(ns));
    }

    #[test]
    fn this_process_is_live() {
        let me = ProcStat::read(std::process::id()).unwrap();
        assert!(me.is_live());
        assert!(is_running(std::process::id(), me.start_time));
        assert!(!is_running(std::process::id(), me.start_time + 1));
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
    }
}
