//! Finding (and stopping) tagged processes whose owner is gone.
//!
//! Every child the harness starts carries
//! `DYNAMO_TEST_OWNER=<pid>:<start time>:<PID namespace>` naming the test
//! process: its pid, its start time (clock ticks since boot) and the inode
//! of its PID namespace (`/proc/self/ns/pid`). If that process no longer
//! exists (or its pid now belongs to a process started at another time),
//! the child is an orphan. Nothing without the tag is ever touched, and
//! nothing is matched by name.
//!
//! What is never judged or stopped from here:
//! - a tag naming another PID namespace: its pid is a number of that
//!   namespace and means nothing in our /proc (a container's test whose pid
//!   is 7 is not our pid 7), so its owner is never judged dead;
//! - a process beyond reach ([`check_reach`]): another user's, or one
//!   living in a PID namespace below ours, even when its tag looks orphaned
//!   (it is then listed as left alone, with the reason);
//! - a tag that cannot be parsed;
//! - a process shared by tests ([`ENV_SERVICE`]: keepers, the services they
//!   run, and `up`'s holders of earlier versions), whatever tag it
//!   inherited: it lives as long as its users, and a test that started it
//!   may be long gone while others still use it. Its keeper stops it;
//!   a keeper-less one `dynamo-test clean` stops only once no test uses it.
//!
//! Helpers the harness starts for itself (keepers, watchdogs, the
//! command's own children) carry no test's tag at all
//! ([`strip_owner_tag`]).
//!
//! Tags of older harness versions (`<pid>:<start time>`) are read as naming
//! our own namespace, as they always were.
//!
//! A stop pins the orphan with a pidfd and checks it again before the
//! signal ([`PinnedProcess`]): a reused pid is never hit.

use std::fmt;

use super::pinned::{check_proc, check_reach, PinnedProcess, Unreachable};
use crate::sys::procfs;
use crate::sys::signal;

/// Env var tagging a child with its owner:
/// `<pid>:<start time in clock ticks>:<PID namespace inode>`.
pub const ENV_OWNER: &str = "DYNAMO_TEST_OWNER";
/// Env var carrying the child's name in its test (for listings).
pub const ENV_OWNER_NAME: &str = "DYNAMO_TEST_PROCESS";
/// Env var naming the service a keeper runs (`etcd` / `nats`): it tags
/// keepers and their services (and `up`'s holders of earlier versions, as
/// `up-<service>`). A process carrying it is shared by tests and never
/// taken for an orphan.
pub const ENV_SERVICE: &str = "DYNAMO_TEST_SERVICE";

/// Removes any owner tag `cmd` would inherit: for helpers that belong to
/// no test (a keeper, a watchdog, a command's own child), so that no sweep
/// judges them by the life of a test that happened to start them.
pub fn strip_owner_tag(cmd: &mut std::process::Command) -> &mut std::process::Command {
    cmd.env_remove(ENV_OWNER)
        .env_remove(ENV_OWNER_NAME)
        .env_remove(super::descendants::ENV_CHILD)
}

/// The owner named by a tag ([`ENV_OWNER`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerTag {
    /// The owner's pid, in its own PID namespace.
    pub pid: u32,
    /// The owner's start time (clock ticks since boot); 0 if it could not
    /// read it.
    pub start_time: u64,
    /// The inode of the owner's PID namespace; `None` in tags of older
    /// versions (read as ours); 0 if the owner could not read it (never
    /// judged).
    pub pid_namespace: Option<u64>,
}

/// What can be said about the owner a tag names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerStatus {
    /// It runs.
    Alive,
    /// It is gone: its children are orphans.
    Dead,
    /// It lives in another PID namespace (inode given; 0: unknown), where
    /// its pid means something else: never judged from here.
    OtherNamespace(u64),
}

impl OwnerTag {
    /// Parses `<pid>:<start>` or `<pid>:<start>:<namespace>`.
    pub fn parse(tag: &str) -> Option<OwnerTag> {
        let mut parts = tag.trim().split(':');
        let pid = parts.next()?.parse().ok()?;
        let start_time = parts.next()?.parse().ok()?;
        let pid_namespace = match parts.next() {
            None => None,
            Some(ns) => Some(ns.parse().ok()?),
        };
        if parts.next().is_some() {
            return None;
        }
        Some(OwnerTag {
            pid,
            start_time,
            pid_namespace,
        })
    }

