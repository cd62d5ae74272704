//! Tests sharing the one etcd and the one NATS of the run: real traffic,
//! isolation by namespace, children told where the services are.

use std::time::Duration;

use dynamo_test::services::Source;
use dynamo_test::{dynamo_test, Error, Etcd, Nats, ServicePorts, TestContext};
use futures_util::StreamExt;

/// Each test writes keys under its prefix, reads them back, sees no other
/// test's keys, and sends itself a message over NATS.
macro_rules! shared_service_tests {
    ($($name:ident),* $(,)?) => {$(
        #[dynamo_test(services(etcd, nats), timeout = "60s")]
        async fn $name(etcd: Etcd, nats: Nats, ctx: &TestContext) -> Result<(), Error> {
            round_trip(&etcd, &nats, ctx).await
        }
    )*};
}

shared_service_tests!(
    shared_a, shared_b, shared_c, shared_d, shared_e, shared_f, shared_g, shared_h
);

async fn round_trip(etcd: &Etcd, nats: &Nats, ctx: &TestContext) -> Result<(), Error> {
    assert!(matches!(
        etcd.source(),
        Source::SharedStarted | Source::SharedExternal | Source::FromEnv
    ));
    for i in 0..3 {
        etcd.put(
            &etcd.key(&format!("worker/{i}")),
            &format!("{}:{i}", ctx.name()),
        )
        .await?;
    }
    assert_eq!(
        etcd.get(&etcd.key("worker/1")).await?,
        Some(format!("{}:1", ctx.name()))
    );
    let mine = etcd.list(&etcd.key_prefix()).await?;
    assert_eq!(
        mine.len(),
        3,
        "only this test's keys under its prefix: {mine:?}"
    );

    let subject = nats.subject("requests");
    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut sub = subscribed(&client, &subject).await;
    let publisher = async_nats::connect(nats.url()).await.unwrap();
    publish(&publisher, &subject, ctx.name()).await;
    let message = next(&mut sub).await;
    assert_eq!(message.subject.as_str(), subject);
    assert_eq!(&message.payload[..], ctx.name().as_bytes());
    Ok(())
}

/// Subscribes to `subject` and returns once the server routes it to us (our
/// own probe came back): a publish from another connection could otherwise
/// reach the server before our SUB does.
async fn subscribed(client: &async_nats::Client, subject: &str) -> async_nats::Subscriber {
    let mut sub = client.subscribe(subject.to_string()).await.unwrap();
    publish(client, subject, "probe").await;
    assert_eq!(&next(&mut sub).await.payload[..], b"probe");
    sub
}

/// Publishes and flushes, so the message has left the client.
async fn publish(client: &async_nats::Client, subject: &str, payload: &str) {
    let payload = payload.to_string().into();
    client.publish(subject.to_string(), payload).await.unwrap();
    client.flush().await.unwrap();
}

/// The next message on `sub`, waited for up to 10 s.
async fn next(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("no message within 10 s")
        .expect("the subscription ended")
}

#[dynamo_test(services(etcd, nats))]
async fn children_are_told_where_the_services_are(
    etcd: Etcd,
    nats: Nats,
    ports: ServicePorts,
    ctx: &TestContext,
) {
    let child = ctx
        .process("env", "sh")
        .args(["-c", "echo \"$ETCD_ENDPOINTS $NATS_SERVER $DYN_NAMESPACE\""])
        .start()
        .await
        .unwrap();
    child.wait().await;
    let expected = format!(
        "{} {} {}",
        etcd.urls().join(","),
        nats.url(),
        ctx.namespace()
    );
    assert_eq!(child.log_tail(1), expected);
    if etcd.source() != Source::FromEnv {
        assert_eq!(
            etcd.url(),
            format!("http://127.0.0.1:{}", ports.etcd_client)
        );
        assert_eq!(
            nats.url(),
            format!("nats://127.0.0.1:{}", ports.nats_client)
        );
        let monitor = nats.monitor_url().unwrap();
        assert_eq!(monitor, format!("http://127.0.0.1:{}", ports.nats_http));
        ctx.wait_for(dynamo_test::health::nats_monitor(&monitor))
            .await
            .unwrap();
        assert_eq!(etcd.port(), Some(ports.etcd_client));
        assert_eq!(nats.port(), Some(ports.nats_client));
        assert!(ctx
            .port_table()
            .contains(&format!("etcd.client={}", ports.etcd_client)));
    }
}

