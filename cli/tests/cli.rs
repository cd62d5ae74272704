//! The `dynamo-test` command end to end: real reservations, real etcd and
//! NATS, `--json` output parsed and checked.
//!
//! Tests that start, stop or remove things give the command a state and an
//! output directory of their own (and move the service ports), so the
//! developer's state, the suite's shared services and other runs are never
//! touched.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dynamo_test::admin::ServiceKind;
use dynamo_test::admin::{self, procfs, ProcStat};
use dynamo_test::{dynamo_test, Etcd, Nats, Port};
use dynamo_test_suite::servers::{response, serve, Behaviour};
use dynamo_test_suite::{eventually, plan_env};
use serde_json::Value;

type Env = Vec<(&'static str, String)>;

fn command(args: &[&str], env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dynamo-test"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn cli(args: &[&str], env: &[(&str, String)]) -> Output {
    command(args, env).output().unwrap()
}

/// Runs the command off the async threads.
async fn cli_async(args: &'static [&'static str], env: Env) -> Output {
    tokio::task::spawn_blocking(move || cli(args, &env))
        .await
        .unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A private directory, removed at the end of the test.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "dynamo-test-cli-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).unwrap();
        // The state directory below must not be open to others.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        TempDir(path)
    }

    fn state(&self) -> PathBuf {
        self.0.join("state")
    }

    fn output(&self) -> PathBuf {
        self.0.join("output")
    }

    /// State and output directories of this test alone.
    fn env(&self) -> Env {
        vec![
            ("DYNAMO_TEST_STATE_DIR", self.state().display().to_string()),
            (
                "DYNAMO_TEST_OUTPUT_DIR",
                self.output().display().to_string(),
            ),
        ]
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the command with `args` when dropped, even if the test panicked
/// (`down` after `up`, `clean` after a test made leftovers).
struct Finally {
    args: &'static [&'static str],
    env: Env,
}

impl Drop for Finally {
    fn drop(&mut self) {
        let _ = command(self.args, &self.env).output();
    }
}

/// The etcd/NATS port variables set to `ports` (client, peer, client, http).
fn service_ports([etcd_client, etcd_peer, nats_client, nats_http]: [&Port; 4]) -> Env {
    let mut env = plan_env(ServiceKind::Etcd, etcd_client, etcd_peer);
    env.extend(plan_env(ServiceKind::Nats, nats_client, nats_http));
    env
}

fn listener_pid(port: u16) -> Option<u32> {
    admin::listeners(port).first().and_then(|l| l.pid)
}

fn find<'a>(list: &'a Value, key: &str, wanted: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|v| v[key] == wanted)
}

/// Gone, or a zombie nobody reaped yet.
fn process_gone(pid: u32) -> bool {
    !ProcStat::read(pid).is_some_and(|s| s.is_live())
}

#[test]
fn bad_input_exits_2_with_usage() {
    for (args, problem) in [
        (&["wait", "ftp://x"][..], "unsupported URL `ftp://x`"),
        (
            &["wait", "http://x", "--timeout", "soon"][..],
            "bad duration `soon`",
        ),
        (
            &["wait", "http://x", "--timeout", "0s"][..],
            "invalid value '0s' for '--timeout <DURATION>'",
        ),
        (&["up", "redis"][..], "unknown service `redis`"),
        (&["frobnicate"][..], "unknown command `frobnicate`"),
        (
            &["ports", "extra"][..],
            "`ports` takes no arguments (got `extra`)",
        ),
        (
            &["clean", "--days", "x"][..],
            "invalid value 'x' for '--days <N>'",
        ),
        (&[][..], "no command given"),
    ] {
        let out = cli(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(problem), "{args:?}: {err}");
        assert!(err.contains("usage: dynamo-test"), "{args:?}: {err}");
    }
}

#[test]
fn each_command_has_its_help_and_the_flags_go_anywhere() {
    for command in ["ports", "doctor", "up", "down", "wait", "clean"] {
        let out = cli(&[command, "--help"], &[]);
        assert_eq!(out.status.code(), Some(0), "{command}: {out:?}");
        let help = stdout(&out);
        assert!(
            help.contains(&format!("Usage: dynamo-test {command}")),
            "{help}"
        );
        assert!(
            help.contains("--json") && help.contains("--no-color"),
            "{help}"
        );
    }
    assert!(stdout(&cli(&["wait", "--help"], &[])).contains("--timeout <DURATION>"));
    // --json after the command, as before it.
    let out = cli(&["ports", "--json"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["plan"]["etcd_client"], 2379);
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
    // The holder's command line, looked up because it shares our PID namespace.
    assert_eq!(mine["same_pid_namespace"], true, "{mine}");
    let exe = std::env::current_exe().unwrap();
    let exe = exe.file_name().unwrap().to_str().unwrap();
    assert!(
        mine["command"].as_str().is_some_and(|c| c.contains(exe)),
        "{mine}"
    );
}

#[test]
fn the_ports_table_aligns_the_dynamo_serve_row() {
    let out = cli(&["--no-color", "ports"], &[]);
    let text = stdout(&out);
    let header = text.lines().find(|l| l.contains("name")).unwrap();
    let serve = text
        .lines()
        .find(|l| l.trim_start().starts_with("dynamo_serve"))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(header.find("port"), serve.find("8000+"), "{text}");
    assert_eq!(header.find("state"), serve.find("dynamic"), "{text}");
}

/// Fixed ports of our own, below the default dynamic range (a fixed port
/// inside it blocks), so nothing else listening there can fail the check.
fn fixed_ports_below_the_dynamic_range() -> (Vec<Port>, Env) {
    let ports: Vec<Port> = (0..4)
        .map(|_| dynamo_test::find_free_port_from(15000).unwrap())
        .collect();
    let env = service_ports([&ports[0], &ports[1], &ports[2], &ports[3]]);
    (ports, env)
}

#[test]
fn doctor_finds_the_binaries_and_passes() {
    let tmp = TempDir::new("doctor-passes");
    let (_ports, mut env) = fixed_ports_below_the_dynamic_range();
    env.extend(tmp.env());
    let out = cli(&["--json", "doctor"], &env);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["ok"], true, "{v:#}");
    let etcd = find(&v["findings"], "check", "etcd").unwrap();
    assert_eq!(etcd["ok"], true, "{etcd}");
    assert!(
        etcd["detail"].as_str().unwrap().contains("Version"),
        "{etcd}"
    );
    let nats = find(&v["findings"], "check", "nats-server").unwrap();
    assert_eq!(nats["ok"], true, "{nats}");
    assert_eq!(v["output_root"]["source"], "DYNAMO_TEST_OUTPUT_DIR");
}

