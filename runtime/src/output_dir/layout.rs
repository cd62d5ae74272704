//! The layout under the output root: `<root>/<test>/<run id>/`, a
//! `latest` link beside the runs, and the marker that says the harness
//! made a directory (the only kind `dynamo-test clean` removes).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// The file the harness writes into every directory it makes under the
/// output root (a test's directory and each of its runs): `dynamo-test
/// clean` removes nothing without it.
pub const MARKER_FILE: &str = ".dynamo-test";

/// The symlink in a test's directory naming its newest run directory.
pub const LATEST_LINK: &str = "latest";

const MARKER_TEXT: &str = "Made by the dynamo-test harness: `dynamo-test clean` may remove \
     this directory once it is old and no running test holds it.\n";

/// `a::b::c` -> `a.b.c`: one directory per test, readable in `ls`.
pub(super) fn dir_name(test_name: &str) -> String {
    // Names that would mean the root itself or its parent.
    if matches!(test_name, "" | "." | "..") {
        return "_".to_string();
    }
    test_name
        .replace("::", ".")
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A run's name: `<UTC date>-<time with ms>-<pid>-<n>`, e.g.
/// `20261201-223158.123-4242-001`. The time first, so `ls` shows the newest
/// last; the pid and a per-process counter make it unique among runs
/// started in the same millisecond (three digits at least, so that a
/// process's runs of one millisecond sort too).
pub(super) fn run_id(now: SystemTime, pid: u32, n: u64) -> String {
    let stamp = humantime::format_rfc3339_millis(now).to_string();
    let digits: String = stamp.chars().filter(char::is_ascii_digit).collect();
    match (digits.get(..8), digits.get(8..14), digits.get(14..17)) {
        (Some(date), Some(time), Some(ms)) => format!("{date}-{time}.{ms}-{pid}-{n:03}"),
        // A year past 9999: still unique, if not as readable.
        _ => format!("{digits}-{pid}-{n:03}"),
    }
}

/// Makes a fresh run directory in `test_dir` (never one that exists, so
/// two runs never share one). `NotFound` if `test_dir` vanished.
pub(super) fn new_run_dir(test_dir: &Path) -> io::Result<PathBuf> {
    static RUNS: AtomicU64 = AtomicU64::new(1);
    let mut last = None;
    for _ in 0..100 {
        let n = RUNS.fetch_add(1, Ordering::Relaxed);
        let run = test_dir.join(run_id(SystemTime::now(), std::process::id(), n));
        match fs::create_dir(&run) {
            Ok(()) => return Ok(run),
            // A run of a process with our pid in another PID namespace, say.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free run directory name")))
}

/// Creates `test_dir` (and the root above it) if needed; it must then be
/// a real directory: a symlink there is not followed.
pub(super) fn ensure_test_dir(test_dir: &Path) -> io::Result<()> {
    if let Some(root) = test_dir.parent() {
        fs::create_dir_all(root)?;
    }
    match fs::create_dir(test_dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = fs::symlink_metadata(test_dir)?;
    if meta.file_type().is_symlink() {
        return Err(io::Error::other(
            "it is a symbolic link, which the harness does not follow; \
             remove it or set DYNAMO_TEST_OUTPUT_DIR to another directory",
        ));
    }
    if !meta.is_dir() {
        return Err(io::Error::other(
            "it is not a directory; remove it or set DYNAMO_TEST_OUTPUT_DIR to another directory",
        ));
    }
    Ok(())
}

/// Writes the marker into `dir` unless it is there (never through a
/// symlink: `create_new` does not follow one).
pub(super) fn mark(dir: &Path) -> io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dir.join(MARKER_FILE))
    {
        Ok(mut file) => file.write_all(MARKER_TEXT.as_bytes()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether `dir` is a directory the harness made: a real directory (not
/// a symlink) holding the marker as a regular file.
pub fn is_harness_dir(dir: &Path) -> bool {
    let real_dir = fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir());
    real_dir && fs::symlink_metadata(dir.join(MARKER_FILE)).is_ok_and(|m| m.is_file())
}

/// Points `<test_dir>/latest` at run `run_name`, atomically (a new link
/// renamed over the old one: a reader sees the old run or the new one).
pub(super) fn point_latest(test_dir: &Path, run_name: &str) -> io::Result<()> {
    let temporary = test_dir.join(format!(".{LATEST_LINK}-{run_name}"));
    std::os::unix::fs::symlink(run_name, &temporary)?;
    fs::rename(&temporary, test_dir.join(LATEST_LINK)).inspect_err(|_| {
        let _ = fs::remove_file(&temporary);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn dir_names_are_flat_and_safe() {
        assert_eq!(dir_name("suite::mod_a::t1"), "suite.mod_a.t1");
        assert_eq!(dir_name("a b/c"), "a_b_c");
        assert_eq!(dir_name(".."), "_");
        assert_eq!(dir_name(""), "_");
    }

    #[test]
    fn run_ids_are_short_and_sort_by_time() {
        let t = UNIX_EPOCH + Duration::from_millis(1_796_164_318_123);
        assert_eq!(run_id(t, 4242, 1), "20261201-223158.123-4242-001");
        assert!(run_id(t, 4242, 9) < run_id(t, 4242, 10));
        let later = run_id(t + Duration::from_millis(1), 7, 1);
        assert!(run_id(t, 4242, 999) < later);
        let next_day = run_id(t + Duration::from_secs(86_400), 1, 1);
        assert!(later < next_day);
    }
}
