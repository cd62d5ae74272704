//! A real Dynamo stack in a test: the frontend and a mocker worker serving
//! a tiny local model, on the suite's shared etcd and NATS, and a chat
//! completion through it. Copy this file to start your own.
//!
//! Needs Dynamo (`export DYNAMO_PYTHON=$(bash scripts/install-dynamo.sh)`);
//! without it the test says it is skipped. Swap `.mocker(..)` for your
//! engine (`.worker(Worker::python_module("dynamo.vllm")...)`) on a GPU
//! machine.

use dynamo_test::dynamo::{self, Dynamo};
use dynamo_test::{dynamo_test, Error, ServicePorts, TestContext};

#[dynamo_test(services(etcd, nats), timeout = "120s")]
async fn chat_through_a_real_dynamo_stack(
    ctx: &TestContext,
    ports: ServicePorts,
) -> Result<(), Error> {
    let Some(_) = Dynamo::find_or_skip("chat_through_a_real_dynamo_stack").await? else {
        return Ok(());
    };
    // A tokenizer-only model made from files: no weights, no model hub.
    let model = dynamo::tiny_model(ctx.output_dir().join("tiny"))?;
    // Frontend on the plan's dynamo_serve port, one mocker; returns once
    // the model is routable (listed *and* answering a completion).
    let stack = ctx
        .dynamo()
        .frontend(ports.dynamo_serve)
        .mocker("tiny", &model)
        .start()
        .await?;
    let reply = stack.chat("tiny", "hello world", 4).await?;
    assert_eq!(reply.completion_tokens(), Some(4), "{}", reply.raw);
    assert_eq!(stack.list_models().await?, ["tiny"]);
    Ok(())
}
