//! Services benchmark: what do shared etcd + NATS cost a test suite, and
//! how fast does the harness bring them up from cold?
//!
//! ```text
//! cargo build --release -p dynamo-test-examples --bin services_bench
//! target/release/services_bench [--suite-runs N] [--cold-runs N] [--tests N] [--threads N]
//! ```
//!
//! **(1) Suite.** `--tests` tests (default 40) that each need etcd and NATS
//! run like `cargo test` runs them: on threads, `--threads` at a time
//! (default 2, libtest's default on a 2-core machine), each through
//! `dynamo_test::__private::run_async` (what `#[dynamo_test(services(etcd,
//! nats))]` expands to). Each body does [`WORKLOAD`]. Three arms, run
//! interleaved `--suite-runs` times (default 3):
//!
//! 1. *harness, shared, cold*: nothing runs at start; the first test's
//!    harness starts etcd and nats-server (through its keeper), the others
//!    reuse them;
//! 2. *by hand*: this process starts etcd and nats-server itself, with the
//!    harness's own arguments, before the suite (untimed) and stops them
//!    after; the suite gets `ETCD_ENDPOINTS` / `NATS_SERVER` and starts
//!    nothing;
//! 3. *harness, isolated*: every test gets its own private etcd + NATS.
//!
//! Wall time is from spawning the suite's process to its exit. Target:
//! harness / by hand <= 1.15 (p50 of the runs).
//!
//! **(2) Cold start.** Time to a healthy etcd + NATS, interleaved
//! `--cold-runs` times (default 30: etcd's own start-to-healthy is spread
//! evenly over ~25-120 ms by its randomised first election, so fewer runs
//! make p50 jumpy). Direct: both binaries spawned at once with the
//! harness's arguments (`ServiceKind::args`), their health endpoints polled
//! every 1 ms with plain HTTP/1.1 (etcd `GET /health` `{"health":"true"}`,
//! NATS `GET /healthz` `{"status":"ok"}`). Harness: from the `run_async`
//! call to the test body, with `services(etcd, nats)` and nothing running.
//! Target: harness p50 <= direct p50 + 20 ms. A last row (no target)
//! starts the harness as soon as the previous shared instance has stopped
//! (ports closed, no keeper answering) rather than once its keeper is
//! entirely gone: what a test run started right after another one sees.
//!
//! **(3) etcd cluster (issue 12).** Time from `run_async` to the body of a
//! test with `services(etcd(isolated))` (one private member) and of one
//! with `services(etcd(cluster = 3))` (three members, every one healthy),
//! interleaved `--cluster-runs` times (default 15), which one goes first
//! alternating. Target: cluster p50 <= 1.5 x single p50.
//!
//! A part whose runs are set to 0 is skipped (`--suite-runs 0 --cold-runs
//! 0` measures the cluster only).
//!
//! **Isolation from other runs.** The suite runs in a worker process (this
//! binary with `--worker`) whose environment is prepared here, since the
//! harness reads its settings from env vars that a process must not change
//! for itself. Four ports reserved with `dynamo_test::find_free_port` (and
//! held for the whole bench) become the "fixed" etcd/NATS ports through
//! `DYNAMO_TEST_{ETCD,NATS}_*_PORT`, so the real 2379/4222 are never
//! touched; `DYNAMO_TEST_SERVICE_GRACE_MS=200` lets shared services stop
//! soon after a run, and every run waits until the previous run's services
//! are gone (ports closed, no keeper answering, no keeper name left
//! bound), so each harness run is really cold.
//!
//! **(4) Healing.** `--heal-runs` times (default 10): a worker process
//! runs a test that uses the shared etcd (started cold), then waits; this
//! process SIGKILLs the etcd (an OOM kill, as far as etcd can tell) and
//! tells the worker to go on; the worker's next test needs etcd, and the
//! time from the kill to that test's body is the row (detection by the
//! keeper, the restart under the start lock, health). No target.
//!
//! Exit code 1 if a target is missed or a run failed, 2 on a usage error.

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dynamo_test::__private::{run_async, Flavor, TestConfig};
use dynamo_test::__private::{Mode, ServiceRequest};
use dynamo_test::admin::{self as dt_ports, is_listening};
use dynamo_test::admin::{self as services, ServiceKind, ServicePortPair};
use dynamo_test::{find_free_port, Port, TestContext};
use dynamo_test_examples::bench::{self, fmt_ms, millis, or_dash, percentile, Cli};
use serde_json::{json, Value};

const CLI: Cli = Cli {
    name: "services_bench",
    usage: "usage: services_bench [--suite-runs N] [--cold-runs N] [--cluster-runs N] [--heal-runs N] [--tests N] [--threads N]
  --suite-runs N  runs of each suite arm (default 3; 0 skips the suite)
  --cold-runs N   runs of each cold-start arm (default 30; 0 skips them)
  --cluster-runs N  runs of the etcd single/cluster start (default 15; 0 skips them)
  --heal-runs N     runs of a killed shared etcd restarted for the next test (default 10; 0 skips them)
  --tests N       tests in the suite (default 40)
  --threads N     tests run at a time (default 2)",
};

/// What each test's body does, as printed with the results.
const WORKLOAD: &str = "put 10 keys under etcd.key(..) and get each back (etcd's JSON gateway, \
     one request at a time); connect to NATS, subscribe to nats.subject(..), publish 10 messages \
     and receive all 10; sleep 50 ms (standing for the code under test)";
const KEYS: usize = 10;
const MESSAGES: usize = 10;
const BODY_SLEEP: Duration = Duration::from_millis(50);

/// Targets.
const TARGET_SUITE_RATIO: f64 = 1.15;
const TARGET_COLD_EXTRA: Duration = Duration::from_millis(20);
const TARGET_CLUSTER_RATIO: f64 = 1.5;

