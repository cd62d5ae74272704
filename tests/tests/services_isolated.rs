//! Private instances on dynamic ports, for tests that stop, restart or kill them.

use std::time::Duration;

use dynamo_test::health;
use dynamo_test::services::Source;
use dynamo_test::{dynamo_test, Error, Etcd, Nats, ServicePorts};
use dynamo_test_examples::nats_client::NatsClient;

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
    NatsClient::connect(&url).await.unwrap();
    nats.stop().await?;
    assert!(NatsClient::connect(&url).await.is_err(), "stopped");
    nats.start().await?;
    // Real traffic again after the restart, on the same URL.
    let mut client = NatsClient::connect(&url).await.unwrap();
    client.subscribe(&nats.subject("x"), 7).await.unwrap();
    let mut publisher = NatsClient::connect(&url).await.unwrap();
    publisher
        .publish(&nats.subject("x"), b"back")
        .await
        .unwrap();
    let message = client
        .next_message(std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(message.payload, b"back");
    Ok(())
}
