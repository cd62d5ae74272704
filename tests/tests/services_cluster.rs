//! A private etcd cluster (`services(etcd(cluster = 3))`): healthy before
//! the body, its members and leader, faults one member at a time; and a
//! private NATS without JetStream (`services(nats(no_jetstream))`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use dynamo_test::health::{self, Check, Probe as _};
use dynamo_test::services::Source;
use dynamo_test::{dynamo_test, Error, Etcd, Nats, TestContext};

/// Generous: elections take tens of milliseconds, but both cores may be busy.
const LIMIT: Duration = Duration::from_secs(30);

#[dynamo_test(services(etcd(cluster = 3)), timeout = "90s")]
async fn a_cluster_is_healthy_before_the_body_and_children_get_every_member(
    ctx: &TestContext,
    etcd: Etcd,
) -> Result<(), Error> {
    assert_eq!(etcd.source(), Source::Isolated);
    let members = etcd.members();
    assert_eq!(members.len(), 3);
    let mut ports = HashSet::new();
    for (i, member) in members.iter().enumerate() {
        assert_eq!(member.name(), format!("etcd-{i}"));
        assert!(ports.insert(member.client_port()) && ports.insert(member.peer_port()));
        assert_eq!(
            member.peer_url(),
            format!("http://127.0.0.1:{}", member.peer_port())
        );
        assert!(
            member.process().exit_status().is_none(),
            "{} runs",
            member.name()
        );
        // One check, no waiting: healthy already.
        let now = health::etcd(&member.client_url())
            .check(Duration::from_secs(5))
            .await;
        assert_eq!(
            now,
            Check::Ready,
            "{} healthy before the body",
            member.name()
        );
    }
    let urls: Vec<String> = members.iter().map(|m| m.client_url()).collect();
    assert_eq!(etcd.endpoints(), &urls[..]);
    assert_eq!(etcd.urls(), &urls[..]);
    assert!(etcd.leader().await? < 3);

    let child = ctx
        .process("print-endpoints", "sh")
        .args(["-c", "echo ETCD_ENDPOINTS=$ETCD_ENDPOINTS"])
        .start()
        .await?;
    let line = child
        .wait_for_log("ETCD_ENDPOINTS=", Duration::from_secs(10))
        .await?;
    assert_eq!(
        line.trim_end(),
        format!("ETCD_ENDPOINTS={}", urls.join(","))
    );

    etcd.put(&etcd.key("k"), "v").await?;
    assert_eq!(etcd.get(&etcd.key("k")).await?.as_deref(), Some("v"));
    Ok(())
}

#[dynamo_test(services(etcd(cluster = 3)), timeout = "120s")]
async fn losing_the_leader_elects_another_and_losing_the_quorum_stops_writes(
    etcd: Etcd,
) -> Result<(), Error> {
    etcd.put("/before", "faults").await?;
    let first = etcd.leader().await?;
    etcd.member(first)?.kill();

    let second = wait_for_new_leader(&etcd, first).await?;
    etcd.put("/after-leader", "kill").await?;
    assert_eq!(etcd.get("/before").await?.as_deref(), Some("faults"));
    assert_eq!(etcd.get("/after-leader").await?.as_deref(), Some("kill"));

    // Two of three down: no quorum, no leader, no writes.
    etcd.member(second)?.kill();
    let last = (0..3).find(|i| ![first, second].contains(i)).unwrap_or(0);
    let reason = wait_for_no_leader(&etcd.member(last)?.client_url()).await;
    // etcd's own reason, whatever its case (3.4 `etcdserver: no leader`, 3.5 `RAFT NO LEADER`).
    assert!(reason.to_lowercase().contains("no leader"), "{reason}");
    eprintln!("without a quorum, the probe says: {reason}");
    let refused = etcd.put("/without-quorum", "x").await;
    assert!(refused.is_err(), "a write succeeded without a quorum");
    let leaderless = etcd.leader().await.unwrap_err().to_string();
    assert!(
        leaderless.contains("etcdserver: no leader"),
        "the member's own word: {leaderless}"
    );

    etcd.member(first)?.restart().await?;
    etcd.member(second)?.restart().await?;
    etcd.wait_healthy(LIMIT).await?;
    assert!(etcd.leader().await? < 3);
    assert_eq!(etcd.get("/after-leader").await?.as_deref(), Some("kill"));
    etcd.put("/after-restart", "ok").await?;
    Ok(())
}

