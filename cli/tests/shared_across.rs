//! One shared etcd for everything that shares the network namespace:
//! another uid, and a "container" with its own `/tmp` (a private mount
//! namespace with a tmpfs there, so its own state directory), join the
//! instance that root's `dynamo-test up` started; root's tests end and
//! its `down` runs while the other side's test still does put/get every
//! 100 ms, which keeps passing; the service stops once both sides are
//! gone.
//!
//! These need root (setpriv to another uid, unshare for a mount
//! namespace), as CI has; elsewhere they print why and return. The plan's
//! etcd ports are moved to reserved ones, so the run's own 2379 is never
//! touched.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dynamo_test::admin::{self, ServiceKind};
use dynamo_test::{dynamo_test, Error, Etcd, Port};
use dynamo_test_suite::{eventually, plan_env};
use serde_json::Value;

type Env = Vec<(&'static str, String)>;

/// The unprivileged side's uid and gid (`nobody`).
const NOBODY: u32 = 65534;
const GRACE_MS: u64 = 300;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn cli(args: &[&str], env: &[(&'static str, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dynamo-test"));
    cmd.args(args).envs(env.iter().map(|(k, v)| (k, v)));
    cmd.output().unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A directory removed at the end, owned by `uid`.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str, uid: u32) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "dynamo-test-across-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&path, Some(uid), Some(uid)).unwrap();
        TempDir(path)
    }

    /// State and output directories of this side alone.
    fn env(&self) -> Env {
        vec![
            (
                "DYNAMO_TEST_STATE_DIR",
                self.0.join("state").display().to_string(),
            ),
            (
                "DYNAMO_TEST_OUTPUT_DIR",
                self.0.join("output").display().to_string(),
            ),
        ]
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `down` with `env` when dropped, even if the test panicked.
struct Down(Env);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = cli(&["down"], &self.0);
    }
}

/// This test binary, as a path `nobody` may execute: itself if every
/// directory on the way lets others through, else a copy in `dir` (a
/// fresh clone under a private home may not).
fn executable_for_nobody(dir: &Path) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let reachable = exe
        .ancestors()
        .skip(1)
        .all(|d| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
    let runnable = std::fs::metadata(&exe).is_ok_and(|m| m.permissions().mode() & 0o005 == 0o005);
    if reachable && runnable {
        return exe;
    }
    let copy = dir.join("shared_across");
    std::fs::copy(&exe, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
    copy
}

/// The test executable at a path the container's fresh /tmp does not
/// hide: a copy in /var/tmp when the checkout itself is under /tmp
/// (removed when dropped).
struct ExeOutsideTmp(PathBuf, bool);

impl ExeOutsideTmp {
    fn new() -> ExeOutsideTmp {
        let exe = std::env::current_exe().unwrap();
        if !exe.starts_with("/tmp") {
            return ExeOutsideTmp(exe, false);
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let copy = PathBuf::from(format!(
            "/var/tmp/dynamo-test-across-exe-{}-{nanos}",
            std::process::id()
        ));
        std::fs::copy(&exe, &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        ExeOutsideTmp(copy, true)
    }
}

impl Drop for ExeOutsideTmp {
    fn drop(&mut self) {
        if self.1 {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// The other side's test (`etcd_loop`, below), running.
struct Loop {
    child: Child,
    /// The line it printed once it had the service.
    joined: String,
    /// The rest of its stdout, read to the end by a thread.
    rest: std::thread::JoinHandle<String>,
}

/// Starts `command` (which runs `etcd_loop`) with `env`, and waits until
/// it has joined the service.
fn start_loop(mut command: Command, env: &[(&'static str, String)]) -> Loop {
    command
        .env_remove("DYNAMO_TEST_STATE_DIR")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("DYNAMO_TEST_LOOP_MS", "4000")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let joined = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("source="))
        .unwrap_or_default();
    let rest =
        std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));
    Loop {
        child,
        joined,
        rest,
    }
}

impl Loop {
    /// Waits for its end: whether it passed, and what it said.
    fn finish(mut self) -> (bool, String) {
        let status = self.child.wait().unwrap();
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut stderr);
        }
        let stdout = self.rest.join().unwrap();
        (
            status.success(),
            format!("{} {stdout}\n{stderr}", self.joined),
        )
    }
}

/// The keeper's account of the shared etcd on `port`.
fn keeper_of(port: u16) -> Option<admin::ServiceRecord> {
    admin::records()
        .unwrap()
        .into_iter()
        .find(|r| r.name == "etcd" && r.port == port)
}

/// Root's side: `up etcd`, one test process using it and ending. Returns
/// root's env.
fn root_side(client: &Port, peer: &Port, root: &TempDir) -> Env {
    let mut env = plan_env(ServiceKind::Etcd, client, peer);
    env.push(("DYNAMO_TEST_SERVICE_GRACE_MS", GRACE_MS.to_string()));
    env.extend(root.env());
    let out = cli(&["--json", "up", "etcd"], &env);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json(&out)["up"][0]["port"], client.get());
    // A root test uses it, and ends.
    let mut test = Command::new(std::env::current_exe().unwrap());
    test.args(["etcd_loop", "--exact", "--ignored", "--nocapture"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("DYNAMO_TEST_LOOP_MS", "100");
    let out = test.output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{printed}");
    assert!(printed.contains("source=SharedStarted"), "{printed}");
    env
}

/// With the other side's loop running: root's `down` removes only its
/// pin and says the service stays; the loop passes; then the service
/// stops a grace after it.
fn root_ends_then_the_other_side(client: &Port, root_env: &Env, other: Loop) {
    let joined = &other.joined;
    assert!(
        joined.starts_with("source=SharedStarted"),
        "joined as a user: {joined:?}"
    );
    let record = keeper_of(client.get()).expect("a keeper runs it");
    assert_eq!(record.problem, None);
    assert!(record.users >= 1, "the other side is a user: {record:?}");

    let out = cli(&["--json", "down"], root_env);
    let down = json(&out);
    assert_eq!(down["down"][0]["stopped"], false, "{down}");
    assert!(down["down"][0]["other_users"].as_u64() >= Some(1), "{down}");
    assert!(admin::is_listening(client.get()), "root's down left it up");

    let (passed, said) = other.finish();
    assert!(passed, "the other side's test failed:\n{said}");
    assert!(said.contains("loop ok"), "{said}");
    let limit = Duration::from_millis(GRACE_MS) + Duration::from_secs(5);
    assert!(
        eventually(limit, || !admin::is_listening(client.get())),
        "etcd still up {limit:?} after both sides ended"
    );
    assert!(
        eventually(Duration::from_secs(2), || keeper_of(client.get()).is_none()),
        "its keeper is gone"
    );
}

#[dynamo_test(timeout = "90s")]
fn another_uid_joins_and_outlives_roots_down(client: Port, peer: Port) {
    if !is_root() {
        println!("skipped: needs root to run the other side as uid {NOBODY} (CI runs as root)");
        return;
    }
    let root = TempDir::new("root", 0);
    let nobody = TempDir::new("nobody", NOBODY);
    let root_env = root_side(&client, &peer, &root);
    let _down = Down(root_env.clone());

    let exe = executable_for_nobody(&nobody.0);
    let mut command = Command::new("setpriv");
    command
        .args([
            format!("--reuid={NOBODY}"),
            format!("--regid={NOBODY}"),
            "--clear-groups".to_string(),
        ])
        .arg(&exe)
        .args(["etcd_loop", "--exact", "--ignored", "--nocapture"]);
    let mut env = plan_env(ServiceKind::Etcd, &client, &peer);
    env.push(("DYNAMO_TEST_SERVICE_GRACE_MS", GRACE_MS.to_string()));
    env.extend(nobody.env());
    let other = start_loop(command, &env);
    root_ends_then_the_other_side(&client, &root_env, other);
}

#[dynamo_test(timeout = "90s")]
fn a_container_with_its_own_tmp_joins_and_outlives_roots_down(client: Port, peer: Port) {
    if !is_root() {
        println!("skipped: needs root for a private mount namespace (CI runs as root)");
        return;
    }
    let root = TempDir::new("root-mnt", 0);
    let root_env = root_side(&client, &peer, &root);
    let _down = Down(root_env.clone());

    // Its /tmp is a fresh tmpfs: its default state directory
    // (/tmp/dynamo-test-0) is not root's, and no file of root's side is seen.
    let exe = ExeOutsideTmp::new();
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs tmpfs /tmp && exec \"$0\" \"$@\"")
        .arg(&exe.0)
        .args(["etcd_loop", "--exact", "--ignored", "--nocapture"]);
    let mut env = plan_env(ServiceKind::Etcd, &client, &peer);
    env.push(("DYNAMO_TEST_SERVICE_GRACE_MS", GRACE_MS.to_string()));
    env.push(("DYNAMO_TEST_OUTPUT_DIR", "/tmp/output".to_string()));
    env.push(("DYNAMO_TEST_EXPECT_EMPTY_TMP", "1".to_string()));
    let other = start_loop(command, &env);
    root_ends_then_the_other_side(&client, &root_env, other);
}

/// The other side's test: etcd put/get every 100 ms for
/// `DYNAMO_TEST_LOOP_MS`; prints `source=...` once it has the service.
#[dynamo_test(timeout = "60s")]
#[ignore = "a child process of the tests above"]
async fn etcd_loop(etcd: Etcd) -> Result<(), Error> {
    if std::env::var_os("DYNAMO_TEST_EXPECT_EMPTY_TMP").is_some() {
        let seen: Vec<_> = std::fs::read_dir("/tmp")
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("dynamo-test-across-")
            })
            .collect();
        assert!(seen.is_empty(), "not a private /tmp: {seen:?}");
    }
    println!("source={:?} url={}", etcd.source(), etcd.url());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let ms: u64 = std::env::var("DYNAMO_TEST_LOOP_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    let until = Instant::now() + Duration::from_millis(ms);
    let mut n = 0u32;
    while Instant::now() < until {
        let value = n.to_string();
        etcd.put(&etcd.key("tick"), &value).await?;
        assert_eq!(etcd.get(&etcd.key("tick")).await?, Some(value));
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("loop ok {n}");
    Ok(())
}