    /// The tag of the current process.
    pub fn of_this_process() -> OwnerTag {
        // The same for the whole life of this process: read /proc once.
        static TAG: std::sync::OnceLock<OwnerTag> = std::sync::OnceLock::new();
        *TAG.get_or_init(|| {
            let pid = std::process::id();
            OwnerTag {
                pid,
                start_time: start_time(pid).unwrap_or(0),
                pid_namespace: Some(procfs::own_pid_namespace().unwrap_or(0)),
            }
        })
    }

    /// Whether the owner runs, judged from this process's PID namespace.
    pub fn status(&self) -> OwnerStatus {
        if let Some(ns) = self.pid_namespace {
            // Ours never changes (unshare moves only children); 0: unknown,
            // equal to nothing.
            let ours = OwnerTag::of_this_process().pid_namespace;
            if ns == 0 || Some(ns) != ours {
                return OwnerStatus::OtherNamespace(ns);
            }
        }
        let alive = if self.start_time == 0 {
            // The owner could not read its own start time (no /proc?): the
            // pid alone must do, so that a live test's children are never
            // orphans.
            signal::exists(self.pid)
        } else {
            procfs::is_running(self.pid, self.start_time)
        };
        if alive {
            OwnerStatus::Alive
        } else {
            OwnerStatus::Dead
        }
    }
}

impl fmt::Display for OwnerTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.pid, self.start_time)?;
        if let Some(ns) = self.pid_namespace {
            write!(f, ":{ns}")?;
        }
        Ok(())
    }
}

/// A tagged process whose owner is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    /// Its pid.
    pub pid: u32,
    /// Its start time (clock ticks since boot): with the pid, its identity.
    pub start_time: u64,
    /// Its name in the test, from [`ENV_OWNER_NAME`].
    pub name: String,
    /// The dead owner, from its tag.
    pub owner: OwnerTag,
    /// Its command line.
    pub command: String,
}

/// What a sweep of /proc found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Orphans that are ours to stop.
    pub orphans: Vec<Orphan>,
    /// Processes whose tag names a dead owner of our namespace, but which
    /// are not ours to stop (another user's, another namespace's), with why.
    pub left_alone: Vec<(Orphan, Unreachable)>,
}

/// How a stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It was SIGKILLed.
    Killed,
    /// It was gone already (its number may now be another's: not signalled).
    Gone,
    /// It is no longer the orphan found (its tag changed): not signalled.
    NotAnOrphan,
}

/// The owner tag of the current process, as children get it.
pub(crate) fn owner_tag() -> String {
    OwnerTag::of_this_process().to_string()
}

/// A process's start time (clock ticks since boot), from `/proc/<pid>/stat`.
pub fn start_time(pid: u32) -> Option<u64> {
    procfs::ProcStat::read(pid).map(|stat| stat.start_time)
}

/// What the owner named by `tag` is, judged from here; `None` if the tag
/// cannot be parsed (never judged).
pub fn owner_status(tag: &str) -> Option<OwnerStatus> {
    OwnerTag::parse(tag).map(|t| t.status())
}

/// Every tagged process whose owner is dead: the ones ours to stop, and
/// the ones left alone. Fails if /proc shows another PID namespace than
/// ours (then none of its numbers can be judged or signalled).
pub fn find_orphans() -> Result<Sweep, Unreachable> {
    check_proc()?;
    let mut sweep = Sweep::default();
    for pid in procfs::pids() {
        match classify(pid) {
            Some(Ok(orphan)) => sweep.orphans.push(orphan),
            Some(Err(left)) => sweep.left_alone.push(left),
            None => {}
        }
    }
    Ok(sweep)
}

/// `pid` as an orphan that is ours to stop: tagged, its owner dead, and
/// within reach.
pub fn orphan(pid: u32) -> Option<Orphan> {
    check_proc().ok()?;
    classify(pid)?.ok()
}

