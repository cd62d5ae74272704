//! `dynamo-test clean`: remove what the harness left that no live process owns.
//!
//! Never touched: anything under the output root without the harness's
//! marker (`.dynamo-test`: the root may be a directory of the user's), run
//! directories a running test holds (its lock on `.in-use`), `<output
//! root>/services/` (the logs of the running shared services), services a
//! keeper runs (it stops them itself, and the orphan sweep never takes a
//! shared service for an orphan, whatever tag it inherited), services
//! whose keeper died while tests of an earlier harness version still use
//! them, anything untagged, and any process of another user or of another
//! PID namespace (a container's test: its owner's pid means nothing in our
//! /proc). A process is signalled only through a pidfd, after its identity
//! is checked again.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use dynamo_test::admin::{self, procfs, Orphan, Stopped};
use serde_json::{json, Value};

use crate::output::Out;
use crate::paths::{self, OutputRoot};
use crate::stale;

/// One thing to remove (or that was kept).
struct Entry {
    what: String,
    path: Option<PathBuf>,
    pid: Option<u32>,
}

impl Entry {
    fn path(what: String, path: PathBuf) -> Entry {
        Entry {
            what,
            path: Some(path),
            pid: None,
        }
    }

    fn to_json(&self) -> Value {
        json!({"what": self.what, "path": self.path.as_ref().map(|p| p.display().to_string()), "pid": self.pid})
    }
}

/// What was removed, what failed and what was kept on purpose.
struct Report {
    dry_run: bool,
    removed: Vec<Entry>,
    failed: Vec<(Entry, String)>,
    kept: Vec<(Entry, String)>,
}

impl Report {
    /// Runs `remove` (unless a dry run) and records the outcome.
    /// Returns whether it succeeded (always, in a dry run).
    fn act(&mut self, entry: Entry, remove: impl FnOnce() -> Result<(), String>) -> bool {
        let result = if self.dry_run { Ok(()) } else { remove() };
        let ok = result.is_ok();
        match result {
            Ok(()) => self.removed.push(entry),
            Err(e) => self.failed.push((entry, e)),
        }
        ok
    }

    fn keep(&mut self, entry: Entry, why: &str) {
        self.kept.push((entry, why.to_string()));
    }
}

/// Runs `clean` (`--dry-run`: removes nothing); the exit code: 1 if a removal failed.
pub fn run(out: &Out, dry_run: bool, days: u64) -> i32 {
    let root = match paths::output_root() {
        Ok(root) => root,
        Err(e) => return crate::fail(out, &e),
    };
    let services_dir = match admin::ensure_state_subdir("services") {
        Ok(dir) => dir,
        Err(e) => return crate::fail(out, &e.to_string()),
    };
    let mut report = Report {
        dry_run,
        removed: Vec::new(),
        failed: Vec::new(),
        kept: Vec::new(),
    };
    old_output_dirs(&mut report, &root.path, days);
    let still_running = stale_services(&mut report, &services_dir);
    stale_records(&mut report, &services_dir, &still_running);
    data_dirs(&mut report, &services_dir);
    orphans(&mut report);
    print(out, &report, &root);
    i32::from(!report.failed.is_empty())
}

/// Run directories (`<root>/<test>/<run id>/`) not modified for `days`
/// days that no running test holds, then test directories left empty.
/// Only what carries the harness's marker: anything else under the root
/// (the root may be a directory of the user's, `DYNAMO_TEST_OUTPUT_DIR=$HOME/logs`)
/// is left alone and, once as old, listed as kept.
fn old_output_dirs(report: &mut Report, root: &Path, days: u64) {
    let limit = Duration::from_secs(days.saturating_mul(86_400));
    for test_dir in real_subdirs(root) {
        // The shared services' logs: a running service writes there.
        if test_dir.file_name().is_some_and(|n| n == "services") {
            continue;
        }
        if !admin::is_harness_dir(&test_dir) {
            keep_unmarked(report, test_dir, limit, days);
            continue;
        }
        for run in real_subdirs(&test_dir) {
            if !admin::is_harness_dir(&run) {
                keep_unmarked(report, run, limit, days);
            } else if older_than(&run, limit) {
                old_run(report, run, days);
            }
        }
        if !report.dry_run {
            remove_if_empty(&test_dir);
        }
    }
}

fn old_run(report: &mut Report, run: PathBuf, days: u64) {
    let what = format!(
        "output directory {} (older than {days} days)",
        run.display()
    );
    let Ok(claim) = claim(&run) else {
        report.keep(Entry::path(what, run), "a running test holds it");
        return;
    };
    let target = run.clone();
    report.act(Entry::path(what, run), move || {
        let _held = claim;
        std::fs::remove_dir_all(&target).map_err(|e| e.to_string())
    });
}

fn keep_unmarked(report: &mut Report, dir: PathBuf, limit: Duration, days: u64) {
    if older_than(&dir, limit) {
        let what = format!("directory {} (older than {days} days)", dir.display());
        let why = format!(
            "no {} marker: not made by the harness (or by a version before it marked its \
             directories); remove it yourself if it is yours to remove",
            admin::MARKER_FILE
        );
        report.keep(Entry::path(what, dir), &why);
    }
}

