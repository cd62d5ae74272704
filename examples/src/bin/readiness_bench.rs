//! Readiness-detection benchmark: how late does a waiter notice that a
//! server has started listening, and how much CPU does waiting burn?
//!
//! ```text
//! readiness_bench [--runs N] [--slow-runs N] [--cpu-reps N]
//! ```
//!
//! **Latency.** Each run reserves a port with `dynamo_test::find_free_port`,
//! starts the waiter on `http://127.0.0.1:{port}/health`, and, on a thread of
//! its own, binds the port after a random 50-300 ms and serves HTTP 200 on
//! `/health`. The instant right after bind/listen returns is the start; the
//! instant the waiter returns is the end. Arms, interleaved run by run:
//!
//! 1. the harness's wait loop, `health::http(url).wait(timeout)`;
//! 2. fixed 100 ms polling (testcontainers' cadence);
//! 3. fixed 1 s polling (Dynamo's Python harness), with fewer runs.
//!
//! Arms 2 and 3 loop over the same probe's single attempt
//! (`probe.check(budget)`) with a fixed `tokio::time::sleep`, so only the
//! cadence differs. Every waiter runs on a current-thread tokio runtime.
//!
//! **CPU.** Each arm waits 2 s against a port where nothing listens
//! (connection refused throughout) and, separately, against a server that
//! answers 503 throughout. The wait runs on a current-thread runtime in a
//! dedicated thread, whose user+sys time is read with
//! `getrusage(RUSAGE_THREAD)` before and after.
//!
//! Targets for the harness arm: p50 <= 10 ms, p95 <= 60 ms, CPU <= 20 ms per
//! 2 s wait (median of the repetitions). Exit code 1 if one is missed (or a
//! run failed), 2 on a usage error, so the command doubles as a check.

use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use dynamo_test::health::{self, HttpProbe, Probe, DEFAULT_ATTEMPT_TIMEOUT};
use dynamo_test::{find_free_port, Port};
use dynamo_test_examples::bench::{self, fmt_ms, or_dash, percentile, Cli, Rng};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

const CLI: Cli = Cli {
    name: "readiness_bench",
    usage: "usage: readiness_bench [--runs N] [--slow-runs N] [--cpu-reps N]
  --runs N       latency runs of the harness and 100 ms arms (default 100)
  --slow-runs N  latency runs of the 1 s polling arm (default 20; 0 skips it)
  --cpu-reps N   repetitions of each 2 s CPU measurement (default 3)",
};

/// Earliest and latest moment the server starts listening.
const MIN_DELAY_MS: u64 = 50;
const MAX_DELAY_MS: u64 = 300;
/// Limit of a latency run's wait (a run that hits it counts as failed).
const WAIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Length of the wait whose CPU time is measured.
const CPU_WAIT: Duration = Duration::from_secs(2);

/// Targets for the harness arm.
const TARGET_P50: Duration = Duration::from_millis(10);
const TARGET_P95: Duration = Duration::from_millis(60);
const TARGET_CPU: Duration = Duration::from_millis(20);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    CLI.main(&args, Config::parse, run)
}

