//! Finding the Python that runs Dynamo: `DYNAMO_PYTHON`, else `python3` on
//! `PATH`, and whether `dynamo` is importable there (with its version).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::env::{self, Lookup};

/// The env var naming the Python interpreter that has Dynamo installed.
pub const ENV_DYNAMO_PYTHON: &str = "DYNAMO_PYTHON";

/// Set (to anything but `0`) to make [`Dynamo::find_or_skip`] fail
/// instead of skipping: CI, where Dynamo must be there.
pub const ENV_REQUIRE_DYNAMO: &str = "DYNAMO_TEST_REQUIRE_DYNAMO";

/// The release, written once for the constants below.
macro_rules! tested_version {
    () => {
        "1.6.1"
    };
}

/// The Dynamo release the harness is tested against (`scripts/install-dynamo.sh`
/// installs it; a suite test checks the two agree).
pub const TESTED_DYNAMO_VERSION: &str = tested_version!();

/// How to install the tested release, for error messages.
pub const INSTALL_HINT: &str = concat!(
    "in a virtualenv, `pip install ai-dynamo-runtime==",
    tested_version!(),
    "`, `pip install --no-deps ai-dynamo==",
    tested_version!(),
    "` and its runtime dependencies (the README lists them; from a checkout of \
     dynamo-test, `bash scripts/install-dynamo.sh` does it all), then point \
     DYNAMO_PYTHON at the virtualenv's bin/python"
);

/// How long the interpreter may take to answer before it is killed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// Asks the interpreter for what the stack runs (`dynamo.frontend`,
/// `dynamo.mocker`) without importing them (that takes seconds), and the
/// version: the installed distribution's, else the source tree's (a
/// Dynamo developer's checkout on PYTHONPATH has no metadata), else
/// `unknown`.
const PROBE_SCRIPT: &str = "\
import importlib.util as u, importlib.metadata as m
def found(name):
    try:
        return u.find_spec(name) is not None
    except ImportError:
        return False
missing = [n for n in ('dynamo.frontend', 'dynamo.mocker') if not found(n)]
if missing:
    raise SystemExit('cannot import ' + ', '.join(missing))
try:
    print(m.version('ai-dynamo'))
except m.PackageNotFoundError:
    try:
        from dynamo.frontend._version import __version__
        print(__version__)
    except Exception:
        print('unknown')
";

/// A Python interpreter with Dynamo importable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dynamo {
    /// The interpreter, e.g. `/root/.cache/dynamo-test/dynamo-venv/bin/python`.
    pub python: PathBuf,
    /// The installed `ai-dynamo` version, e.g. `1.6.1`.
    pub version: String,
}

/// Why Dynamo could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Dynamo not found: {problem} ({how_found}). Install it: {INSTALL_HINT}")]
pub struct DynamoMissing {
    /// The interpreter that was asked, if one was found.
    pub python: Option<PathBuf>,
    /// How it was chosen, e.g. `$DYNAMO_PYTHON` or `python3 on PATH`.
    pub how_found: String,
    /// What went wrong, e.g. `/usr/bin/python3: cannot import dynamo.frontend`.
    pub problem: String,
}

impl Dynamo {
    /// Finds the interpreter (`DYNAMO_PYTHON`, else `python3` on `PATH`) and
    /// checks that Dynamo's frontend and mocker are importable there.
    /// Blocks for the interpreter's start (about 0.2 s; an interpreter that
    /// hangs is killed after 30 s): in async code, prefer
    /// [`find_or_skip`](Self::find_or_skip) or a stack's own check.
    pub fn find() -> Result<Dynamo, DynamoMissing> {
        find_with(&env::process_env)
    }

