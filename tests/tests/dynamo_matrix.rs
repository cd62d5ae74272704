//! Dynamo's own backend matrix, on the real Dynamo: discovery (etcd or a
//! file directory) by request plane (TCP or NATS), one body, four stacks,
//! each case with its own name, ports, namespace and teardown (rstest's
//! `#[values]` under `#[dynamo_test]`, see README "Matrices of cases").
//!
//! Skipped (saying so) where Dynamo is not installed; `scripts/test.sh`
//! installs it and makes a missing Dynamo a failure.

use std::time::Duration;

use dynamo_test::dynamo::{self, Discovery, Dynamo, RequestPlane};
use dynamo_test::{dynamo_test, Error, Etcd, ServicePorts, TestContext};
use rstest::rstest;

#[dynamo_test(services(etcd, nats), timeout = "240s")]
#[rstest]
async fn every_backend_pair_serves_a_chat(
    #[values(Discovery::Etcd, Discovery::File)] discovery: Discovery,
    #[values(RequestPlane::Tcp, RequestPlane::Nats)] plane: RequestPlane,
    ctx: &TestContext,
    ports: ServicePorts,
    etcd: Etcd,
) -> Result<(), Error> {
    let Some(_) = Dynamo::find_or_skip(ctx.name()).await? else {
        return Ok(());
    };
    // One test per pair, named after it.
    assert!(
        ctx.name().contains(&format!("{discovery:?}"))
            && ctx.name().contains(&format!("{plane:?}")),
        "{}",
        ctx.name()
    );
    let model = dynamo::tiny_model(ctx.output_dir().join("tiny"))?;
    let stack = ctx
        .dynamo()
        .frontend(ports.dynamo_serve)
        .discovery(discovery)
        .request_plane(plane)
        .mocker("tiny", &model)
        // Dynamo's NATS request plane takes its time to route (20 s+).
        .timeout(Duration::from_secs(180))
        .start()
        .await?;
    assert_eq!(stack.namespace(), ctx.namespace());
    let reply = stack.chat("tiny", "hello world", 2).await?;
    assert_eq!(reply.completion_tokens(), Some(2), "{}", reply.raw);

    // The request plane in force: the worker's transport, as the frontend sees it.
    let health = stack.get("/health").await?;
    let transports: Vec<String> = health.body["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["namespace"] == ctx.namespace() && i["endpoint"] == "generate")
        .filter_map(|i| i["transport"].as_object()?.keys().next().cloned())
        .collect();
    let expected = match plane {
        RequestPlane::Tcp => "tcp",
        RequestPlane::Nats => "nats_tcp",
    };
    assert_eq!(transports, [expected], "{}", health.raw);

    // The discovery in force: the namespace is registered in etcd, or only
    // in the case's own directory.
    let in_etcd = etcd
        .list("v1/")
        .await?
        .iter()
        .any(|(key, _)| key.contains(ctx.namespace()));
    assert_eq!(
        in_etcd,
        discovery == Discovery::Etcd,
        "namespace in etcd's v1/ keys"
    );
    let kv_dir = ctx.output_dir().join("dynamo-stack/kv");
    assert_eq!(
        kv_dir.join("v1").is_dir(),
        discovery == Discovery::File,
        "{}",
        kv_dir.display()
    );
    Ok(())
}
