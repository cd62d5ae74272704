//! What /proc says about processes: the pids, and of one process its stat
//! (state, parent, group, identity as pid + start time), command line and
//! environment variables. Every /proc reader of the harness goes through
//! here.

use std::fs;

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

/// The inode of this process's PID namespace (`/proc/self/ns/pid`): a pid
/// names a process only together with it (a container has its own pid 1).
pub fn own_pid_namespace() -> Option<u64> {
    namespace_inode("/proc/self/ns/pid")
}

/// The inode of the PID namespace of process `pid`, if this user may see it.
pub fn pid_namespace(pid: u32) -> Option<u64> {
    namespace_inode(&format!("/proc/{pid}/ns/pid"))
}

fn namespace_inode(path: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    // stat follows the magic link to the namespace: its inode names it.
    fs::metadata(path).ok().map(|m| m.ino())
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
    fn pid_namespaces_of_this_process_agree() {
        let own = own_pid_namespace().expect("/proc/self/ns/pid");
        assert_eq!(pid_namespace(std::process::id()), Some(own));
        let link = fs::read_link("/proc/self/ns/pid").unwrap();
        assert_eq!(link.to_str(), Some(format!("pid:[{own}]").as_str()));
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
