//! Reservations have the scope of the ports themselves, the network
//! namespace: two containers with their own `/tmp` and two users allocate
//! at the same moment and never get the same port; a SIGKILLed holder in
//! another uid frees its ports at once; a child never inherits one.
//!
//! The race tests start two `port_racer` sides, release them together, and
//! let each hold everything it got until both are done: the two sets must
//! be disjoint (a double grant is a port in both) and every port must bind.
//! Each side reserves 1,000 ports of the 12,768 of the default range, so a
//! reservation that the other side cannot see (the per-user lock files
//! that came before) shows as dozens of common ports, not as a rare event.
//!
//! They need root (`unshare --mount`, `mount`, `setpriv`); as another user
//! they print why and pass. CI runs them as root.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use dynamo_test::admin::live_reservations;

/// Threads per side, and ports each thread reserves.
const THREADS: usize = 4;
const PER_THREAD: usize = 250;

/// The unprivileged user of the two-users test.
const NOBODY: u32 = 65534;

fn racer() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_port_racer"))
}

/// Whether we run as root; if not, says which test is skipped and why.
fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!(
            "skipped {test}: it needs root (unshare --mount, mount -t tmpfs, setpriv to uid \
             {NOBODY}); CI runs it as root"
        );
    }
    root
}

/// A `port_racer` side: started, and reported who and where it is.
struct Side {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    uid: u32,
    mnt: u64,
    tmp: u64,
}

impl Side {
    fn start(name: &'static str, mut command: Command) -> Side {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("side {name}: start {command:?}: {e}"));
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut side = Side {
            name,
            child,
            stdin,
            stdout,
            uid: 0,
            mnt: 0,
            tmp: 0,
        };
        let ready = side.line();
        let fields = ready
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("side {name}: {ready:?}"));
        for field in fields.split(' ') {
            match field.split_once('=') {
                Some(("uid", v)) => side.uid = v.parse().unwrap(),
                Some(("mnt", v)) => side.mnt = v.parse().unwrap(),
                Some(("tmp", v)) => side.tmp = v.parse().unwrap(),
                _ => panic!("side {name}: {ready:?}"),
            }
        }
        side
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn send(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{command}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("side {}: send {command}: {e}", self.name));
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).unwrap();
        assert!(n > 0, "side {} ended without a word", self.name);
        line.trim_end().to_string()
    }

    /// The ports the side reports after `go`.
    fn ports(&mut self) -> Vec<u16> {
        let line = self.line();
        let list = line
            .strip_prefix("ports ")
            .unwrap_or_else(|| panic!("side {}: {line}", self.name));
        list.split(' ').map(|p| p.parse().unwrap()).collect()
    }

    /// After `bind`: how many binds failed, and the first failure.
    fn bind_failures(&mut self) -> (usize, String) {
        let line = self.line();
        let mut words = line.splitn(5, ' ');
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("bound"), Some(_), Some("failed"), Some(n)) => {
                (n.parse().unwrap(), words.next().unwrap_or("").to_string())
            }
            _ => panic!("side {}: {line}", self.name),
        }
    }

    /// Closes stdin; the side releases everything and exits.
    fn finish(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "side {}: {status}", self.name);
    }
}

/// A side in a mount namespace of its own with a private tmpfs on `/tmp`
/// (a container sharing the host's network), with its own `TMPDIR` and
/// state directory. The binary is opened before the mount and run through
/// its descriptor, so a target directory under `/tmp` works too.
fn in_private_tmp(name: &str) -> Command {
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"exec 3<"$0" && mount -t tmpfs tmpfs /tmp && exec /proc/self/fd/3 "$@""#)
        .arg(racer())
        .args([THREADS.to_string(), PER_THREAD.to_string()])
        .env("TMPDIR", format!("/tmp/side-{name}"))
        .env(
            "DYNAMO_TEST_STATE_DIR",
            format!("/tmp/dynamo-test-side-{name}"),
        );
    command
}