/// Idle grace of the shared services in the workers (the harness's minimum).
const GRACE_MS: &str = "200";
/// Interval of the direct arm's health polls.
const POLL_EVERY: Duration = Duration::from_millis(1);
/// Limit for a service to become healthy, or for ports to close.
const LIMIT: Duration = Duration::from_secs(30);
/// Prefix of the worker's one result line on stdout.
const RESULT_TAG: &str = "services_bench-result ";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--worker") {
        return worker::main(&args[1..]);
    }
    CLI.main(&args, Config::parse, run)
}

/// Runs both benchmarks, prints the tables and checks the targets.
fn run(config: &Config) -> ExitCode {
    let bench = match Bench::new() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("services_bench: {e}");
            return ExitCode::from(1);
        }
    };
    println!(
        "ports (reserved, used as the plan's fixed ports): etcd {}/{}, nats {}/{}; scratch {}",
        bench.etcd.client,
        bench.etcd.second,
        bench.nats.client,
        bench.nats.second,
        bench.dir.display()
    );
    print_socket_context();
    let suite = measure_suite(&bench, config);
    let cold = measure_cold(&bench, config);
    let cluster = cluster::measure(&bench, config);
    let healed = heal::measure(&bench, config);
    let suite_ok = config.suite_runs == 0 || print_suite(config, &suite);
    let cold_ok = config.cold_runs == 0 || print_cold(config, &cold);
    let cluster_ok = config.cluster_runs == 0 || cluster::print(config, &cluster);
    let heal_ok = config.heal_runs == 0 || heal::print(config, &healed);
    println!();
    print_socket_context();
    if suite_ok && cold_ok && cluster_ok && heal_ok {
        let _ = fs::remove_dir_all(&bench.dir);
        ExitCode::SUCCESS
    } else {
        println!("(scratch dir kept for inspection: {})", bench.dir.display());
        ExitCode::from(1)
    }
}

/// Prints how large the host's TCP socket table is and what one scan of
/// it costs: the harness scans it (`ports::holders::is_listening`, which
/// reads /proc/net/tcp and tcp6) before starting a shared service. Printed
/// before and after the runs: other work on the host changes it.
fn print_socket_context() {
    let started = Instant::now();
    let sockets: usize = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .map(|t| fs::read_to_string(t).map_or(0, |s| s.lines().count().saturating_sub(1)))
        .sum();
    println!(
        "host: {sockets} TCP sockets (TIME_WAIT included); reading /proc/net/tcp + tcp6 once took {:.1} ms",
        millis(started.elapsed())
    );
}

// ---------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------

/// Command-line settings.
struct Config {
    suite_runs: usize,
    cold_runs: usize,
    cluster_runs: usize,
    heal_runs: usize,
    tests: usize,
    threads: usize,
}

impl Config {
    fn parse(args: &[String]) -> Result<Config, String> {
        let mut c = Config {
            suite_runs: 3,
            cold_runs: 30,
            cluster_runs: 15,
            heal_runs: 10,
            tests: 40,
            threads: 2,
        };
        bench::number_flags(args, 0, ": a number", |flag, n| {
            let at_least_one = |n: usize| match n {
                0 => Err(format!("bad value 0 for {flag}: a number >= 1")),
                n => Ok(n),
            };
            match flag {
                "--suite-runs" => c.suite_runs = n,
                "--cold-runs" => c.cold_runs = n,
                "--cluster-runs" => c.cluster_runs = n,
                "--heal-runs" => c.heal_runs = n,
                "--tests" => c.tests = at_least_one(n)?,
                "--threads" => c.threads = at_least_one(n)?,
                _ => return Err(format!("unknown flag {flag}")),
            }
            Ok(())
        })?;
        Ok(c)
    }
}

// ---------------------------------------------------------------------------
// The bench's ports, scratch dir and worker processes
// ---------------------------------------------------------------------------

/// Ports and scratch space shared by every run.
struct Bench {
    exe: PathBuf,
    /// Worker output dirs, data dirs and logs of the directly started services.
    dir: PathBuf,
    etcd: ServicePortPair,
    nats: ServicePortPair,
    /// Held for the whole bench: no other harness user gets these numbers.
    _reserved: Vec<Port>,
}

/// One finished worker process.
struct WorkerRun {
    /// Spawn to exit, measured here.
    wall: Duration,
    /// The worker's result line.
    result: Value,
}

impl Bench {
    fn new() -> Result<Bench, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let dir = std::env::temp_dir().join(format!("services-bench-{}", std::process::id()));
        fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let reserved: Vec<Port> = (0..4)
            .map(|_| find_free_port().map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        let pair = |a: &Port, b: &Port| ServicePortPair {
            client: a.get(),
            second: b.get(),
        };
        Ok(Bench {
            exe,
            dir,
            etcd: pair(&reserved[0], &reserved[1]),
            nats: pair(&reserved[2], &reserved[3]),
            _reserved: reserved,
        })
    }

    fn ports(&self) -> [u16; 4] {
        [
            self.etcd.client,
            self.etcd.second,
            self.nats.client,
            self.nats.second,
        ]
    }