#[test]
fn doctor_reports_dynamo_found_or_missing_without_blocking() {
    let out = cli(
        &["--json", "doctor"],
        &[("DYNAMO_PYTHON", "/nonexistent/python".into())],
    );
    let v = json(&out);
    let dynamo = find(&v["findings"], "check", "Dynamo").unwrap();
    assert_eq!(dynamo["ok"], false, "{dynamo}");
    assert_eq!(dynamo["blocking"], false, "{dynamo}");
    assert!(
        dynamo["detail"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/python"),
        "{dynamo}"
    );
    assert!(
        dynamo["fix"]
            .as_str()
            .unwrap()
            .contains("install-dynamo.sh"),
        "{dynamo}"
    );
    // Where Dynamo is installed (scripts/test.sh sets DYNAMO_PYTHON), its
    // version is reported.
    let Ok(python) = std::env::var("DYNAMO_PYTHON") else {
        eprintln!("skipped the found case: DYNAMO_PYTHON is not set here");
        return;
    };
    let out = cli(&["--json", "doctor"], &[("DYNAMO_PYTHON", python)]);
    let v = json(&out);
    let dynamo = find(&v["findings"], "check", "Dynamo").unwrap();
    assert_eq!(dynamo["ok"], true, "{dynamo}");
    assert!(
        dynamo["detail"]
            .as_str()
            .unwrap()
            .starts_with("ai-dynamo 1.6.1"),
        "{dynamo}"
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

#[test]
fn doctor_blocks_on_configuration_that_breaks_the_tests() {
    let tmp = TempDir::new("doctor-blocks");
    let ephemeral = admin::ephemeral_range().unwrap();
    let overlapping = format!("{}-{}", ephemeral.low - 100, ephemeral.low + 100);
    let cases: [(Env, &str, &str); 5] = [
        (
            vec![("DYNAMO_TEST_PORT_RANGE", overlapping)],
            "overlaps the kernel's ephemeral range",
            "DYNAMO_TEST_PORT_RANGE",
        ),
        (
            vec![("DYNAMO_TEST_ETCD_CLIENT_PORT", "4222".into())],
            "etcd_client and nats_client are both port 4222",
            "DYNAMO_TEST_ETCD_CLIENT_PORT",
        ),
        (
            vec![("DYNAMO_TEST_NATS_CLIENT_PORT", "25000".into())],
            "nats_client 25000 lies in the dynamic range",
            "DYNAMO_TEST_NATS_CLIENT_PORT",
        ),
        (
            vec![("ETCD_BIN", "/bin/true".into())],
            "which does not name etcd",
            "ETCD_BIN",
        ),
        (
            vec![("ETCD_BIN", "/nonexistent/etcd".into())],
            "not an executable file; PATH not searched",
            "apt-get install",
        ),
    ];
    for (mut env, problem, fix) in cases {
        env.extend(tmp.env());
        let out = cli(&["--json", "doctor"], &env);
        let v = json(&out);
        assert_eq!(out.status.code(), Some(1), "{env:?}: {v:#}");
        let finding = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["detail"].as_str().unwrap().contains(problem))
            .unwrap_or_else(|| panic!("no finding with {problem:?}: {v:#}"));
        assert_eq!(finding["blocking"], true, "{finding}");
        assert!(finding["fix"].as_str().unwrap().contains(fix), "{finding}");
    }
}

#[test]
fn the_output_root_is_found_from_the_current_directory() {
    let tmp = TempDir::new("output-root");
    let ws = tmp.0.join("ws");
    std::fs::create_dir_all(ws.join("crates/a")).unwrap();
    std::fs::write(ws.join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
    let project = tmp.0.join("project");
    run_dir(&project.join("target/dynamo-test"), "an-old-test", 0);
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::create_dir_all(tmp.0.join("nowhere")).unwrap();

    let root = |cwd: &Path, extra: &[(&str, String)]| {
        let mut cmd = command(&["--json", "doctor"], extra);
        cmd.current_dir(cwd)
            .env("DYNAMO_TEST_STATE_DIR", tmp.state())
            .env_remove("DYNAMO_TEST_OUTPUT_DIR");
        if extra.is_empty() {
            cmd.env_remove("CARGO_TARGET_DIR");
        }
        let v = json(&cmd.output().unwrap());
        let path = PathBuf::from(v["output_root"]["path"].as_str().unwrap());
        (
            path,
            v["output_root"]["source"].as_str().unwrap().to_string(),
        )
    };
    let (path, source) = root(&ws.join("crates/a"), &[]);
    assert_eq!(path, ws.join("target/dynamo-test"));
    assert!(source.contains("workspace"), "{source}");
    let (path, _) = root(&project.join("src"), &[]);
    assert_eq!(path, project.join("target/dynamo-test"));
    let target = tmp.0.join("elsewhere");
    let (path, source) = root(&ws, &[("CARGO_TARGET_DIR", target.display().to_string())]);
    assert_eq!(path, target.join("dynamo-test"));
    assert_eq!(source, "CARGO_TARGET_DIR/dynamo-test");
    let (_, source) = root(&tmp.0.join("nowhere"), &[]);
    assert!(source.contains("binary's location"), "{source}");

    // `clean` works in the same root.
    let out = command(&["--json", "clean", "--dry-run", "--days", "0"], &[])
        .current_dir(project.join("src"))
        .env("DYNAMO_TEST_STATE_DIR", tmp.state())
        .env_remove("DYNAMO_TEST_OUTPUT_DIR")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    let listed = json(&out)["removed"].to_string();
    assert!(listed.contains("an-old-test"), "{listed}");
}

#[dynamo_test(timeout = "30s")]
async fn wait_reports_ready_and_not_ready(up: Port, down: Port) {
    let url = up.url("/");
    serve(up.into_tokio_listener().unwrap(), |_| {
        Behaviour::Respond(response(200, "", ""))
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

/// A TCP server that is not NATS: one stays silent after accepting (as an
/// HTTP server like etcd does), one greets with something else.
async fn impostor(port: Port, greeting: &'static [u8]) {
    let listener = port.into_tokio_listener().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = stream.write_all(greeting).await;
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(10)).await;
                drop(stream);
            });
        }
    });
}

