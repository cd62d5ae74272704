//! The "Dynamo serve on 8000+" pattern: start the model server on the
//! test's `dynamo_serve` port and wait until `/health` is healthy and
//! `/v1/models` lists the models, in one statement. The mock server stands
//! in for your frontend: swap the program and arguments for your own.

use std::time::Duration;

use dynamo_test::{dynamo_test, Error, ServicePorts, TestContext};

const MOCK: &str = env!("CARGO_BIN_EXE_mock_model_server");

#[dynamo_test(timeout = "60s")]
async fn frontend_serves_chat_completions(
    ports: ServicePorts,
    ctx: &TestContext,
) -> Result<(), Error> {
    let base = ports.dynamo_serve_url("");
    let port = ports.dynamo_serve.to_string();
    ctx.process("frontend", MOCK)
        .args([
            "--port",
            &port,
            "--model",
            "llama-3-8b",
            "--startup-delay",
            "300ms",
        ])
        .ready_openai(&base, ["llama-3-8b"])
        .start()
        .await?;

    let reply = chat(&base, "llama-3-8b", "hello dynamo").await;
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        "echo: hello dynamo"
    );
    assert_eq!(reply["model"], "llama-3-8b");
    Ok(())
}

#[dynamo_test(timeout = "60s")]
async fn a_frontend_that_never_gets_healthy_fails_with_its_story(
    ports: ServicePorts,
    ctx: &TestContext,
) {
    let base = ports.dynamo_serve_url("");
    let err = ctx
        .process("frontend", MOCK)
        .args(["--port", &ports.dynamo_serve.to_string(), "--fail-health"])
        .ready_openai(&base, ["mock-model"])
        .startup_timeout(Duration::from_millis(800))
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("did not become ready"), "{err}");
    assert!(err.contains("frontend not healthy: HTTP 503"), "{err}");
    assert!(
        err.contains("mock-model-server listening on"),
        "the log tail is included: {err}"
    );
}

#[dynamo_test(timeout = "60s")]
async fn a_frontend_that_crashes_is_reported_at_once(ports: ServicePorts, ctx: &TestContext) {
    let started = std::time::Instant::now();
    let err = ctx
        .process("frontend", MOCK)
        .args([
            "--port",
            &ports.dynamo_serve.to_string(),
            "--crash-on-start",
        ])
        .ready_openai(&ports.dynamo_serve_url(""), ["mock-model"])
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "not the 60 s startup timeout"
    );
    assert!(
        err.contains("exited (exit status: 2) before it was ready"),
        "{err}"
    );
}

#[dynamo_test(timeout = "60s")]
async fn a_frontend_that_dies_later_shows_its_exit(ports: ServicePorts, ctx: &TestContext) {
    // Ready first, then gone: the fault a test of a client's retry logic needs.
    let frontend = ctx
        .process("frontend", MOCK)
        .args(["--port", &ports.dynamo_serve.to_string()])
        .args(["--model", "mock-model", "--exit-after", "3s"])
        .ready_openai(&ports.dynamo_serve_url(""), ["mock-model"])
        .start()
        .await
        .unwrap();
    assert_eq!(frontend.exit_status(), None, "up once ready");
    let status = tokio::time::timeout(Duration::from_secs(10), frontend.wait())
        .await
        .expect("--exit-after 3s ends it");
    assert_eq!(status.code(), Some(3));
    assert!(
        frontend.log_tail(5).contains("exiting with code 3"),
        "{}",
        frontend.log_tail(5)
    );
}

/// Several tests at once, each with its own frontend on its own 8000+ port.
macro_rules! parallel_frontends {
    ($($name:ident),*) => {$(
        #[dynamo_test(timeout = "60s")]
        async fn $name(ports: ServicePorts, ctx: &TestContext) -> Result<(), Error> {
            let base = ports.dynamo_serve_url("");
            let model = stringify!($name);
            ctx.process("frontend", MOCK)
                .args(["--port", &ports.dynamo_serve.to_string(), "--model", model])
                .ready_openai(&base, [model])
                .start()
                .await?;
            assert!(ports.dynamo_serve >= ports.dynamo_serve_base);
            let reply = chat(&base, model, "which port?").await;
            assert_eq!(reply["model"], model, "each test talks to its own server");
            Ok(())
        }
    )*};
}

parallel_frontends!(parallel_a, parallel_b, parallel_c, parallel_d, parallel_e, parallel_f);

/// POSTs one chat completion and returns the JSON reply.
async fn chat(base: &str, model: &str, text: &str) -> serde_json::Value {
    let body = serde_json::json!({"model": model, "messages": [{"role": "user", "content": text}]});
    let response = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    serde_json::from_str(&response.text().await.unwrap()).unwrap()
}