    /// Runs `services_bench --worker <job>` with the bench's environment
    /// plus `extra`, and times it from spawn to exit.
    fn worker(
        &self,
        job: &str,
        config: &Config,
        extra: &[(&str, String)],
    ) -> Result<WorkerRun, String> {
        let mut command = Command::new(&self.exe);
        command
            .args(["--worker", job])
            .args([config.tests.to_string(), config.threads.to_string()])
            .env(dt_ports::ENV_ETCD_CLIENT_PORT, self.etcd.client.to_string())
            .env(dt_ports::ENV_ETCD_PEER_PORT, self.etcd.second.to_string())
            .env(dt_ports::ENV_NATS_CLIENT_PORT, self.nats.client.to_string())
            .env(dt_ports::ENV_NATS_HTTP_PORT, self.nats.second.to_string())
            .env(services::ENV_IDLE_GRACE, GRACE_MS)
            .env(dynamo_test::admin::ENV_OUTPUT_DIR, self.dir.join("out"))
            .env_remove(ServiceKind::Etcd.endpoints_env())
            .env_remove(ServiceKind::Nats.endpoints_env())
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null());
        let started = Instant::now();
        let output = command
            .output()
            .map_err(|e| format!("running the worker: {e}"))?;
        let wall = started.elapsed();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let result = stdout
            .lines()
            .find_map(|l| l.strip_prefix(RESULT_TAG))
            .and_then(|l| serde_json::from_str::<Value>(l).ok());
        match result {
            Some(result) if output.status.success() => Ok(WorkerRun { wall, result }),
            _ => Err(format!(
                "worker `{job}` failed ({}):\nstdout (last lines):\n{}\nstderr (last lines):\n{}",
                output.status,
                tail(&stdout, 15),
                tail(&String::from_utf8_lossy(&output.stderr), 15)
            )),
        }
    }

    /// Waits until the previous run's services are gone: stopped (see
    /// [`Bench::wait_services_stopped`]) and their keepers entirely gone
    /// (no keeper, start lock or service name bound), so that the next
    /// user neither reuses nor waits for anything.
    fn wait_services_gone(&self) -> Result<(), String> {
        self.wait_services_stopped()?;
        self.wait_until("keepers gone", || {
            let busy: Vec<String> = self
                .services()
                .into_iter()
                .filter(|(kind, ports)| services::coordination_in_use(*kind, ports.client))
                .map(|(kind, ports)| format!("{} {}", kind.name(), ports.client))
                .collect();
            (!busy.is_empty()).then(|| format!("keeper names still bound: {busy:?}"))
        })
    }

    /// Waits until nothing listens on the bench's ports and no keeper
    /// answers for them: the services have stopped.
    fn wait_services_stopped(&self) -> Result<(), String> {
        self.wait_until("services stopped", || {
            let listening: Vec<u16> = self
                .ports()
                .into_iter()
                .filter(|&p| is_listening(p))
                .collect();
            let kept: Vec<String> = services::records()
                .unwrap_or_default()
                .into_iter()
                .filter(|r| {
                    self.services()
                        .iter()
                        .any(|(kind, ports)| r.name == kind.name() && r.port == ports.client)
                })
                .map(|r| format!("{} {}", r.name, r.port))
                .collect();
            (!listening.is_empty() || !kept.is_empty())
                .then(|| format!("ports {listening:?} listening, keepers {kept:?}"))
        })
    }

    /// Polls `pending` (the reason still to wait, or `None`) every 5 ms.
    fn wait_until(&self, what: &str, pending: impl Fn() -> Option<String>) -> Result<(), String> {
        let started = Instant::now();
        while let Some(why) = pending() {
            if started.elapsed() > LIMIT {
                return Err(format!("{what}: not after {LIMIT:?}: {why}"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// The bench's etcd and NATS, with their ports.
    fn services(&self) -> [(ServiceKind, ServicePortPair); 2] {
        [
            (ServiceKind::Etcd, self.etcd),
            (ServiceKind::Nats, self.nats),
        ]
    }
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------
// (1) The suite
// ---------------------------------------------------------------------------

/// How the suite gets its services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SuiteArm {
    Harness,
    ByHand,
    Isolated,
}

impl SuiteArm {
    const ALL: [SuiteArm; 3] = [SuiteArm::Harness, SuiteArm::ByHand, SuiteArm::Isolated];

    fn name(self) -> &'static str {
        match self {
            SuiteArm::Harness => "harness, shared, cold start",
            SuiteArm::ByHand => "by hand (ETCD_ENDPOINTS/NATS_SERVER)",
            SuiteArm::Isolated => "harness, isolated (private per test)",
        }
    }
}

/// Every suite run of every arm, interleaved: `(arm, run or error)`.
fn measure_suite(bench: &Bench, config: &Config) -> Vec<(SuiteArm, Result<WorkerRun, String>)> {
    let mut runs = Vec::new();
    for i in 0..config.suite_runs {
        for arm in SuiteArm::ALL {
            let run = suite_run(bench, config, arm);
            match &run {
                Ok(r) => eprintln!(
                    "suite run {}/{}: {:<38} {:>8.1} ms",
                    i + 1,
                    config.suite_runs,
                    arm.name(),
                    millis(r.wall)
                ),
                Err(e) => eprintln!("suite run {}: {} failed: {e}", i + 1, arm.name()),
            }
            runs.push((arm, run));
        }
    }
    runs
}

/// One run of the suite in `arm`, starting from no services at all.
fn suite_run(bench: &Bench, config: &Config, arm: SuiteArm) -> Result<WorkerRun, String> {
    bench.wait_services_gone()?;
    match arm {
        SuiteArm::Harness => bench.worker("suite-shared", config, &[]),
        SuiteArm::Isolated => bench.worker("suite-isolated", config, &[]),
        SuiteArm::ByHand => {
            let started = direct::Pair::start(&bench.dir, bench.etcd, bench.nats)?;
            let env = [
                (
                    ServiceKind::Etcd.endpoints_env(),
                    ServiceKind::Etcd.client_url(bench.etcd),
                ),
                (
                    ServiceKind::Nats.endpoints_env(),
                    ServiceKind::Nats.client_url(bench.nats),
                ),
            ];
            let run = bench.worker("suite-shared", config, &env);
            drop(started); // stops both
            run
        }
    }
}

/// Prints table (1); returns whether every run passed and the target is met.
fn print_suite(config: &Config, runs: &[(SuiteArm, Result<WorkerRun, String>)]) -> bool {
    println!(
        "\n(1) Suite: {} tests, each with services(etcd, nats), {} at a time on threads; \
         {} runs per arm, arms interleaved.\n    Each test's body: {WORKLOAD}.\n    \
         Wall: spawn of the test process to its exit. Per test: setup = run_async call to body, \
         teardown = body end to run_async return.\n",
        config.tests, config.threads, config.suite_runs
    );
    let mut ok = runs.iter().all(|(_, r)| r.is_ok());
    // Per arm: the number of successful runs and the summary of their walls.
    let walls = SuiteArm::ALL.map(|arm| {
        let wall: Vec<Duration> = ok_runs(runs, arm).map(|r| r.wall).collect();
        (arm, wall.len(), Summary::of(&wall))
    });
    let wall_of = |arm: SuiteArm| walls.iter().find(|(a, ..)| *a == arm).and_then(|w| w.2);
    let by_hand = wall_of(SuiteArm::ByHand);
    // p50 of the arm's walls / p50 of the by-hand arm's.
    let ratio = |wall: Option<Summary>| Some(millis(wall?.p50) / millis(by_hand?.p50));
    println!(
        "{:<38} {:>4} {:>9} {:>9} {:>9} {:>9}   {:>16} {:>16}",
        "arm", "runs", "wall p50", "min", "max", "/by hand", "setup p50 / max", "teardn p50 / max"
    );
    for (arm, count, wall) in walls {
        let setup = Summary::of(&per_test(runs, arm, "setup_ms"));
        let teardown = Summary::of(&per_test(runs, arm, "teardown_ms"));
        println!(
            "{:<38} {:>4} {:>9} {:>9} {:>9} {:>9}   {:>16} {:>16}",
            arm.name(),
            count,
            fmt_ms(wall.map(|s| s.p50)),
            fmt_ms(wall.map(|s| s.min)),
            fmt_ms(wall.map(|s| s.max)),
            or_dash(ratio(wall), |r| format!("{r:.3}")),
            pair(setup),
            pair(teardown)
        );
    }
    if let Some(ratio) = ratio(wall_of(SuiteArm::Harness)) {
        let met = ratio <= TARGET_SUITE_RATIO;
        ok &= met;
        println!(
            "target: harness (shared, cold) / by hand <= {TARGET_SUITE_RATIO} (p50): {ratio:.3} -> {}",
            verdict(met)
        );
    }
    for (arm, run) in runs {
        if let Err(e) = run {
            println!("FAILED run of {}: {e}", arm.name());
        }
    }
    ok
}

/// The successful runs of `arm`.
fn ok_runs(
    runs: &[(SuiteArm, Result<WorkerRun, String>)],
    arm: SuiteArm,
) -> impl Iterator<Item = &WorkerRun> {
    runs.iter()
        .filter(move |(a, _)| *a == arm)
        .filter_map(|(_, r)| r.as_ref().ok())
}

/// Per-test durations `field` of every successful run of `arm`.
fn per_test(
    runs: &[(SuiteArm, Result<WorkerRun, String>)],
    arm: SuiteArm,
    field: &str,
) -> Vec<Duration> {
    ok_runs(runs, arm)
        .flat_map(|r| r.result[field].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_f64())
        .map(|v| Duration::from_secs_f64(v / 1e3))
        .collect()
}

// ---------------------------------------------------------------------------
// (2) Cold start
// ---------------------------------------------------------------------------

/// Cold-start times of every run, per arm.
#[derive(Default)]
struct ColdTimes {
    etcd: Vec<Duration>,
    nats: Vec<Duration>,
    both: Vec<Duration>,
    harness: Vec<Duration>,
    /// Harness, started as soon as the previous instance had stopped.
    restart: Vec<Duration>,
    errors: Vec<String>,
}

/// Direct and harness cold starts, interleaved.
fn measure_cold(bench: &Bench, config: &Config) -> ColdTimes {
    let mut times = ColdTimes::default();
    for i in 0..config.cold_runs {
        match cold_direct(bench) {
            Ok(pair) => {
                times.etcd.push(pair.etcd);
                times.nats.push(pair.nats);
                times.both.push(pair.both);
            }
            Err(e) => times.errors.push(format!("direct: {e}")),
        }
        match cold_harness(bench, config, Bench::wait_services_gone) {
            Ok(ready) => times.harness.push(ready),
            Err(e) => times.errors.push(format!("harness: {e}")),
        }
        match cold_harness(bench, config, Bench::wait_services_stopped) {
            Ok(ready) => times.restart.push(ready),
            Err(e) => times.errors.push(format!("harness, restart: {e}")),
        }
        eprintln!(
            "cold run {}/{}: direct both {} / harness {} / harness right after a stop {}",
            i + 1,
            config.cold_runs,
            fmt_ms(times.both.last().copied()),
            fmt_ms(times.harness.last().copied()),
            fmt_ms(times.restart.last().copied())
        );
    }
    times
}

/// The binaries' own start-to-healthy times.
struct DirectTimes {
    etcd: Duration,
    nats: Duration,
    both: Duration,
}

fn cold_direct(bench: &Bench) -> Result<DirectTimes, String> {
    bench.wait_services_gone()?;
    let pair = direct::Pair::start(&bench.dir, bench.etcd, bench.nats)?;
    Ok(pair.times) // the rest of `pair` is dropped: both are stopped
}

/// The harness's time from `run_async` to the body, measured in a worker
/// started once `settled` has returned.
fn cold_harness(
    bench: &Bench,
    config: &Config,
    settled: fn(&Bench) -> Result<(), String>,
) -> Result<Duration, String> {
    settled(bench)?;
    let run = bench.worker("cold", config, &[])?;
    run.result["ready_ms"]
        .as_f64()
        .map(|v| Duration::from_secs_f64(v / 1e3))
        .ok_or_else(|| format!("no ready_ms in {}", run.result))
}

/// Prints table (2); returns whether every run passed and the target is met.
fn print_cold(config: &Config, times: &ColdTimes) -> bool {
    println!(
        "\n(2) Cold start to healthy, etcd + NATS; {} runs per arm, interleaved.\n    \
         Direct: the binaries spawned with ServiceKind::args, health polled every 1 ms over HTTP/1.1 \
         (etcd /health, NATS /healthz).\n    Harness: run_async call to test body with \
         services(etcd, nats), nothing running (its keeper starts both).\n    \
         Right after a shared stop: the same, started as soon as the previous harness \
         instance's ports closed and no keeper answering for them.\n",
        config.cold_runs
    );
    print_header();
    let both = Summary::of(&times.both);
    let harness = Summary::of(&times.harness);
    let rows = [
        (
            "direct: etcd (spawn -> /health true)",
            times.etcd.len(),
            Summary::of(&times.etcd),
        ),
        (
            "direct: nats-server (spawn -> /healthz ok)",
            times.nats.len(),
            Summary::of(&times.nats),
        ),
        (
            "direct: both spawned at once (-> both healthy)",
            times.both.len(),
            both,
        ),
        (
            "harness: run_async -> body, services(etcd, nats)",
            times.harness.len(),
            harness,
        ),
        (
            "  (not a target) the same, right after a shared stop",
            times.restart.len(),
            Summary::of(&times.restart),
        ),
    ];
    print_rows(&rows);
    let mut ok = times.errors.is_empty();
    if let (Some(h), Some(d)) = (harness, both) {
        let extra = millis(h.p50) - millis(d.p50);
        let met = extra <= millis(TARGET_COLD_EXTRA);
        ok &= met;
        println!(
            "target: harness p50 <= direct (both) p50 + {} ms: {extra:+.1} ms -> {}",
            TARGET_COLD_EXTRA.as_millis(),
            verdict(met)
        );
    }
    for e in &times.errors {
        println!("FAILED cold run: {e}");
    }
    ok
}

// ---------------------------------------------------------------------------
// (3) etcd cluster
// ---------------------------------------------------------------------------

mod cluster {
    use super::*;

    /// Start-to-body times of both arms.
    #[derive(Default)]
    pub struct Times {
        single: Vec<Duration>,
        cluster: Vec<Duration>,
        errors: Vec<String>,
    }

    /// A private single etcd and a 3-member cluster, interleaved; the
    /// first of each round alternates so neither always runs after the
    /// other's teardown.
    pub fn measure(bench: &Bench, config: &Config) -> Times {
        let mut times = Times::default();
        for i in 0..config.cluster_runs {
            let mut arms = [("etcd-single", false), ("etcd-cluster", true)];
            if i % 2 == 1 {
                arms.reverse();
            }
            for (job, is_cluster) in arms {
                match start_time(bench, config, job) {
                    Ok(t) if is_cluster => times.cluster.push(t),
                    Ok(t) => times.single.push(t),
                    Err(e) => times.errors.push(format!("{job}: {e}")),
                }
            }
            eprintln!(
                "cluster run {}/{}: single {} / cluster {}",
                i + 1,
                config.cluster_runs,
                fmt_ms(times.single.last().copied()),
                fmt_ms(times.cluster.last().copied())
            );
        }
        times
    }

    fn start_time(bench: &Bench, config: &Config, job: &str) -> Result<Duration, String> {
        let run = bench.worker(job, config, &[])?;
        run.result["ready_ms"]
            .as_f64()
            .map(|v| Duration::from_secs_f64(v / 1e3))
            .ok_or_else(|| format!("no ready_ms in {}", run.result))
    }

    /// Prints table (3); returns whether every run passed and the target is met.
    pub fn print(config: &Config, times: &Times) -> bool {
        println!(
            "\n(3) etcd cluster: run_async call to test body, private instances on reserved \
             ports; {} runs per arm, interleaved.\n",
            config.cluster_runs
        );
        print_header();
        let single = Summary::of(&times.single);
        let cluster = Summary::of(&times.cluster);
        let rows = [
            (
                "services(etcd(isolated)): one member",
                times.single.len(),
                single,
            ),
            (
                "services(etcd(cluster = 3)): every member healthy",
                times.cluster.len(),
                cluster,
            ),
        ];
        print_rows(&rows);
        let mut ok = times.errors.is_empty();
        if let (Some(c), Some(s)) = (cluster, single) {
            let ratio = millis(c.p50) / millis(s.p50);
            let met = ratio <= TARGET_CLUSTER_RATIO;
            ok &= met;
            println!(
                "target: cluster p50 <= {TARGET_CLUSTER_RATIO} x single p50: {ratio:.2} -> {}",
                verdict(met)
            );
        }
        for e in &times.errors {
            println!("FAILED cluster run: {e}");
        }
        ok
    }
}

mod heal {
    use super::*;
    use std::io::{BufRead, BufReader, Write};

    /// Kill-to-next-body times, and the runs that failed.
    #[derive(Default)]
    pub struct Times {
        healed: Vec<Duration>,
        errors: Vec<String>,
    }

    pub fn measure(bench: &Bench, config: &Config) -> Times {
        let mut times = Times::default();
        for i in 0..config.heal_runs {
            match bench.wait_services_gone().and_then(|()| once(bench)) {
                Ok(t) => times.healed.push(t),
                Err(e) => times.errors.push(e),
            }
            eprintln!(
                "heal run {}/{}: {}",
                i + 1,
                config.heal_runs,
                fmt_ms(times.healed.last().copied())
            );
        }
        times
    }

    /// One run: the worker's first test uses the shared etcd; we SIGKILL
    /// it and note when; the worker's next test reports when its body began.
    fn once(bench: &Bench) -> Result<Duration, String> {
        let mut child = Command::new(&bench.exe)
            .args(["--worker", "heal", "0", "0"])
            .env(
                dt_ports::ENV_ETCD_CLIENT_PORT,
                bench.etcd.client.to_string(),
            )
            .env(dt_ports::ENV_ETCD_PEER_PORT, bench.etcd.second.to_string())
            .env(services::ENV_IDLE_GRACE, GRACE_MS)
            .env(dynamo_test::admin::ENV_OUTPUT_DIR, bench.dir.join("out"))
            .env_remove(ServiceKind::Etcd.endpoints_env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("running the worker: {e}"))?;
        let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        let pid: i32 = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("heal-pid ")?.parse().ok())
            .ok_or("the worker named no etcd pid")?;
        // SAFETY: kill has no memory-safety preconditions; the pid is the
        // etcd our worker's keeper started on the bench's reserved port.
        if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
            return Err(format!("kill {pid}: {}", std::io::Error::last_os_error()));
        }
        let killed = SystemTime::now();
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        writeln!(stdin, "go").map_err(|e| e.to_string())?;
        let result = lines
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix(RESULT_TAG).map(str::to_string))
            .and_then(|l| serde_json::from_str::<Value>(&l).ok())
            .ok_or("the worker printed no result")?;
        let status = child.wait().map_err(|e| e.to_string())?;
        if !status.success() || result["failures"] != 0 {
            return Err(format!("the healed test failed: {result}"));
        }
        let body = result["body_unix_ms"].as_f64().ok_or("no body_unix_ms")?;
        let killed_ms = killed
            .duration_since(UNIX_EPOCH)
            .map_err(|e| e.to_string())?;
        Ok(Duration::from_secs_f64(
            ((body - millis(killed_ms)) / 1e3).max(0.0),
        ))
    }

    pub fn print(config: &Config, times: &Times) -> bool {
        println!(
            "\n(4) shared etcd SIGKILLed between two tests of one process: kill to the next \
             test's body (restarted by it); {} runs.\n",
            config.heal_runs
        );
        print_header();
        print_rows(&[(
            "shared instance killed, next test restarted",
            times.healed.len(),
            Summary::of(&times.healed),
        )]);
        for e in &times.errors {
            println!("FAILED heal run: {e}");
        }
        times.errors.is_empty()
    }
}

