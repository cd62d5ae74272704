//! Where the output directories live: the root, found once per process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::env;
use crate::error::Error;
use crate::state_dir;

/// Env var naming the root of the per-test output directories (default
/// `<cargo target dir>/dynamo-test`).
pub const ENV_OUTPUT_DIR: &str = "DYNAMO_TEST_OUTPUT_DIR";

/// The subdirectory of the state directory that is the output root when
/// nothing better is found.
const FALLBACK_SUBDIR: &str = "output";

/// The root of the per-test output directories:
/// `DYNAMO_TEST_OUTPUT_DIR` (an absolute path; a relative one is an error,
/// see [`output_dir_override`]); else `<target>/dynamo-test` when the running
/// binary lives in a cargo target directory (`<target>/<profile>/deps/<bin>`,
/// recognised by cargo's `CACHEDIR.TAG`); else `$CARGO_TARGET_DIR/dynamo-test`;
/// else the project above the current directory (see
/// [`project_output_root`]); else `output/` in the per-user state
/// directory (`/tmp/dynamo-test-<uid>/output`), created private (0700) and
/// checked like the state directory: a directory in a shared place that
/// someone else made, or a symlink planted there, is refused.
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
    match project {
        Some(root) => Ok(root.path),
        None => Ok(fallback_root(&state_dir::state_dir_path()?)?),
    }
}

/// `<state dir>/output`, created and checked as the state directory is
/// (0700, ours, no symlink): unlike a cargo target dir, `/tmp` is shared.
fn fallback_root(state_dir: &Path) -> Result<PathBuf, state_dir::StateDirError> {
    state_dir::ensure_private_subdir(state_dir, FALLBACK_SUBDIR)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "dt-output-root-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ))
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
        let dir = scratch("project");
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
        let root = project_output_root(&dir.join("a/b")).unwrap();
        assert_eq!(root.path, dir.join("target/dynamo-test"));
        assert!(root.source.contains("workspace"), "{}", root.source);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_fallback_root_is_private_to_the_user() {
        use std::os::unix::fs::PermissionsExt;
        let state = scratch("fallback");
        let root = fallback_root(&state).unwrap();
        assert_eq!(root, state.join("output"));
        for dir in [&state, &root] {
            let mode = std::fs::metadata(dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{}", dir.display());
        }
        std::fs::remove_dir_all(&state).unwrap();
    }

    #[test]
    fn a_symlink_planted_as_the_fallback_root_is_refused() {
        let state = scratch("planted");
        std::fs::create_dir(&state).unwrap();
        let elsewhere = scratch("planted-target");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, state.join("output")).unwrap();
        let err = fallback_root(&state).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(
            err.contains(&state.join("output").display().to_string()),
            "{err}"
        );
        assert!(err.contains("remove it or set"), "{err}");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        std::fs::remove_dir_all(&state).unwrap();
        std::fs::remove_dir_all(&elsewhere).unwrap();
    }

    #[test]
    fn a_fallback_root_of_another_user_is_refused() {
        // SAFETY: getuid has no preconditions.
        if unsafe { libc::getuid() } != 0 {
            eprintln!("skipped: giving a directory to another uid needs root (CI runs as root)");
            return;
        }
        let state = scratch("foreign");
        std::fs::create_dir(&state).unwrap();
        let theirs = state.join("output");
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let err = fallback_root(&state).unwrap_err().to_string();
        assert!(err.contains("owned by uid 65534"), "{err}");
        std::fs::remove_dir_all(&state).unwrap();
    }
}
