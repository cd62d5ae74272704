//! Service edge cases, each in a test process (the `need_service` binary)
//! with a prepared environment: a missing binary, a port held by a
//! stranger, an external instance that is reused and survives, and
//! endpoints from `ETCD_ENDPOINTS`.

use std::process::{Command, Output};
use std::time::Duration;

use dynamo_test::admin::{ServiceKind, ServicePortPair};
use dynamo_test::health;
use dynamo_test::{dynamo_test, Port};
use dynamo_test_suite::plan_env;

const NEED_SERVICE: &str = env!("CARGO_BIN_EXE_need_service");

fn need_service(args: &[&str], env: &[(&str, String)]) -> (Output, String) {
    let mut cmd = Command::new(NEED_SERVICE);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

#[test]
fn a_missing_binary_says_where_it_looked_and_how_to_install() {
    let (out, text) = need_service(
        &["etcd", "isolated"],
        &[("PATH", "/nonexistent".into()), ("ETCD_BIN", String::new())],
    );
    assert!(!out.status.success());
    assert!(
        text.contains(
            "etcd not found: looked in $ETCD_BIN (unset), PATH, /usr/sbin, /usr/local/bin"
        ),
        "{text}"
    );
    assert!(
        text.contains("apt-get install etcd-server nats-server"),
        "{text}"
    );
}

#[dynamo_test]
fn a_port_held_by_a_stranger_names_the_holder(client: Port, peer: Port) {
    let stranger = std::net::TcpListener::bind(client.addr()).unwrap();
    let (out, text) = need_service(
        &["etcd", "shared"],
        &plan_env(ServiceKind::Etcd, &client, &peer),
    );
    drop(stranger);
    assert!(!out.status.success());
    let me = format!("held by pid {} (", std::process::id());
    assert!(
        text.contains(&format!(
            "port {client} (the etcd port of the plan) is {me}"
        )),
        "{text}"
    );
    assert!(text.contains("which is not a healthy etcd"), "{text}");
    assert!(text.contains("fix: stop that process"), "{text}");
}

/// An etcd started by this test as a plain child, not by the harness's
/// service code (so not shared, not recorded): returns its client URL.
async fn start_external_etcd(client: &Port, peer: &Port, ctx: &dynamo_test::TestContext) -> String {
    let ports = ServicePortPair {
        client: client.get(),
        second: peer.get(),
    };
    let url = ServiceKind::Etcd.client_url(ports);
    let etcd = dynamo_test::admin::find_binary("etcd", "ETCD_BIN", "ETCD_ENDPOINTS").unwrap();
    let data_dir = ctx.output_dir().join("external-etcd");
    ctx.process("external-etcd", etcd)
        .args(ServiceKind::Etcd.args(ports, &data_dir))
        .ready(health::etcd(&url))
        .start()
        .await
        .unwrap();
    url
}

#[dynamo_test(timeout = "60s")]
async fn an_external_instance_is_reused_and_survives(
    client: Port,
    peer: Port,
    ctx: &dynamo_test::TestContext,
) {
    let external_url = start_external_etcd(&client, &peer, ctx).await;
    let mut env = plan_env(ServiceKind::Etcd, &client, &peer);
    env.push(("DYNAMO_TEST_SERVICE_GRACE_MS", "300".into()));
    let (out, text) = need_service(&["etcd", "shared"], &env);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("source=SharedExternal"), "{text}");
    // The harness never stops what it did not start: still healthy well
    // after its grace (300 ms, checked every 200 ms).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    health::etcd(&external_url)
        .wait(Duration::from_secs(1))
        .await
        .unwrap();
}