// ---------------------------------------------------------------------------
// Statistics and formatting
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Summary {
    p50: Duration,
    min: Duration,
    max: Duration,
    mean: Duration,
}

impl Summary {
    /// p50 (nearest rank), min, max and mean; `None` without values.
    fn of(values: &[Duration]) -> Option<Summary> {
        let mut sorted = values.to_vec();
        sorted.sort();
        Some(Summary {
            p50: percentile(&sorted, 0.50)?,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            mean: sorted.iter().sum::<Duration>() / sorted.len() as u32,
        })
    }
}

/// The header of a table of [`print_rows`].
fn print_header() {
    println!(
        "{:<58} {:>4} {:>9} {:>9} {:>9} {:>9}",
        "arm", "runs", "p50", "min", "max", "mean"
    );
}

/// One line per `(name, runs, summary)`.
fn print_rows(rows: &[(&str, usize, Option<Summary>)]) {
    for (name, count, s) in rows {
        println!(
            "{:<58} {:>4} {:>9} {:>9} {:>9} {:>9}",
            name,
            count,
            fmt_ms(s.map(|s| s.p50)),
            fmt_ms(s.map(|s| s.min)),
            fmt_ms(s.map(|s| s.max)),
            fmt_ms(s.map(|s| s.mean))
        );
    }
}

