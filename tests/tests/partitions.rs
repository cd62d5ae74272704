//! Tests for `cargo nextest run --partition count:K/2`, two partitions at
//! once on one machine (how CI splits a suite): every test uses the shared
//! etcd and NATS and checks its own namespace.
//!
//! Alone (`cargo test`, plain nextest) each test is a round trip through
//! both services. `scripts/test.sh` runs the two partitions at the same
//! time with `DYNAMO_TEST_PARTITION_LOG` (a file both append to) and
//! `DYNAMO_TEST_PARTITION` (1 or 2): each test then records which etcd and
//! NATS processes served it and waits until a test of the other partition
//! has run too, so the partitions provably overlap; the script checks that
//! both used one etcd and one NATS, each test its own namespace, and that
//! nothing is left afterwards.

use std::io::Write;
use std::time::Duration;

use dynamo_test::admin::listeners;
use dynamo_test::{dynamo_test, Error, Etcd, Nats, TestContext};
use futures_util::StreamExt;

macro_rules! partition_tests {
    ($($name:ident),* $(,)?) => {$(
        #[dynamo_test(services(etcd, nats), timeout = "120s")]
        async fn $name(etcd: Etcd, nats: Nats, ctx: &TestContext) -> Result<(), Error> {
            round_trip(&etcd, &nats, ctx).await?;
            record_and_meet(&etcd, &nats, ctx).await;
            Ok(())
        }
    )*};
}

partition_tests!(part_a, part_b, part_c, part_d);

/// A key under the test's prefix and a message on its subject.
async fn round_trip(etcd: &Etcd, nats: &Nats, ctx: &TestContext) -> Result<(), Error> {
    etcd.put(&etcd.key("owner"), ctx.name()).await?;
    assert_eq!(etcd.list(&etcd.key_prefix()).await?.len(), 1);
    let client = async_nats::connect(nats.url()).await.unwrap();
    let subject = nats.subject("ping");
    let mut sub = client.subscribe(subject.clone()).await.unwrap();
    client.flush().await.unwrap();
    client
        .publish(subject.clone(), ctx.name().to_string().into())
        .await
        .unwrap();
    let message = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("no message within 10 s")
        .expect("subscription closed");
    assert_eq!(&message.payload[..], ctx.name().as_bytes());
    Ok(())
}

/// Under `scripts/test.sh`: one line per test (partition, etcd pid, NATS
/// pid, namespace), then wait for a line of the other partition.
async fn record_and_meet(etcd: &Etcd, nats: &Nats, ctx: &TestContext) {
    let (Ok(log), Ok(partition)) = (
        std::env::var("DYNAMO_TEST_PARTITION_LOG"),
        std::env::var("DYNAMO_TEST_PARTITION"),
    ) else {
        return;
    };
    let pid_on = |port: Option<u16>| {
        let port = port.expect("a shared service on known ports");
        let pids: Vec<u32> = listeners(port).iter().filter_map(|l| l.pid).collect();
        assert_eq!(pids.len(), 1, "one process listens on {port}: {pids:?}");
        pids[0]
    };
    let line = format!(
        "partition={partition} etcd={} nats={} namespace={}\n",
        pid_on(etcd.port()),
        pid_on(nats.port()),
        ctx.namespace()
    );
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&log)
        .unwrap();
    file.write_all(line.as_bytes()).unwrap();
    drop(file);
    let other = if partition == "1" { "2" } else { "1" };
    let met = dynamo_test_suite::eventually(Duration::from_secs(90), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(&format!("partition={other} "))
    });
    assert!(
        met,
        "no test of partition {other} ran while partition {partition} did"
    );
}
