//! The real Dynamo (`python -m dynamo.frontend`, `python -m dynamo.mocker`
//! from PyPI, see scripts/install-dynamo.sh) started by `ctx.dynamo()`, on
//! the suite's shared etcd and NATS, serving a tiny local model.
//!
//! Skipped (saying so) where Dynamo is not installed; `scripts/test.sh`
//! installs it and makes a missing Dynamo a failure.

use std::time::Duration;

use dynamo_test::dynamo::{self, Dynamo, Worker};
use dynamo_test::{dynamo_test, Error, ServicePorts, TestContext};

fn tiny(ctx: &TestContext, name: &str) -> std::path::PathBuf {
    dynamo::tiny_model(ctx.output_dir().join(name)).unwrap()
}

#[dynamo_test(services(etcd, nats), timeout = "180s")]
async fn a_chat_completion_returns_the_tokens_asked_for(
    ctx: &TestContext,
    ports: ServicePorts,
) -> Result<(), Error> {
    let Some(_) = Dynamo::find_or_skip("a_chat_completion_returns_the_tokens_asked_for")? else {
        return Ok(());
    };
    let model = tiny(ctx, "tiny");
    let stack = ctx
        .dynamo()
        .frontend(ports.dynamo_serve)
        .mocker("tiny", &model)
        .start()
        .await?;
    assert_eq!(stack.port(), ports.dynamo_serve);
    assert_eq!(stack.namespace(), ctx.namespace());
    let reply = stack.chat("tiny", "hello world", 4).await?;
    assert_eq!(reply.completion_tokens(), Some(4), "{}", reply.raw);
    assert_eq!(reply.model(), Some("tiny"));
    let reply = stack.completion("tiny", "hello", 3).await?;
    assert_eq!(reply.completion_tokens(), Some(3), "{}", reply.raw);
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
    assert!(err.contains("HTTP 404"), "{err}");
    Ok(())
}

#[dynamo_test(services(etcd, nats), timeout = "180s")]
async fn two_stacks_at_once_each_list_only_their_own_model(
    ctx: &TestContext,
    ports: ServicePorts,
) -> Result<(), Error> {
    let Some(_) = Dynamo::find_or_skip("two_stacks_at_once_each_list_only_their_own_model")? else {
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
        err.contains("HTTP 404"),
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
    let Some(_) = Dynamo::find_or_skip("one_frontend_routes_to_both_of_its_workers")? else {
        return Ok(());
    };
    let model = tiny(ctx, "tiny");
    let stack = ctx
        .dynamo()
        .frontend(ports.dynamo_serve)
        .mocker("tiny", &model)
        .mocker("tiny", &model)
        .start()
        .await?;
    ctx.wait_for(stack.frontend_with_workers(2)).await?;
    for _ in 0..8 {
        stack.completion("tiny", "hello", 1).await?;
    }
    // Round-robin (Dynamo's default router): each worker took requests.
    for worker in stack.workers() {
        worker
            .process()
            .wait_for_log("request received", Duration::from_secs(30))
            .await?;
    }
    Ok(())
}

#[dynamo_test(services(etcd, nats), timeout = "180s")]
async fn a_killed_worker_is_no_longer_routed_to(
    ctx: &TestContext,
    ports: ServicePorts,
) -> Result<(), Error> {
    let Some(_) = Dynamo::find_or_skip("a_killed_worker_is_no_longer_routed_to")? else {
        return Ok(());
    };
    let model = tiny(ctx, "tiny");
    let stack = ctx
        .dynamo()
        .frontend(ports.dynamo_serve)
        .mocker("tiny", &model)
        .mocker("tiny", &model)
        .start()
        .await?;
    let victim = stack.workers()[0].process();
    victim.kill();
    victim.wait().await;
    // Dropped from the frontend's view (the bound is measured by
    // `dynamo_bench`, see BENCHMARKS.md); then every request is served.
    ctx.wait_for(stack.frontend_with_workers(1))
        .timeout(Duration::from_secs(120))
        .await?;
    for _ in 0..6 {
        stack.completion("tiny", "hello", 1).await?;
    }
    Ok(())
}

#[dynamo_test(services(etcd, nats), timeout = "180s")]
async fn a_worker_that_never_comes_up_fails_with_the_story(ctx: &TestContext, ports: ServicePorts) {
    let Some(_) =
        Dynamo::find_or_skip("a_worker_that_never_comes_up_fails_with_the_story").unwrap()
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
    // What was awaited, and why not.
    assert!(err.contains("0 worker(s) serving `generate`"), "{err}");
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
    let Some(_) = Dynamo::find_or_skip("a_worker_that_exits_fails_the_start_at_once").unwrap()
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
async fn a_stack_says_which_service_it_lacks(ctx: &TestContext) {
    let err = ctx
        .dynamo()
        .mocker("tiny", "/nonexistent")
        .python("/bin/false")
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Dynamo not found: /bin/false"), "{err}");
    assert!(err.contains("scripts/install-dynamo.sh"), "{err}");
    let Some(found) = Dynamo::find_or_skip("a_stack_says_which_service_it_lacks").unwrap() else {
        return;
    };
    let err = ctx
        .dynamo()
        .mocker("tiny", "/nonexistent")
        .python(&found.python)
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs etcd, and this test has none"), "{err}");
    assert!(err.contains("services(etcd)"), "{err}");
}