/// `p50 / max` in milliseconds, `-` without values.
fn pair(s: Option<Summary>) -> String {
    or_dash(s, |s| {
        format!("{:.1} / {:.1}", millis(s.p50), millis(s.max))
    })
}

fn verdict(met: bool) -> &'static str {
    if met {
        "PASS"
    } else {
        "MISSED"
    }
}

// ---------------------------------------------------------------------------
// Services started directly (the by-hand arm, the direct cold start)
// ---------------------------------------------------------------------------

mod direct {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// A service this process started; stopped (SIGTERM, then SIGKILL
    /// after 5 s) and its data dir removed when dropped.
    struct Running {
        child: std::process::Child,
        data: PathBuf,
    }

    /// etcd and nats-server, started at once; both stopped when dropped.
    pub struct Pair {
        _etcd: Running,
        _nats: Running,
        /// Each one's spawn to healthy, and first spawn to both healthy.
        pub times: DirectTimes,
    }

    impl Pair {
        /// Spawns both with the harness's arguments and waits until both
        /// are healthy, polling each every [`POLL_EVERY`].
        pub fn start(
            dir: &Path,
            etcd: ServicePortPair,
            nats: ServicePortPair,
        ) -> Result<Pair, String> {
            let runtime =
                bench::current_thread_runtime().map_err(|e| format!("tokio runtime: {e}"))?;
            let mut etcd_cmd = command(ServiceKind::Etcd, etcd, dir)?;
            let mut nats_cmd = command(ServiceKind::Nats, nats, dir)?;
            runtime.block_on(async {
                let first = Instant::now();
                let etcd_child =
                    Running::spawn(&mut etcd_cmd, data_dir(ServiceKind::Etcd, etcd, dir))?;
                let nats_started = Instant::now();
                let nats_child =
                    Running::spawn(&mut nats_cmd, data_dir(ServiceKind::Nats, nats, dir))?;
                let (e, n) = tokio::join!(
                    poll_healthy(ServiceKind::Etcd, etcd, first),
                    poll_healthy(ServiceKind::Nats, nats, nats_started)
                );
                let (etcd_ready, nats_ready) = (e?, n?);
                Ok(Pair {
                    _etcd: etcd_child,
                    _nats: nats_child,
                    times: DirectTimes {
                        etcd: etcd_ready,
                        nats: nats_ready,
                        both: (first + etcd_ready).max(nats_started + nats_ready) - first,
                    },
                })
            })
        }
    }

