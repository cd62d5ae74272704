//! Where the per-test output directories are, as seen from the command.
//!
//! The library looks first at the running binary's cargo target dir, which
//! is right for a test binary (`<target>/debug/deps/...`). The command looks
//! first where a developer runs it, the project, so that a `dynamo-test`
//! built elsewhere or installed in `~/.cargo/bin` still finds this
//! project's outputs; each answer says where it came from.

use std::path::{Path, PathBuf};

/// An output root and where it was found.
pub use dynamo_test::admin::OutputRoot;
use dynamo_test::admin::{self, project_output_root, ENV_OUTPUT_DIR};

/// `DYNAMO_TEST_OUTPUT_DIR` (absolute, as the library requires: a relative
/// one is an error), else `$CARGO_TARGET_DIR/dynamo-test`, else the first
/// directory above the current one holding `target/dynamo-test` or a
/// workspace `Cargo.toml` (then `<it>/target/dynamo-test`), else the
/// library's default.
pub fn output_root() -> Result<OutputRoot, String> {
    let cwd = std::env::current_dir().ok();
    if let Some(dir) = admin::output_dir_override().map_err(|e| e.to_string())? {
        return Ok(found(dir, ENV_OUTPUT_DIR));
    }
    if let Some(target) = env_path("CARGO_TARGET_DIR") {
        let path = absolute(target, cwd.as_deref()).join("dynamo-test");
        return Ok(found(path, "CARGO_TARGET_DIR/dynamo-test"));
    }
    if let Some(root) = cwd.as_deref().and_then(project_output_root) {
        return Ok(root);
    }
    let path = admin::output_root().map_err(|e| e.to_string())?;
    Ok(found(
        path,
        "the binary's location: no project above the current directory",
    ))
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Cargo resolves a relative `CARGO_TARGET_DIR` against the current directory.
fn absolute(path: PathBuf, cwd: Option<&Path>) -> PathBuf {
    match cwd {
        Some(cwd) if path.is_relative() => cwd.join(path),
        _ => path,
    }
}

fn found(path: PathBuf, source: &str) -> OutputRoot {
    OutputRoot {
        path,
        source: source.to_string(),
    }
}