#[dynamo_test(services(nats), timeout = "60s")]
async fn wait_for_nats_needs_the_nats_greeting(nats: Nats, silent: Port, other: Port) {
    let silent_url = format!("nats://127.0.0.1:{silent}");
    let other_url = format!("nats://127.0.0.1:{other}");
    impostor(silent, b"").await;
    impostor(other, b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    let urls = [nats.url().to_string(), silent_url, other_url];
    let out = tokio::task::spawn_blocking(move || {
        let mut args = vec!["--json", "wait", "--timeout", "1500ms"];
        args.extend(urls.iter().map(String::as_str));
        cli(&args, &[])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["results"][0]["ready"], true, "the real NATS: {v:#}");
    assert_eq!(v["results"][1]["ready"], false, "{v:#}");
    let silent_error = v["results"][1]["error"].as_str().unwrap();
    assert!(silent_error.contains("no greeting"), "{silent_error}");
    assert_eq!(v["results"][2]["ready"], false, "{v:#}");
    let other_error = v["results"][2]["error"].as_str().unwrap();
    assert!(
        other_error.contains("not a NATS server: it sent \"HTTP/1.1 400 Bad Request\""),
        "{other_error}"
    );
}

/// Runs a test process that uses the shared `kind` (etcd or nats) and
/// ends, as the suite's `need_service <kind> shared` does, and returns what
/// it printed (`source=<Source> url=<url>`). The process is this test
/// binary running only its ignored test `uses_the_shared_<kind>`: cargo
/// builds no binary of another package for the tests of this one.
fn need_service(kind: &str, env: &Env) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.arg(format!("uses_the_shared_{kind}")).args([
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let printed = stdout(&out);
    assert!(
        printed.contains("1 passed"),
        "the child ran no test: {printed}"
    );
    printed
}

#[dynamo_test(timeout = "60s")]
#[ignore = "a child process of other tests: see need_service()"]
async fn uses_the_shared_etcd(etcd: Etcd) {
    println!("source={:?} url={}", etcd.source(), etcd.url());
}

#[dynamo_test(timeout = "60s")]
#[ignore = "a child process of other tests: see need_service()"]
async fn uses_the_shared_nats(nats: Nats) {
    println!("source={:?} url={}", nats.source(), nats.url());
}

#[dynamo_test(timeout = "90s")]
async fn up_then_a_test_process_reuses_the_services_then_down(
    etcd_client: Port,
    etcd_peer: Port,
    nats_client: Port,
    nats_http: Port,
) {
    let tmp = TempDir::new("up");
    // Ports and state of our own, so the suite's shared services are not touched.
    let mut env = service_ports([&etcd_client, &etcd_peer, &nats_client, &nats_http]);
    env.extend(tmp.env());
    env.push(("DYNAMO_TEST_SERVICE_GRACE_MS", "300".to_string()));
    let _down = Finally {
        args: &["down"],
        env: env.clone(),
    };
    let out = cli_async(&["--json", "up"], env.clone()).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let up = json(&out);
    assert_eq!(up["up"][0]["port"], etcd_client.get());
    assert_eq!(up["up"][1]["port"], nats_client.get());
    let etcd_pid = listener_pid(etcd_client.get()).expect("etcd listens after `up`");
    let nats_pid = listener_pid(nats_client.get()).expect("NATS listens after `up`");

    ports_shows_the_running_services(&env, etcd_pid).await;

    // Test processes use the services and end; `up` keeps them running.
    let env2 = env.clone();
    let printed = tokio::task::spawn_blocking(move || {
        [need_service("etcd", &env2), need_service("nats", &env2)]
    })
    .await
    .unwrap();
    for line in &printed {
        assert!(line.contains("source=SharedStarted"), "{printed:?}");
    }
    tokio::time::sleep(Duration::from_millis(1000)).await; // > the 300 ms grace
    assert_eq!(
        listener_pid(etcd_client.get()),
        Some(etcd_pid),
        "the same etcd, still up"
    );
    assert_eq!(
        listener_pid(nats_client.get()),
        Some(nats_pid),
        "the same NATS, still up"
    );

    let out = cli_async(&["--json", "down"], env.clone()).await;
    let down = json(&out);
    assert_eq!(down["down"][0]["stopped"], true, "{down}");
    assert_eq!(down["down"][1]["stopped"], true, "{down}");
    assert!(!admin::is_listening(etcd_client.get()));
    assert!(!admin::is_listening(nats_client.get()));
}

/// `ports` on moved ports with the services up: listening, holder, health.
async fn ports_shows_the_running_services(env: &Env, etcd_pid: u32) {
    let out = cli_async(&["--json", "ports"], env.clone()).await;
    let v = json(&out);
    let etcd = find(&v["fixed"], "name", "etcd_client").unwrap();
    assert_eq!(etcd["listening"], true, "{etcd}");
    assert_eq!(etcd["healthy"], true, "{etcd}");
    assert_eq!(etcd["holders"][0]["pid"], etcd_pid, "{etcd}");
    assert!(
        etcd["holders"][0]["command"]
            .as_str()
            .unwrap()
            .contains("etcd"),
        "{etcd}"
    );
    let peer = find(&v["fixed"], "name", "etcd_peer").unwrap();
    assert_eq!(peer["listening"], true, "{peer}");
    assert_eq!(
        peer["healthy"],
        Value::Null,
        "no health check for the peer port"
    );
    let nats = find(&v["fixed"], "name", "nats_client").unwrap();
    assert_eq!(nats["listening"], true, "{nats}");
    assert_eq!(nats["healthy"], true, "{nats}");
}

/// Processes tagged as `up` holders whose command line names `state`
/// (earlier versions kept services up with such a process; `up` now pins
/// the service in its keeper and leaves no process of its own).
fn holders_in(state: &Path) -> Vec<u32> {
    let state = state.display().to_string();
    procfs::pids()
        .into_iter()
        .filter(|&pid| {
            procfs::environ_var(pid, "DYNAMO_TEST_SERVICE").as_deref() == Some("up-etcd")
                && procfs::command_line(pid).is_some_and(|c| c.contains(&state))
        })
        .collect()
}

#[dynamo_test(timeout = "60s")]
fn a_failed_up_leaves_no_holder_and_no_marker(client: Port, peer: Port, other: Port, http: Port) {
    let tmp = TempDir::new("up-fails");
    // An ETCD_BIN naming nothing: the start fails wherever etcd is installed.
    let mut env = service_ports([&client, &peer, &other, &http]);
    env.extend(tmp.env());
    env.push(("ETCD_BIN", "/nonexistent/etcd".to_string()));
    let out = cli(&["up", "etcd"], &env);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("etcd not found"), "{}", stderr(&out));
    let markers: Vec<_> = std::fs::read_dir(tmp.state().join("services"))
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "up"))
        .collect();
    assert!(markers.is_empty(), "{markers:?}");
    assert!(
        eventually(Duration::from_secs(3), || holders_in(&tmp.state())
            .is_empty()),
        "holder still running: {:?}",
        holders_in(&tmp.state())
    );
    assert!(
        !admin::records()
            .unwrap()
            .iter()
            .any(|r| r.port == client.get()),
        "no keeper left for the port"
    );
}

