//! Shared services whose keeper died (killed with SIGKILL, say): nothing
//! will ever stop them. A keeper's service dies with it (a parent-death
//! signal), but a process the service started (`ETCD_BIN` naming a
//! wrapper script) or a service of an earlier harness version may live
//! on. Tests refuse such an instance (it still holds the keeper's service
//! name), so it only blocks the port until `clean` stops it.
//!
//! Such a service is recognised without guessing by name: the keeper tags
//! what it starts with `DYNAMO_TEST_SERVICE=<etcd|nats>`, and the service's
//! data directory (on its command line) lies in this state directory's
//! `services/`, named `<name>-<port>-data-<pid>`. Its keeper is dead when
//! no ancestor is a keeper (a process whose `argv` holds
//! `dynamo-test-keeper`) any more.
//!
//! Only services within reach count (our uid, our PID namespace: see
//! `admin::check_reach`), and they are signalled only through a pidfd
//! taken before their identity is checked again (`admin::PinnedProcess`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dynamo_test::admin::{self, procfs, PinnedProcess, ENV_SERVICE};
use dynamo_test::process::DEFAULT_GRACE;

/// A running shared service without a keeper.
#[derive(Debug, Clone)]
pub struct StaleService {
    /// Its pid.
    pub pid: u32,
    /// Start time (clock ticks since boot): the pid is signalled only while it matches.
    pub started: u64,
    /// `etcd` or `nats`.
    pub name: String,
    /// Its client port.
    pub port: u16,
    /// Its command line.
    pub command: String,
}

impl StaleService {
    /// One line for `clean` and `doctor`.
    pub fn describe(&self) -> String {
        format!(
            "shared {} on port {}, pid {} ({}): its keeper is gone",
            self.name, self.port, self.pid, self.command
        )
    }

    /// The users file of its port, as earlier harness versions kept it:
    /// their tests hold a shared lock on it.
    fn legacy_users_file(&self, services_dir: &Path) -> PathBuf {
        services_dir.join(format!("{}-{}.users", self.name, self.port))
    }
}

/// Keeper-less shared services of the state directory's `services_dir`
/// (none if /proc shows another PID namespace than ours).
pub fn find(services_dir: &Path) -> Vec<StaleService> {
    if admin::check_proc().is_err() {
        return Vec::new();
    }
    procfs::pids()
        .into_iter()
        .filter_map(|pid| stale_service(pid, services_dir))
        .collect()
}

fn stale_service(pid: u32, services_dir: &Path) -> Option<StaleService> {
    let name = procfs::environ_var(pid, ENV_SERVICE).filter(|n| n == "etcd" || n == "nats")?;
    // Keepers (and their killer subshells) carry the tag and the data dir too.
    if admin::is_keeper(pid) {
        return None;
    }
    let args = procfs::arguments(pid)?;
    let port = data_dir_port(&args, services_dir, &name)?;
    // Another user's or another PID namespace's service is not ours to stop.
    let stat = admin::check_reach(pid).ok()?;
    if has_keeper_ancestor(stat.ppid) {
        return None;
    }
    Some(StaleService {
        pid,
        started: stat.start_time,
        name,
        port,
        command: args.join(" "),
    })
}

/// Whether `pid` or one of its ancestors is a keeper: the service may run
/// under a wrapper (`ETCD_BIN` naming a script), so not only the parent.
fn has_keeper_ancestor(mut pid: u32) -> bool {
    for _ in 0..16 {
        if pid <= 1 {
            return false;
        }
        if admin::is_keeper(pid) {
            return true;
        }
        match admin::ProcStat::read(pid) {
            Some(stat) => pid = stat.ppid,
            None => return false,
        }
    }
    false
}

/// The port in a `<services_dir>/<name>-<port>-data-<pid>` argument.
fn data_dir_port(args: &[String], services_dir: &Path, name: &str) -> Option<u16> {
    args.iter().find_map(|arg| {
        let file = Path::new(arg).strip_prefix(services_dir).ok()?.to_str()?;
        let (stem, _) = file.split_once("-data-")?;
        stem.strip_prefix(name)?.strip_prefix('-')?.parse().ok()
    })
}

/// For a service of an earlier harness version: takes its users lock
/// exclusively, as its keeper did before stopping; `Err` while its tests
/// use it. `Ok(None)`: no such file (a service of this version, whose
/// users were its keeper's connections, all gone with the keeper).
pub fn lock_legacy_users(service: &StaleService, services_dir: &Path) -> Result<Option<File>, ()> {
    let path = service.legacy_users_file(services_dir);
    if !path.exists() {
        return Ok(None);
    }
    let file = admin::open_lock_file(&path).map_err(|_| ())?;
    file.try_lock().map_err(|_| ())?;
    Ok(Some(file))
}

/// SIGTERM, then SIGKILL after the grace, through a pidfd taken on the
/// process found (same pid, same start time, still ours): a reused pid is
/// never signalled.
pub fn stop(service: &StaleService) -> Result<(), String> {
    let pinned = match PinnedProcess::pin(service.pid, service.started) {
        Ok(pinned) => pinned,
        Err(e) if e.is_gone() => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    if !pinned.terminate().map_err(|e| e.to_string())? || exited_within(&pinned, DEFAULT_GRACE) {
        return Ok(());
    }
    if !pinned.kill().map_err(|e| e.to_string())? || exited_within(&pinned, Duration::from_secs(2))
    {
        return Ok(());
    }
    Err(format!("pid {} still runs after SIGKILL", service.pid))
}

fn exited_within(pinned: &PinnedProcess, limit: Duration) -> bool {
    let started = Instant::now();
    while pinned.is_running() {
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_comes_from_the_data_dir_argument() {
        let dir = Path::new("/s/services");
        let args: Vec<String> = ["etcd", "--data-dir", "/s/services/etcd-2379-data-77"]
            .map(String::from)
            .to_vec();
        assert_eq!(data_dir_port(&args, dir, "etcd"), Some(2379));
        assert_eq!(data_dir_port(&args, dir, "nats"), None);
        assert_eq!(data_dir_port(&args, Path::new("/other"), "etcd"), None);
    }

    #[test]
    fn a_keeper_is_found_among_the_ancestors() {
        // This test's ancestors are cargo and a shell, no keeper.
        assert!(!has_keeper_ancestor(std::process::id()));
        // A "keeper" shell whose child runs a wrapper that runs the service.
        use std::os::unix::process::CommandExt;
        let mut keeper = std::process::Command::new("/bin/sh")
            .args(["-c", "sh -c 'sleep 30; :' & wait", "dynamo-test-keeper"])
            .process_group(0)
            .spawn()
            .unwrap();
        let service = (0..200).find_map(|_| {
            std::thread::sleep(Duration::from_millis(5));
            grandchild(keeper.id())
        });
        let found = service.map(has_keeper_ancestor);
        // SAFETY: kill has no memory-safety preconditions; the group is ours.
        unsafe { libc::kill(-(keeper.id() as libc::pid_t), libc::SIGKILL) };
        keeper.wait().unwrap();
        assert_eq!(found, Some(true));
    }

    fn grandchild(pid: u32) -> Option<u32> {
        let children = |p: u32| {
            std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default()
        };
        let child: u32 = children(pid).split_whitespace().next()?.parse().ok()?;
        children(child).split_whitespace().next()?.parse().ok()
    }
}
