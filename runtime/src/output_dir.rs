//! Per-test output directories: where they live, how they are named, and
//! the lock that tells `dynamo-test clean` a running test still owns one.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::env;
use crate::error::Error;

/// Env var naming the root of the per-test output directories (default
/// `<cargo target dir>/dynamo-test`).
pub const ENV_OUTPUT_DIR: &str = "DYNAMO_TEST_OUTPUT_DIR";

/// The file in each output directory that a running test holds a shared
/// lock on (see [`output_dir_in_use`]).
pub const IN_USE_FILE: &str = ".in-use";

/// The root of the per-test output directories:
/// `DYNAMO_TEST_OUTPUT_DIR` (an absolute path; a relative one is an error,
/// see [`output_dir_override`]); else `<target>/dynamo-test` when the running
/// binary lives in a cargo target directory (`<target>/<profile>/deps/<bin>`,
/// recognised by cargo's `CACHEDIR.TAG`); else `$CARGO_TARGET_DIR/dynamo-test`;
/// else the project above the current directory (see
/// [`project_output_root`]); else the system temp dir.
pub fn output_root() -> Result<PathBuf, Error> {
    // Every test of a process asks; the answer cannot change meanwhile.
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    if let Some(root) = ROOT.get() {
        return Ok(root.clone());
    }
    let root = find_output_root()?;
    Ok(ROOT.get_or_init(|| root).clone())
}

/// `DYNAMO_TEST_OUTPUT_DIR`, if set: an absolute path. A relative one is
/// an error naming the variable and its value (each test binary runs in
/// its own package directory, so "relative" would mean a different place
/// for each).
pub fn output_dir_override() -> Result<Option<PathBuf>, env::EnvError> {
    output_dir_override_from(&env::process_env)
}

fn output_dir_override_from(vars: env::Lookup) -> Result<Option<PathBuf>, env::EnvError> {
    env::absolute_path(vars, ENV_OUTPUT_DIR)
}

fn find_output_root() -> Result<PathBuf, Error> {
    if let Some(dir) = output_dir_override()? {
        return Ok(dir);
    }
    if let Some(target) = std::env::current_exe()
        .ok()
        .and_then(|e| cargo_target_of(&e))
    {
        return Ok(target.join("dynamo-test"));
    }
    if let Some(target) = env::var(&env::process_env, "CARGO_TARGET_DIR")? {
        return Ok(PathBuf::from(target).join("dynamo-test"));
    }
    let project = std::env::current_dir()
        .ok()
        .and_then(|cwd| project_output_root(&cwd));
    Ok(match project {
        Some(root) => root.path,
        None => std::env::temp_dir().join("dynamo-test"),
    })
}

/// The cargo target directory holding `exe` (`<target>/<profile>/<exe>`,
/// or one level deeper in `deps/` or `examples/`), if it is one.
fn cargo_target_of(exe: &Path) -> Option<PathBuf> {
    let dir = exe.parent()?;
    let profile_dir = match dir.file_name()?.to_str()? {
        "deps" | "examples" => dir.parent()?,
        _ => dir,
    };
    let target = profile_dir.parent()?;
    target
        .join("CACHEDIR.TAG")
        .is_file()
        .then(|| target.to_path_buf())
}

/// An output root found by looking around, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRoot {
    /// The directory (it may not exist yet).
    pub path: PathBuf,
    /// How it was found, for `dynamo-test doctor`.
    pub source: String,
}

/// The output root of the project at or above `start`: the first
/// directory holding `target/dynamo-test`, or a workspace `Cargo.toml`
/// (then `<it>/target/dynamo-test`).
pub fn project_output_root(start: &Path) -> Option<OutputRoot> {
    start.ancestors().find_map(|dir| {
        let path = dir.join("target").join("dynamo-test");
        let source = if path.is_dir() {
            "target/dynamo-test above the current directory"
        } else if is_workspace(&dir.join("Cargo.toml")) {
            "the cargo workspace above the current directory"
        } else {
            return None;
        };
        Some(OutputRoot {
            path,
            source: source.to_string(),
        })
    })
}

/// Whether `manifest` declares a workspace (`[workspace]` or `[workspace.x]`).
fn is_workspace(manifest: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(manifest) else {
        return false;
    };
    text.lines().any(|line| {
        let line = line.trim_start();
        line.starts_with("[workspace]") || line.starts_with("[workspace.")
    })
}