/// Runs both benchmarks, prints the tables and checks the targets.
fn run(config: &Config) -> ExitCode {
    let latencies = measure_latencies(config);
    print_latency_table(config, &latencies);
    let cpu = measure_cpu(config);
    print_cpu_table(config, &cpu);
    if check_targets(&latencies, &cpu) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

// ---------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------

/// Command-line settings.
struct Config {
    runs: usize,
    slow_runs: usize,
    cpu_reps: usize,
}

impl Config {
    fn parse(args: &[String]) -> Result<Config, String> {
        let mut c = Config {
            runs: 100,
            slow_runs: 20,
            cpu_reps: 3,
        };
        bench::number_flags(args, 0, "", |flag, n| {
            match flag {
                "--runs" if n > 0 => c.runs = n,
                "--slow-runs" => c.slow_runs = n,
                "--cpu-reps" if n > 0 => c.cpu_reps = n,
                "--runs" | "--cpu-reps" => return Err(format!("{flag} must be at least 1")),
                _ => return Err(format!("unknown flag {flag}")),
            }
            Ok(())
        })?;
        Ok(c)
    }

    /// Latency runs of `arm`.
    fn runs_of(&self, arm: Arm) -> usize {
        match arm {
            Arm::Poll1s => self.slow_runs,
            _ => self.runs,
        }
    }
}

// ---------------------------------------------------------------------------
// Arms: how the waiter waits
// ---------------------------------------------------------------------------

/// One way of waiting for readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arm {
    /// The harness's wait loop (`Probe::wait`).
    Harness,
    /// `probe.check` every 100 ms.
    Poll100ms,
    /// `probe.check` every 1 s.
    Poll1s,
}

impl Arm {
    const ALL: [Arm; 3] = [Arm::Harness, Arm::Poll100ms, Arm::Poll1s];

    fn name(self) -> &'static str {
        match self {
            Arm::Harness => "harness wait (backoff)",
            Arm::Poll100ms => "fixed 100 ms polling",
            Arm::Poll1s => "fixed 1 s polling",
        }
    }

    /// Waits at most `timeout` for `probe`.
    async fn wait(self, probe: &HttpProbe, timeout: Duration) -> Outcome {
        match self {
            Arm::Harness => match probe.wait(timeout).await {
                Ok(ready) => Outcome::ready(ready.attempts),
                Err(e) => Outcome::failed(e.attempts, e.to_string()),
            },
            Arm::Poll100ms => poll_fixed(probe, Duration::from_millis(100), timeout).await,
            Arm::Poll1s => poll_fixed(probe, Duration::from_secs(1), timeout).await,
        }
    }
}

/// How a wait ended.
struct Outcome {
    /// `Err` with the reason if the target never became ready.
    result: Result<(), String>,
    attempts: u32,
}

impl Outcome {
    fn ready(attempts: u32) -> Outcome {
        Outcome {
            result: Ok(()),
            attempts,
        }
    }

    fn failed(attempts: u32, reason: String) -> Outcome {
        Outcome {
            result: Err(reason),
            attempts,
        }
    }
}

/// The naive loop: one attempt, a fixed sleep, again, until `timeout`.
/// Each attempt gets the harness's default budget, clamped to the time left.
async fn poll_fixed(probe: &dyn Probe, every: Duration, timeout: Duration) -> Outcome {
    let deadline = Instant::now() + timeout;
    let mut attempts = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Outcome::failed(attempts, format!("not ready after {timeout:?}"));
        }
        attempts += 1;
        if probe
            .check(DEFAULT_ATTEMPT_TIMEOUT.min(left))
            .await
            .is_ready()
        {
            return Outcome::ready(attempts);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(every.min(left)).await;
    }
}

// ---------------------------------------------------------------------------
// The server under observation
// ---------------------------------------------------------------------------