/// `None`: not an orphan (untagged, owner alive or not judged). Otherwise
/// the orphan, or the orphan and why it is left alone.
fn classify(pid: u32) -> Option<Result<Orphan, (Orphan, Unreachable)>> {
    let tag = procfs::environ_var(pid, ENV_OWNER)?;
    if procfs::environ_var(pid, ENV_SERVICE).is_some() {
        return None; // shared: its users, not its tag, decide
    }
    let owner = OwnerTag::parse(&tag)?;
    if owner.status() != OwnerStatus::Dead {
        return None;
    }
    let reach = check_reach(pid);
    let orphan = Orphan {
        pid,
        start_time: match &reach {
            Ok(stat) => stat.start_time,
            Err(_) => start_time(pid).unwrap_or(0),
        },
        name: procfs::environ_var(pid, ENV_OWNER_NAME).unwrap_or_default(),
        owner,
        command: procfs::command_line(pid).unwrap_or_default(),
    };
    match reach {
        Ok(_) => Some(Ok(orphan)),
        Err(e) if e.is_gone() => None,
        Err(e) => Some(Err((orphan, e))),
    }
}

/// SIGKILLs `orphan`: pins it with a pidfd, checks that it still is that
/// orphan (same start time, same owner, owner still dead, still ours),
/// then signals through the pidfd.
pub fn stop_orphan(orphan: &Orphan) -> Result<Stopped, Unreachable> {
    let pinned = match PinnedProcess::pin(orphan.pid, orphan.start_time) {
        Ok(pinned) => pinned,
        Err(e) if e.is_gone() => return Ok(Stopped::Gone),
        Err(e) => return Err(e),
    };
    // Read while the pidfd holds the process: if it died meanwhile and
    // the number went to another, the pidfd's signal reaches nobody.
    let still = match classify(orphan.pid) {
        Some(Ok(now)) => now.owner == orphan.owner && now.start_time == orphan.start_time,
        Some(Err((_, e))) => return Err(e),
        None => false,
    };
    if !still {
        return Ok(Stopped::NotAnOrphan);
    }
    Ok(match pinned.kill()? {
        true => Stopped::Killed,
        false => Stopped::Gone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn our_own_tag_is_alive_and_a_forged_one_is_not() {
        let tag = owner_tag();
        let parsed = OwnerTag::parse(&tag).unwrap();
        assert_eq!(parsed, OwnerTag::of_this_process());
        assert_eq!(parsed.pid, std::process::id());
        assert_eq!(parsed.pid_namespace, procfs::own_pid_namespace());
        assert_eq!(owner_status(&tag), Some(OwnerStatus::Alive), "{tag}");
        let pid = std::process::id();
        let ns = procfs::own_pid_namespace().unwrap();
        assert_eq!(
            owner_status(&format!("{pid}:1:{ns}")),
            Some(OwnerStatus::Dead)
        );
        assert_eq!(owner_status("nonsense"), None);
        assert_eq!(owner_status(&format!("{pid}:1:{ns}:9")), None);
        assert_eq!(owner_status(&format!("{pid}:1:x")), None);
    }

    #[test]
    fn an_old_tag_without_namespace_is_read_as_ours() {
        let me = OwnerTag::of_this_process();
        let old = format!("{}:{}", me.pid, me.start_time);
        let parsed = OwnerTag::parse(&old).unwrap();
        assert_eq!(parsed.pid_namespace, None);
        assert_eq!(parsed.to_string(), old, "written back as it was");
        assert_eq!(parsed.status(), OwnerStatus::Alive);
        assert_eq!(
            owner_status(&format!("{}:1", me.pid)),
            Some(OwnerStatus::Dead)
        );
    }

    #[test]
    fn an_owner_of_another_namespace_is_never_judged_dead() {
        let ns = procfs::own_pid_namespace().unwrap();
        // A pid and start time that exist nowhere here; another namespace.
        let foreign = format!("{}:1:{}", u32::MAX - 1, ns + 1);
        assert_eq!(
            owner_status(&foreign),
            Some(OwnerStatus::OtherNamespace(ns + 1))
        );
        // An owner that could not read its namespace: not judged either.
        assert_eq!(
            owner_status(&format!("{}:1:0", u32::MAX - 1)),
            Some(OwnerStatus::OtherNamespace(0))
        );
    }

    fn tagged_sleep(tag: &str) -> std::process::Child {
        let child = Command::new("sleep")
            .arg("30")
            .env(ENV_OWNER, tag)
            .env(ENV_OWNER_NAME, "unit-orphan")
            .spawn()
            .unwrap();
        // Until exec is done, /proc shows the parent's environment.
        for _ in 0..200 {
            if procfs::environ_var(child.id(), ENV_OWNER).as_deref() == Some(tag) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        child
    }

    #[test]
    fn a_shared_service_is_never_an_orphan_whatever_its_tag() {
        let me = OwnerTag::of_this_process();
        let dead = format!("{}:1:{}", me.pid, me.pid_namespace.unwrap());
        let mut child = Command::new("sleep")
            .arg("30")
            .env(ENV_OWNER, &dead)
            .env(ENV_SERVICE, "etcd")
            .spawn()
            .unwrap();
        let settled = (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            procfs::environ_var(child.id(), ENV_SERVICE).is_some()
        });
        assert!(settled, "the child never showed its environment");
        let found = orphan(child.id());
        let swept = find_orphans().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            found, None,
            "a tagged shared service was taken for an orphan"
        );
        assert!(!swept.orphans.iter().any(|o| o.pid == child.id()));
        assert!(!swept.left_alone.iter().any(|(o, _)| o.pid == child.id()));
    }

    #[test]
    fn a_stripped_command_inherits_no_tag() {
        let mut cmd = Command::new("env");
        cmd.env(ENV_OWNER, "1:2:3").env(ENV_OWNER_NAME, "x");
        let out = strip_owner_tag(&mut cmd).output().unwrap();
        let env = String::from_utf8(out.stdout).unwrap();
        assert!(!env.contains(ENV_OWNER), "{env}");
        assert!(!env.contains(ENV_OWNER_NAME), "{env}");
    }

    /// A real `dynamo-test clean` stops every orphan of the user, this
    /// test's too: the suite's clean tests and this one take the same lock
    /// (`exclusive("cli-clean")` in tests/src/lib.rs).
    fn one_clean_at_a_time() -> std::fs::File {
        let dir = format!("/tmp/dynamo-test-suite-{}", signal::current_uid());
        std::fs::create_dir_all(&dir).unwrap();
        let file = std::fs::File::create(format!("{dir}/cli-clean.lock")).unwrap();
        file.lock().unwrap();
        file
    }

    #[test]
    fn an_orphan_is_found_and_stopped_and_a_foreign_one_is_not() {
        let _one_clean_at_a_time = one_clean_at_a_time();
        let me = OwnerTag::of_this_process();
        let ns = me.pid_namespace.unwrap();
        let dead = format!("{}:1:{ns}", me.pid);
        let foreign = format!("{}:1:{}", me.pid, ns + 1);
        let mut orphan_child = tagged_sleep(&dead);
        let mut foreign_child = tagged_sleep(&foreign);

        let found = orphan(orphan_child.id()).expect("an orphan");
        assert_eq!(found.name, "unit-orphan");
        assert_eq!(found.owner.start_time, 1);
        assert_eq!(orphan(foreign_child.id()), None);
        let sweep = find_orphans().unwrap();
        assert!(sweep.orphans.iter().any(|o| o.pid == orphan_child.id()));
        assert!(!sweep.orphans.iter().any(|o| o.pid == foreign_child.id()));

        // A stale record of it (another start time) is not signalled.
        let stale = Orphan {
            start_time: found.start_time + 1,
            ..found.clone()
        };
        assert_eq!(stop_orphan(&stale), Ok(Stopped::Gone));
        assert!(orphan_child.try_wait().unwrap().is_none());

        assert_eq!(stop_orphan(&found), Ok(Stopped::Killed));
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(orphan_child.wait().unwrap().signal(), Some(9));
        assert!(foreign_child.try_wait().unwrap().is_none());
        foreign_child.kill().unwrap();
        foreign_child.wait().unwrap();
    }
}
