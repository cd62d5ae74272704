//! Real-Dynamo benchmark: how soon is a stack routable with `ctx.dynamo()`,
//! against the hand-written sequence Dynamo's own tests use today, and how
//! soon does a frontend stop routing to a killed worker?
//!
//! ```text
//! export DYNAMO_PYTHON=$(bash scripts/install-dynamo.sh)
//! cargo build --release -p dynamo-test-examples --bin dynamo_bench
//! target/release/dynamo_bench [--runs N] [--kill-runs N]
//! ```
//!
//! Every run is one test (through `dynamo_test::__private::run_async`,
//! what `#[dynamo_test(services(etcd, nats))]` expands to) on the shared
//! etcd and NATS; the first run also starts those, and is not counted.
//! Arms, interleaved `--runs` times (default 5):
//!
//! 1. *harness, one stack*: from the test's start to
//!    `ctx.dynamo().mocker(..).start()` returning (frontend + one mocker,
//!    routable: models listed and a one-token completion answered);
//! 2. *by hand, one stack*: the same two processes started, `/v1/models`
//!    polled every 1 s until it lists the model, then `sleep(1)` (what
//!    Dynamo's tests do "to avoid the /completions race"); the row also
//!    counts how often a completion sent right then still failed;
//! 3. and 4.: the same for two stacks at once.
//!
//! **Kill** (`--kill-runs`, default 5): a stack with two mockers; one is
//! SIGKILLed; rows: time until the frontend's `/health` lists one worker,
//! and how many completions (sent back to back meanwhile) failed.
//!
//! Exit code 1 if a run failed, 2 on a usage error.

use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dynamo_test::__private::{run_async, Flavor, Mode, ServiceKind, ServiceRequest, TestConfig};
use dynamo_test::dynamo::{self, Stack};
use dynamo_test::health::{self, Check, Probe};
use dynamo_test::{Error, ManagedProcess, TestContext};
use dynamo_test_examples::bench::{fmt_ms, number_flags, percentile, Cli};

const CLI: Cli = Cli {
    name: "dynamo_bench",
    usage: "usage: dynamo_bench [--runs N] [--kill-runs N]",
};

const MODEL: &str = "tiny";