/// Sets `dir`'s modification time to `days` ago.
fn age(dir: &Path, days: u64) {
    let when = SystemTime::now() - Duration::from_secs(days * 86_400);
    std::fs::File::open(dir)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

/// A directory with a log in it, last modified `days` ago, without the
/// harness's marker.
fn plain_dir(dir: PathBuf, days: u64) -> PathBuf {
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("test.log"), "log").unwrap();
    age(&dir, days);
    dir
}

/// A run directory of test `test` as the harness makes it
/// (`<root>/<test>/<run>/`, both marked), last modified `days` ago.
fn run_dir(root: &Path, test: &str, days: u64) -> PathBuf {
    let test_dir = root.join(test);
    let run = test_dir.join(format!("20200101-000000.000-1-{days}"));
    std::fs::create_dir_all(&run).unwrap();
    for dir in [&test_dir, &run] {
        std::fs::write(dir.join(admin::MARKER_FILE), "").unwrap();
    }
    let _ = std::fs::remove_file(test_dir.join(admin::LATEST_LINK));
    std::os::unix::fs::symlink(run.file_name().unwrap(), test_dir.join(admin::LATEST_LINK))
        .unwrap();
    plain_dir(run, days)
}

#[test]
fn clean_removes_old_output_dirs_but_not_held_ones_or_the_services_logs() {
    // A real clean stops every tagged orphan: one such test at a time.
    let _one_clean_at_a_time = dynamo_test_suite::exclusive("cli-clean");
    let tmp = TempDir::new("clean-dirs");
    let env = tmp.env();
    let old = run_dir(&tmp.output(), "suite.old_test", 10);
    let fresh = run_dir(&tmp.output(), "suite.fresh_test", 0);
    let held = run_dir(&tmp.output(), "suite.running_test", 10);
    let services = plain_dir(tmp.output().join("services"), 10);
    // As a running test does: a shared lock on `.in-use` for its whole life.
    let lock = std::fs::File::create(held.join(admin::IN_USE_FILE)).unwrap();
    lock.lock_shared().unwrap();

    let out = cli(&["--json", "clean"], &env);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["ok"], true);
    let removed = v["removed"].to_string();
    assert!(removed.contains("suite.old_test"), "{v:#}");
    assert!(!removed.contains("suite.fresh_test"), "{v:#}");
    assert!(!old.exists());
    assert!(
        !tmp.output().join("suite.old_test").exists(),
        "a test's directory goes with its last run"
    );
    assert!(fresh.exists(), "younger than 7 days");

    let out = cli(&["--json", "clean", "--days", "0"], &env);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    let kept =
        find(&v["kept"], "path", &held.display().to_string()).unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(kept["reason"], "a running test holds it");
    assert!(held.join("test.log").exists(), "a held directory is kept");
    assert!(
        services.join("test.log").exists(),
        "services/ is never touched"
    );
    assert!(!fresh.exists(), "--days 0 takes every unheld directory");
    assert!(!v.to_string().contains("services\""), "{v:#}");
    drop(lock);
}

