//! The keeper: runs one shared service instance and stops it a grace
//! after its last user is gone, wherever the users are.
//!
//! **Who is a user.** A keeper listens on the abstract Unix socket
//! `dynamo-test/keeper/<service>/<port>` (see [`protocol`]). Abstract
//! names belong to the network namespace, as the service's TCP port
//! does: every uid, every container sharing the network (each with its
//! own `/tmp`) and every state directory reaches the same keeper. Each
//! process using the instance connects once and keeps the connection
//! open while it lives; the keeper sees EOF the moment a user dies
//! (SIGKILL included), so nothing is polled and nothing expires. "Does
//! the harness run this instance?" is answered by connecting: an
//! instance on the fixed port with no keeper answering is external.
//!
//! **Starting and stopping.** A second name, `dynamo-test/start/...`,
//! bound as a lock, serialises the decision "no keeper answers: is the
//! instance external, or do I start one?". A starter holds it until its
//! keeper listens; a keeper takes it before it stops an idle instance and
//! holds it until the service is down, so a newcomer waits instead of
//! taking a stopping instance for an external one. A third name,
//! `dynamo-test/service/...`, is bound by the keeper and inherited by the
//! service process: should the keeper die and the service live on (a
//! wrapper's child escaping the parent-death signal), newcomers see a
//! harness-started instance without keeper and fail with what to do,
//! instead of calling it external.
//!
//! **The process.** The keeper is the starting process's own executable
//! re-run (`/proc/self/exe`) with `DYNAMO_TEST_KEEPER` set: a pre-main
//! hook of this crate ([`ctor`]) turns that process into the keeper
//! before the program's `main` (libtest's, say) runs. The arguments make
//! libtest run nothing should the hook be missing, and the starter then
//! fails saying so. The keeper runs in a session of its own (no group or
//! terminal signal of a test reaches it), holds the service as its
//! unreaped child (so every signal it sends reaches that process and its
//! group, never a reused pid: see `run.rs`), gives it a parent-death
//! signal (a killed keeper takes its service along), logs to
//! `<output root>/services/<service>-<port>.log`, removes the data
//! directory when the service stops, and exits.

pub(crate) mod protocol;
mod run;
pub use run::data_lock_path;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// Env var naming the service a keeper runs (`etcd` / `nats`): it tags
/// keepers and their services, for listings and leftover checks (and
/// keeps the orphan sweep off them).
pub use crate::process::sweep::ENV_SERVICE;

/// Env var that turns a process into a keeper before `main`: the
/// keeper's settings as JSON. Set only by the harness on the keeper it
/// starts.
pub const ENV_KEEPER: &str = "DYNAMO_TEST_KEEPER";

/// A keeper's `argv[0]`: how it is recognised in /proc.
const KEEPER_NAME: &str = "dynamo-test-keeper";

/// Arguments after `argv[0]`: should the pre-main hook be missing from
/// the executable, libtest runs no test with them (and most other
/// programs stop at an unknown option).
const INERT_ARGS: [&str; 2] = ["--exact", "dynamo-test-keeper-hook-missing"];

/// Whether `pid` is a keeper (its arguments hold the keeper's name; the
/// shell keepers of earlier versions had it too).
pub fn is_keeper(pid: u32) -> bool {
    crate::sys::procfs::arguments(pid).is_some_and(|args| args.iter().any(|a| a == KEEPER_NAME))
}

/// What a keeper runs, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spec {
    pub service: String,
    pub port: u16,
    pub second_port: u16,
    pub program: String,
    pub args: Vec<String>,
    pub log: String,
    pub data_dir: String,
    pub grace: Duration,
}

impl Spec {
    fn to_json(&self) -> String {
        json!({
            "service": self.service,
            "port": self.port,
            "second_port": self.second_port,
            "program": self.program,
            "args": self.args,
            "log": self.log,
            "data_dir": self.data_dir,
            "grace_ms": u64::try_from(self.grace.as_millis()).unwrap_or(u64::MAX),
        })
        .to_string()
    }

    fn from_json(text: &str) -> Result<Spec, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let text = |k: &str| {
            v[k].as_str()
                .map(str::to_string)
                .ok_or(format!("no string `{k}`"))
        };
        let port = |k: &str| {
            v[k].as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .ok_or(format!("no port `{k}`"))
        };
        let args = v["args"]
            .as_array()
            .ok_or("no `args`")?
            .iter()
            .map(|a| {
                a.as_str()
                    .map(str::to_string)
                    .ok_or("a non-string argument")
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Spec {
            service: text("service")?,
            port: port("port")?,
            second_port: port("second_port")?,
            program: text("program")?,
            args,
            log: text("log")?,
            data_dir: text("data_dir")?,
            grace: Duration::from_millis(v["grace_ms"].as_u64().ok_or("no `grace_ms`")?),
        })
    }
}

/// How a program that is not a plain executable linking this crate (a
/// Python interpreter that loaded it as an extension module) runs a
/// keeper: a command that ends by calling [`run_from_env`]. Its arguments
/// get the keeper's name appended, which is how a keeper is recognised.
#[derive(Debug, Clone)]
pub struct KeeperLauncher {
    /// The program, e.g. the Python interpreter.
    pub program: PathBuf,
    /// Its arguments, e.g. `-c "<load the module, call run_from_env>"`.
    pub args: Vec<std::ffi::OsString>,
}

/// The launcher set by the embedding program, if any.
static LAUNCHER: std::sync::OnceLock<KeeperLauncher> = std::sync::OnceLock::new();

/// Sets how this process starts keepers (once: a second call changes
/// nothing and returns `false`). Without it a keeper is this executable
/// re-run, turned into the keeper by a pre-main hook. The launcher's
/// stderr goes to the keeper's log.
pub fn set_launcher(launcher: KeeperLauncher) -> bool {
    LAUNCHER.set(launcher).is_ok()
}