static SERVICES: [ServiceRequest; 2] = [
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

struct Config {
    runs: usize,
    kill_runs: usize,
}

fn parse(args: &[String]) -> Result<Config, String> {
    let mut config = Config {
        runs: 5,
        kill_runs: 5,
    };
    number_flags(args, 0, "", |flag, n| {
        match flag {
            "--runs" => config.runs = n,
            "--kill-runs" => config.kill_runs = n,
            _ => return Err(format!("unknown flag {flag}")),
        }
        Ok(())
    })?;
    Ok(config)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    CLI.main(&args, parse, run)
}

/// One measured quantity: samples, and (for the hand-written arm) how
/// many times the stack was not routable when the sequence said it was.
#[derive(Default)]
struct Row {
    times: Vec<Duration>,
    failures: usize,
}

fn run(config: &Config) -> ExitCode {
    if let Err(e) = dynamo::Dynamo::find() {
        eprintln!("dynamo_bench: {e}");
        return ExitCode::FAILURE;
    }
    // Warm-up: starts the shared etcd/NATS and fills the page cache.
    if let Err(e) = measure(|ctx| async move { harness(&ctx, 1).await }) {
        eprintln!("dynamo_bench: warm-up failed: {e}");
        return ExitCode::FAILURE;
    }
    let mut rows: [Row; 4] = Default::default();
    for _ in 0..config.runs {
        for (arm, row) in rows.iter_mut().enumerate() {
            let stacks = if arm < 2 { 1 } else { 2 };
            let by_hand = arm % 2 == 1;
            let result = measure(move |ctx| async move {
                match by_hand {
                    false => harness(&ctx, stacks).await,
                    true => by_hand_sequence(&ctx, stacks).await,
                }
            });
            match result {
                Ok((time, routable)) => {
                    row.times.push(time);
                    row.failures += usize::from(!routable);
                }
                Err(e) => {
                    eprintln!("dynamo_bench: a run failed: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    let mut kill = Vec::new();
    for _ in 0..config.kill_runs {
        let result = measure(|ctx| async move { killed_worker(&ctx).await });
        match result {
            Ok((_, after)) => kill.push(after),
            Err(e) => {
                eprintln!("dynamo_bench: a kill run failed: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    report(config, &rows, &kill);
    ExitCode::SUCCESS
}

/// Runs `body` as one test on the shared services; the time from the
/// test's start (before its services) to the body's end, and its value.
fn measure<T, F, Fut>(body: F) -> Result<(Duration, T), String>
where
    T: Send + 'static,
    F: FnOnce(TestContext) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let out: Arc<Mutex<Option<(Duration, T)>>> = Arc::default();
    let slot = out.clone();
    let config = TestConfig {
        name: "dynamo_bench::run",
        timeout: Some(Duration::from_secs(300)),
        flavor: Flavor::MultiThread {
            worker_threads: None,
        },
        start_paused: false,
        services: &SERVICES,
        case: false,
        should_panic: false,
    };
    let started = Instant::now();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        run_async(config, move |ctx: TestContext| async move {
            let value = body(ctx).await?;
            *slot.lock().unwrap() = Some((started.elapsed(), value));
            Ok(Ok(()))
        })
    }));
    let result = out.lock().unwrap().take();
    match (outcome, result) {
        (Ok(()), Some(result)) => Ok(result),
        (_, _) => Err("the run's test failed (see its output above)".into()),
    }
}

/// `stacks` stacks started by the harness; whether a completion sent to
/// each right when it was declared ready is served (measured as for the
/// hand-written arm, not assumed).
async fn harness(ctx: &TestContext, stacks: usize) -> Result<bool, Error> {
    let model = dynamo::tiny_model(ctx.output_dir().join("tiny"))?;
    let one = |i: usize| {
        let builder = ctx.dynamo().name(&format!("s{i}")).mocker(MODEL, &model);
        async move {
            let stack = builder.start().await?;
            Ok::<bool, Error>(served_now(stack.url()).await)
        }
    };
    all_served((0..stacks).map(one)).await
}

/// Whether a one-token completion sent now is served.
async fn served_now(base: &str) -> bool {
    let served = health::openai_completion(base, MODEL)
        .check(Duration::from_secs(5))
        .await;
    matches!(served, Check::Ready)
}

/// Runs the stacks' arms at once: were all served when declared ready?
async fn all_served<F>(arms: impl Iterator<Item = F>) -> Result<bool, Error>
where
    F: std::future::Future<Output = Result<bool, Error>>,
{
    let mut routable = true;
    for served in futures_util::future::join_all(arms).await {
        routable &= served?;
    }
    Ok(routable)
}

/// Frontend and mocker started by hand, `/v1/models` polled every 1 s,
/// then `sleep(1)`; whether a completion right then is served.
async fn by_hand_sequence(ctx: &TestContext, stacks: usize) -> Result<bool, Error> {
    let found = dynamo::Dynamo::find().map_err(|e| Error::Dynamo(e.to_string()))?;
    let model = dynamo::tiny_model(ctx.output_dir().join("tiny"))?;
    let one = |i: usize| {
        let (found, model) = (found.clone(), model.clone());
        async move {
            let port = ctx.reserve_port(&format!("http{i}"))?;
            let system = ctx.reserve_port(&format!("system{i}"))?;
            let ns = format!("{}-h{i}", ctx.namespace());
            let mocker = spawn(ctx, &format!("h{i}-mocker"), &found.python, &ns)
                .args(["-m", "dynamo.mocker", "--model-path"])
                .arg(&model)
                .args(["--model-name", MODEL, "--speedup-ratio", "0", "--endpoint"])
                .arg(format!("dyn://{ns}.backend.generate"))
                .env("DYN_SYSTEM_PORT", system.to_string())
                .start();
            let frontend = spawn(ctx, &format!("h{i}-frontend"), &found.python, &ns)
                .args(["-m", "dynamo.frontend", "--http-port", &port.to_string()])
                .start();
            let (_mocker, _frontend): (ManagedProcess, ManagedProcess) =
                (mocker.await?, frontend.await?);
            let base = format!("http://127.0.0.1:{port}");
            let listed = health::openai_models(&base, [MODEL]);
            while !matches!(listed.check(Duration::from_secs(5)).await, Check::Ready) {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<bool, Error>(served_now(&base).await)
        }
    };
    all_served((0..stacks).map(one)).await
}

/// A Dynamo process with the env Dynamo's own tests set by hand.
fn spawn(
    ctx: &TestContext,
    name: &str,
    python: &std::path::Path,
    namespace: &str,
) -> dynamo_test::ProcessBuilder {
    ctx.process(name, python)
        .env("DYN_NAMESPACE", namespace)
        .env("DYN_TCP_RPC_HOST", "127.0.0.1")
        .env("DYN_TCP_RESPONSE_STREAM_HOST", "127.0.0.1")
        .env("DYN_EVENT_PLANE_HOST", "127.0.0.1")
}

/// What a frontend did after one of its two workers was SIGKILLed.
struct AfterKill {
    /// Until its `/health` listed one worker.
    dropped: Duration,
    /// Until the last completion that failed (none: `None`).
    last_failure: Option<Duration>,
    failed: usize,
    served: usize,
}

/// Two mockers, one SIGKILLed; completions sent back to back until the
/// frontend lists one worker.
async fn killed_worker(ctx: &TestContext) -> Result<AfterKill, Error> {
    let model = dynamo::tiny_model(ctx.output_dir().join("tiny"))?;
    let stack: Stack = ctx
        .dynamo()
        .mocker(MODEL, &model)
        .mocker(MODEL, &model)
        .start()
        .await?;
    let one_left = stack.frontend_with_workers(1);
    let victim = stack.workers()[0].process();
    let killed = Instant::now();
    victim.kill();
    let (mut failed, mut served, mut last_failure) = (0, 0, None);
    while !matches!(one_left.check(Duration::from_secs(5)).await, Check::Ready) {
        match stack.completion(MODEL, "hello", 1).await {
            Ok(_) => served += 1,
            Err(_) => {
                failed += 1;
                last_failure = Some(killed.elapsed());
            }
        }
    }
    Ok(AfterKill {
        dropped: killed.elapsed(),
        last_failure,
        failed,
        served,
    })
}

fn report(config: &Config, rows: &[Row; 4], kill: &[AfterKill]) {
    let p50 = |row: &Row| {
        let mut sorted = row.times.clone();
        sorted.sort();
        (
            percentile(&sorted, 0.5),
            sorted.first().copied(),
            sorted.last().copied(),
        )
    };
    println!(
        "dynamo_bench: {} runs per arm, ai-dynamo {}",
        config.runs,
        dynamo::Dynamo::find()
            .map(|d| d.version)
            .unwrap_or_default()
    );
    println!(
        "| arm | runs | p50 | min | max | not routable when declared ready |\n|---|---|---|---|---|---|"
    );
    let names = [
        "harness: ctx.dynamo() one stack",
        "by hand: poll /v1/models every 1 s + sleep(1), one stack",
        "harness: two stacks at once",
        "by hand: two stacks at once",
    ];
    for (name, row) in names.iter().zip(rows) {
        let (mid, min, max) = p50(row);
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            row.times.len(),
            fmt_ms(mid),
            fmt_ms(min),
            fmt_ms(max),
            row.failures
        );
    }
    for (harness, by_hand, what) in [(0, 1, "one stack"), (2, 3, "two stacks")] {
        if let ((Some(h), _, _), (Some(b), _, _)) = (p50(&rows[harness]), p50(&rows[by_hand])) {
            println!(
                "{what}: harness / by hand p50 = {:.2}",
                h.as_secs_f64() / b.as_secs_f64()
            );
        }
    }
    let dropped = Row {
        times: kill.iter().map(|k| k.dropped).collect(),
        failures: 0,
    };
    let last_failure = Row {
        times: kill.iter().filter_map(|k| k.last_failure).collect(),
        failures: 0,
    };
    println!("\nkilled worker (SIGKILL, 1 of 2), {} runs:", kill.len());
    println!("| after the kill | p50 | min | max |\n|---|---|---|---|");
    for (name, row) in [
        ("dropped from the frontend's /health", &dropped),
        ("last failed completion (runs with one)", &last_failure),
    ] {
        let (mid, min, max) = p50(row);
        println!(
            "| {name} | {} | {} | {} |",
            fmt_ms(mid),
            fmt_ms(min),
            fmt_ms(max)
        );
    }
    println!(
        "completions sent back to back meanwhile: {} served, {} failed",
        kill.iter().map(|k| k.served).sum::<usize>(),
        kill.iter().map(|k| k.failed).sum::<usize>()
    );
}