    impl Running {
        fn spawn(command: &mut Command, data: PathBuf) -> Result<Running, String> {
            let child = command.spawn().map_err(|e| format!("spawning: {e}"))?;
            Ok(Running { child, data })
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            let pid = self.child.id() as libc::pid_t;
            // SAFETY: kill(2) on our own child's pid; it is not reaped yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(self.child.try_wait(), Ok(None)) {
                if Instant::now() > deadline {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            let _ = fs::remove_dir_all(&self.data);
        }
    }

    fn data_dir(kind: ServiceKind, ports: ServicePortPair, dir: &Path) -> PathBuf {
        dir.join(format!("{}-{}-data", kind.name(), ports.client))
    }

    /// The command line the harness would use, output to a log file.
    fn command(kind: ServiceKind, ports: ServicePortPair, dir: &Path) -> Result<Command, String> {
        let program = services::find_binary(kind.program(), kind.bin_env(), kind.endpoints_env())
            .map_err(|e| e.to_string())?;
        let data = data_dir(kind, ports, dir);
        let _ = fs::remove_dir_all(&data);
        let log_path = dir.join(format!("{}-{}.log", kind.name(), ports.client));
        let log =
            fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut command = Command::new(program);
        command
            .args(kind.args(ports, &data))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        Ok(command)
    }

