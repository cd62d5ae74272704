//! Private instances on dynamic ports, for tests that stop, restart or kill them.

use std::time::Duration;

use dynamo_test::health;
use dynamo_test::services::Source;
use dynamo_test::{dynamo_test, Error, Etcd, Nats, ServicePorts};
use futures_util::StreamExt;

#[dynamo_test(services(etcd(isolated)), timeout = "60s")]
async fn kill_etcd_mid_test_and_restart_it(etcd: Etcd, ports: ServicePorts) -> Result<(), Error> {
    assert_eq!(etcd.source(), Source::Isolated);
    let port = etcd.port().unwrap();
    assert_ne!(port, 2379, "a private instance is on a dynamic port");
    assert_eq!(
        ports.etcd_client, port,
        "ServicePorts shows the ports in use"
    );

    etcd.put("/survives", "restart").await?;
    etcd.kill()?;
    let dead = health::etcd(etcd.url())
        .wait(Duration::from_millis(300))
        .await;
    assert!(dead.is_err(), "etcd answers after SIGKILL");
    assert!(
        etcd.get("/survives").await.is_err(),
        "a client sees the outage"
    );

    etcd.start().await?;
    assert_eq!(etcd.port(), Some(port), "same port after restart");
    assert_eq!(
        etcd.get("/survives").await?.as_deref(),
        Some("restart"),
        "same data dir"
    );
    Ok(())
}

#[dynamo_test(services(nats(isolated)), timeout = "60s")]
async fn stop_and_start_nats(nats: Nats) -> Result<(), Error> {
    let url = nats.url().to_string();
    connect(&url).await.unwrap();
    nats.stop().await?;
    assert!(connect(&url).await.is_err(), "stopped");
    nats.start().await?;
    // Real traffic again after the restart, on the same URL. One connection:
    // the server handles its SUB before its PUB, and echoes to us.
    let client = connect(&url).await.unwrap();
    let mut sub = client.subscribe(nats.subject("x")).await.unwrap();
    client
        .publish(nats.subject("x"), "back".into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    let message = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("no message within 10 s")
        .expect("the subscription ended");
    assert_eq!(&message.payload[..], b"back");
    Ok(())
}

/// One connect attempt (no retry, the default), bounded so that a stopped
/// server is an error rather than a hang.
async fn connect(url: &str) -> Result<async_nats::Client, async_nats::ConnectError> {
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(url)
        .await
}

#[dynamo_test(services(etcd(isolated)), timeout = "60s")]
async fn a_paused_etcd_hangs_and_resumes_with_its_data(etcd: Etcd) -> Result<(), Error> {
    etcd.put("/before", "pause").await?;
    etcd.pause()?;
    // Hung, not dead: the port still accepts, nothing answers.
    let probe = health::etcd(etcd.url());
    let hung = health::Wait::new(&probe, Duration::from_millis(600))
        .attempt_timeout(Duration::from_millis(200))
        .run()
        .await
        .unwrap_err();
    assert!(!hung.history.contains("connection refused"), "{hung}");
    etcd.resume()?;
    etcd.wait_healthy(Duration::from_secs(10)).await?;
    assert_eq!(etcd.get("/before").await?.as_deref(), Some("pause"));
    etcd.restart().await?;
    assert_eq!(
        etcd.get("/before").await?.as_deref(),
        Some("pause"),
        "same data"
    );
    Ok(())
}

/// A NATS client must survive its server hanging for a while: what it
/// publishes meanwhile is delivered once the server runs again.
#[dynamo_test(services(nats(isolated)), timeout = "60s")]
async fn a_nats_client_survives_a_paused_server(nats: Nats) -> Result<(), Error> {
    let client = connect(nats.url()).await.unwrap();
    let mut sub = client.subscribe(nats.subject("p")).await.unwrap();
    client.flush().await.unwrap();
    nats.pause()?;
    client
        .publish(nats.subject("p"), "while paused".into())
        .await
        .unwrap();
    // Not delivered while the server is frozen.
    let early = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
    assert!(early.is_err(), "a paused server delivered: {early:?}");
    nats.resume()?;
    nats.wait_healthy(Duration::from_secs(10)).await?;
    let message = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("no message within 10 s of the resume")
        .expect("the subscription ended");
    assert_eq!(&message.payload[..], b"while paused");
    Ok(())
}

#[dynamo_test(services(etcd), timeout = "60s")]
async fn faults_need_a_private_instance(etcd: Etcd) {
    let err = etcd.pause().unwrap_err().to_string();
    assert!(err.contains("`pause` needs a private etcd"), "{err}");
    assert!(err.contains("services(etcd(isolated))"), "{err}");
}