/// Runs the keeper described by `DYNAMO_TEST_KEEPER` in this process and
/// returns its exit code (the launcher's program exits with it). Without
/// the variable, returns 2 at once.
pub fn run_from_env() -> i32 {
    match std::env::var_os(ENV_KEEPER) {
        Some(spec) => run_spec(&spec),
        None => 2,
    }
}

fn run_spec(spec: &std::ffi::OsStr) -> i32 {
    std::panic::catch_unwind(|| run::main(spec)).unwrap_or(run::EXIT_PANIC)
}

/// Starts a keeper for `spec`: this executable re-run, or the embedder's
/// launcher. It is not tied to this process (own session, no parent-death
/// signal, no owner tag): it outlives it while other users remain.
pub(crate) fn spawn(spec: &Spec) -> std::io::Result<Child> {
    let launcher = LAUNCHER.get();
    let mut cmd = match launcher {
        Some(launcher) => {
            let mut cmd = Command::new(&launcher.program);
            cmd.args(&launcher.args).arg(KEEPER_NAME);
            cmd
        }
        None => {
            let mut cmd = Command::new("/proc/self/exe");
            cmd.arg0(KEEPER_NAME).args(INERT_ARGS);
            cmd
        }
    };
    // A launcher (an interpreter) may fail before the keeper runs: its
    // words go to the keeper's log, which the starter's error shows.
    let stderr = match launcher {
        Some(_) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log)
            .map_or_else(|_| Stdio::null(), Stdio::from),
        None => Stdio::null(),
    };
    cmd.env(ENV_KEEPER, spec.to_json())
        .env(ENV_SERVICE, &spec.service)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    crate::process::sweep::strip_owner_tag(&mut cmd);
    crate::sys::spawn::in_new_session(&mut cmd);
    cmd.spawn()
}

/// What a keeper's early exit means (its code), for the starter's error.
pub(crate) fn early_exit_meaning(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    let meaning = match status.code() {
        Some(run::EXIT_BAD_SPEC) => "it did not understand its settings (a harness bug)",
        Some(run::EXIT_NO_LOG) => "it could not open its log file",
        Some(run::EXIT_NOT_STARTED) => "it could not start (its log says why)",
        Some(run::EXIT_PANIC) => "it panicked (a harness bug)",
        Some(run::EXIT_SERVICE_EXITED) => {
            "its service exited by itself before it was healthy (the log below says how)"
        }
        Some(run::EXIT_SIGNALLED) => {
            "a signal stopped it (someone ran kill or `dynamo-test down`?)"
        }
        Some(code) if LAUNCHER.get().is_some() => {
            return format!(
                "its launcher exited with code {code} before it ran the keeper (its error \
                 output is in the log below)"
            );
        }
        Some(_) => {
            "the executable ran as itself, not as a keeper: it lacks the pre-main hook that \
             the dynamo-test crate links into every program using it (a test binary has it; a \
             program that loads the crate in a way that drops its constructors does not)"
        }
        None => {
            let signal = status.signal().map_or("?".to_string(), |s| s.to_string());
            return format!("it was killed by signal {signal}");
        }
    };
    meaning.to_string()
}

/// How a keeper is run, for messages.
pub(crate) fn how_run() -> String {
    match LAUNCHER.get() {
        Some(launcher) => format!(
            "it is run by {} with {ENV_KEEPER} set, the launcher of the program that \
             embeds the harness",
            launcher.program.display()
        ),
        None => format!(
            "it is this executable, {}, re-run with {ENV_KEEPER} set",
            executable().display()
        ),
    }
}

/// The executable a keeper is run from, for messages.
pub(crate) fn executable() -> PathBuf {
    if let Some(launcher) = LAUNCHER.get() {
        return launcher.program.clone();
    }
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"))
}

// The pre-main hook. `#[ctor(unsafe)]` is ctor's required marker: code
// before `main` runs without Rust's runtime setup.
// SAFETY: it runs before `main` in every process that links this crate
// and does nothing unless `DYNAMO_TEST_KEEPER` is set, which only the
// harness does, on the keeper it spawns. Then it becomes the keeper and
// exits without returning to `main`. The keeper uses the parts of std
// that work without the runtime's setup, as in a library loaded by a C
// program (env, files, sockets, spawning); it writes to sockets with
// MSG_NOSIGNAL, as SIGPIPE is not ignored there, and catches panics.
#[ctor::ctor(unsafe)]
fn keeper_hook() {
    // Both marks the harness sets: the env var alone (copied into a shell,
    // say) must not turn every program of the user into a keeper.
    // From /proc: `args_os` is empty in a constructor on some libcs (musl).
    let args = crate::sys::procfs::arguments(std::process::id()).unwrap_or_default();
    let named = args.first().is_some_and(|a| a == KEEPER_NAME);
    if let (true, Some(spec)) = (named, std::env::var_os(ENV_KEEPER)) {
        std::process::exit(run_spec(&spec));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_round_trips_through_its_env_form() {
        let spec = Spec {
            service: "etcd".into(),
            port: 2379,
            second_port: 2380,
            program: "/usr/bin/etcd".into(),
            args: vec!["--name".into(), "a b".into()],
            log: "/o/services/etcd-2379.log".into(),
            data_dir: "/s/services/etcd-2379-data-1".into(),
            grace: Duration::from_millis(300),
        };
        assert_eq!(Spec::from_json(&spec.to_json()), Ok(spec));
        assert!(Spec::from_json("{}").unwrap_err().starts_with("no "));
        assert!(Spec::from_json("x").unwrap_err().starts_with("not JSON"));
    }
}
