//! Finding the etcd and nats-server binaries.

use std::path::{Path, PathBuf};

use crate::env;

/// Places searched after `$PATH`: Debian puts nats-server in /usr/sbin,
/// which is not on a non-root PATH.
const EXTRA_DIRS: [&str; 2] = ["/usr/sbin", "/usr/local/bin"];

/// A service binary could not be found.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "{program} not found: looked in {searched}. \
     Install it (`apt-get install etcd-server nats-server`), set {env_var} to the binary, \
     or point {endpoints_var} at a running instance"
)]
pub struct BinaryNotFound {
    /// The program's name.
    pub program: String,
    /// The env var naming the binary.
    pub env_var: String,
    /// Where it looked, e.g. `$ETCD_BIN (unset), PATH, /usr/sbin, /usr/local/bin`.
    pub searched: String,
    /// The env var that points at running instances instead.
    pub endpoints_var: String,
}

/// Finds `program`: the env var `env_var` first, then PATH, then /usr/sbin
/// and /usr/local/bin. A set `env_var` that names no executable, or is not
/// UTF-8, is an error: silently running another binary than the one asked
/// for is worse.
pub fn find(program: &str, env_var: &str, endpoints_var: &str) -> Result<PathBuf, BinaryNotFound> {
    find_with(&env::process_env, program, env_var, endpoints_var)
}

fn find_with(
    vars: env::Lookup,
    program: &str,
    env_var: &str,
    endpoints_var: &str,
) -> Result<PathBuf, BinaryNotFound> {
    let not_found = |searched: String| BinaryNotFound {
        program: program.to_string(),
        env_var: env_var.to_string(),
        searched,
        endpoints_var: endpoints_var.to_string(),
    };
    let named = env::var(vars, env_var).map_err(|e| {
        not_found(format!(
            "${env_var} ({:?} is not UTF-8 text; PATH not searched: fix or unset it)",
            e.value
        ))
    })?;
    if let Some(path) = named {
        return match is_executable(Path::new(&path)) {
            true => Ok(PathBuf::from(path)),
            false => Err(not_found(format!(
                "${env_var} ({path:?}, not an executable file; PATH not searched: fix or unset it)"
            ))),
        };
    }
    let path_var = vars("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path_var).chain(EXTRA_DIRS.iter().map(PathBuf::from));
    crate::process::first_executable(dirs, program).ok_or_else(|| {
        not_found(format!(
            "${env_var} (unset), PATH, {}",
            EXTRA_DIRS.join(", ")
        ))
    })
}

fn is_executable(path: &Path) -> bool {
    crate::process::check_executable(path).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sh_and_explains_a_missing_program() {
        assert!(find("sh", "DYNAMO_TEST_UNSET_BIN_VAR", "X_ENDPOINTS").is_ok());
        let err = find(
            "no-such-server-xyz",
            "DYNAMO_TEST_UNSET_BIN_VAR",
            "X_ENDPOINTS",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("no-such-server-xyz not found: looked in $DYNAMO_TEST_UNSET_BIN_VAR (unset), PATH, /usr/sbin, /usr/local/bin"), "{err}");
        assert!(
            err.contains("apt-get install etcd-server nats-server"),
            "{err}"
        );
        assert!(err.contains("X_ENDPOINTS"), "{err}");
    }

    #[test]
    fn a_bin_variable_naming_no_executable_is_an_error() {
        let vars = crate::env::tests::vars(&[("X_BIN", "/nonexistent/etcd"), ("PATH", "/bin")]);
        let err = find_with(&vars, "sh", "X_BIN", "X_ENDPOINTS")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "$X_BIN (\"/nonexistent/etcd\", not an executable file; PATH not searched"
            ),
            "{err}"
        );
        use std::os::unix::ffi::OsStringExt;
        let raw = std::ffi::OsString::from_vec(b"/opt/\xffetcd".to_vec());
        let vars = move |name: &str| match name {
            "X_BIN" => Some(raw.clone()),
            "PATH" => Some("/bin:/usr/bin".into()),
            _ => None,
        };
        let err = find_with(&vars, "sh", "X_BIN", "X_ENDPOINTS")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("$X_BIN (\"/opt/\u{fffd}etcd\" is not UTF-8 text; PATH not searched"),
            "{err}"
        );
        let vars = crate::env::tests::vars(&[("X_BIN", "/bin/sh")]);
        assert_eq!(
            find_with(&vars, "etcd", "X_BIN", "X_ENDPOINTS").unwrap(),
            PathBuf::from("/bin/sh")
        );
    }
}