/// A side as uid/gid 65534 with no supplementary groups.
fn as_nobody(binary: &Path) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args([
            format!("--reuid={NOBODY}"),
            format!("--regid={NOBODY}"),
            "--clear-groups".into(),
        ])
        .arg(binary)
        .args([THREADS.to_string(), PER_THREAD.to_string()]);
    command
}

fn plain(binary: &Path) -> Command {
    let mut command = Command::new(binary);
    command.args([THREADS.to_string(), PER_THREAD.to_string()]);
    command
}

/// The racer binary, runnable by uid 65534: the target directory's if that
/// user may execute it there, else a copy in a directory it can reach.
struct NobodyBinary {
    path: PathBuf,
    copy_dir: Option<PathBuf>,
}

impl NobodyBinary {
    fn find() -> NobodyBinary {
        let probe = |path: &Path| {
            Command::new("setpriv")
                .args([
                    format!("--reuid={NOBODY}"),
                    format!("--regid={NOBODY}"),
                    "--clear-groups".into(),
                ])
                .arg(path)
                .arg("--probe")
                .output()
                .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"ok"))
        };
        if probe(&racer()) {
            return NobodyBinary {
                path: racer(),
                copy_dir: None,
            };
        }
        let dir = std::env::temp_dir().join(format!("port-racer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.join("port_racer");
        std::fs::copy(racer(), &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(
            probe(&path),
            "uid {NOBODY} can run neither {} nor its copy {}: check the permissions of the \
             directories on the way",
            racer().display(),
            path.display()
        );
        NobodyBinary {
            path,
            copy_dir: Some(dir),
        }
    }
}

impl Drop for NobodyBinary {
    fn drop(&mut self) {
        if let Some(dir) = &self.copy_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Releases both sides together, then checks that while both held all they
/// got, no port was granted to both and every port could be bound.
fn race(mut a: Side, mut b: Side) {
    a.send("go");
    b.send("go");
    let ports_a = a.ports();
    let ports_b = b.ports();
    let n = THREADS * PER_THREAD;
    assert_eq!((ports_a.len(), ports_b.len()), (n, n));
    let set_a: BTreeSet<u16> = ports_a.iter().copied().collect();
    let set_b: BTreeSet<u16> = ports_b.iter().copied().collect();
    assert_eq!(
        (set_a.len(), set_b.len()),
        (n, n),
        "a side got a port twice"
    );
    let both: Vec<u16> = set_a.intersection(&set_b).copied().collect();
    assert!(
        both.is_empty(),
        "{} double grants between side {} and side {}: {both:?}",
        both.len(),
        a.name,
        b.name
    );

    // Who holds what is visible across the boundary too. /proc/net/unix is
    // read in pieces while other tests bind and close sockets, so one read
    // may miss an entry: both sides hold still, a later read sees them all.
    let listed_by = |side: &Side, set: &BTreeSet<u16>| {
        live_reservations()
            .unwrap()
            .iter()
            .filter(|r| set.contains(&r.port))
            .filter(|r| r.holder.as_ref().is_some_and(|h| h.pid == side.pid()))
            .count()
    };
    for (side, set) in [(&a, &set_a), (&b, &set_b)] {
        let complete =
            dynamo_test_suite::eventually(Duration::from_secs(10), || listed_by(side, set) == n);
        assert!(
            complete,
            "side {}'s reservations listed with its pid: {} of {n}",
            side.name,
            listed_by(side, set)
        );
    }

    a.send("bind");
    b.send("bind");
    for side in [&mut a, &mut b] {
        let (failed, first) = side.bind_failures();
        assert_eq!(
            failed, 0,
            "side {}: bind failures, first: {first}",
            side.name
        );
    }
    a.finish();
    b.finish();
}

fn own_mount_namespace() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/mnt").unwrap().ino()
}

#[test]
fn two_containers_with_their_own_tmp_never_share_a_port() {
    if !root_or_skip("two_containers_with_their_own_tmp_never_share_a_port") {
        return;
    }
    let a = Side::start("A", in_private_tmp("A"));
    let b = Side::start("B", in_private_tmp("B"));
    // Really two mount namespaces, neither ours, each with its own /tmp.
    let ours = own_mount_namespace();
    assert!(a.mnt != b.mnt && a.mnt != ours && b.mnt != ours);
    let our_tmp = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/tmp").unwrap().dev()
    };
    assert!(a.tmp != b.tmp && a.tmp != our_tmp && b.tmp != our_tmp);
    race(a, b);
}

#[test]
fn root_and_nobody_never_share_a_port() {
    if !root_or_skip("root_and_nobody_never_share_a_port") {
        return;
    }
    let binary = NobodyBinary::find();
    let a = Side::start("root", plain(&binary.path));
    let b = Side::start("nobody", as_nobody(&binary.path));
    assert_eq!((a.uid, b.uid), (0, NOBODY));
    race(a, b);
}

#[test]
fn a_sigkilled_holder_of_another_user_frees_its_ports_at_once() {
    if !root_or_skip("a_sigkilled_holder_of_another_user_frees_its_ports_at_once") {
        return;
    }
    let binary = NobodyBinary::find();
    let mut side = Side::start("nobody", as_nobody(&binary.path));
    side.send("go");
    let ports = side.ports();
    let pid = side.pid();
    let held_by = |p: u16, pid: u32| {
        live_reservations()
            .unwrap()
            .iter()
            .any(|r| r.port == p && r.holder.as_ref().is_some_and(|h| h.pid == pid))
    };
    assert!(held_by(ports[0], pid), "listed with the holder's pid");

    side.child.kill().unwrap(); // SIGKILL
    side.child.wait().unwrap();
    // At once: no wait, no retry. Each number is ours again, unless another
    // live holder (a parallel test) took it in the meantime.
    let live = live_reservations().unwrap();
    let still: Vec<u16> = live
        .iter()
        .filter(|r| r.holder.as_ref().is_some_and(|h| h.pid == pid))
        .map(|r| r.port)
        .collect();
    assert!(still.is_empty(), "still reserved after SIGKILL: {still:?}");
    let mut regained = 0;
    for &p in &ports {
        let again = dynamo_test::find_free_port_from(p).unwrap();
        if again.get() == p {
            regained += 1;
        } else {
            let holder = live_reservations()
                .unwrap()
                .into_iter()
                .find(|r| r.port == p)
                .and_then(|r| r.holder);
            assert!(
                holder.as_ref().is_some_and(|h| h.pid != pid),
                "port {p} of the killed holder is not free: {holder:?}"
            );
        }
    }
    assert!(regained > 0, "none of {} ports was free again", ports.len());
}

#[test]
fn a_child_process_never_inherits_a_reservation() {
    let port = dynamo_test::find_free_port().unwrap();
    let number = port.get();
    // A long-lived child, started while the port is reserved.
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    drop(port);
    // The reservation went with our descriptor: the child holds nothing.
    // (Another thread of this binary spawning a child may hold a copy for
    // the instant between its fork and exec: look again for a moment.)
    let deadline = Instant::now() + Duration::from_secs(1);
    let outcome = loop {
        let again = dynamo_test::find_free_port_from(number).unwrap();
        if again.get() == number {
            break Ok(());
        }
        drop(again);
        let holder = live_reservations()
            .unwrap()
            .into_iter()
            .find(|r| r.port == number)
            .and_then(|r| r.holder);
        let ours = holder.as_ref().is_some_and(|h| h.pid == std::process::id());
        if !ours {
            // Someone else (a parallel test) holds it now: a name has one
            // socket, so ours and any copy of it are closed. Not inherited.
            break Err(holder);
        }
        assert!(
            Instant::now() < deadline,
            "port {number}: our dropped reservation is still held (by the child {}?)",
            child.id()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(
        child.try_wait().unwrap().is_none(),
        "the child must still run for the check to mean anything"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    if let Err(holder) = outcome {
        eprintln!("port {number} was reserved by {holder:?} right after our release");
    }
}