    /// For tests that need Dynamo on machines that may not have it:
    /// `Ok(Some(..))` when found; `Ok(None)` when missing, after a line
    /// on stderr saying that `test` is skipped and why; `Err` when missing
    /// and `DYNAMO_TEST_REQUIRE_DYNAMO` is set (CI must not skip).
    ///
    /// Runs off the async threads.
    ///
    /// ```no_run
    /// # use dynamo_test::{dynamo::Dynamo, Error};
    /// # async fn doc() -> Result<(), Error> {
    /// let Some(_dynamo) = Dynamo::find_or_skip("my_stack_test").await? else {
    ///     return Ok(());
    /// };
    /// # Ok(()) }
    /// ```
    pub async fn find_or_skip(test: &str) -> Result<Option<Dynamo>, DynamoMissing> {
        let test = test.to_string();
        tokio::task::spawn_blocking(move || find_or_skip_with(&env::process_env, &test))
            .await
            .unwrap_or_else(|e| {
                Err(DynamoMissing {
                    python: None,
                    how_found: "the check's thread".into(),
                    problem: format!("the check did not finish: {e}"),
                })
            })
    }

    /// Checks that Dynamo's frontend and mocker are importable by `python`.
    pub fn at(python: impl Into<PathBuf>) -> Result<Dynamo, DynamoMissing> {
        check(python.into(), "given to the stack".to_string())
    }
}

fn find_or_skip_with(vars: Lookup, test: &str) -> Result<Option<Dynamo>, DynamoMissing> {
    match find_with(vars) {
        Ok(found) => Ok(Some(found)),
        Err(missing) if required(vars) => Err(missing),
        Err(missing) => {
            eprintln!("skipped {test}: {missing} (set {ENV_REQUIRE_DYNAMO}=1 to fail instead)");
            Ok(None)
        }
    }
}

fn required(vars: Lookup) -> bool {
    vars(ENV_REQUIRE_DYNAMO).is_some_and(|v| !v.is_empty() && v != "0")
}

fn find_with(vars: Lookup) -> Result<Dynamo, DynamoMissing> {
    let (python, how_found) = interpreter(vars)?;
    check(python, how_found)
}

/// Interpreters already found to run Dynamo in this process: every stack
/// of every test asks, and the answer (a Python start) does not change.
/// Failures are not kept: an install made meanwhile is seen.
static FOUND: std::sync::Mutex<Vec<Dynamo>> = std::sync::Mutex::new(Vec::new());

fn check(python: PathBuf, how_found: String) -> Result<Dynamo, DynamoMissing> {
    if let Some(known) = crate::sys::sync::lock(&FOUND)
        .iter()
        .find(|d| d.python == python)
    {
        return Ok(known.clone());
    }
    let found = ask(python, how_found)?;
    crate::sys::sync::lock(&FOUND).push(found.clone());
    Ok(found)
}

/// Runs the interpreter on [`PROBE_SCRIPT`].
fn ask(python: PathBuf, how_found: String) -> Result<Dynamo, DynamoMissing> {
    let missing = |problem: String| DynamoMissing {
        python: Some(python.clone()),
        how_found: how_found.clone(),
        problem,
    };
    let output = run_bounded(
        Command::new(&python).args(["-c", PROBE_SCRIPT]),
        CHECK_TIMEOUT,
    )
    .map_err(|e| missing(format!("{} cannot be run: {e}", python.display())))?
    .ok_or_else(|| {
        missing(format!(
            "{} did not answer within {CHECK_TIMEOUT:?} (killed)",
            python.display()
        ))
    })?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr);
        let last = said.lines().last().unwrap_or("").trim().to_string();
        let last = if last.is_empty() {
            format!("exited with {}", output.status)
        } else {
            last
        };
        return Err(missing(format!("{}: {last}", python.display())));
    }
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    Ok(Dynamo { python, version })
}

/// Runs `command` to its end, at most `limit` (then kills it: `None`).
/// The check's output is a line or two, far below a pipe's buffer, so
/// reading it after the exit cannot block the child.
fn run_bounded(
    command: &mut Command,
    limit: Duration,
) -> std::io::Result<Option<std::process::Output>> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            // Ours, by its handle: never a process we did not start.
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    if let Some(mut out) = child.stdout.take() {
        out.read_to_end(&mut stdout)?;
    }
    if let Some(mut err) = child.stderr.take() {
        err.read_to_end(&mut stderr)?;
    }
    Ok(Some(std::process::Output {
        status,
        stdout,
        stderr,
    }))
}