#[test]
fn clean_leaves_directories_without_the_harness_marker_alone() {
    let _one_clean_at_a_time = dynamo_test_suite::exclusive("cli-clean");
    let tmp = TempDir::new("clean-unmarked");
    let env = tmp.env();
    // The output root is a directory of the user's: `DYNAMO_TEST_OUTPUT_DIR=$HOME/logs`.
    let theirs = plain_dir(tmp.output().join("holiday-photos"), 30);
    let old = run_dir(&tmp.output(), "suite.old_test", 30);
    let beside = plain_dir(tmp.output().join("suite.old_test").join("notes"), 30);
    let reason = |v: &Value, dir: &Path| {
        let kept = find(&v["kept"], "path", &dir.display().to_string())
            .unwrap_or_else(|| panic!("{} not listed as kept: {v:#}", dir.display()));
        kept["reason"].as_str().unwrap().to_string()
    };

    let out = cli(&["--json", "clean", "--dry-run"], &env);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    for dir in [&theirs, &beside] {
        let why = reason(&v, dir);
        assert!(why.contains("no .dynamo-test marker"), "{why}");
    }
    assert!(v["removed"].to_string().contains("suite.old_test"), "{v:#}");
    let text = stdout(&cli(&["clean", "--dry-run"], &env));
    assert!(
        text.contains(&format!("kept: directory {}", theirs.display())),
        "{text}"
    );
    assert!(text.contains("no .dynamo-test marker"), "{text}");

    let out = cli(&["--json", "clean", "--days", "0"], &env);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert!(
        theirs.join("test.log").exists(),
        "an unmarked directory was removed"
    );
    assert!(
        beside.join("test.log").exists(),
        "an unmarked directory was removed"
    );
    assert!(!old.exists(), "the harness's run stayed");
    assert!(reason(&v, &theirs).contains("not made by the harness"));
}

/// A process as an earlier harness version left a shared etcd whose
/// keeper died: tagged `DYNAMO_TEST_SERVICE=etcd` and with the tag of the
/// test that started it (now gone), its data dir in the state dir's
/// `services/`. `sh` stays the process (no exec: `; :`).
fn keeperless_legacy_etcd(services: &Path, port: u16) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let dead_test = format!(
        "{}:1:{}",
        std::process::id(),
        procfs::own_pid_namespace().unwrap()
    );
    let data_dir = services.join(format!("etcd-{port}-data-1"));
    let child = Command::new("sh")
        .args(["-c", "sleep 100; :", "etcd"])
        .arg("--data-dir")
        .arg(&data_dir)
        .env("DYNAMO_TEST_SERVICE", "etcd")
        .env(admin::ENV_OWNER, dead_test)
        .env(admin::ENV_OWNER_NAME, "etcd")
        .process_group(0)
        .spawn()
        .unwrap();
    let settled = eventually(Duration::from_secs(5), || {
        procfs::environ_var(child.id(), "DYNAMO_TEST_SERVICE").is_some()
    });
    assert!(settled, "the fake service never showed its environment");
    child
}