/// A minimal HTTP server on its own thread and current-thread runtime that
/// binds its port after a delay and answers `status` on `/health`.
struct Server {
    listening: mpsc::Receiver<Result<Instant, String>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    fn start(port: Port, delay: Duration, status: StatusCode) -> Server {
        let (listening_tx, listening) = mpsc::channel();
        let (stop, stop_rx) = oneshot::channel();
        let thread = thread::spawn(move || serve(port, delay, status, listening_tx, stop_rx));
        Server {
            listening,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The instant right after bind/listen returned.
    fn listened_at(&self) -> Result<Instant, String> {
        self.listening
            .recv_timeout(WAIT_TIMEOUT)
            .map_err(|_| "the server never reported listening".to_string())?
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The server thread: sleep, bind (recording the instant), serve until stopped.
fn serve(
    port: Port,
    delay: Duration,
    status: StatusCode,
    listening: mpsc::Sender<Result<Instant, String>>,
    stop: oneshot::Receiver<()>,
) {
    let rt = current_thread_runtime();
    rt.block_on(async move {
        tokio::time::sleep(delay).await;
        // bind/listen, then registration with the runtime (microseconds).
        let bound = port.into_tokio_listener();
        let at = Instant::now();
        let listener = match bound {
            Ok(l) => l,
            Err(e) => {
                let _ = listening.send(Err(format!("server bind: {e}")));
                return;
            }
        };
        let _ = listening.send(Ok(at));
        let body = if status.is_success() {
            r#"{"health":"true"}"#
        } else {
            r#"{"health":"false"}"#
        };
        let app = Router::new().route("/health", get(move || async move { (status, body) }));
        tokio::select! {
            _ = axum::serve(listener, app) => {}
            _ = stop => {}
        }
    });
}

fn current_thread_runtime() -> Runtime {
    bench::current_thread_runtime().expect("cannot build a tokio runtime")
}

// ---------------------------------------------------------------------------
// Latency: listen() -> waiter returns
// ---------------------------------------------------------------------------

/// Latency samples of one arm, and the runs that failed.
#[derive(Default)]
struct Latencies {
    /// Sorted, once every run is done.
    samples: Vec<Duration>,
    errors: Vec<String>,
}

/// Runs the latency benchmark, interleaving the arms run by run.
fn measure_latencies(config: &Config) -> Vec<(Arm, Latencies)> {
    let rt = current_thread_runtime();
    let mut rng = Rng::seeded(0);
    let mut results: Vec<(Arm, Latencies)> = Arm::ALL
        .iter()
        .map(|&a| (a, Latencies::default()))
        .collect();
    let most = config.runs.max(config.slow_runs);
    for i in 0..most {
        for (arm, lat) in results.iter_mut() {
            if i < config.runs_of(*arm) {
                match detect_once(&rt, *arm, &mut rng) {
                    Ok(d) => lat.samples.push(d),
                    Err(e) => lat.errors.push(e),
                }
            }
        }
    }
    for (_, lat) in &mut results {
        lat.samples.sort();
    }
    results
}

/// One run: the server listens after a random delay, the waiter starts at
/// once; returns the time from listen to the waiter's return.
fn detect_once(rt: &Runtime, arm: Arm, rng: &mut Rng) -> Result<Duration, String> {
    let port = find_free_port().map_err(|e| format!("find_free_port: {e}"))?;
    let probe = health::http(port.url("/health"));
    let delay = Duration::from_millis(rng.between(MIN_DELAY_MS, MAX_DELAY_MS));
    let server = Server::start(port, delay, StatusCode::OK);
    let (outcome, returned) = rt.block_on(async {
        let outcome = arm.wait(&probe, WAIT_TIMEOUT).await;
        (outcome, Instant::now())
    });
    outcome.result?;
    let listened = server.listened_at()?;
    returned
        .checked_duration_since(listened)
        .ok_or_else(|| "the waiter returned before the server listened".to_string())
}

fn print_latency_table(config: &Config, results: &[(Arm, Latencies)]) {
    println!(
        "Readiness detection: time from the server's listen() to the waiter's return\n\
         (server listens {MIN_DELAY_MS}-{MAX_DELAY_MS} ms after the waiter starts; \
         GET /health -> 200 on 127.0.0.1)\n"
    );
    println!(
        "{:<24} {:>5} {:>10} {:>10} {:>10} {:>7}",
        "arm", "runs", "p50", "p95", "max", "failed"
    );
    for (arm, lat) in results {
        if config.runs_of(*arm) == 0 {
            println!("{:<24} skipped (--slow-runs 0)", arm.name());
            continue;
        }
        let sorted = &lat.samples;
        println!(
            "{:<24} {:>5} {:>10} {:>10} {:>10} {:>7}",
            arm.name(),
            sorted.len(),
            fmt_ms(percentile(sorted, 0.50)),
            fmt_ms(percentile(sorted, 0.95)),
            fmt_ms(sorted.last().copied()),
            lat.errors.len()
        );
        if let Some(e) = lat.errors.first() {
            println!("  first failure: {e}");
        }
    }
    if config.slow_runs < config.runs {
        println!(
            "\nThe 1 s polling arm is slow (about 1 s per run): it ran {} times \
             (--slow-runs), the others {} (--runs).",
            config.slow_runs, config.runs
        );
    }
}

// ---------------------------------------------------------------------------
// CPU: a 2 s wait that never succeeds
// ---------------------------------------------------------------------------

/// What the waiter faces during the CPU measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Nothing listens: every connect is refused.
    Refused,
    /// A server answers 503 to every request.
    Unavailable,
}

impl Target {
    const ALL: [Target; 2] = [Target::Refused, Target::Unavailable];

    fn name(self) -> &'static str {
        match self {
            Target::Refused => "connection refused",
            Target::Unavailable => "HTTP 503",
        }
    }
}

/// One 2 s wait, measured.
#[derive(Debug, Clone, Copy)]
struct CpuSample {
    cpu: Duration,
    wall: Duration,
    attempts: u32,
}

/// The repetitions of one arm against one target.
struct CpuResult {
    arm: Arm,
    target: Target,
    /// Sorted by CPU time, once every repetition is done.
    samples: Vec<CpuSample>,
    errors: Vec<String>,
}

impl CpuResult {
    /// The median CPU time (the figure checked against the target).
    fn median_cpu(&self) -> Option<Duration> {
        percentile(&self.samples, 0.50).map(|s| s.cpu)
    }
}

/// Measures every arm against every target, `cpu_reps` times each.
fn measure_cpu(config: &Config) -> Vec<CpuResult> {
    let mut results = Vec::new();
    for target in Target::ALL {
        for arm in Arm::ALL {
            let mut r = CpuResult {
                arm,
                target,
                samples: Vec::new(),
                errors: Vec::new(),
            };
            for _ in 0..config.cpu_reps {
                match cpu_once(arm, target) {
                    Ok(s) => r.samples.push(s),
                    Err(e) => r.errors.push(e),
                }
            }
            r.samples.sort_by_key(|s| s.cpu);
            results.push(r);
        }
    }
    results
}

/// Sets up `target` and measures one 2 s wait of `arm` against it.
fn cpu_once(arm: Arm, target: Target) -> Result<CpuSample, String> {
    let port = find_free_port().map_err(|e| format!("find_free_port: {e}"))?;
    let url = port.url("/health");
    match target {
        Target::Refused => {
            let sample = measure_wait_cpu(arm, url);
            // Reserved, with nothing listening, for the whole wait.
            drop(port);
            sample
        }
        Target::Unavailable => {
            let server = Server::start(port, Duration::ZERO, StatusCode::SERVICE_UNAVAILABLE);
            server.listened_at()?;
            measure_wait_cpu(arm, url)
        }
    }
}

/// Runs `arm`'s 2 s wait on a current-thread runtime in a dedicated thread
/// and returns that thread's CPU time (user+sys) during the wait.
fn measure_wait_cpu(arm: Arm, url: String) -> Result<CpuSample, String> {
    let waiter = thread::spawn(move || {
        let rt = current_thread_runtime();
        let probe = health::http(url);
        let cpu_before = thread_cpu();
        let started = Instant::now();
        let outcome = rt.block_on(arm.wait(&probe, CPU_WAIT));
        let wall = started.elapsed();
        let cpu = thread_cpu().saturating_sub(cpu_before);
        match outcome.result {
            Ok(()) => Err("the target unexpectedly became ready".to_string()),
            Err(_) => Ok(CpuSample {
                cpu,
                wall,
                attempts: outcome.attempts,
            }),
        }
    });
    waiter
        .join()
        .map_err(|_| "the waiter thread panicked".to_string())?
}

/// User+sys CPU time of the calling thread.
fn thread_cpu() -> Duration {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    assert_eq!(rc, 0, "getrusage(RUSAGE_THREAD) failed");
    timeval(usage.ru_utime) + timeval(usage.ru_stime)
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
}

fn print_cpu_table(config: &Config, results: &[CpuResult]) {
    println!(
        "\nWaiter CPU during a {} s wait that never succeeds (user+sys of the \
         waiting thread, getrusage(RUSAGE_THREAD); {} repetitions each)\n",
        CPU_WAIT.as_secs(),
        config.cpu_reps
    );
    println!(
        "{:<24} {:<20} {:>9} {:>9} {:>9} {:>12} {:>8}",
        "arm", "target", "cpu p50", "cpu max", "attempts", "cpu/attempt", "wall"
    );
    for r in results {
        print_cpu_row(r);
    }
}

fn print_cpu_row(r: &CpuResult) {
    let max = r.samples.last().map(|s| s.cpu);
    let attempts: u32 = r.samples.iter().map(|s| s.attempts).sum();
    let cpu_total: Duration = r.samples.iter().map(|s| s.cpu).sum();
    let wall_max = r.samples.iter().map(|s| s.wall).max();
    let per_attempt = (attempts > 0).then(|| cpu_total / attempts);
    let mean_attempts = attempts as f64 / r.samples.len().max(1) as f64;
    println!(
        "{:<24} {:<20} {:>9} {:>9} {:>9.0} {:>12} {:>8}",
        r.arm.name(),
        r.target.name(),
        fmt_ms(r.median_cpu()),
        fmt_ms(max),
        mean_attempts,
        us(per_attempt),
        fmt_ms(wall_max),
    );
    if let Some(e) = r.errors.first() {
        println!("  {} failed: {e}", r.errors.len());
    }
}

// ---------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------

/// Prints the verdict for the harness arm; true if every target is met.
fn check_targets(latencies: &[(Arm, Latencies)], cpu: &[CpuResult]) -> bool {
    println!("\nTargets (harness wait):");
    let mut ok = true;
    let (_, harness) = latencies
        .iter()
        .find(|(a, _)| *a == Arm::Harness)
        .expect("the harness arm always runs");
    let sorted = &harness.samples;
    ok &= verdict("detection p50", percentile(sorted, 0.50), TARGET_P50);
    ok &= verdict("detection p95", percentile(sorted, 0.95), TARGET_P95);
    if !harness.errors.is_empty() {
        println!("  FAIL  {} latency runs failed", harness.errors.len());
        ok = false;
    }
    for r in cpu.iter().filter(|r| r.arm == Arm::Harness) {
        let what = format!("CPU per {} s wait, {}", CPU_WAIT.as_secs(), r.target.name());
        ok &= verdict(&what, r.median_cpu(), TARGET_CPU);
        if !r.errors.is_empty() {
            println!("  FAIL  {} CPU runs failed", r.errors.len());
            ok = false;
        }
    }
    println!(
        "{}",
        if ok {
            "all targets met"
        } else {
            "TARGET MISSED"
        }
    );
    ok
}

/// Prints one PASS/FAIL line.
fn verdict(what: &str, value: Option<Duration>, target: Duration) -> bool {
    let pass = value.is_some_and(|v| v <= target);
    println!(
        "  {}  {what:<40} {:>9} (target <= {})",
        if pass { "ok  " } else { "FAIL" },
        fmt_ms(value),
        fmt_ms(Some(target))
    );
    pass
}

/// A duration as whole microseconds, `-` without one.
fn us(d: Option<Duration>) -> String {
    or_dash(d, |d| format!("{:.0} us", d.as_secs_f64() * 1e6))
}