    /// Polls the health endpoint every [`POLL_EVERY`]; returns the time
    /// from `since` to the first healthy answer.
    async fn poll_healthy(
        kind: ServiceKind,
        ports: ServicePortPair,
        since: Instant,
    ) -> Result<Duration, String> {
        let (port, path) = match kind {
            ServiceKind::Etcd => (ports.client, "/health"),
            ServiceKind::Nats => (ports.second, "/healthz"),
        };
        loop {
            if is_healthy(kind, http_get(port, path).await) {
                return Ok(since.elapsed());
            }
            if since.elapsed() > LIMIT {
                return Err(format!("{} not healthy after {LIMIT:?}", kind.name()));
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// `GET path` over plain HTTP/1.1: `(status, whole response)`, or
    /// `None` if refused, cut off or slower than 500 ms.
    async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
        let exchange = async {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).await.ok()?;
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await.ok()?;
            let text = String::from_utf8_lossy(&response).into_owned();
            let status = text.split_whitespace().nth(1)?.parse().ok()?;
            Some((status, text))
        };
        tokio::time::timeout(Duration::from_millis(500), exchange)
            .await
            .ok()
            .flatten()
    }

    /// etcd: 200 and `{"health":"true"}`; NATS: 200 and `{"status":"ok"}`.
    /// The JSON is taken from the first `{` to the last `}`, which also
    /// copes with a chunked body.
    fn is_healthy(kind: ServiceKind, answer: Option<(u16, String)>) -> bool {
        let Some((200, text)) = answer else {
            return false;
        };
        let (Some(start), Some(end)) = (text.find('{'), text.rfind('}')) else {
            return false;
        };
        let Ok(json) = serde_json::from_str::<Value>(&text[start..=end]) else {
            return false;
        };
        match kind {
            ServiceKind::Etcd => json["health"] == "true",
            ServiceKind::Nats => json["status"] == "ok",
        }
    }
}

// ---------------------------------------------------------------------------
// The worker: the test process, run with a prepared environment
// ---------------------------------------------------------------------------

mod worker {
    use super::*;
    use futures_util::StreamExt;

    static SHARED: [ServiceRequest; 2] = [
        ServiceRequest {
            kind: ServiceKind::Etcd,
            mode: Mode::Shared,
            jetstream: true,
        },
        ServiceRequest {
            kind: ServiceKind::Nats,
            mode: Mode::Shared,
            jetstream: true,
        },
    ];
    static SHARED_ETCD: [ServiceRequest; 1] = [ServiceRequest {
        kind: ServiceKind::Etcd,
        mode: Mode::Shared,
        jetstream: true,
    }];
    static ETCD_SINGLE: [ServiceRequest; 1] = [ServiceRequest {
        kind: ServiceKind::Etcd,
        mode: Mode::Isolated,
        jetstream: true,
    }];
    static ETCD_CLUSTER: [ServiceRequest; 1] = [ServiceRequest {
        kind: ServiceKind::Etcd,
        mode: Mode::Cluster(3),
        jetstream: true,
    }];
    static ISOLATED: [ServiceRequest; 2] = [
        ServiceRequest {
            kind: ServiceKind::Etcd,
            mode: Mode::Isolated,
            jetstream: true,
        },
        ServiceRequest {
            kind: ServiceKind::Nats,
            mode: Mode::Isolated,
            jetstream: true,
        },
    ];

    /// `--worker suite-shared|suite-isolated|cold|etcd-single|etcd-cluster
    /// TESTS THREADS`: prints
    /// one result line (JSON after [`RESULT_TAG`]); exit 1 if a test failed.
    pub fn main(args: &[String]) -> ExitCode {
        let number = |i: usize| args.get(i).and_then(|a| a.parse::<usize>().ok());
        let (Some(job), Some(tests), Some(threads)) = (args.first(), number(1), number(2)) else {
            eprintln!(
                "usage: services_bench --worker suite-shared|suite-isolated|cold|etcd-single|etcd-cluster TESTS THREADS"
            );
            return ExitCode::from(2);
        };
        let result = match job.as_str() {
            "suite-shared" => suite(&SHARED, tests, threads),
            "suite-isolated" => suite(&ISOLATED, tests, threads),
            "cold" => cold("services_bench::cold_start", &SHARED),
            "etcd-single" => cold("services_bench::etcd_single", &ETCD_SINGLE),
            "etcd-cluster" => cold("services_bench::etcd_cluster", &ETCD_CLUSTER),
            "heal" => heal(),
            other => {
                eprintln!("unknown worker job {other}");
                return ExitCode::from(2);
            }
        };
        println!("{RESULT_TAG}{result}");
        if result["failures"] == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    }