#[test]
fn clean_never_stops_a_shared_service_that_tests_still_use() {
    let _one_clean_at_a_time = dynamo_test_suite::exclusive("cli-clean");
    let tmp = TempDir::new("clean-shared-users");
    let services = tmp.state().join("services");
    std::fs::create_dir_all(&services).unwrap();
    std::fs::set_permissions(tmp.state(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let port = 1;
    let service = KillGroup(keeperless_legacy_etcd(&services, port));
    // A test of that version still uses it: a shared lock on the users file.
    let users = std::fs::File::create(services.join(format!("etcd-{port}.users"))).unwrap();
    users.lock_shared().unwrap();

    let out = cli(&["--json", "clean"], &tmp.env());
    let v = json(&out);
    std::thread::sleep(Duration::from_millis(100));
    let alive = dynamo_test_suite::orphans::alive(service.0.id());
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert!(
        alive,
        "clean stopped a shared service that tests use: {v:#}"
    );
    let kept = v["kept"]
        .as_array()
        .and_then(|kept| kept.iter().find(|k| k["pid"] == service.0.id()))
        .unwrap_or_else(|| panic!("the service is listed as kept: {v:#}"));
    assert!(
        kept["reason"]
            .as_str()
            .unwrap()
            .contains("tests still use it"),
        "{kept}"
    );
    assert!(!v["removed"].to_string().contains("orphan"), "{v:#}");

    // Once its last user is gone, clean stops it (as a stale service).
    drop(users);
    let out = cli(&["--json", "clean"], &tmp.env());
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert!(
        eventually(Duration::from_secs(5), || {
            !dynamo_test_suite::orphans::alive(service.0.id())
        }),
        "{v:#}"
    );
    assert!(
        v["removed"].to_string().contains("its keeper is gone"),
        "{v:#}"
    );
}

#[test]
fn clean_stops_a_tagged_orphan_and_nothing_else() {
    // A real clean stops every tagged orphan: one such test at a time.
    let _one_clean_at_a_time = dynamo_test_suite::exclusive("cli-clean");
    let tmp = TempDir::new("clean-orphan");
    let env = tmp.env();
    // Tagged with an owner that no longer exists: our pid with another start time.
    let mut orphan = Command::new("sleep")
        .arg("100")
        .env(admin::ENV_OWNER, format!("{}:1", std::process::id()))
        .env(admin::ENV_OWNER_NAME, "fake-orphan")
        .spawn()
        .unwrap();
    let mut untagged = Command::new("sleep").arg("100").spawn().unwrap();

    let out = cli(&["--json", "clean", "--dry-run"], &env);
    let listed = json(&out)["removed"].to_string();
    assert!(
        listed.contains(&format!("pid {} `fake-orphan`", orphan.id())),
        "{listed}"
    );
    assert!(
        orphan.try_wait().unwrap().is_none(),
        "dry run kills nothing"
    );

    let out = cli(&["clean"], &env);
    assert!(stdout(&out).contains("removed: orphan process"), "{out:?}");
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

/// The keeper pid of the shared etcd on `port`, as its keeper says.
fn keeper_pid(port: u16) -> u32 {
    admin::records()
        .unwrap()
        .into_iter()
        .find(|r| r.name == "etcd" && r.port == port)
        .and_then(|r| r.keeper_pid)
        .unwrap_or_else(|| panic!("no keeper answers for etcd on {port}"))
}

/// An `ETCD_BIN` that runs etcd as its child instead of exec'ing it: the
/// keeper's parent-death signal reaches the script, not etcd, which so
/// outlives a killed keeper.
fn etcd_wrapper(dir: &Path) -> PathBuf {
    let etcd = admin::find_binary("etcd", "ETCD_BIN", "ETCD_ENDPOINTS").unwrap();
    let script = dir.join("etcd-wrapper");
    std::fs::write(
        &script,
        format!("#!/bin/sh\n{} \"$@\" &\nwait\n", etcd.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[dynamo_test(timeout = "60s")]
fn a_shared_service_dies_with_its_keeper(client: Port, peer: Port) {
    let tmp = TempDir::new("keeper-killed");
    let mut env: Env = plan_env(ServiceKind::Etcd, &client, &peer);
    env.push(("DYNAMO_TEST_SERVICE_GRACE_MS", "5000".to_string()));
    env.extend(tmp.env());
    let _clean = Finally {
        args: &["clean"],
        env: env.clone(),
    };
    need_service("etcd", &env);
    let etcd_pid = listener_pid(client.get()).expect("the shared etcd listens");
    let keeper = keeper_pid(client.get());
    assert!(procfs::command_line(keeper)
        .unwrap()
        .contains("dynamo-test-keeper"));
    // SAFETY: kill has no memory-safety preconditions; the pid is the keeper we caused to start.
    assert_eq!(
        unsafe { libc::kill(keeper as libc::pid_t, libc::SIGKILL) },
        0
    );
    assert!(
        eventually(Duration::from_secs(5), || process_gone(etcd_pid)),
        "etcd outlived its keeper"
    );
    // A multi-threaded process's leader is a zombie before its last thread
    // has closed its files: the port closes a moment later.
    assert!(
        eventually(Duration::from_secs(5), || !admin::is_listening(
            client.get()
        )),
        "the port stayed open after etcd died"
    );
    // A new user starts a fresh instance.
    assert!(need_service("etcd", &env).contains("source=SharedStarted"));
}

#[dynamo_test(timeout = "90s")]
fn clean_stops_a_shared_service_whose_keeper_died(client: Port, peer: Port) {
    // A real clean stops every tagged orphan: one such test at a time.
    let _one_clean_at_a_time = dynamo_test_suite::exclusive("cli-clean");
    let tmp = TempDir::new("clean-keeper");
    let mut env: Env = plan_env(ServiceKind::Etcd, &client, &peer);
    // Long enough for us to kill the keeper before it stops etcd.
    env.push(("DYNAMO_TEST_SERVICE_GRACE_MS", "5000".to_string()));
    // etcd as a wrapper's child: it survives the keeper (see etcd_wrapper).
    env.push(("ETCD_BIN", etcd_wrapper(&tmp.0).display().to_string()));
    env.extend(tmp.env());
    let _clean = Finally {
        args: &["clean"],
        env: env.clone(),
    };
    need_service("etcd", &env);
    let etcd_pid = listener_pid(client.get()).expect("the shared etcd listens");
    let keeper = keeper_pid(client.get());
    let keeper_cmd = procfs::command_line(keeper).unwrap();
    assert!(keeper_cmd.contains("dynamo-test-keeper"), "{keeper_cmd}");
    // SAFETY: kill has no memory-safety preconditions; the pid is the keeper we caused to start.
    assert_eq!(
        unsafe { libc::kill(keeper as libc::pid_t, libc::SIGKILL) },
        0
    );
    assert!(eventually(Duration::from_secs(5), || process_gone(keeper)));

    let out = cli(&["--json", "clean", "--dry-run"], &env);
    let v = json(&out);
    let listed = v["removed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["pid"] == etcd_pid)
        .unwrap_or_else(|| panic!("the keeper-less etcd is listed: {v:#}"));
    assert!(
        listed["what"]
            .as_str()
            .unwrap()
            .contains("its keeper is gone"),
        "{listed}"
    );
    assert!(admin::is_listening(client.get()), "dry run stops nothing");
    // Tests refuse it meanwhile: nothing would stop it, nothing tracks its users.
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "uses_the_shared_etcd",
        "--exact",
        "--ignored",
        "--nocapture",
    ]);
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let refused = cmd.output().unwrap();
    assert!(!refused.status.success());
    let said = format!("{}{}", stdout(&refused), stderr(&refused));
    assert!(
        said.contains(&format!("runs on port {client} without its keeper")),
        "{said}"
    );

    let out = cli(&["--json", "clean"], &env);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert!(
        v["removed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["pid"] == etcd_pid),
        "{v:#}"
    );
    assert!(process_gone(etcd_pid), "etcd stopped");
    assert!(!admin::is_listening(client.get()));
    let left: Vec<_> = std::fs::read_dir(tmp.state().join("services"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".record") || n.contains("-data-"))
        .collect();
    assert!(
        left.is_empty(),
        "record and data directory removed: {left:?}"
    );
}

/// Env var naming the child that `owns_a_child_in_a_pid_namespace` starts.
const ENV_NS_CHILD: &str = "DYNAMO_TEST_CLI_NS_CHILD";

/// The owner for `clean_leaves_an_owner_in_another_pid_namespace_alone`:
/// run by that test as the first process of a new PID namespace, it starts
/// a managed child named `$DYNAMO_TEST_CLI_NS_CHILD` and waits until killed.
#[dynamo_test(timeout = "60s")]
#[ignore = "a child process of another test: see clean_leaves_an_owner_in_another_pid_namespace_alone"]
async fn owns_a_child_in_a_pid_namespace(ctx: &dynamo_test::TestContext) {
    let name = std::env::var(ENV_NS_CHILD).unwrap();
    let _child = ctx
        .process(&name, "sleep")
        .arg("1000")
        .start()
        .await
        .unwrap();
    println!("started {name}");
    std::future::pending::<()>().await;
}

/// The pids of the processes tagged as named `name` by their test.
fn tagged_as(name: &str) -> Vec<u32> {
    procfs::pids()
        .into_iter()
        .filter(|&pid| procfs::environ_var(pid, admin::ENV_OWNER_NAME).as_deref() == Some(name))
        .collect()
}

fn is_root() -> bool {
    dynamo_test_suite::orphans::is_root()
}

/// Kills a process group we started when dropped (the test may panic).
struct KillGroup(std::process::Child);

impl Drop for KillGroup {
    fn drop(&mut self) {
        // SAFETY: kill has no memory-safety preconditions; the group is the
        // one we created, and its leader is our unreaped child.
        unsafe { libc::kill(-(self.0.id() as libc::pid_t), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

#[test]
fn clean_leaves_an_owner_in_another_pid_namespace_alone() {
    if !is_root() {
        eprintln!("skipped: `unshare --pid --mount-proc` needs root (CI runs as root)");
        return;
    }
    let _one_clean_at_a_time = dynamo_test_suite::exclusive("cli-clean");
    let tmp = TempDir::new("clean-pidns");
    let name = format!("ns-child-{}", std::process::id());
    // Its owner is pid 1 of a new PID namespace: in ours, some other
    // process, so a sweep judging its pid here would find it dead.
    use std::os::unix::process::CommandExt;
    let owner = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(std::env::current_exe().unwrap())
        .args(["owns_a_child_in_a_pid_namespace", "--exact", "--ignored"])
        .args(["--nocapture", "--test-threads=1"])
        .env(ENV_NS_CHILD, &name)
        .stdout(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let _owner = KillGroup(owner);
    assert!(
        eventually(Duration::from_secs(10), || tagged_as(&name).len() == 1),
        "the child in the namespace never showed up"
    );
    let child = tagged_as(&name)[0];
    let tag = procfs::environ_var(child, admin::ENV_OWNER).unwrap();
    assert!(
        tag.starts_with("1:"),
        "owned by pid 1 of its namespace: {tag}"
    );

    let out = cli(&["--json", "clean", "--dry-run"], &tmp.env());
    let v = json(&out);
    assert!(!v.to_string().contains(&name), "listed: {v:#}");
    let out = cli(&["--json", "clean"], &tmp.env());
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert!(!v.to_string().contains(&name), "listed: {v:#}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        dynamo_test_suite::orphans::alive(child),
        "clean stopped a child of a live owner in another PID namespace"
    );
}

/// `sleep 100` tagged with a dead owner (our pid, another start time) and
/// named `name`, run as `uid` (through setpriv) or as ourselves.
fn fake_orphan(name: &str, uid: Option<u32>) -> std::process::Child {
    let dead_owner = format!(
        "{}:1:{}",
        std::process::id(),
        procfs::own_pid_namespace().unwrap()
    );
    let mut cmd = match uid {
        Some(uid) => {
            let mut cmd = Command::new("setpriv");
            cmd.args([
                format!("--reuid={uid}"),
                format!("--regid={uid}"),
                "--clear-groups".into(),
                "sleep".into(),
            ]);
            cmd
        }
        None => Command::new("sleep"),
    };
    let child = cmd
        .arg("100")
        .env(admin::ENV_OWNER, dead_owner)
        .env(admin::ENV_OWNER_NAME, name)
        .spawn()
        .unwrap();
    // Until setpriv has changed the uid and exec'd sleep, it is ours.
    let want = uid.unwrap_or(admin::current_uid());
    let settled = eventually(Duration::from_secs(5), || {
        admin::ProcStatus::read(child.id()).is_some_and(|s| s.uid == want && s.euid == want)
            && procfs::command_line(child.id()).as_deref() == Some("sleep 100")
    });
    assert!(settled, "{name} never became `sleep 100` as uid {want}");
    child
}

#[test]
fn clean_stops_our_orphan_but_not_another_users() {
    if !is_root() {
        eprintln!("skipped: starting a process as uid 65534 needs root (CI runs as root)");
        return;
    }
    let _one_clean_at_a_time = dynamo_test_suite::exclusive("cli-clean");
    let tmp = TempDir::new("clean-uid");
    let mut theirs = fake_orphan("nobodys-orphan", Some(65534));
    let mut ours = fake_orphan("our-orphan", None);

    let out = cli(&["--json", "clean"], &tmp.env());
    let v = json(&out);
    let status = ours.wait().unwrap();
    let theirs_alive = theirs.try_wait().unwrap().is_none();
    let _ = theirs.kill();
    let _ = theirs.wait();
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "ours is stopped");
    assert!(theirs_alive, "another user's process was signalled: {v:#}");
    let removed = v["removed"].to_string();
    assert!(removed.contains("`our-orphan`"), "{v:#}");
    assert!(!removed.contains("nobodys-orphan"), "{v:#}");
    let kept = v["kept"]
        .as_array()
        .and_then(|kept| kept.iter().find(|k| k["pid"] == theirs.id()))
        .unwrap_or_else(|| panic!("another user's orphan is listed as kept: {v:#}"));
    let reason = kept["reason"].as_str().unwrap();
    assert!(reason.contains("runs as uid 65534"), "{reason}");
}

#[test]
fn relative_state_and_output_dirs_are_errors_naming_the_variable() {
    let tmp = TempDir::new("relative-dirs");
    for (var, other) in [
        ("DYNAMO_TEST_STATE_DIR", "DYNAMO_TEST_OUTPUT_DIR"),
        ("DYNAMO_TEST_OUTPUT_DIR", "DYNAMO_TEST_STATE_DIR"),
    ] {
        let kept = tmp.env().into_iter().find(|(k, _)| *k == other).unwrap();
        let out = cli(
            &["clean", "--dry-run"],
            &[(var, "relative/dir".into()), kept],
        );
        assert_eq!(out.status.code(), Some(1), "{var}: {out:?}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("{var}=\"relative/dir\" is invalid")),
            "{var}: {err}"
        );
        assert!(err.contains("an absolute path"), "{var}: {err}");
    }
}

/// A service data dir whose `.in-use` lock is held (by a keeper in any uid
/// or PID namespace, where its command line cannot be seen) is kept; once
/// the lock is free, `clean` removes the dir and its lock file.
#[test]
fn clean_keeps_a_data_dir_whose_lock_is_held() {
    let _one_clean_at_a_time = dynamo_test_suite::exclusive("cli-clean");
    let tmp = TempDir::new("data-lock");
    let services = tmp.state().join("services");
    std::fs::create_dir_all(&services).unwrap();
    std::fs::set_permissions(tmp.state(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let data = services.join("etcd-1-data-4242");
    std::fs::create_dir_all(data.join("member")).unwrap();
    let lock_path = admin::data_lock_path(&data);
    let lock = std::fs::File::create(&lock_path).unwrap();
    lock.try_lock().unwrap();

    let out = cli(&["clean"], &tmp.env());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(data.is_dir(), "a held data dir was removed");

    drop(lock);
    let out = cli(&["clean"], &tmp.env());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!data.exists(), "a free data dir stayed");
    assert!(!lock_path.exists(), "its lock file stayed");
}
