//! Managed processes: readiness, early exit, spawn errors, env, logs,
//! graceful and forced stops, restart.

use std::time::{Duration, Instant};

use dynamo_test::health;
use dynamo_test::{dynamo_test, Error, TestContext};
use dynamo_test_suite::wait_for_line;

const HTTP_CHILD: &str = env!("CARGO_BIN_EXE_http_child");

#[dynamo_test(timeout = "30s")]
async fn start_returns_once_the_server_is_ready(api: u16, ctx: &TestContext) -> Result<(), Error> {
    let started = Instant::now();
    let server = ctx
        .process("api", HTTP_CHILD)
        .args([api.to_string(), "200".into()])
        .ready(health::http(format!("http://127.0.0.1:{api}/health")))
        .start()
        .await?;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(server.exit_status().is_none());
    // The child logs the request before it answers, but its line reaches
    // the log through a forwarding thread: wait for it, not for a moment.
    server
        .wait_for_log("request: GET /health", Duration::from_secs(10))
        .await?;
    assert!(server.log_path().starts_with(ctx.output_dir()));
    assert!(
        ctx.log_tails(5).contains("[api] http_child listening on"),
        "{}",
        ctx.log_tails(5)
    );
    Ok(())
}

#[dynamo_test(timeout = "30s")]
async fn an_early_exit_fails_start_at_once_with_code_and_log(api: u16, ctx: &TestContext) {
    let script = "echo starting; echo 'fatal: bad config' >&2; sleep 0.3; exit 3";
    let started = Instant::now();
    let err = ctx
        .process("crasher", "sh")
        .args(["-c", script])
        .ready(health::http(format!("http://127.0.0.1:{api}/health")))
        .startup_timeout(Duration::from_secs(20))
        .start()
        .await
        .unwrap_err()
        .to_string();
    let took = started.elapsed();
    // Exits after 0.3 s; reported within 500 ms of that.
    assert!(took < Duration::from_millis(800), "took {took:?}: {err}");
    assert!(
        err.contains("exited (exit status: 3) before it was ready"),
        "{err}"
    );
    assert!(err.contains("  | fatal: bad config"), "{err}");
    assert!(err.contains("crasher.log"), "{err}");
}

#[dynamo_test]
async fn spawn_errors_name_the_program_and_the_path(ctx: &TestContext) {
    let err = ctx
        .process("ghost", "no-such-program-xyz")
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("cannot start process `ghost` (no-such-program-xyz): `no-such-program-xyz` not found in PATH ("), "{err}");

    let plain = ctx.output_dir().join("plain-file");
    std::fs::write(&plain, "not a program").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = ctx
        .process("notexec", &plain)
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("{} is not executable (mode 644)", plain.display())),
        "{err}"
    );

    let err = ctx
        .process("nocwd", "sh")
        .current_dir("/no/such/dir")
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("working directory /no/such/dir does not exist"),
        "{err}"
    );
}

#[dynamo_test]
async fn children_get_the_namespace_and_their_own_env(ctx: &TestContext) {
    let child = ctx
        .process("env", "sh")
        .args(["-c", "echo ns=$DYN_NAMESPACE greeting=$GREETING"])
        .env("GREETING", "hello")
        .start()
        .await
        .unwrap();
    assert!(child.wait().await.success());
    let expected = format!("ns={} greeting=hello", ctx.namespace());
    assert_eq!(child.log_tail(1), expected);
    assert!(
        std::env::var_os("GREETING").is_none(),
        "the test's own env is untouched"
    );
}