/// The directories in `dir`, sorted; symlinks are not followed.
fn real_subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

/// Removes a test's directory that holds no run any more: only its
/// marker and `latest` links (dangling by now). A test starting a run
/// meanwhile makes its run directory first: then `remove_dir` fails and
/// the marker is put back; or it finds the directory gone and makes it
/// again.
fn remove_if_empty(test_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(test_dir) else {
        return;
    };
    let mut links = Vec::new();
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
        let is_latest = name
            .to_str()
            .is_some_and(|n| n.contains(admin::LATEST_LINK));
        if is_link && is_latest && !entry.path().exists() {
            links.push(entry.path());
        } else if name != admin::MARKER_FILE {
            return;
        }
    }
    for link in links {
        let _ = std::fs::remove_file(link);
    }
    let marker = test_dir.join(admin::MARKER_FILE);
    let text = std::fs::read(&marker).unwrap_or_default();
    let _ = std::fs::remove_file(&marker);
    if std::fs::remove_dir(test_dir).is_err() {
        let _ = std::fs::write(&marker, text);
    }
}

/// Locks the directory's `.in-use` file exclusively for the removal;
/// `Err` while a running test holds it (what `output_dir_in_use` checks,
/// without a gap between check and removal). No test starts in a run
/// directory that exists, and a run takes its lock before it writes the
/// marker: a marked directory without a held lock has no test.
/// `Ok(None)`: no lock file.
fn claim(dir: &Path) -> Result<Option<File>, ()> {
    let file = match File::open(dir.join(admin::IN_USE_FILE)) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        // Cannot tell (no permission, out of descriptors): keep it.
        Err(_) => return Err(()),
    };
    // Any error but "free": better kept than removed under a test.
    file.try_lock().map_err(|_| ())?;
    Ok(Some(file))
}

fn older_than(path: &Path, limit: Duration) -> bool {
    let modified = std::fs::metadata(path).and_then(|m| m.modified());
    modified.is_ok_and(|m| SystemTime::now().duration_since(m).unwrap_or_default() >= limit)
}

/// Stops shared services whose keeper died, unless tests of an earlier
/// harness version still use them.
/// Returns those left running, as `(name, port)`.
fn stale_services(report: &mut Report, services_dir: &Path) -> Vec<(String, u16)> {
    let mut still_running = Vec::new();
    for service in stale::find(services_dir) {
        let entry = Entry {
            what: service.describe(),
            path: None,
            pid: Some(service.pid),
        };
        // Held until the service is gone, so no test of an earlier version joins it meanwhile.
        let Ok(_users) = stale::lock_legacy_users(&service, services_dir) else {
            report.keep(entry, "tests still use it; run clean again after they end");
            still_running.push((service.name.clone(), service.port));
            continue;
        };
        if !report.act(entry, || stale::stop(&service)) {
            still_running.push((service.name.clone(), service.port));
        }
    }
    still_running
}

/// Record files of earlier harness versions (`<name>-<port>.record`)
/// whose keeper is gone; kept while their service runs (without it an
/// earlier version would take the running instance for an external one).
fn stale_records(report: &mut Report, services_dir: &Path, still_running: &[(String, u16)]) {
    for record in legacy_records(services_dir) {
        if record.keeper.is_some_and(admin::is_keeper) {
            continue;
        }
        let entry = Entry::path(
            format!("stale service record {}", record.path.display()),
            record.path.clone(),
        );
        if still_running
            .iter()
            .any(|(name, port)| *name == record.name && *port == record.port)
        {
            report.keep(entry, "its service still runs");
            continue;
        }
        report.act(entry, || {
            std::fs::remove_file(&record.path).map_err(|e| e.to_string())
        });
    }
}

/// A record file an earlier harness version wrote for its shell keeper.
pub struct LegacyRecord {
    /// `etcd` or `nats`.
    pub name: String,
    /// The client port.
    pub port: u16,
    /// The keeper's pid, as recorded.
    pub keeper: Option<u32>,
    /// The file.
    pub path: PathBuf,
}

