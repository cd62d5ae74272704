//! The `dynamo-test` command end to end: real reservations, real etcd and
//! NATS, `--json` output parsed and checked.

use std::process::{Command, Output};
use std::time::Duration;

use dynamo_test::{dynamo_test, Port};
use serde_json::Value;

fn cli(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dynamo-test-cli"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_input_exits_2_with_usage() {
    for (args, problem) in [
        (&["wait", "ftp://x"][..], "unsupported URL `ftp://x`"),
        (
            &["wait", "http://x", "--timeout", "soon"][..],
            "bad duration `soon`",
        ),
        (&["up", "redis"][..], "unknown service `redis`"),
        (&["frobnicate"][..], "unknown command `frobnicate`"),
        (&[][..], "no command given"),
    ] {
        let out = cli(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(problem), "{args:?}: {err}");
        assert!(err.contains("usage: dynamo-test"), "{args:?}: {err}");
    }
}

#[dynamo_test]
fn ports_lists_the_plan_and_reservations_held_elsewhere(held: Port) {
    let out = cli(&["--json", "ports"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["plan"]["etcd_client"], 2379);
    assert_eq!(v["plan"]["dynamo_serve_base"], 8000);
    let names: Vec<&str> = v["fixed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["etcd_client", "etcd_peer", "nats_client", "nats_http"]
    );
    let mine = v["reservations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["port"] == held.get())
        .expect("our reservation is listed");
    assert_eq!(mine["pid"], std::process::id());
    assert!(
        mine["test"]
            .as_str()
            .unwrap()
            .contains("ports_lists_the_plan_and_reservations_held_elsewhere"),
        "{mine}"
    );
}

#[test]
fn doctor_finds_the_binaries_and_passes() {
    let out = cli(&["--json", "doctor"], &[]);
    let v = json(&out);
    let etcd = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "etcd")
        .unwrap()
        .clone();
    assert_eq!(etcd["ok"], true, "{etcd}");
    assert!(
        etcd["detail"].as_str().unwrap().contains("Version"),
        "{etcd}"
    );
    let blocking: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["blocking"] == true)
        .collect();
    assert_eq!(
        out.status.code(),
        Some(i32::from(!blocking.is_empty())),
        "{blocking:?}"
    );
}

#[test]
fn doctor_names_a_bad_override() {
    let out = cli(
        &["--json", "doctor"],
        &[("DYNAMO_TEST_PORT_RANGE", "9-1".into())],
    );
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["ok"], false);
    assert!(
        v.to_string()
            .contains("DYNAMO_TEST_PORT_RANGE=\\\"9-1\\\" is invalid"),
        "{v}"
    );
    assert!(v["env_overrides"].to_string().contains("9-1"));
}

#[dynamo_test(timeout = "30s")]
async fn wait_reports_ready_and_not_ready(up: Port, down: Port) {
    let url = up.url("/");
    let listener = up.into_tokio_listener().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        }
    });
    let tcp = format!("tcp://127.0.0.1:{down}");
    let out = tokio::task::spawn_blocking(move || {
        cli(&["--json", "wait", &url, &tcp, "--timeout", "500ms"], &[])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["ready"], false);
    assert_eq!(v["results"][0]["ready"], true);
    assert_eq!(v["results"][1]["ready"], false);
    assert!(
        v["results"][1]["error"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{v}"
    );
}

#[dynamo_test(timeout = "90s")]
async fn up_then_a_test_process_reuses_the_services_then_down(
    etcd_client: Port,
    etcd_peer: Port,
    nats_client: Port,
    nats_http: Port,
) {
    // Ports of our own, so the suite's shared services are not touched.
    let env = vec![
        ("DYNAMO_TEST_ETCD_CLIENT_PORT", etcd_client.to_string()),
        ("DYNAMO_TEST_ETCD_PEER_PORT", etcd_peer.to_string()),
        ("DYNAMO_TEST_NATS_CLIENT_PORT", nats_client.to_string()),
        ("DYNAMO_TEST_NATS_HTTP_PORT", nats_http.to_string()),
        ("DYNAMO_TEST_SERVICE_GRACE_MS", "300".to_string()),
    ];
    let run = |args: &'static [&'static str], env: Vec<(&'static str, String)>| {
        tokio::task::spawn_blocking(move || cli(args, &env))
    };
    let out = run(&["--json", "up"], env.clone()).await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let up = json(&out);
    assert_eq!(up["up"][0]["port"], etcd_client.get());
    let etcd_pid = listener_pid(etcd_client.get());

    // A test process uses the services and ends; `up` keeps them running.
    let mut reuse = Command::new(env!("CARGO_BIN_EXE_need_service"));
    reuse.args(["etcd", "shared"]);
    for (k, v) in &env {
        reuse.env(k, v);
    }
    let reused = reuse.output().unwrap();
    assert!(
        String::from_utf8_lossy(&reused.stdout).contains("source=SharedStarted"),
        "{reused:?}"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await; // > the 300 ms grace
    assert_eq!(
        listener_pid(etcd_client.get()),
        etcd_pid,
        "the same etcd, still up"
    );

    let out = run(&["--json", "down"], env.clone()).await.unwrap();
    let down = json(&out);
    assert_eq!(down["down"][0]["stopped"], true, "{down}");
    assert_eq!(down["down"][1]["stopped"], true, "{down}");
    assert!(!dynamo_test::ports::holders::is_listening(
        etcd_client.get()
    ));
    assert!(!dynamo_test::ports::holders::is_listening(
        nats_client.get()
    ));
}

fn listener_pid(port: u16) -> Option<u32> {
    dynamo_test::ports::holders::listeners(port)
        .first()
        .and_then(|l| l.pid)
}

#[test]
fn clean_stops_a_tagged_orphan_and_nothing_else() {
    // A process we start ourselves, tagged with an owner that does not exist.
    let mut orphan = Command::new("sleep")
        .arg("100")
        .env(dynamo_test::process::ENV_OWNER, "1:0")
        .env(dynamo_test::process::ENV_OWNER_NAME, "fake-orphan")
        .spawn()
        .unwrap();
    let untagged = Command::new("sleep").arg("100").spawn();
    let mut untagged = untagged.unwrap();

    let out = cli(&["--json", "clean", "--dry-run"], &[]);
    let listed = json(&out)["removed"].to_string();
    assert!(
        listed.contains(&format!("pid {} `fake-orphan`", orphan.id())),
        "{listed}"
    );
    assert!(
        orphan.try_wait().unwrap().is_none(),
        "dry run kills nothing"
    );

    let out = cli(&["clean"], &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("removed: orphan process"),
        "{out:?}"
    );
    let status = orphan.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(
        untagged.try_wait().unwrap().is_none(),
        "an untagged process is never touched"
    );
    untagged.kill().unwrap();
    untagged.wait().unwrap();
}