/// The interpreter to ask, and how it was chosen.
fn interpreter(vars: Lookup) -> Result<(PathBuf, String), DynamoMissing> {
    let not_found = |how_found: &str, problem: String| DynamoMissing {
        python: None,
        how_found: how_found.to_string(),
        problem,
    };
    let named = env::var(vars, ENV_DYNAMO_PYTHON)
        .map_err(|e| not_found("$DYNAMO_PYTHON", e.to_string()))?;
    if let Some(path) = named {
        let how = format!("${ENV_DYNAMO_PYTHON}");
        return match crate::process::check_executable(Path::new(&path)) {
            Ok(()) => Ok((PathBuf::from(path), how)),
            Err(why) => Err(not_found(
                &how,
                format!("{ENV_DYNAMO_PYTHON}={path:?} is not an executable file ({why})"),
            )),
        };
    }
    let path_var = vars("PATH").unwrap_or_default();
    crate::process::first_executable(std::env::split_paths(&path_var), "python3")
        .map(|python| (python, "python3 on PATH".to_string()))
        .ok_or_else(|| {
            not_found(
                &format!("${ENV_DYNAMO_PYTHON} unset"),
                "no python3 on PATH".to_string(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::tests::vars;

    #[test]
    fn a_dynamo_python_that_is_not_executable_is_named_with_its_value() {
        let err = find_with(&vars(&[("DYNAMO_PYTHON", "/nonexistent/python")])).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("DYNAMO_PYTHON=\"/nonexistent/python\""),
            "{text}"
        );
        assert!(text.contains("scripts/install-dynamo.sh"), "{text}");
    }

    #[test]
    fn a_missing_dynamo_skips_unless_required() {
        let missing = [("DYNAMO_PYTHON", "/nonexistent/python")];
        assert_eq!(find_or_skip_with(&vars(&missing), "t"), Ok(None));
        for off in ["", "0"] {
            let env = [missing[0], (ENV_REQUIRE_DYNAMO, off)];
            assert_eq!(find_or_skip_with(&vars(&env), "t"), Ok(None), "{off:?}");
        }
        let env = [missing[0], (ENV_REQUIRE_DYNAMO, "1")];
        let err = find_or_skip_with(&vars(&env), "t").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/python"), "{err}");
    }

    #[test]
    fn an_interpreter_that_hangs_is_killed_at_the_limit() {
        let ran = run_bounded(Command::new("sleep").arg("30"), Duration::from_millis(100)).unwrap();
        assert!(ran.is_none());
        let ran = run_bounded(Command::new("echo").arg("hi"), CHECK_TIMEOUT)
            .unwrap()
            .unwrap();
        assert_eq!(ran.stdout, b"hi\n");
    }

    #[test]
    fn no_python_on_path_says_so() {
        let err = find_with(&vars(&[("PATH", "/nonexistent")])).unwrap_err();
        assert_eq!(err.problem, "no python3 on PATH");
        assert!(err.to_string().contains("$DYNAMO_PYTHON unset"), "{err}");
    }

    #[test]
    fn an_interpreter_without_dynamo_is_named_with_what_it_cannot_import() {
        // Any interpreter that cannot run the check is reported by path.
        let err = find_with(&vars(&[("DYNAMO_PYTHON", "/bin/false")])).unwrap_err();
        assert_eq!(err.python.as_deref(), Some(Path::new("/bin/false")));
        assert!(err.problem.starts_with("/bin/false: exited with"), "{err}");
    }

    #[test]
    fn a_python_without_dynamo_says_what_it_cannot_import() {
        let Ok((python, _)) = interpreter(&crate::env::process_env) else {
            eprintln!("skipped: no python3 on PATH here");
            return;
        };
        let python = python.to_str().unwrap();
        match find_with(&vars(&[("DYNAMO_PYTHON", python)])) {
            Ok(found) => eprintln!("skipped: {python} has Dynamo {}", found.version),
            Err(err) => assert!(
                err.problem
                    .contains("cannot import dynamo.frontend, dynamo.mocker"),
                "{err}"
            ),
        }
    }
}