#[dynamo_test(timeout = "60s")]
async fn etcd_endpoints_from_the_environment_start_nothing(
    client: Port,
    peer: Port,
    ctx: &dynamo_test::TestContext,
) {
    let external_url = start_external_etcd(&client, &peer, ctx).await;
    // The plan's etcd ports moved to free numbers: had anything been
    // started, it would listen there.
    let (plan_client, plan_peer) = (
        dynamo_test::find_free_port().unwrap(),
        dynamo_test::find_free_port().unwrap(),
    );
    let mut env = plan_env(ServiceKind::Etcd, &plan_client, &plan_peer);
    env.push(("ETCD_ENDPOINTS", external_url.clone()));
    let (out, text) = need_service(&["etcd", "shared"], &env);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("source=FromEnv url={external_url}")),
        "{text}"
    );
    assert!(!dynamo_test::admin::is_listening(plan_client.get()));
    assert!(!dynamo_test::admin::is_listening(plan_peer.get()));

    let (out, text) = need_service(
        &["etcd", "shared"],
        &[("ETCD_ENDPOINTS", "localhost:2379".into())],
    );
    assert!(!out.status.success());
    assert!(
        text.contains("ETCD_ENDPOINTS=\"localhost:2379\" is invalid"),
        "{text}"
    );
}

#[test]
fn a_bin_variable_naming_no_executable_is_refused_not_bypassed() {
    for (kind, var) in [("etcd", "ETCD_BIN"), ("nats", "NATS_SERVER_BIN")] {
        let (out, text) = need_service(&[kind, "isolated"], &[(var, "/nonexistent/server".into())]);
        assert!(!out.status.success(), "{text}");
        assert!(
            text.contains(&format!(
                "${var} (\"/nonexistent/server\", not an executable file; PATH not searched"
            )),
            "{text}"
        );
    }
}

#[dynamo_test]
fn a_nats_port_held_by_a_stranger_names_the_holder(client: Port, monitor: Port) {
    // The stranger holds the monitoring port: NATS's health check fails there.
    let stranger = std::net::TcpListener::bind(monitor.addr()).unwrap();
    let (out, text) = need_service(
        &["nats", "shared"],
        &plan_env(ServiceKind::Nats, &client, &monitor),
    );
    drop(stranger);
    assert!(!out.status.success(), "{text}");
    let me = format!("held by pid {} (", std::process::id());
    assert!(
        text.contains(&format!(
            "port {monitor} (the nats port of the plan) is {me}"
        )),
        "{text}"
    );
    assert!(
        text.contains("which is not a healthy nats-server"),
        "{text}"
    );
}

#[dynamo_test(timeout = "60s")]
async fn nats_server_from_the_environment_starts_nothing(
    client: Port,
    monitor: Port,
    ctx: &dynamo_test::TestContext,
) {
    // A nats-server of this test's own, named by NATS_SERVER.
    let server = ctx
        .process("external-nats", "nats-server")
        .args(["-a", "127.0.0.1", "-p", &client.to_string()])
        .args(["-m", &monitor.to_string()])
        .env("PATH", "/usr/sbin:/usr/local/bin:/usr/bin:/bin")
        .ready(health::nats_monitor(&format!("http://127.0.0.1:{monitor}")))
        .start()
        .await
        .unwrap();
    let url = format!("nats://127.0.0.1:{client}");
    // The plan's NATS ports moved to free numbers: had anything been
    // started, it would listen there.
    let (plan_client, plan_monitor) = (
        dynamo_test::find_free_port().unwrap(),
        dynamo_test::find_free_port().unwrap(),
    );
    let mut env = plan_env(ServiceKind::Nats, &plan_client, &plan_monitor);
    env.push(("NATS_SERVER", url.clone()));
    let (out, text) = need_service(&["nats", "shared"], &env);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("source=FromEnv url={url}")),
        "{text}"
    );
    assert!(!dynamo_test::admin::is_listening(plan_client.get()));
    assert!(!dynamo_test::admin::is_listening(plan_monitor.get()));
    assert_eq!(server.exit_status(), None, "still ours, still running");
}

