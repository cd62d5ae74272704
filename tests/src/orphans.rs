//! Driving the `scenario` binary (a test process that starts a child and a
//! grandchild) and checking that none of them survives its end.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
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
    let mut process = Command::new(binary)
        .arg(mode)
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
