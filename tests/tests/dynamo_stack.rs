//! The real Dynamo (`python -m dynamo.frontend`, `python -m dynamo.mocker`
//! from PyPI, see scripts/install-dynamo.sh) started by `ctx.dynamo()`, on
//! the suite's shared etcd and NATS, serving a tiny local model.
//!
//! Skipped (saying so) where Dynamo is not installed; `scripts/test.sh`
//! installs it and makes a missing Dynamo a failure.

use std::path::Path;
use std::time::{Duration, Instant};

use dynamo_test::dynamo::{self, Dynamo, Worker};
use dynamo_test::health::{self, Check};
use dynamo_test::{dynamo_test, Error, ServicePorts, TestContext};

fn tiny(ctx: &TestContext, name: &str) -> std::path::PathBuf {
    dynamo::tiny_model(ctx.output_dir().join(name)).unwrap()
}

/// A frontend on the test's `dynamo_serve` port and `mockers` mockers of
/// the tiny model, routable.
async fn tiny_stack(
    ctx: &TestContext,
    ports: &ServicePorts,
    mockers: usize,
) -> Result<dynamo::Stack, Error> {
    let model = tiny(ctx, "tiny");
    let builder = ctx.dynamo().frontend(ports.dynamo_serve);
    (0..mockers)
        .fold(builder, |b, _| b.mocker("tiny", &model))
        .start()
        .await
}

/// How many `generate` requests a worker's log says it received.
fn generate_requests(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("request received") && l.contains("endpoint=\"generate\""))
        .count()
}

