//! `ManagedProcess`: a running child, its log, its exit, its teardown.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use super::command::Spec;
use super::group::{self, Reaper};
use super::log_wait::{self, LogPattern, LogSource};
use super::logs;
use super::spawner::on_spawner_thread;
use super::sweep::owner_tag;
use super::watchdog::Watchdog;
use crate::health::{Probe, Wait, WaitError, Watch, WatchFuture};
use crate::sys::signal::Signal;
use crate::sys::sync::lock;

/// Lines of log shown in errors and failure reports.
pub(crate) const TAIL_LINES: usize = 20;

/// A child process could not be started or did not become ready.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program could not be started.
    #[error("cannot start process `{name}` ({program}): {reason}")]
    Spawn {
        /// Its name in the test.
        name: String,
        /// The program.
        program: String,
        /// Why (names the PATH searched when the program was not found).
        reason: String,
    },
    /// It started, but a readiness probe failed (or it exited first).
    #[error("process `{name}` (pid {pid}) did not become ready: {source}")]
    NotReady {
        /// Its name in the test.
        name: String,
        /// Its pid.
        pid: u32,
        /// The failed wait, with the process's state and log tail.
        source: Box<WaitError>,
    },
    /// Setting up around the process failed (its log, a helper thread).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

impl ProcessError {
    /// An I/O error while setting up a process, with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> ProcessError {
        ProcessError::Io {
            context: context.into(),
            source,
        }
    }
}

/// A child process owned by a test (a cheap handle; clones share it).
///
/// Stopped at the test's teardown, in reverse order of start, whatever the
/// outcome: SIGTERM to its process group, [`grace`](super::ProcessBuilder::grace),
/// SIGKILL to the group, reap.
#[derive(Clone)]
pub struct ManagedProcess {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) spec: Spec,
    pub(crate) probes: Vec<Arc<dyn Probe>>,
    /// Lines to wait for (after the probes), from each incarnation's start.
    pub(crate) ready_logs: Vec<LogPattern>,
    pub(crate) startup_timeout: Duration,
    pub(crate) grace: Duration,
    pub(crate) log_path: PathBuf,
    log: Arc<Mutex<std::fs::File>>,
    lines: watch::Sender<u64>,
    /// The current incarnation (a restart replaces it).
    running: Mutex<Running>,
}

/// One incarnation of the process.
struct Running {
    pid: u32,
    exit: watch::Receiver<Option<ExitStatus>>,
    /// Where its output begins in the log (a restart appends).
    log_start: u64,
    /// `None` once the group is taken care of: from then on the leader may
    /// be reaped and its pid reused, so the group is never signalled again.
    reaper: Option<Reaper>,
    /// A member of the group that kills it if this process dies first
    /// (best effort: `None` without /bin/sh); it dies with the group's
    /// SIGKILL and is reaped at the release.
    watchdog: Option<Watchdog>,
}

impl Running {
    /// Signals the group, unless it is already taken care of.
    fn signal(&self, signal: Signal) {
        if self.reaper.is_some() {
            group::signal(self.pid, signal);
        }
    }

    /// The group is gone (SIGKILLed, its watchdog with it): reap the
    /// watchdog, let the reaper reap.
    fn release(&mut self) {
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.dismiss();
        }
        if let Some(reaper) = self.reaper.take() {
            reaper.release();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Dropped without a stop (teardown skipped): the group goes now,
        // while its id is still ours.
        if self.reaper.is_some() {
            self.signal(Signal::KILL);
            self.release();
        }
    }
}

impl ManagedProcess {
    /// Spawns the process described by `shared` (without waiting for readiness).
    pub(crate) fn spawn(
        spec: Spec,
        probes: Vec<Arc<dyn Probe>>,
        ready_logs: Vec<LogPattern>,
        startup_timeout: Duration,
        grace: Duration,
        log_path: PathBuf,
    ) -> Result<ManagedProcess, ProcessError> {
        let log = logs::open(&log_path)
            .map_err(|e| ProcessError::io(format!("opening log {}", log_path.display()), e))?;
        let (lines, _) = watch::channel(0);
        let running = start(&spec, &log, &lines)?;
        Ok(ManagedProcess {
            shared: Arc::new(Shared {
                spec,
                probes,
                ready_logs,
                startup_timeout,
                grace,
                log_path,
                log,
                lines,
                running: Mutex::new(running),
            }),
        })
    }

    /// Its name in the test.
    pub fn name(&self) -> &str {
        &self.shared.spec.name
    }

    /// The pid of the current incarnation.
    pub fn pid(&self) -> u32 {
        self.running().pid
    }

