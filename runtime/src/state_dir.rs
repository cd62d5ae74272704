//! The per-user state directory shared by every process that uses the harness.
//!
//! Shared services' leases are lock files here (port reservations are not:
//! they are abstract socket names, scoped to the network namespace). The
//! directory lives in a world-writable place (`/tmp`) by default, so it is
//! created with mode 0700 and checked before use: it must be a real
//! directory (not a symlink someone planted), owned by us, and not writable
//! by others.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::env::{self, EnvError, Lookup};

/// Env var naming the state directory (default `/tmp/dynamo-test-<uid>`).
pub const ENV_STATE_DIR: &str = "DYNAMO_TEST_STATE_DIR";

/// The state directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    /// A bad env override.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// Creating or inspecting the directory failed.
    #[error("state directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// The directory exists but is not safe to use.
    #[error("state directory {path} is unsafe: {problem}; remove it or set {ENV_STATE_DIR} to a private directory")]
    Unsafe {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
}

/// The state directory in force: `DYNAMO_TEST_STATE_DIR` (an absolute
/// path; a relative one is an error), else `/tmp/dynamo-test-<uid>`. Not
/// created.
///
/// The default depends on the uid alone, not on `XDG_RUNTIME_DIR` or
/// `TMPDIR`: a terminal, an IDE, cron and ssh give the same user different
/// environments, and every process of the user must meet in one directory
/// for shared services' leases to see each other.
pub fn state_dir_path() -> Result<PathBuf, EnvError> {
    state_dir_path_from(&env::process_env)
}

fn state_dir_path_from(vars: Lookup) -> Result<PathBuf, EnvError> {
    if let Some(dir) = env::absolute_path(vars, ENV_STATE_DIR)? {
        return Ok(dir);
    }
    Ok(PathBuf::from(format!("/tmp/dynamo-test-{}", current_uid())))
}

/// Creates (if needed) and checks the state directory and its subdirectory `sub`.
pub fn ensure_state_subdir(sub: &str) -> Result<PathBuf, StateDirError> {
    ensure_private_subdir(&state_dir_path()?, sub)
}

/// Creates (if needed) and checks `root` and its subdirectory `sub`, as
/// [`ensure_state_subdir`] does for the state directory.
pub(crate) fn ensure_private_subdir(root: &Path, sub: &str) -> Result<PathBuf, StateDirError> {
    ensure_private_dir(root)?;
    let dir = root.join(sub);
    ensure_private_dir(&dir)?;
    Ok(dir)
}

/// Creates `path` with mode 0700 if missing, then checks that it is a real
/// directory owned by us and closed to others.
pub fn ensure_private_dir(path: &Path) -> Result<(), StateDirError> {
    let io_err = |source| StateDirError::Io {
        path: path.to_path_buf(),
        source,
    };
    match DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(e)),
    }
    let meta = fs::symlink_metadata(path).map_err(io_err)?;
    let unsafe_dir = |problem: String| StateDirError::Unsafe {
        path: path.to_path_buf(),
        problem,
    };
    if meta.file_type().is_symlink() {
        return Err(unsafe_dir("it is a symbolic link".into()));
    }
    if !meta.is_dir() {
        return Err(unsafe_dir("it is not a directory".into()));
    }
    if meta.uid() != current_uid() {
        return Err(unsafe_dir(format!(
            "it is owned by uid {}, not by us (uid {})",
            meta.uid(),
            current_uid()
        )));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(unsafe_dir(format!(
            "others can write to it (mode {:o})",
            meta.permissions().mode() & 0o777
        )));
    }
    Ok(())
}

/// Opens (creating, mode 0600) a lock file in the state directory, never
/// through a symlink, and closed on exec so children do not inherit locks.
pub fn open_lock_file(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// The real uid of this process.
pub fn current_uid() -> u32 {
    crate::sys::signal::current_uid()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "dynamo-test-unit-{}-{}-{}",
            name,
            std::process::id(),
            fastrand::u64(..)
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn creates_a_private_directory() {
        let dir = scratch("private");
        ensure_private_dir(&dir).unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        ensure_private_dir(&dir).unwrap(); // idempotent
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_a_symlink_and_a_world_writable_directory() {
        let target = scratch("target");
        fs::create_dir(&target).unwrap();
        let link = scratch("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = ensure_private_dir(&link).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");

        fs::set_permissions(&target, fs::Permissions::from_mode(0o777)).unwrap();
        let err = ensure_private_dir(&target).unwrap_err().to_string();
        assert!(err.contains("others can write"), "{err}");
        fs::remove_file(&link).unwrap();
        fs::remove_dir_all(&target).unwrap();
    }

    #[test]
    fn override_wins() {
        let v = crate::env::tests::vars(&[(ENV_STATE_DIR, "/x/y")]);
        assert_eq!(state_dir_path_from(&v).unwrap(), PathBuf::from("/x/y"));
    }

    #[test]
    fn a_relative_override_is_an_error_naming_variable_and_value() {
        let v = crate::env::tests::vars(&[(ENV_STATE_DIR, "state")]);
        let msg = state_dir_path_from(&v).unwrap_err().to_string();
        assert!(
            msg.starts_with("environment variable DYNAMO_TEST_STATE_DIR=\"state\" is invalid"),
            "{msg}"
        );
        assert!(msg.contains("an absolute path"), "{msg}");
    }

    #[test]
    fn the_default_ignores_per_process_temp_settings() {
        let expected = PathBuf::from(format!("/tmp/dynamo-test-{}", current_uid()));
        let plain = crate::env::tests::vars(&[]);
        let other = crate::env::tests::vars(&[("XDG_RUNTIME_DIR", "/run"), ("TMPDIR", "/var/tmp")]);
        assert_eq!(state_dir_path_from(&plain).unwrap(), expected);
        assert_eq!(state_dir_path_from(&other).unwrap(), expected);
    }
}