/// A keeper of another harness version: binds the keeper's name for the
/// etcd on `port` and greets every connection with protocol 99.
fn incompatible_keeper(port: u16) -> std::os::unix::net::UnixListener {
    use std::io::Write;
    use std::os::linux::net::SocketAddrExt;
    let name = format!("dynamo-test/keeper/etcd/{port}");
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    let serving = listener.try_clone().unwrap();
    std::thread::spawn(move || {
        for mut conn in serving.incoming().map_while(Result::ok) {
            let hello = format!(
                "dynamo-test-keeper 99 {{\"keeper_pid\":{},\"keeper_uid\":4242,\"harness\":\"9.9.9\"}}\n",
                std::process::id()
            );
            let _ = conn.write_all(hello.as_bytes());
        }
    });
    listener
}

#[dynamo_test(timeout = "60s")]
async fn an_incompatible_keeper_is_named_never_joined_stopped_or_called_external(
    client: Port,
    peer: Port,
    ctx: &dynamo_test::TestContext,
) {
    // A healthy etcd on the plan's ports, run by "another version".
    let url = start_external_etcd(&client, &peer, ctx).await;
    let _keeper = incompatible_keeper(client.get());
    let mut env = plan_env(ServiceKind::Etcd, &client, &peer);
    env.push(("DYNAMO_TEST_SERVICE_GRACE_MS", "300".into()));
    let (out, text) = need_service(&["etcd", "shared"], &env);
    assert!(!out.status.success(), "{text}");
    assert!(!text.contains("source=SharedExternal"), "{text}");
    assert!(
        text.contains(&format!(
            "cannot join the shared etcd on port {client}: a dynamo-test keeper of another version \
             (protocol 99, harness 9.9.9, keeper pid {}, uid 4242)",
            std::process::id()
        )),
        "{text}"
    );
    assert!(text.contains("fix: use one dynamo-test version"), "{text}");
    // Nothing stopped it.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    health::etcd(&url)
        .wait(Duration::from_secs(1))
        .await
        .unwrap();
}

#[dynamo_test(timeout = "60s")]
fn a_keeper_that_cannot_start_says_why(client: Port, peer: Port) {
    // The keeper's log path is taken by a directory: it cannot open it.
    let out = std::env::temp_dir().join(format!("dt-keeper-log-{}-{client}", std::process::id()));
    std::fs::create_dir_all(out.join(format!("services/etcd-{client}.log"))).unwrap();
    let mut env = plan_env(ServiceKind::Etcd, &client, &peer);
    env.push(("DYNAMO_TEST_OUTPUT_DIR", out.display().to_string()));
    let (result, text) = need_service(&["etcd", "shared"], &env);
    std::fs::remove_dir_all(&out).unwrap();
    assert!(!result.status.success(), "{text}");
    assert!(
        text.contains(&format!("the keeper for the shared etcd on port {client} exited (exit status: 82): it could not open its log file")),
        "{text}"
    );
    assert!(!dynamo_test::admin::is_listening(client.get()));
}

#[dynamo_test(timeout = "60s")]
fn a_shared_service_that_exits_at_once_says_so_with_its_log(
    client: Port,
    peer: Port,
    ctx: &dynamo_test::TestContext,
) {
    // An "etcd" that refuses its flags and exits, as a real one does.
    let fake = ctx.output_dir().join("etcd-that-exits");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'etcd: bad flag --nope' >&2\nexit 3\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut env = plan_env(ServiceKind::Etcd, &client, &peer);
    env.push(("ETCD_BIN", fake.display().to_string()));
    // The keeper's log in a directory of this test's: no earlier run's lines.
    let out_dir = ctx.output_dir().join("out");
    env.push(("DYNAMO_TEST_OUTPUT_DIR", out_dir.display().to_string()));
    let (out, text) = need_service(&["etcd", "shared"], &env);
    assert!(!out.status.success(), "{text}");
    // Whether it died before or after this process joined its keeper, the
    // message says the service exited, with its log; never that the
    // executable is not a keeper.
    assert!(text.contains("exited by itself"), "{text}");
    assert!(text.contains("etcd: bad flag --nope"), "{text}");
    assert!(!text.contains("pre-main hook"), "{text}");
}