#[dynamo_test]
async fn a_child_that_ignores_sigterm_is_killed_after_the_grace(ctx: &TestContext) {
    let stubborn = ctx
        .process("stubborn", "sh")
        .args([
            "-c",
            "trap '' TERM; echo ready; while :; do sleep 0.05; done",
        ])
        .grace(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    // It says "ready" once its SIGTERM trap is set; a stop before that is not the case tested.
    wait_for_line(&stubborn, "ready").await;
    let started = Instant::now();
    let status = stubborn.stop().await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(
        stubborn.log_tail(3).contains("SIGKILL"),
        "{}",
        stubborn.log_tail(3)
    );
}

#[dynamo_test]
async fn a_graceful_stop_reaches_grandchildren(ctx: &TestContext) {
    let family = ctx
        .process("family", "sh")
        .args(["-c", "sleep 1000 & echo \"grandchild $!\"; wait"])
        .start()
        .await
        .unwrap();
    let grandchild = wait_for_line(&family, "grandchild ").await;
    let grandchild: u32 = grandchild.trim().parse().unwrap();
    family.stop().await.unwrap();
    // SIGKILL is delivered asynchronously: allow the kernel a moment.
    let left = dynamo_test_suite::orphans::survivors_after(&[grandchild], Duration::from_secs(1));
    assert_eq!(left, Vec::<u32>::new());
}

#[dynamo_test]
async fn grandchildren_get_the_grace_after_the_leader_exits(ctx: &TestContext) {
    // The leader dies of SIGTERM at once; its child cleans up for 200 ms
    // first. SIGKILL must wait for it (within the grace), not for the leader.
    let family = ctx
        .process("family", "sh")
        .args([
            "-c",
            "(trap 'sleep 0.2; echo cleaned; exit 0' TERM; echo ready; while :; do sleep 0.05; done) & wait",
        ])
        .grace(Duration::from_secs(5))
        .start()
        .await
        .unwrap();
    wait_for_line(&family, "ready").await;
    let started = Instant::now();
    family.stop().await.unwrap();
    let took = started.elapsed();
    wait_for_line(&family, "cleaned").await;
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(4),
        "stop returned after {took:?}"
    );
}

#[dynamo_test(timeout = "30s")]
async fn restart_keeps_arguments_and_log(api: u16, ctx: &TestContext) {
    let server = ctx
        .process("api", HTTP_CHILD)
        .arg(api.to_string())
        .ready(health::http(format!("http://127.0.0.1:{api}/health")))
        .start()
        .await
        .unwrap();
    let first = server.pid();
    server.restart().await.unwrap();
    assert_ne!(server.pid(), first);
    // Output reaches the log through a forwarding thread: give it a moment.
    let starts = || {
        let log = std::fs::read_to_string(server.log_path()).unwrap_or_default();
        log.matches(&format!("http_child listening on 127.0.0.1:{api}"))
            .count()
    };
    for _ in 0..200 {
        if starts() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(starts(), 2, "{}", server.log_tail(20));
    assert!(server.log_tail(20).contains("[dynamo-test] restart"));
}

#[dynamo_test]
async fn kill_is_immediate(ctx: &TestContext) {
    let sleeper = ctx
        .process("sleeper", "sleep")
        .arg("1000")
        .start()
        .await
        .unwrap();
    sleeper.kill();
    let status = tokio::time::timeout(Duration::from_secs(2), sleeper.wait())
        .await
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
}

#[dynamo_test]
fn a_child_outlives_the_thread_that_started_it(ctx: &TestContext) {
    // PR_SET_PDEATHSIG fires when the spawning *thread* ends: the harness
    // spawns from a long-lived thread, so a short-lived caller is harmless.
    let caller_ctx = ctx.clone();
    let child = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(caller_ctx.process("sleeper", "sleep").arg("30").start())
            .unwrap()
    })
    .join()
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        child.exit_status(),
        None,
        "the child died with its caller thread"
    );
}

#[dynamo_test]
fn logs_go_to_target_dynamo_test_by_default(ctx: &TestContext) {
    if std::env::var_os("DYNAMO_TEST_OUTPUT_DIR").is_some() {
        return; // moved on purpose: the case below covers the override
    }
    // This run's directory, in the test's: `<root>/<test>/<run id>/`.
    let test_dir = ctx.output_dir().parent().unwrap();
    assert!(
        test_dir.ends_with("dynamo-test/processes.logs_go_to_target_dynamo_test_by_default"),
        "{}",
        test_dir.display()
    );
    // target/dynamo-test, next to target/debug where this binary lives.
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap();
    assert_eq!(test_dir.parent().unwrap(), target.join("dynamo-test"));
}

