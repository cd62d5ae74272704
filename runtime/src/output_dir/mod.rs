//! Per-test output directories: where they live, how they are named, and
//! the lock that tells `dynamo-test clean` a running test still owns one.
//!
//! Each run of a test gets a directory of its own,
//! `<root>/<test>/<run id>/` (see [`layout`]), so two runs of the same test
//! path at once (two packages with `tests/e2e.rs`, two `cargo test` in one
//! target dir) never share, truncate or delete each other's logs or data
//! dirs; `<root>/<test>/latest` names the newest run.

mod layout;
mod root;

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::Error;

pub use layout::{is_harness_dir, LATEST_LINK, MARKER_FILE};
pub use root::{output_dir_override, output_root, project_output_root, OutputRoot, ENV_OUTPUT_DIR};

/// The file in each run directory that a running test holds a shared
/// lock on (see [`output_dir_in_use`]).
pub const IN_USE_FILE: &str = ".in-use";

/// Whether a running test holds run directory `dir` (its lock file is
/// locked). A directory without the file (older runs, the services' logs)
/// is not held.
pub fn output_dir_in_use(dir: &Path) -> bool {
    let Ok(file) = File::open(dir.join(IN_USE_FILE)) else {
        return false;
    };
    matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
}

/// One run's output directory, `<root>/<test>/<run id>/`, held (shared
/// lock on [`IN_USE_FILE`]) for as long as this value lives.
pub(crate) struct OutputDir {
    path: PathBuf,
    _in_use: File,
}

impl OutputDir {
    /// Creates a fresh run directory of test `test_name` and holds it.
    pub(crate) fn create(test_name: &str) -> Result<OutputDir, Error> {
        OutputDir::create_in(&output_root()?, test_name)
    }

    fn create_in(root: &Path, test_name: &str) -> Result<OutputDir, Error> {
        let test_dir = root.join(layout::dir_name(test_name));
        let io = |what: &str, path: &Path, e| Error::io(format!("{what} {}", path.display()), e);
        // `clean` removes a test's directory once its last run is gone: if
        // that happens between our two mkdirs, make it again.
        let mut attempts = 0;
        let run = loop {
            layout::ensure_test_dir(&test_dir)
                .map_err(|e| io("creating output directory", &test_dir, e))?;
            match layout::new_run_dir(&test_dir) {
                Ok(run) => break run,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 3 => {
                    attempts += 1;
                }
                Err(e) => return Err(io("creating a run directory in", &test_dir, e)),
            }
        };
        let in_use = File::create(run.join(IN_USE_FILE))
            .map_err(|e| io("creating the lock file in", &run, e))?;
        in_use
            .lock_shared()
            .map_err(|e| io("locking the output directory", &run, e))?;
        // Marked only once held: `clean` removes only marked run directories,
        // and then finds this one locked.
        layout::mark(&run).map_err(|e| io("writing the harness's marker in", &run, e))?;
        layout::mark(&test_dir).map_err(|e| io("writing the harness's marker in", &test_dir, e))?;
        if let Some(name) = run.file_name().and_then(|n| n.to_str()) {
            // Only a convenience for people looking: a failure (a real
            // directory named `latest`, say) does not fail the test.
            let _ = layout::point_latest(&test_dir, name);
        }
        Ok(OutputDir {
            path: run,
            _in_use: in_use,
        })
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// `<dir>/<name>.log` for `n == 1`, `<dir>/<name>-<n>.log` after.
    pub(crate) fn log_file(&self, name: &str, n: usize) -> PathBuf {
        match n {
            1 => self.path.join(format!("{}.log", layout::dir_name(name))),
            n => self
                .path
                .join(format!("{}-{n}.log", layout::dir_name(name))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_root(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "dt-output-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ))
    }

    #[test]
    fn a_held_directory_is_in_use_until_dropped() {
        let dir = OutputDir::create("output_dir::tests::held").unwrap();
        let path = dir.path().to_path_buf();
        assert!(output_dir_in_use(&path));
        drop(dir);
        assert!(!output_dir_in_use(&path));
        assert!(!output_dir_in_use(&path.join("no-such-dir")));
    }

    #[test]
    fn two_runs_of_one_test_get_their_own_marked_directories() {
        let root = scratch_root("runs");
        let first = OutputDir::create_in(&root, "suite::t").unwrap();
        std::fs::write(first.log_file("api", 1), "first").unwrap();
        let second = OutputDir::create_in(&root, "suite::t").unwrap();
        std::fs::write(second.log_file("api", 1), "second").unwrap();

        let test_dir = root.join("suite.t");
        assert_ne!(first.path(), second.path());
        for run in [first.path(), second.path()] {
            assert_eq!(run.parent(), Some(test_dir.as_path()));
            assert!(is_harness_dir(run), "{}", run.display());
        }
        assert!(is_harness_dir(&test_dir));
        let read = |dir: &OutputDir| std::fs::read_to_string(dir.log_file("api", 1)).unwrap();
        assert_eq!(read(&first), "first");
        assert_eq!(read(&second), "second");
        // The newest is easy to find, and sorts last.
        let latest = std::fs::read_link(test_dir.join(LATEST_LINK)).unwrap();
        assert_eq!(Some(latest.as_os_str()), second.path().file_name());
        assert!(first.path() < second.path());
        drop((first, second));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_symlink_in_place_of_a_test_directory_is_not_followed() {
        let root = scratch_root("planted");
        let elsewhere = scratch_root("planted-target");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("suite.t")).unwrap();
        let err = OutputDir::create_in(&root, "suite::t")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(err.contains("suite.t"), "{err}");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        std::fs::remove_dir_all(&root).unwrap();
        std::fs::remove_dir_all(&elsewhere).unwrap();
    }

    #[test]
    fn log_files_are_numbered_after_the_first() {
        let dir = OutputDir::create("output_dir::tests::logs").unwrap();
        assert!(dir.log_file("api", 1).ends_with("api.log"));
        assert!(dir.log_file("api", 2).ends_with("api-2.log"));
    }
}