#[dynamo_test(services(etcd, nats), timeout = "180s")]
async fn a_chat_completion_returns_the_tokens_asked_for(
    ctx: &TestContext,
    ports: ServicePorts,
) -> Result<(), Error> {
    let Some(_) = Dynamo::find_or_skip("a_chat_completion_returns_the_tokens_asked_for").await?
    else {
        return Ok(());
    };
    let stack = tiny_stack(ctx, &ports, 1).await?;
    assert_eq!(stack.port(), ports.dynamo_serve);
    assert_eq!(stack.namespace(), ctx.namespace());
    let reply = stack.chat("tiny", "hello world", 4).await?;
    assert_eq!(reply.completion_tokens(), Some(4), "{}", reply.raw);
    assert_eq!(reply.model(), Some("tiny"));
    let reply = stack.completion("tiny", "hello", 3).await?;
    assert_eq!(reply.completion_tokens(), Some(3), "{}", reply.raw);
    // Dynamo's planes on loopback: the worker's transport address.
    let health = stack.get("/health").await?;
    let own: Vec<&serde_json::Value> = health.body["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["namespace"] == ctx.namespace())
        .collect();
    assert!(!own.is_empty(), "{}", health.raw);
    for instance in own {
        let address = instance["transport"]["tcp"].as_str().unwrap_or_default();
        assert!(address.starts_with("127.0.0.1:"), "{instance}");
    }
    // The worker's own health on its reserved system port.
    let worker = &stack.workers()[0];
    assert!(worker.system_port() <= 32767);
    ctx.wait_for(worker.health()).await?;
    // A model the stack does not serve is an error with the frontend's body.
    let err = stack
        .chat("nope", "hello", 1)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected HTTP 200, got 404"), "{err}");
    Ok(())
}

#[dynamo_test(services(etcd, nats), timeout = "180s")]
async fn two_stacks_at_once_each_list_only_their_own_model(
    ctx: &TestContext,
    ports: ServicePorts,
) -> Result<(), Error> {
    let Some(_) = Dynamo::find_or_skip("two_stacks_at_once_each_list_only_their_own_model").await?
    else {
        return Ok(());
    };
    let model = tiny(ctx, "tiny");
    let a = ctx
        .dynamo()
        .name("a")
        .frontend(ports.dynamo_serve)
        .mocker("model-a", &model);
    let b = ctx.dynamo().name("b").mocker("model-b", &model);
    let (a, b) = tokio::join!(a.start(), b.start());
    let (a, b) = (a?, b?);
    assert_ne!(a.namespace(), b.namespace());
    assert_ne!(a.port(), b.port());
    assert_eq!(a.list_models().await?, ["model-a"]);
    assert_eq!(b.list_models().await?, ["model-b"]);
    let err = a.chat("model-b", "hello", 1).await.unwrap_err().to_string();
    assert!(
        err.contains("expected HTTP 200, got 404"),
        "stack a must not route to b's model: {err}"
    );
    assert_eq!(
        b.chat("model-b", "hello", 2).await?.completion_tokens(),
        Some(2)
    );
    Ok(())
}

#[dynamo_test(services(etcd, nats), timeout = "180s")]
async fn one_frontend_routes_to_both_of_its_workers(
    ctx: &TestContext,
    ports: ServicePorts,
) -> Result<(), Error> {
    let Some(_) = Dynamo::find_or_skip("one_frontend_routes_to_both_of_its_workers").await? else {
        return Ok(());
    };
    let stack = tiny_stack(ctx, &ports, 2).await?;
    ctx.wait_for(stack.frontend_with_workers(2)).await?;
    let served = |stack: &dynamo::Stack| -> Vec<usize> {
        stack
            .workers()
            .iter()
            .map(|w| generate_requests(w.process().log_path()))
            .collect()
    };
    let before = served(&stack);
    for _ in 0..8 {
        stack.completion("tiny", "hello", 1).await?;
    }
    // Their log lines may lag the replies: wait for all 8 to be logged.
    let total = |counts: &[usize]| counts.iter().sum::<usize>();
    let logged = {
        let (stack, want) = (&stack, total(&before) + 8);
        health::from_fn("8 more requests in the workers' logs", move || {
            let now = total(&served(stack));
            async move {
                match now >= want {
                    true => Check::Ready,
                    false => Check::not_ready(format!("{now} of {want} logged")),
                }
            }
        })
    };
    ctx.wait_for(logged).await?;
    // Round-robin (Dynamo's default router): each worker took its share.
    let gained: Vec<usize> = served(&stack)
        .iter()
        .zip(&before)
        .map(|(a, b)| a - b)
        .collect();
    assert_eq!(total(&gained), 8, "{gained:?}");
    assert!(
        gained.iter().all(|&n| n >= 2),
        "one worker took (nearly) all: {gained:?}"
    );
    Ok(())
}

#[dynamo_test(services(etcd, nats), timeout = "180s")]
async fn a_killed_worker_is_no_longer_routed_to(
    ctx: &TestContext,
    ports: ServicePorts,
) -> Result<(), Error> {
    let Some(_) = Dynamo::find_or_skip("a_killed_worker_is_no_longer_routed_to").await? else {
        return Ok(());
    };
    let stack = tiny_stack(ctx, &ports, 2).await?;
    let victim = stack.workers()[0].process();
    let killed = Instant::now();
    victim.kill();
    victim.wait().await;
    // Dropped from the frontend's view (the bound is measured by
    // `dynamo_bench`, see BENCHMARKS.md); then every request is served.
    ctx.wait_for(stack.frontend_with_workers(1))
        .timeout(Duration::from_secs(120))
        .await?;
    ctx.note(&format!(
        "the killed worker was dropped after {:.1?}",
        killed.elapsed()
    ));
    for _ in 0..6 {
        stack.completion("tiny", "hello", 1).await?;
    }
    Ok(())
}

#[dynamo_test(services(etcd, nats), timeout = "180s")]
async fn a_worker_that_never_comes_up_fails_with_the_story(ctx: &TestContext, ports: ServicePorts) {
    let Some(_) = Dynamo::find_or_skip("a_worker_that_never_comes_up_fails_with_the_story")
        .await
        .unwrap()
    else {
        return;
    };
    let never = Worker::program("/bin/sh")
        .args(["-c", "echo loading weights of ghost; exec sleep 600"])
        .serves("ghost");
    let err = ctx
        .dynamo()
        .frontend(ports.dynamo_serve)
        .worker(never)
        // Long enough for the frontend to come up on a loaded machine:
        // the story then says what it still lacked.
        .timeout(Duration::from_secs(20))
        .start()
        .await
        .unwrap_err()
        .to_string();
    eprintln!("the story, as a user sees it:\n{err}");
    assert!(err.contains("did not become routable"), "{err}");
    // What was awaited (always in the story, whatever the last answer was).
    assert!(
        err.contains("with at least 1 worker(s) in namespace"),
        "{err}"
    );
    assert!(
        err.contains("a worker counts once it registers `dyn://"),
        "{err}"
    );
    // Every process's log tail: the frontend's and the worker's.
    assert!(err.contains("frontend.log"), "the frontend's log: {err}");
    assert!(err.contains("dynamo_llm"), "the frontend's log tail: {err}");
    assert!(
        err.contains("loading weights of ghost"),
        "the worker's log tail: {err}"
    );
}

#[dynamo_test(services(etcd, nats), timeout = "180s")]
async fn a_worker_that_exits_fails_the_start_at_once(ctx: &TestContext, ports: ServicePorts) {
    let Some(_) = Dynamo::find_or_skip("a_worker_that_exits_fails_the_start_at_once")
        .await
        .unwrap()
    else {
        return;
    };
    let missing = ctx.output_dir().join("no-such-model");
    let err = ctx
        .dynamo()
        .frontend(ports.dynamo_serve)
        .mocker("tiny", &missing)
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("worker `mocker-1` exited"), "{err}");
    assert!(
        err.contains("no-such-model"),
        "the worker's log says why: {err}"
    );
}