    /// The log file holding its stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.shared.log_path
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        logs::tail(&self.shared.log_path, n)
    }

    /// Its exit status, if it has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.running().exit.borrow()
    }

    /// Waits until it exits, and returns the status.
    pub async fn wait(&self) -> ExitStatus {
        let mut exit = self.running().exit.clone();
        loop {
            if let Some(status) = *exit.borrow_and_update() {
                return status;
            }
            if exit.changed().await.is_err() {
                // The reaper thread is gone without a status: cannot happen
                // unless the thread could not start; report a kill.
                return std::os::unix::process::ExitStatusExt::from_raw(9);
            }
        }
    }

    /// Waits until every readiness probe passes and every awaited log
    /// line is written, within the startup timeout; fails at once if the
    /// process exits first.
    pub async fn wait_ready(&self) -> Result<(), ProcessError> {
        let watch = ProcessWatch {
            process: self.clone(),
        };
        let started = tokio::time::Instant::now();
        for probe in &self.shared.probes {
            let left = self
                .shared
                .startup_timeout
                .saturating_sub(started.elapsed());
            let waited = Wait::new(probe.as_ref(), left).watch(&watch).run().await;
            if let Err(source) = waited {
                return Err(ProcessError::NotReady {
                    name: self.name().to_string(),
                    pid: self.pid(),
                    source: Box::new(source),
                });
            }
        }
        for pattern in &self.shared.ready_logs {
            let left = self
                .shared
                .startup_timeout
                .saturating_sub(started.elapsed());
            if let Err(source) = self.wait_for_log(pattern.clone(), left).await {
                return Err(ProcessError::NotReady {
                    name: self.name().to_string(),
                    pid: self.pid(),
                    source: Box::new(source),
                });
            }
        }
        Ok(())
    }

    /// Stops it gracefully: SIGTERM to its group, up to the grace period
    /// for the whole group (grandchildren included) to exit, then SIGKILL
    /// to the group; reaps it. Returns its exit status.
    pub async fn stop(&self) -> ExitStatus {
        let (pgid, armed, watchdog) = {
            let running = self.running();
            running.signal(Signal::TERM);
            let watchdog = running.watchdog.as_ref().map(Watchdog::pid);
            (running.pid, running.reaper.is_some(), watchdog)
        };
        if armed {
            if !self
                .group_exits_within(pgid, watchdog, self.shared.grace)
                .await
            {
                logs::note(
                    &self.shared.log,
                    &format!(
                        "still running {:?} after SIGTERM: SIGKILL",
                        self.shared.grace
                    ),
                );
            }
            let mut running = self.running();
            running.signal(Signal::KILL);
            running.release();
        }
        self.wait().await
    }

    /// Kills it at once: SIGKILL to its group. It is reaped in the background.
    pub fn kill(&self) {
        let mut running = self.running();
        running.signal(Signal::KILL);
        running.release();
    }

    /// Whether the leader and then every other member of group `pgid` but
    /// its `watchdog` exit within `grace`.
    async fn group_exits_within(&self, pgid: u32, watchdog: Option<u32>, grace: Duration) -> bool {
        // `.grace(Duration::MAX)` means "wait as long as it takes".
        let deadline = tokio::time::Instant::from_std(crate::health::deadline_after(
            std::time::Instant::now(),
            grace,
        ));
        if tokio::time::timeout_at(deadline, self.wait())
            .await
            .is_err()
        {
            return false;
        }
        let mut pause = Duration::from_millis(1);
        while group::has_live_members(pgid, watchdog) {
            if tokio::time::Instant::now() + pause > deadline {
                return false;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
        true
    }

    /// Stops it and starts it again with the same program, arguments,
    /// environment and log, then waits for readiness: for fault tests.
    pub async fn restart(&self) -> Result<(), ProcessError> {
        self.stop().await;
        logs::note(&self.shared.log, "restart");
        let running = start(&self.shared.spec, &self.shared.log, &self.shared.lines)?;
        *self.running() = running;
        self.wait_ready().await
    }

    fn running(&self) -> MutexGuard<'_, Running> {
        lock(&self.shared.running)
    }

    /// State, log path and tail, for error reports.
    fn report(&self) -> String {
        let state = match self.exit_status() {
            Some(status) => format!("exited ({status})"),
            None => "running".to_string(),
        };
        format!(
            "process `{}` (pid {}) is {state}; log {}; last lines:\n{}",
            self.name(),
            self.pid(),
            self.shared.log_path.display(),
            indent(&self.log_tail(TAIL_LINES))
        )
    }

    /// Waits up to `timeout` for a line of its output (stdout or stderr)
    /// that matches `pattern`, a substring or a [`LogPattern::regex`], and
    /// returns that line.
    ///
    /// Like testcontainers' log waits, it matches from the start of the
    /// current incarnation's output (since the start or the last
    /// [`restart`](Self::restart)): a line written before the call counts,
    /// so an action's line cannot slip by between the action and the
    /// wait. Wait for a line only that action writes (a request id, a
    /// counter). Each new line is matched as it is written, at once.
    ///
    /// Fails at once if the process exits without writing it; the error
    /// names the awaited pattern and shows the log's tail.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use dynamo_test::process::LogPattern;
    ///
    /// # async fn doc(ctx: dynamo_test::TestContext) -> Result<(), Box<dyn std::error::Error>> {
    /// # fn submit_job(_id: u32) {}
    /// let worker = ctx
    ///     .process("worker", "./worker")
    ///     .ready_log("waiting for jobs")
    ///     .start()
    ///     .await?;
    /// submit_job(42);
    /// let done = LogPattern::regex(r"job 42 done in \d+ ms")?;
    /// let line = worker.wait_for_log(done, Duration::from_secs(10)).await?;
    /// println!("{line}");
    /// # Ok(()) }
    /// ```
    pub async fn wait_for_log(
        &self,
        pattern: impl Into<LogPattern>,
        timeout: Duration,
    ) -> Result<String, WaitError> {
        let pattern = pattern.into();
        let source = {
            let running = self.running();
            LogSource {
                path: &self.shared.log_path,
                offset: running.log_start,
                lines: self.shared.lines.subscribe(),
                exit: running.exit.clone(),
            }
        };
        log_wait::wait_for_line(&pattern, source, timeout)
            .await
            .map_err(|missed| {
                let what = format!("a log line {pattern} of process `{}`", self.name());
                missed.into_error(what, timeout, self.report())
            })
    }
}