/// Whether a running test holds output directory `dir` (its lock file is
/// locked). A directory without the file (older runs, the services' logs)
/// is not held.
pub fn output_dir_in_use(dir: &Path) -> bool {
    let Ok(file) = File::open(dir.join(IN_USE_FILE)) else {
        return false;
    };
    matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
}

/// One test's output directory, held (shared lock on [`IN_USE_FILE`]) for
/// as long as this value lives.
pub(crate) struct OutputDir {
    path: PathBuf,
    _in_use: File,
}

impl OutputDir {
    /// Creates (or reuses) the directory of test `test_name` and holds it.
    pub(crate) fn create(test_name: &str) -> Result<OutputDir, Error> {
        let path = output_root()?.join(dir_name(test_name));
        let io = |what: &str, e| Error::io(format!("{what} {}", path.display()), e);
        // `clean` may remove the directory between our create and our lock:
        // a lock on an unlinked file holds nothing, so try again.
        for _ in 0..3 {
            std::fs::create_dir_all(&path).map_err(|e| io("creating output directory", e))?;
            let in_use = File::create(path.join(IN_USE_FILE))
                .map_err(|e| io("creating the lock file in", e))?;
            in_use
                .lock_shared()
                .map_err(|e| io("locking the output directory", e))?;
            let linked = in_use.metadata().map(|m| {
                use std::os::unix::fs::MetadataExt;
                m.nlink() > 0
            });
            if linked.unwrap_or(true) {
                return Ok(OutputDir {
                    path,
                    _in_use: in_use,
                });
            }
        }
        Err(io(
            "keeping the output directory (something keeps removing it)",
            std::io::Error::other("removed while being created"),
        ))
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// `<dir>/<name>.log` for `n == 1`, `<dir>/<name>-<n>.log` after.
    pub(crate) fn log_file(&self, name: &str, n: usize) -> PathBuf {
        match n {
            1 => self.path.join(format!("{}.log", dir_name(name))),
            n => self.path.join(format!("{}-{n}.log", dir_name(name))),
        }
    }
}

/// `a::b::c` -> `a.b.c`: one directory per test, readable in `ls`.
fn dir_name(test_name: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_names_are_flat_and_safe() {
        assert_eq!(dir_name("suite::mod_a::t1"), "suite.mod_a.t1");
        assert_eq!(dir_name("a b/c"), "a_b_c");
    }

    #[test]
    fn a_relative_output_dir_is_an_error_naming_variable_and_value() {
        let v = crate::env::tests::vars(&[(ENV_OUTPUT_DIR, "out/logs")]);
        let msg = output_dir_override_from(&v).unwrap_err().to_string();
        assert!(
            msg.starts_with("environment variable DYNAMO_TEST_OUTPUT_DIR=\"out/logs\" is invalid"),
            "{msg}"
        );
        assert!(msg.contains("an absolute path"), "{msg}");
        let v = crate::env::tests::vars(&[(ENV_OUTPUT_DIR, "/srv/out")]);
        assert_eq!(
            output_dir_override_from(&v).unwrap(),
            Some(PathBuf::from("/srv/out"))
        );
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
    fn a_test_binary_finds_its_cargo_target_dir() {
        let exe = std::env::current_exe().unwrap();
        let target = cargo_target_of(&exe).expect("tests run from target/<profile>/deps");
        assert!(target.join("CACHEDIR.TAG").is_file());
        // An installed binary is not in a target dir.
        assert_eq!(
            cargo_target_of(Path::new("/usr/local/bin/dynamo-test")),
            None
        );
    }

    #[test]
    fn a_workspace_manifest_is_recognised() {
        let dir = std::env::temp_dir().join(format!("dt-project-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
        let root = project_output_root(&dir.join("a/b")).unwrap();
        assert_eq!(root.path, dir.join("target/dynamo-test"));
        assert!(root.source.contains("workspace"), "{}", root.source);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn log_files_are_numbered_after_the_first() {
        let dir = OutputDir::create("output_dir::tests::logs").unwrap();
        assert!(dir.log_file("api", 1).ends_with("api.log"));
        assert!(dir.log_file("api", 2).ends_with("api-2.log"));
    }
}