    /// The suite: `tests` tests on `threads` threads, like libtest.
    fn suite(services: &'static [ServiceRequest], tests: usize, threads: usize) -> Value {
        let next = AtomicUsize::new(0);
        let timings = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= tests {
                        break;
                    }
                    let name: &'static str = format!("services_bench::suite::test_{i:02}").leak();
                    let timing = run_test(name, services, true);
                    timings.lock().unwrap().push(timing);
                });
            }
        });
        let timings = timings.into_inner().unwrap();
        let field = |f: fn(&Timing) -> Duration| -> Vec<f64> {
            timings.iter().map(|t| millis(f(t))).collect()
        };
        json!({
            "failures": timings.iter().filter(|t| !t.passed).count(),
            "setup_ms": field(|t| t.setup),
            "teardown_ms": field(|t| t.teardown),
        })
    }

    /// Two tests needing the shared etcd: after the first, prints the
    /// etcd's pid and waits for a line on stdin (the bench kills the etcd
    /// meanwhile); the second's body start is the result (unix ms).
    fn heal() -> Value {
        let first = run_test("services_bench::heal_first", &SHARED_ETCD, false);
        let pid = dynamo_test::admin::listeners(etcd_port())
            .first()
            .and_then(|l| l.pid)
            .unwrap_or(0);
        println!("heal-pid {pid}");
        let _ = std::io::stdin().lines().next();
        let second = run_test("services_bench::heal_second", &SHARED_ETCD, false);
        let body = second.body_at.unwrap_or(UNIX_EPOCH);
        json!({
            "failures": usize::from(!first.passed) + usize::from(!second.passed),
            "body_unix_ms": millis(body.duration_since(UNIX_EPOCH).unwrap_or_default()),
        })
    }

    /// The plan's etcd client port (moved by the bench's env).
    fn etcd_port() -> u16 {
        dynamo_test::ServicePorts::from_env().map_or(0, |p| p.etcd_client)
    }

    /// One test with `services` and an empty body: the time to its body is
    /// the harness's start of them.
    fn cold(name: &'static str, services: &'static [ServiceRequest]) -> Value {
        let timing = run_test(name, services, false);
        json!({
            "failures": usize::from(!timing.passed),
            "ready_ms": millis(timing.setup),
        })
    }

    /// Where one test's time went.
    struct Timing {
        /// `run_async` called -> body entered (runtime, context, services).
        setup: Duration,
        /// Body done -> `run_async` returned (teardown, runtime shutdown).
        teardown: Duration,
        /// When the body was entered, on the wall clock (other processes
        /// compare it with their own events).
        body_at: Option<SystemTime>,
        passed: bool,
    }

    /// Runs one test the way `#[dynamo_test(services(..))]` does.
    fn run_test(name: &'static str, services: &'static [ServiceRequest], work: bool) -> Timing {
        let config = TestConfig {
            name,
            timeout: Some(Duration::from_secs(60)),
            flavor: Flavor::CurrentThread,
            start_paused: false,
            services,
            case: false,
            should_panic: false,
        };
        let marks: Arc<Mutex<[Option<Instant>; 2]>> = Arc::default();
        let body_marks = marks.clone();
        let body_at: Arc<Mutex<Option<SystemTime>>> = Arc::default();
        let body_at_mark = body_at.clone();
        let called = Instant::now();
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            run_async(config, move |ctx: TestContext| async move {
                body_marks.lock().unwrap()[0] = Some(Instant::now());
                *body_at_mark.lock().unwrap() = Some(SystemTime::now());
                let result = if work { workload(&ctx).await } else { Ok(()) };
                body_marks.lock().unwrap()[1] = Some(Instant::now());
                Ok(result)
            })
        }));
        let returned = Instant::now();
        let [entered, left] = *marks.lock().unwrap();
        let body_at = *body_at.lock().unwrap();
        let entered = entered.unwrap_or(returned);
        let left = left.unwrap_or(returned);
        Timing {
            setup: entered - called,
            teardown: returned - left,
            body_at,
            passed: outcome.is_ok(),
        }
    }

    /// The test body: see [`WORKLOAD`].
    async fn workload(ctx: &TestContext) -> Result<(), String> {
        let etcd = <dynamo_test::Etcd as dynamo_test::Inject>::inject(ctx, "etcd")
            .await
            .map_err(|e| e.to_string())?;
        let nats = <dynamo_test::Nats as dynamo_test::Inject>::inject(ctx, "nats")
            .await
            .map_err(|e| e.to_string())?;
        for i in 0..KEYS {
            let key = etcd.key(&format!("key-{i}"));
            etcd.put(&key, &format!("value-{i}"))
                .await
                .map_err(|e| e.to_string())?;
        }
        for i in 0..KEYS {
            let got = etcd
                .get(&etcd.key(&format!("key-{i}")))
                .await
                .map_err(|e| e.to_string())?;
            if got.as_deref() != Some(format!("value-{i}").as_str()) {
                return Err(format!("etcd key-{i}: got {got:?}"));
            }
        }
        nats_round_trip(nats.url(), &nats.subject("bench"))
            .await
            .map_err(|e| format!("nats: {e}"))?;
        tokio::time::sleep(BODY_SLEEP).await;
        Ok(())
    }

    /// Subscribes to `subject`, publishes [`MESSAGES`] messages and receives
    /// them all, on one connection (the server echoes to it, in order).
    async fn nats_round_trip(url: &str, subject: &str) -> Result<(), String> {
        let client = async_nats::connect(url).await.map_err(|e| e.to_string())?;
        let mut sub = client
            .subscribe(subject.to_string())
            .await
            .map_err(|e| e.to_string())?;
        for i in 0..MESSAGES {
            let payload = format!("message {i}").into();
            client
                .publish(subject.to_string(), payload)
                .await
                .map_err(|e| e.to_string())?;
        }
        client.flush().await.map_err(|e| e.to_string())?;
        for i in 0..MESSAGES {
            let payload = tokio::time::timeout(Duration::from_secs(5), sub.next())
                .await
                .map_err(|_| format!("message {i}: none within 5 s"))?
                .ok_or("the subscription ended")?
                .payload;
            if payload != format!("message {i}").as_bytes() {
                return Err(format!("message {i}: got {payload:?}"));
            }
        }
        Ok(())
    }
}