#[dynamo_test(timeout = "60s")]
async fn a_stack_names_every_mistake_before_anything_starts(ctx: &TestContext) {
    // No services, a bad stack name, a worker serving nothing, a bad
    // worker name: one error names them all, whether Dynamo is installed
    // or not (nothing is looked for or started).
    let err = ctx
        .dynamo()
        .name("Stack_B")
        .request_plane(dynamo::RequestPlane::Nats)
        .worker(Worker::program("/bin/true").name("w 1"))
        .start()
        .await
        .unwrap_err()
        .to_string();
    for expected in [
        "stack name \"Stack_B\": use lowercase letters",
        "worker name \"w 1\"",
        "worker `w 1` serves no model",
        "needs etcd, and this test has none: add `services(etcd)`",
        "needs nats, and this test has none: add `services(nats)`",
    ] {
        assert!(err.contains(expected), "{expected:?} in: {err}");
    }
    let err = ctx.dynamo().start().await.unwrap_err().to_string();
    assert!(
        err.contains("a stack without workers serves nothing"),
        "{err}"
    );
}

#[dynamo_test(services(etcd), timeout = "60s")]
async fn a_missing_dynamo_names_the_interpreter_and_the_install(ctx: &TestContext) {
    let err = ctx
        .dynamo()
        .mocker("tiny", "/nonexistent")
        .python("/bin/false")
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Dynamo not found: /bin/false"), "{err}");
    assert!(
        err.contains("pip install ai-dynamo-runtime==1.6.1"),
        "{err}"
    );
    assert!(err.contains("scripts/install-dynamo.sh"), "{err}");
}

#[dynamo_test(services(etcd, nats), timeout = "60s")]
async fn a_second_stack_without_a_name_is_refused(ctx: &TestContext) -> Result<(), Error> {
    let Some(_) = Dynamo::find_or_skip("a_second_stack_without_a_name_is_refused").await? else {
        return Ok(());
    };
    let model = tiny(ctx, "tiny");
    ctx.dynamo().mocker("tiny", &model).start().await?;
    let err = ctx
        .dynamo()
        .mocker("tiny", &model)
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("already has a stack without a name"), "{err}");
    assert!(err.contains(".name(\"b\")"), "{err}");
    Ok(())
}

#[test]
fn the_install_script_installs_the_tested_release() {
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/install-dynamo.sh"
    ))
    .unwrap();
    let pinned = format!("version={}\n", dynamo::TESTED_DYNAMO_VERSION);
    assert!(
        script.contains(&pinned),
        "scripts/install-dynamo.sh must say {pinned:?}"
    );
}