#[dynamo_test]
async fn a_parameter_alone_requires_the_service(etcd: Etcd) -> Result<(), Error> {
    etcd.put(&etcd.key("k"), "v").await?;
    assert_eq!(etcd.get(&etcd.key("k")).await?.as_deref(), Some("v"));
    Ok(())
}

#[dynamo_test(services(etcd))]
async fn shared_instances_refuse_stop_and_kill(etcd: Etcd) {
    let err = etcd.kill().unwrap_err().to_string();
    assert!(err.contains("services(etcd(isolated))"), "{err}");
    let err = etcd.stop().await.unwrap_err().to_string();
    assert!(err.contains("needs a private etcd"), "{err}");
}

/// Runs a test the way `#[dynamo_test(services(etcd))]` expands, so that
/// what its teardown did can be checked after it.
fn run_with_etcd<F, Fut>(name: &'static str, body: F)
where
    F: FnOnce(Etcd) -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    use dynamo_test::__private::{
        run_async, Flavor, Mode, ServiceKind, ServiceRequest, TestConfig,
    };
    const ETCD: &[ServiceRequest] = &[ServiceRequest {
        kind: ServiceKind::Etcd,
        mode: Mode::Shared,
        jetstream: true,
    }];
    let config = TestConfig {
        name,
        timeout: None,
        flavor: Flavor::CurrentThread,
        start_paused: false,
        services: ETCD,
        case: false,
        should_panic: false,
    };
    run_async(config, |ctx| async move {
        let etcd = <dynamo_test::Etcd as dynamo_test::Inject>::inject(&ctx, "etcd").await?;
        body(etcd).await.map(Ok)
    });
}

#[test]
fn a_tests_keys_are_deleted_at_its_teardown() {
    let prefix = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen = prefix.clone();
    run_with_etcd("services_shared::writer", |etcd| async move {
        etcd.put(&etcd.key("a"), "1").await?;
        etcd.put(&etcd.key("b/c"), "2").await?;
        *seen.lock().unwrap() = etcd.key_prefix();
        Ok(())
    });
    let prefix = prefix.lock().unwrap().clone();
    assert!(prefix.starts_with("/writer-"), "{prefix}");
    run_with_etcd("services_shared::checker", |etcd| async move {
        assert_eq!(
            etcd.list(&prefix).await?,
            vec![],
            "keys under {prefix} outlived their test"
        );
        Ok(())
    });
}

#[dynamo_test(services(etcd, nats), timeout = "60s")]
async fn two_tests_at_once_never_see_each_others_keys_or_messages(
    etcd: Etcd,
    nats: Nats,
) -> Result<(), Error> {
    // A second test's context, alive at the same time as ours.
    let neighbour_ctx = TestContext::new("services_shared::neighbour")?;
    let neighbour =
        <dynamo_test::Etcd as dynamo_test::Inject>::inject(&neighbour_ctx, "etcd").await?;
    let neighbour_nats =
        <dynamo_test::Nats as dynamo_test::Inject>::inject(&neighbour_ctx, "nats").await?;
    assert_ne!(etcd.key_prefix(), neighbour.key_prefix());

    // The same key names on the same etcd.
    etcd.put(&etcd.key("config"), "mine").await?;
    neighbour.put(&neighbour.key("config"), "theirs").await?;
    assert_eq!(
        etcd.get(&etcd.key("config")).await?.as_deref(),
        Some("mine")
    );
    assert_eq!(etcd.list(&etcd.key_prefix()).await?.len(), 1);
    assert_eq!(neighbour.list(&neighbour.key_prefix()).await?.len(), 1);
    neighbour.delete_prefix(&neighbour.key_prefix()).await?;

    // The same subject name on the same NATS: ours only.
    let ours = async_nats::connect(nats.url()).await.unwrap();
    let mut events = subscribed(&ours, &nats.subject("events")).await;
    let theirs = async_nats::connect(neighbour_nats.url()).await.unwrap();
    publish(&theirs, &neighbour_nats.subject("events"), "theirs").await;
    publish(&theirs, &nats.subject("events"), "mine").await;
    let first = next(&mut events).await;
    assert_eq!(
        &first.payload[..],
        b"mine",
        "the neighbour's message reached us"
    );
    Ok(())
}