#[dynamo_test(services(etcd(cluster = 3)), timeout = "90s")]
async fn a_paused_follower_leaves_a_quorum_that_writes(etcd: Etcd) -> Result<(), Error> {
    let leader = etcd.leader().await?;
    let follower = (leader + 1) % 3;
    etcd.member(follower)?.pause()?;
    etcd.put("/while-paused", "quorum").await?;
    assert_eq!(etcd.get("/while-paused").await?.as_deref(), Some("quorum"));
    etcd.member(follower)?.resume()?;
    etcd.wait_healthy(LIMIT).await?;
    etcd.member(follower)?.wait_healthy(LIMIT).await?;
    Ok(())
}

#[dynamo_test(services(etcd(isolated)), timeout = "60s")]
async fn a_single_etcd_has_no_members_to_name(etcd: Etcd) {
    assert!(etcd.members().is_empty());
    let err = etcd.member(0).unwrap_err().to_string();
    assert!(err.contains("services(etcd(cluster = 3))"), "{err}");
    let err = etcd.leader().await.unwrap_err().to_string();
    assert!(err.contains("single member"), "{err}");
}

#[dynamo_test(services(etcd(isolated, cluster = 3)), timeout = "90s")]
async fn whole_instance_faults_name_a_member(etcd: Etcd) {
    let err = etcd.kill().unwrap_err().to_string();
    assert!(err.contains("etcd.member(i)?.kill()"), "{err}");
    let err = etcd.member(3).unwrap_err().to_string();
    assert!(err.contains("3 members, 0 to 2"), "{err}");
}

#[dynamo_test(services(nats(no_jetstream)), timeout = "60s")]
async fn nats_without_jetstream_runs_and_serves(nats: Nats) -> Result<(), Error> {
    let process = nats.process().expect("a private server");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", process.pid())).unwrap();
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    assert!(!args.contains(&&b"-js"[..]), "started with -js");
    let monitor = nats.monitor_url().expect("a private server's monitor");
    health::http(format!("{monitor}/jsz"))
        .expect_body_contains("\"disabled\": true")
        .wait(Duration::from_secs(10))
        .await?;

    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut sub = client.subscribe(nats.subject("plain")).await.unwrap();
    client
        .publish(nats.subject("plain"), "core".into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    let message = tokio::time::timeout(
        Duration::from_secs(10),
        futures_util::StreamExt::next(&mut sub),
    )
    .await
    .expect("no message within 10 s")
    .expect("the subscription ended");
    assert_eq!(&message.payload[..], b"core");
    Ok(())
}

/// Waits (bounded) until a member other than `old` leads.
async fn wait_for_new_leader(etcd: &Etcd, old: usize) -> Result<usize, Error> {
    let started = Instant::now();
    loop {
        let now = etcd.leader().await;
        match now {
            Ok(new) if new != old => return Ok(new),
            _ if started.elapsed() > LIMIT => {
                panic!("no new leader within {LIMIT:?} of killing member {old}: {now:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Waits (bounded) until the member's health probe says etcd is
/// unhealthy (it answers, and says no), and returns the probe's reason.
async fn wait_for_no_leader(url: &str) -> String {
    let probe = health::etcd(url);
    let started = Instant::now();
    loop {
        match probe.check(Duration::from_secs(5)).await {
            Check::NotReady { reason, .. } if reason.contains("etcd unhealthy") => return reason,
            other if started.elapsed() > LIMIT => {
                panic!("{url} still reports {other:?} {LIMIT:?} after losing its quorum")
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

#[dynamo_test(services(etcd(cluster = 5)), timeout = "90s")]
async fn a_five_member_cluster_starts_with_a_leader(etcd: Etcd) -> Result<(), Error> {
    assert_eq!(etcd.members().len(), 5);
    assert!(etcd.leader().await? < 5);
    etcd.put("/five", "members").await?;
    assert_eq!(etcd.get("/five").await?.as_deref(), Some("members"));
    Ok(())
}
