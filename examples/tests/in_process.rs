//! An in-process server: turn the reservation into a bound listener (no
//! race window at all), serve on it, and wait for readiness.

use dynamo_test::{dynamo_test, health, Error, Port, TestContext};
use dynamo_test_examples::mock_server::{serve, MockServerConfig};

#[dynamo_test(timeout = "30s")]
async fn in_process_model_server(api: Port, ctx: &TestContext) -> Result<(), Error> {
    let base = api.url("");
    // A bind error names the port (PortError converts into Error).
    let listener = api.into_tokio_listener()?;
    let config = MockServerConfig {
        models: vec!["tiny".into()],
        ..MockServerConfig::default()
    };
    tokio::spawn(serve(listener, config));

    let ready = ctx.wait_for(health::openai_models(&base, ["tiny"])).await?;
    assert!(ready.attempts >= 1);
    Ok(())
}