impl std::fmt::Debug for ManagedProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedProcess")
            .field("name", &self.name())
            .field("pid", &self.pid())
            .field("log", &self.shared.log_path)
            .finish()
    }
}

/// Spawns one incarnation: on the spawner thread, with a watchdog, its
/// output forwarded to the log, and a reaper thread publishing its exit.
fn start(
    spec: &Spec,
    log: &Arc<Mutex<std::fs::File>>,
    lines: &watch::Sender<u64>,
) -> Result<Running, ProcessError> {
    let spawn_error = |reason: String| ProcessError::Spawn {
        name: spec.name.clone(),
        program: spec.program.to_string_lossy().into_owned(),
        reason,
    };
    let program = spec.resolve().map_err(spawn_error)?;
    let log_start = lock(log).metadata().map_or(0, |m| m.len());
    let mut command = spec.command(&program, &owner_tag());
    let spawned = on_spawner_thread(move || command.spawn()).and_then(|r| r);
    let mut child = spawned.map_err(|e| spawn_error(format!("{}: {e}", program.display())))?;
    let pid = child.id();
    // Best effort: without /bin/sh, PDEATHSIG still covers the direct child.
    // The child is not reaped yet, so its group exists for the watchdog to join.
    let watchdog = Watchdog::arm(pid).ok();
    let mut forwarders = Vec::new();
    if let Some(out) = child.stdout.take() {
        forwarders.push(logs::forward(out, log.clone(), lines.clone()));
    }
    if let Some(err) = child.stderr.take() {
        forwarders.push(logs::forward(err, log.clone(), lines.clone()));
    }
    let (exit_tx, exit) = watch::channel(None);
    let reaper = Reaper::watch(child, move |status| {
        // All it wrote is in the pipes now: into the log before the exit is
        // published, so an exit report shows its last lines. A drain never
        // waits for the pipes' end (a grandchild may hold them open).
        for forwarder in &forwarders {
            forwarder.drain();
        }
        let _ = exit_tx.send(Some(status));
    });
    let reaper = match reaper {
        Ok(reaper) => reaper,
        Err(e) => {
            group::signal(pid, Signal::KILL);
            return Err(ProcessError::io("starting a reaper thread", e));
        }
    };
    Ok(Running {
        pid,
        exit,
        log_start,
        reaper: Some(reaper),
        watchdog,
    })
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a readiness wait watches: the process's exit and its log lines.
struct ProcessWatch {
    process: ManagedProcess,
}

impl Watch for ProcessWatch {
    fn changed(&self) -> WatchFuture<'_, ()> {
        let mut lines = self.process.shared.lines.subscribe();
        Box::pin(async move {
            if lines.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }

    fn gone(&self) -> WatchFuture<'_, String> {
        Box::pin(async move {
            let status = self.process.wait().await;
            format!(
                "process `{}` exited ({status}) before it was ready",
                self.process.name()
            )
        })
    }

    fn report(&self) -> String {
        self.process.report()
    }
}