/// The record files of earlier harness versions in `services_dir`.
pub fn legacy_records(services_dir: &Path) -> Vec<LegacyRecord> {
    let Ok(entries) = std::fs::read_dir(services_dir) else {
        return Vec::new();
    };
    let mut found: Vec<LegacyRecord> = entries
        .filter_map(|e| {
            let path = e.ok()?.path();
            let stem = path.file_name()?.to_str()?.strip_suffix(".record")?;
            let (name, port) = stem.rsplit_once('-')?;
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let keeper = text
                .lines()
                .find_map(|l| l.strip_prefix("keeper_pid="))
                .and_then(|p| p.parse().ok());
            Some(LegacyRecord {
                name: name.to_string(),
                port: port.parse().ok()?,
                keeper,
                path,
            })
        })
        .collect();
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// Service data directories that no running process names on its command
/// line (a running service does). In a dry run the services that
/// clean would stop do not count.
fn data_dirs(report: &mut Report, services_dir: &Path) {
    let stopping: Vec<u32> = report.removed.iter().filter_map(|e| e.pid).collect();
    let command_lines = all_command_lines(if report.dry_run { &stopping } else { &[] });
    let Ok(entries) = std::fs::read_dir(services_dir) else {
        return;
    };
    let mut dirs: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
    dirs.sort();
    for dir in dirs {
        let shown = dir.display().to_string();
        let is_data = dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains("-data-"));
        if !is_data || !dir.is_dir() || command_lines.iter().any(|c| c.contains(&shown)) {
            continue;
        }
        // Its keeper holds `<dir>.in-use` while the service may use it (a
        // flock: seen from every uid and PID namespace, unlike a command
        // line). Held for the removal, so no new keeper takes the dir.
        let lock_path = admin::data_lock_path(&dir);
        let lock = match std::fs::File::open(&lock_path) {
            Ok(file) => match file.try_lock() {
                Ok(()) => Some(file),
                Err(_) => continue,
            },
            Err(_) => None,
        };
        let target = dir.clone();
        report.act(
            Entry::path(format!("data directory of a stopped service {shown}"), dir),
            move || {
                let removed = std::fs::remove_dir_all(&target).map_err(|e| e.to_string());
                if lock.is_some() {
                    let _ = std::fs::remove_file(&lock_path);
                }
                removed
            },
        );
    }
}

/// Tagged processes whose owner is dead: ours are stopped; those of
/// another user or PID namespace are kept, with why.
fn orphans(report: &mut Report) {
    let sweep = match admin::find_orphans() {
        Ok(sweep) => sweep,
        Err(e) => {
            let entry = Entry {
                what: "orphan processes".to_string(),
                path: None,
                pid: None,
            };
            report.failed.push((entry, e.to_string()));
            return;
        }
    };
    for orphan in sweep.orphans {
        report.act(orphan_entry(&orphan), || stop_orphan(&orphan));
    }
    for (orphan, why) in sweep.left_alone {
        report.keep(orphan_entry(&orphan), &why.to_string());
    }
}

fn orphan_entry(orphan: &Orphan) -> Entry {
    Entry {
        what: format!(
            "orphan process pid {} `{}` ({}), owner pid {} is gone",
            orphan.pid, orphan.name, orphan.command, orphan.owner.pid
        ),
        path: None,
        pid: Some(orphan.pid),
    }
}

/// Stopped, or gone by now (then its number was not signalled): fine.
fn stop_orphan(orphan: &Orphan) -> Result<(), String> {
    match admin::stop_orphan(orphan) {
        Ok(Stopped::Killed | Stopped::Gone | Stopped::NotAnOrphan) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// The command line of every process we can see, but `except`.
fn all_command_lines(except: &[u32]) -> Vec<String> {
    procfs::pids()
        .into_iter()
        .filter(|pid| !except.contains(pid))
        .filter_map(procfs::command_line)
        .collect()
}

fn print(out: &Out, report: &Report, root: &OutputRoot) {
    if out.json {
        let pairs = |list: &[(Entry, String)], key: &str| -> Vec<Value> {
            list.iter()
                .map(|(e, why)| {
                    let mut v = e.to_json();
                    v[key] = json!(why);
                    v
                })
                .collect()
        };
        out.json(&json!({
            "dry_run": report.dry_run,
            "ok": report.failed.is_empty(),
            "output_root": {"path": root.path.display().to_string(), "source": root.source},
            "removed": report.removed.iter().map(Entry::to_json).collect::<Vec<_>>(),
            "failed": pairs(&report.failed, "error"),
            "kept": pairs(&report.kept, "reason"),
        }));
        return;
    }
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for e in &report.removed {
        println!("{verb}: {}", e.what);
    }
    for (e, why) in &report.kept {
        println!("{}: {} ({why})", out.warn("kept"), e.what);
    }
    for (e, error) in &report.failed {
        println!("{}: {}: {error}", out.bad("FAILED to remove"), e.what);
    }
    if report.removed.is_empty() && report.failed.is_empty() {
        println!(
            "nothing to clean in {} ({})",
            root.path.display(),
            root.source
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(dry_run: bool) -> Report {
        Report {
            dry_run,
            removed: Vec::new(),
            failed: Vec::new(),
            kept: Vec::new(),
        }
    }

    fn entry() -> Entry {
        Entry::path("x".into(), PathBuf::from("/x"))
    }

    #[test]
    fn a_failed_removal_is_reported_as_failed_not_removed() {
        let mut r = report(false);
        assert!(!r.act(entry(), || Err("permission denied".into())));
        assert!(r.removed.is_empty());
        assert_eq!(r.failed[0].1, "permission denied");
        assert!(r.act(entry(), || Ok(())));
        assert_eq!(r.removed.len(), 1);
    }

    #[test]
    fn a_dry_run_removes_nothing() {
        let mut r = report(true);
        assert!(r.act(entry(), || panic!("a dry run must not act")));
        assert_eq!(r.removed.len(), 1);
    }
}
