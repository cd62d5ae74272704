//! Finding the program and building the `Command` for a child.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a child is started with; kept for restarts.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub name: String,
    pub program: OsString,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    /// Inherited variables the child must not see (unless `env` sets them).
    pub env_remove: Vec<OsString>,
    pub cwd: Option<PathBuf>,
}

impl Spec {
    /// The PATH the child will search: its own if the builder set one.
    fn search_path(&self) -> OsString {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var_os("PATH"))
            .unwrap_or_default()
    }

    /// Checks program and working directory, so a spawn error names what
    /// was searched instead of a bare "No such file or directory".
    pub(crate) fn resolve(&self) -> Result<PathBuf, String> {
        if let Some(cwd) = &self.cwd {
            if !cwd.is_dir() {
                return Err(format!(
                    "working directory {} does not exist",
                    cwd.display()
                ));
            }
        }
        let program = Path::new(&self.program);
        if program.components().count() > 1 {
            let full = match &self.cwd {
                Some(cwd) if program.is_relative() => cwd.join(program),
                _ => program.to_path_buf(),
            };
            return check_executable(&full).map(|()| full);
        }
        // Like execvp: a file of that name that is not executable does not
        // end the search, but is named if nothing better turns up.
        let path = self.search_path();
        let mut not_executable = None;
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(program);
            if candidate.is_file() {
                match check_executable(&candidate) {
                    Ok(()) => return Ok(candidate),
                    Err(e) => not_executable = not_executable.or(Some(e)),
                }
            }
        }
        Err(not_executable.unwrap_or_else(|| {
            format!(
                "`{}` not found in PATH ({})",
                program.display(),
                path.to_string_lossy()
            )
        }))
    }

    /// The command: own process group, parent-death signal, owner and
    /// child tags, piped output.
    pub(crate) fn command(&self, program: &Path, owner_tag: &str, child_tag: &str) -> Command {
        let mut cmd = Command::new(program);
        for key in &self.env_remove {
            cmd.env_remove(key);
        }
        // The tags last: an env passed through from the test's own (which
        // may carry an outer test's tags) must not replace them.
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env(super::sweep::ENV_OWNER, owner_tag)
            .env(super::descendants::ENV_CHILD, child_tag)
            .env(super::sweep::ENV_OWNER_NAME, &self.name)
            // The mark of a shared service (never an orphan) is not a child's.
            .env_remove(super::sweep::ENV_SERVICE)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if let Some(cwd) = &self.cwd {
            cmd.current_dir(cwd);
        }
        crate::sys::spawn::dies_with_parent(&mut cmd, std::process::id());
        cmd
    }
}

/// The first `<dir>/<program>` of `dirs` that is an executable file.
pub(crate) fn first_executable(
    dirs: impl IntoIterator<Item = PathBuf>,
    program: &str,
) -> Option<PathBuf> {
    dirs.into_iter()
        .map(|dir| dir.join(program))
        .find(|candidate| check_executable(candidate).is_ok())
}

/// Whether `path` is an executable file; the error names what is wrong.
pub(crate) fn check_executable(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    let mode = meta.permissions().mode();
    if mode & 0o111 == 0 {
        return Err(format!(
            "{} is not executable (mode {:o})",
            path.display(),
            mode & 0o777
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(program: &str) -> Spec {
        Spec {
            name: "t".into(),
            program: program.into(),
            args: vec![],
            env: vec![],
            env_remove: vec![],
            cwd: None,
        }
    }

    #[test]
    fn finds_programs_on_path_and_names_the_path_otherwise() {
        assert!(spec("sh").resolve().unwrap().ends_with("sh"));
        let err = spec("surely-not-a-program-xyz").resolve().unwrap_err();
        assert!(
            err.contains("`surely-not-a-program-xyz` not found in PATH ("),
            "{err}"
        );
        let mut s = spec("sh");
        s.env.push(("PATH".into(), "/nonexistent".into()));
        assert_eq!(
            s.resolve().unwrap_err(),
            "`sh` not found in PATH (/nonexistent)"
        );
    }

    #[test]
    fn non_executable_and_bad_cwd() {
        let file = std::env::temp_dir().join(format!("dt-noexec-{}", std::process::id()));
        std::fs::write(&file, "x").unwrap();
        let err = spec(file.to_str().unwrap()).resolve().unwrap_err();
        assert!(err.contains("is not executable (mode"), "{err}");
        std::fs::remove_file(&file).unwrap();

        let mut s = spec("sh");
        s.cwd = Some("/nonexistent/dir".into());
        assert_eq!(
            s.resolve().unwrap_err(),
            "working directory /nonexistent/dir does not exist"
        );
    }

    #[test]
    fn the_path_search_goes_past_a_non_executable_file() {
        let dir = std::env::temp_dir().join(format!("dt-path-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("sh"), "not a shell").unwrap();
        let path = format!("{}:/bin:/usr/bin", dir.display());
        let mut s = spec("sh");
        s.env.push(("PATH".into(), path.into()));
        let found = s.resolve().unwrap();
        assert_ne!(found, dir.join("sh"), "the non-executable one was taken");

        let mut s = spec("sh");
        s.env.push(("PATH".into(), dir.clone().into()));
        let err = s.resolve().unwrap_err();
        assert!(err.contains("is not executable"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