#[test]
fn the_output_dir_can_be_moved_by_env_var() {
    let root = std::env::temp_dir().join(format!("dt-output-{}", std::process::id()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scenario"))
        .arg("error")
        .env("DYNAMO_TEST_OUTPUT_DIR", &root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(101));
    let log = root
        .join("scenario.family")
        .join(dynamo_test::admin::LATEST_LINK)
        .join("family.log");
    let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    assert!(text.contains("pids "), "{text}");
    std::fs::remove_dir_all(&root).unwrap();
}

/// Env vars of `holds_its_run_until_told`: what it writes, and the file
/// whose appearance ends it.
const ENV_TOKEN: &str = "DYNAMO_TEST_SUITE_TOKEN";
const ENV_GO: &str = "DYNAMO_TEST_SUITE_GO";

/// One run for `two_runs_of_one_test_at_once_keep_their_own_logs_and_data`:
/// a process log and a data dir (as an isolated etcd's: emptied first)
/// holding `$DYNAMO_TEST_SUITE_TOKEN`; prints `dir <output dir>`, then
/// holds its run until `$DYNAMO_TEST_SUITE_GO` exists.
#[dynamo_test(timeout = "60s")]
#[ignore = "a child process of two_runs_of_one_test_at_once_keep_their_own_logs_and_data"]
async fn holds_its_run_until_told(ctx: &TestContext) {
    let token = std::env::var(ENV_TOKEN).unwrap();
    let go = std::path::PathBuf::from(std::env::var(ENV_GO).unwrap());
    let data = ctx.output_dir().join("etcd-data");
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("member"), &token).unwrap();
    let echo = ctx
        .process("echo", "sh")
        .args(["-c", "echo \"token $0\"; sleep 1000", &token])
        .start()
        .await
        .unwrap();
    assert_eq!(wait_for_line(&echo, "token ").await, token);
    println!("dir {}", ctx.output_dir().display());
    while !go.exists() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn two_runs_of_one_test_at_once_keep_their_own_logs_and_data() {
    use std::io::BufRead;
    let scratch = std::env::temp_dir().join(format!("dt-two-runs-{}", std::process::id()));
    let root = scratch.join("output");
    let go = scratch.join("go");
    let start = |token: &str| {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["holds_its_run_until_told", "--exact", "--ignored"])
            .args(["--nocapture", "--test-threads=1"])
            .env("DYNAMO_TEST_OUTPUT_DIR", &root)
            .env(ENV_TOKEN, token)
            .env(ENV_GO, &go)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let dir_of = |run: &mut std::process::Child| {
        let stdout = std::io::BufReader::new(run.stdout.take().unwrap());
        let mut lines = stdout.lines().map_while(Result::ok);
        let dir = lines
            .by_ref()
            .find_map(|l| l.strip_prefix("dir ").map(std::path::PathBuf::from));
        // Read to the end: libtest fails on a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        dir.expect("the run printed its output dir")
    };
    let mut first = start("first");
    let mut second = start("second");
    // Both print only once they have written: both runs are live now.
    let dirs = [dir_of(&mut first), dir_of(&mut second)];
    std::fs::write(&go, "").unwrap();
    assert!(first.wait().unwrap().success());
    assert!(second.wait().unwrap().success());

    assert_ne!(dirs[0], dirs[1], "two runs at once shared a directory");
    let test_dir = root.join("processes.holds_its_run_until_told");
    for (dir, token) in dirs.iter().zip(["first", "second"]) {
        assert_eq!(dir.parent(), Some(test_dir.as_path()));
        let log = std::fs::read_to_string(dir.join("echo.log")).unwrap();
        assert!(log.contains(&format!("token {token}")), "{token}: {log}");
        let data = std::fs::read_to_string(dir.join("etcd-data/member")).unwrap();
        assert_eq!(data, token, "the other run replaced this one's data dir");
    }
    let latest = std::fs::read_link(test_dir.join(dynamo_test::admin::LATEST_LINK)).unwrap();
    assert!(dirs
        .iter()
        .any(|d| d.file_name() == Some(latest.as_os_str())));
    std::fs::remove_dir_all(&scratch).unwrap();
}

#[dynamo_test(timeout = "30s")]
async fn an_unbounded_grace_waits_for_the_exit_without_overflow(ctx: &TestContext) {
    let sleeper = ctx
        .process("sleeper", "sleep")
        .arg("30")
        .grace(Duration::MAX)
        .start()
        .await
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(sleeper.stop().await.unwrap().signal(), Some(libc::SIGTERM));
}
