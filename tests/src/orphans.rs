//! Driving the `scenario` binary (a test process that starts a child and a
//! grandchild) and checking that none of them survives its end.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A running scenario: the test process and the pids of its family.
pub struct Scenario {
    /// The test process (in a process group of its own).
    pub process: Child,
    /// The child and grandchild it started.
    pub family: Vec<u32>,
    /// Everything it prints after the pids, read to the end by a thread
    /// (a closed pipe would make its own prints fail).
    rest: Option<std::thread::JoinHandle<String>>,
    /// Its own output directory: scenarios run at the same time, and in a
    /// shared one each would replace the others' `family.log`.
    output_dir: PathBuf,
}

impl Drop for Scenario {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.output_dir);
    }
}

impl Scenario {
    /// Waits for the scenario to end; returns its exit code and the output
    /// it printed after the pids (the harness's teardown and failure lines).
    pub fn finish(&mut self) -> (Option<i32>, String) {
        let status = self.process.wait().ok().and_then(|s| s.code());
        let output = self
            .rest
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        (status, output)
    }
}

/// Starts `scenario MODE` (see its docs) and waits until it prints its
/// family's pids.
pub fn start(binary: &Path, mode: &str) -> std::io::Result<Scenario> {
    start_with_args(binary, &[mode])
}

/// Starts `binary ARGS...`, a test process that prints `pids <child>
/// <descendant>` like `scenario`, and waits for the pids.
pub fn start_with_args(binary: &Path, args: &[&str]) -> std::io::Result<Scenario> {
    let mut command = Command::new(binary);
    command.args(args);
    start_command(command)
}

/// Starts `scenario MODE` as the first process of a new PID namespace
/// (`unshare --pid --fork --mount-proc`, root only), as a test in a
/// container runs; [`Scenario::family`] then holds the pids *of that
/// namespace*: see [`host_pids`]. [`Scenario::process`] is `unshare`; a
/// SIGKILL to its group ends the namespace, and with it the family.
pub fn start_in_pid_namespace(binary: &Path, mode: &str) -> std::io::Result<Scenario> {
    let mut command = Command::new("unshare");
    command
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(binary)
        .arg(mode);
    start_command(command)
}

/// The pids in our namespace of the processes `ns_pids` of the PID
/// namespace whose first process is the child of `unshare_pid`.
pub fn host_pids(unshare_pid: u32, ns_pids: &[u32]) -> Option<Vec<u32>> {
    use dynamo_test::admin::{procfs, ProcStat, ProcStatus};
    let init = procfs::pids()
        .into_iter()
        .find(|&p| ProcStat::read(p).is_some_and(|s| s.ppid == unshare_pid))?;
    let namespace = procfs::pid_namespace(init)?;
    ns_pids
        .iter()
        .map(|&wanted| {
            procfs::pids().into_iter().find(|&p| {
                procfs::pid_namespace(p) == Some(namespace)
                    && ProcStatus::read(p).is_some_and(|s| s.ns_pids.last() == Some(&wanted))
            })
        })
        .collect()
}

/// Whether this process runs as root (what the tests that change uid or
/// PID namespace need; CI runs as root).
pub fn is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

fn start_command(mut command: Command) -> std::io::Result<Scenario> {
    static STARTED: AtomicUsize = AtomicUsize::new(0);
    let output_dir = std::env::temp_dir().join(format!(
        "dynamo-test-scenario-{}-{}",
        std::process::id(),
        STARTED.fetch_add(1, Ordering::Relaxed)
    ));
    let mut process = command
        .env(dynamo_test::admin::ENV_OUTPUT_DIR, &output_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    let stdout = process
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no stdout"))?;
    let mut family = Vec::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line?;
        if let Some(pids) = line.strip_prefix("pids ") {
            family = pids
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            break;
        }
    }
    if family.len() != 2 {
        let _ = process.kill();
        return Err(std::io::Error::other("scenario printed no family pids"));
    }
    let rest = std::thread::spawn(move || {
        lines
            .map_while(Result::ok)
            .fold(String::new(), |all, line| all + &line + "\n")
    });
    Ok(Scenario {
        process,
        family,
        rest: Some(rest),
        output_dir,
    })
}

/// Whether `pid` is a live process (a zombie counts as dead: it runs nothing).
pub fn alive(pid: u32) -> bool {
    dynamo_test::admin::ProcStat::read(pid).is_some_and(|s| s.is_live())
}

/// Waits up to `limit` for every pid to be gone; returns the survivors.
pub fn survivors_after(pids: &[u32], limit: Duration) -> Vec<u32> {
    let left = || -> Vec<u32> { pids.iter().copied().filter(|&p| alive(p)).collect() };
    crate::eventually(limit, || left().is_empty());
    left()
}

/// Sends `signal` to the scenario's process group (what nextest does on a timeout).
pub fn signal_group(scenario: &Scenario, signal: i32) {
    // SAFETY: kill has no memory-safety preconditions; the group is the one we created.
    unsafe {
        libc::kill(-(scenario.process.id() as libc::pid_t), signal);
    }
}
