//! Finding the etcd and nats-server binaries.

use std::path::{Path, PathBuf};

use crate::env;

/// Places searched after `$PATH`: Debian puts nats-server in /usr/sbin,
/// which is not on a non-root PATH.
const EXTRA_DIRS: [&str; 2] = ["/usr/sbin", "/usr/local/bin"];

/// A service binary could not be found.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "{program} not found: looked in ${env_var} ({env_value}), PATH, {extra}. \
     Install it (`apt-get install etcd-server nats-server`), set {env_var} to the binary, \
     or point {endpoints_var} at a running instance"
)]
pub struct BinaryNotFound {
    /// The program's name.
    pub program: String,
    /// The env var naming the binary.
    pub env_var: String,
    /// Its value, or `unset`.
    pub env_value: String,
    /// Extra directories searched.
    pub extra: String,
    /// The env var that points at running instances instead.
    pub endpoints_var: String,
}

/// Finds `program`: the env var `env_var` first, then PATH, then /usr/sbin
/// and /usr/local/bin.
pub fn find(program: &str, env_var: &str, endpoints_var: &str) -> Result<PathBuf, BinaryNotFound> {
    let set = env::var(&env::process_env, env_var).ok().flatten();
    if let Some(path) = &set {
        if is_executable(Path::new(path)) {
            return Ok(PathBuf::from(path));
        }
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path_var).chain(EXTRA_DIRS.iter().map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(program);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(BinaryNotFound {
        program: program.to_string(),
        env_var: env_var.to_string(),
        env_value: set.map_or("unset".to_string(), |v| {
            format!("{v:?}, not an executable file")
        }),
        extra: EXTRA_DIRS.join(", "),
        endpoints_var: endpoints_var.to_string(),
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
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
}
