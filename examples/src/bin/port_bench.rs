//! Port allocator benchmark: `dynamo_test::find_free_port` against
//! `portpicker::pick_unused_port` under many processes and threads, and
//! across the boundaries a reservation must hold over.
//!
//! ```text
//! port_bench [--procs P] [--threads T] [--allocs N]
//!            [--arm all|both|dynamo|portpicker|netns|users]
//!            [--listener closed|open] [--settle on|off]
//! ```
//!
//! Arms: `dynamo` and `portpicker` (the control) run every worker as this
//! process runs; `netns` runs half the workers in one mount namespace and
//! half in another, each with a private tmpfs on `/tmp` (two containers
//! sharing the host network), `users` runs half as root and half as uid
//! 65534 (both `find_free_port`; both need root). `all` (the default) runs
//! the four, `both` the first two.
//!
//! For each arm the parent re-executes its own binary as P worker processes
//! (hidden `--worker` flag), each running T threads; the N allocations of the
//! arm are divided across the P x T threads. Each cycle of a thread:
//!
//! 1. allocate a port (only this call is timed);
//! 2. claim an `O_EXCL` marker file for the port in a directory shared by all
//!    workers of the arm (under `/var/tmp` by default, which both mount
//!    namespaces and both users see; `--markers`): if it already exists,
//!    another holder was granted the same port while it still held it (a
//!    *double grant*);
//! 3. after a random 0-2 ms, bind `127.0.0.1:port` (a failure is a *bind
//!    failure*), connect one client, accept it, and close the server side
//!    first, so the port's server side lands in TIME_WAIT;
//! 4. keep holding the port for a random 0-20 ms, remove the marker, release.
//!
//! By default the listener is closed before the hold (the "server" has shut
//! down, as in a restart test): only the reservation protects the port then,
//! which is the harder case for an allocator. `--listener open` keeps it
//! listening until the release instead, so that a collision shows up as a
//! bind failure (EADDRINUSE) rather than only in the marker check.
//!
//! Every cycle ends in a TIME_WAIT socket, so an arm leaves the range full
//! of them for 60 s; with `--settle on` (the default) each arm starts only
//! once fewer than 128 are left in 15000-32767 (at most 65 s), so that every
//! arm meets the same clean range.
//!
//! Workers print who they are (uid, mount namespace) and their tallies on
//! stdout; the parent adds them up and prints one table per arm, then a
//! summary of p50 against portpicker's. The exit code is 1 if an arm of
//! `find_free_port` had any double grant or bind failure (or a worker
//! failed, or the arm's setup was not what it claims), 2 on a usage error,
//! so the command doubles as a check. The latency targets are printed, not
//! part of the exit code: they depend on the machine.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dynamo_test_examples::bench::{self, or_dash, percentile, Cli, Rng};

const CLI: Cli = Cli {
    name: "port_bench",
    usage: "usage: port_bench [--procs P] [--threads T] [--allocs N] [--arm A] [--listener L] [--settle S]
  --procs P     worker processes per arm (default 16)
  --threads T   threads per worker process (default 4)
  --allocs N    allocations per arm, divided across all threads (default 12800)
  --arm A       all (default), both (dynamo + portpicker), dynamo, portpicker,
                netns (two mount namespaces with private /tmp; root) or
                users (root and uid 65534; root)
  --listener L  during the hold the listener is closed (default) or open
  --settle S    on (default): start each arm once the TIME_WAIT sockets of the
                previous one have expired (up to 65 s); off: at once
  --markers D   the marker files' parent directory (default /var/tmp, else the
                temp dir); not under /tmp for netns, open to uid 65534 for users
port_bench --costs PAUSE_US
                time the parts of one allocation on one thread instead (5000
                calls each, PAUSE_US between calls: 0 = warm caches)",
};

/// Longest random delay between the allocation and the bind.
const MAX_BIND_DELAY_US: u64 = 2_000;
/// Longest random hold after the connection has been closed.
const MAX_HOLD_US: u64 = 20_000;
/// How many error messages a worker reports verbatim.
const MAX_NOTES: usize = 3;
/// The unprivileged user of the `users` arm.
const NOBODY: u32 = 65534;
/// The latency targets of issue 10: p50 at most this share of
/// portpicker's p50 in the same invocation, and at most this many us.
const TARGET_RATIO: f64 = 0.5;
const TARGET_P50_US: f64 = 25.0;
/// `--settle on` waits until fewer TIME_WAIT sockets than this are left.
const SETTLED_TIME_WAIT: usize = 128;
/// ... but no longer than this (TIME_WAIT lasts 60 s on Linux).
const SETTLE_LIMIT: Duration = Duration::from_secs(65);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--worker") {
        return match WorkerArgs::parse(&args[1..]) {
            Ok(w) => worker_main(&w),
            Err(msg) => CLI.usage_error(&msg),
        };
    }
    if args.first().map(String::as_str) == Some("--costs") {
        return match args.get(1..).unwrap_or_default() {
            [pause] => match pause.parse() {
                Ok(us) => costs_main(us),
                Err(_) => CLI.usage_error(&format!("--costs {pause:?}: expected microseconds")),
            },
            _ => CLI.usage_error("--costs takes one value (the pause in us) and no other flag"),
        };
    }
    CLI.main(&args, Config::parse, parent_main)
}

// ---------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------

/// Which allocator an arm exercises, and where its workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arm {
    /// `dynamo_test::find_free_port`: a reservation (an abstract socket
    /// name) plus a bind check.
    Dynamo,
    /// `portpicker::pick_unused_port`: a bind check only (the control).
    Portpicker,
    /// `find_free_port`, half the workers in each of two mount namespaces
    /// with a private `/tmp`.
    Netns,
    /// `find_free_port`, half the workers as root, half as uid 65534.
    Users,
}

impl Arm {
    fn name(self) -> &'static str {
        match self {
            Arm::Dynamo => "dynamo",
            Arm::Portpicker => "portpicker",
            Arm::Netns => "netns",
            Arm::Users => "users",
        }
    }

    fn call(self) -> &'static str {
        match self {
            Arm::Dynamo => "dynamo_test::find_free_port()",
            Arm::Portpicker => "portpicker::pick_unused_port()",
            Arm::Netns => "find_free_port(), 2 mount namespaces with private /tmp, one network",
            Arm::Users => "find_free_port(), half the workers root, half uid 65534",
        }
    }

    /// The allocator the arm's workers call.
    fn allocator(self) -> Arm {
        match self {
            Arm::Portpicker => Arm::Portpicker,
            _ => Arm::Dynamo,
        }
    }

    /// Whether the arm's workers must run as root to be placed.
    fn needs_root(self) -> bool {
        matches!(self, Arm::Netns | Arm::Users)
    }

    fn parse(s: &str) -> Result<Arm, String> {
        match s {
            "dynamo" => Ok(Arm::Dynamo),
            "portpicker" => Ok(Arm::Portpicker),
            "netns" => Ok(Arm::Netns),
            "users" => Ok(Arm::Users),
            _ => Err(format!(
                "unknown arm {s:?}: expected all, both, dynamo, portpicker, netns or users"
            )),
        }
    }
}

const ALL_ARMS: [Arm; 4] = [Arm::Dynamo, Arm::Portpicker, Arm::Netns, Arm::Users];

/// The parent's settings.
#[derive(Debug)]
struct Config {
    procs: u32,
    threads: u32,
    allocs: u64,
    arms: Vec<Arm>,
    /// Whether the listener stays open through the hold.
    keep_listener: bool,
    /// Whether each arm waits for the previous arm's TIME_WAIT to expire.
    settle: bool,
    /// Where the marker directory is made.
    markers: PathBuf,
    /// The arms of the default `all` that are skipped (not root), with why.
    skipped: Vec<(Arm, &'static str)>,
}

impl Config {
    fn parse(args: &[String]) -> Result<Config, String> {
        let mut c = Config {
            procs: 16,
            threads: 4,
            allocs: 12_800,
            arms: ALL_ARMS.to_vec(),
            keep_listener: false,
            settle: true,
            markers: default_markers_parent(),
            skipped: Vec::new(),
        };
        let mut explicit = false;
        for (flag, value) in flag_pairs(args)? {
            match flag {
                "--procs" => c.procs = positive(flag, value)?,
                "--threads" => c.threads = positive(flag, value)?,
                "--allocs" => c.allocs = positive(flag, value)?,
                "--arm" if value == "all" => (c.arms, explicit) = (ALL_ARMS.to_vec(), false),
                "--arm" if value == "both" => {
                    (c.arms, explicit) = (vec![Arm::Dynamo, Arm::Portpicker], false)
                }
                "--arm" => (c.arms, explicit) = (vec![Arm::parse(value)?], true),
                "--listener" => c.keep_listener = listener_open(value)?,
                "--settle" => c.settle = on_off(flag, value)?,
                "--markers" => c.markers = PathBuf::from(value),
                _ => return Err(format!("unknown flag {flag}")),
            }
        }
        if !is_root() {
            if explicit && c.arms.iter().any(|a| a.needs_root()) {
                return Err(format!(
                    "--arm {} needs root (unshare --mount, nsenter, setpriv)",
                    c.arms[0].name()
                ));
            }
            for arm in c.arms.iter().filter(|a| a.needs_root()) {
                c.skipped
                    .push((*arm, "needs root (unshare --mount, nsenter, setpriv)"));
            }
            c.arms.retain(|a| !a.needs_root());
        }
        Ok(c)
    }
}

/// `on` or `off`.
fn on_off(flag: &str, value: &str) -> Result<bool, String> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{flag} {value:?}: expected on or off")),
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A worker's settings, passed by the parent after `--worker`.
#[derive(Debug)]
struct WorkerArgs {
    arm: Arm,
    threads: u32,
    allocs: u64,
    markers: PathBuf,
    keep_listener: bool,
    /// Whether each cycle serves a connection (which leaves the port in
    /// TIME_WAIT): `--serve off` is for races that must test the
    /// reservations alone (python/bench/port_race.py).
    serve: bool,
}

impl WorkerArgs {
    fn parse(args: &[String]) -> Result<WorkerArgs, String> {
        let (mut arm, mut threads, mut allocs, mut markers) = (None, 1, 0, None);
        let (mut keep_listener, mut serve) = (false, true);
        for (flag, value) in flag_pairs(args)? {
            match flag {
                "--arm" => arm = Some(Arm::parse(value)?),
                "--threads" => threads = positive(flag, value)?,
                "--allocs" => allocs = value.parse().map_err(|_| bad(flag, value))?,
                "--markers" => markers = Some(PathBuf::from(value)),
                "--listener" => keep_listener = listener_open(value)?,
                "--serve" => serve = on_off(flag, value)?,
                _ => return Err(format!("unknown worker flag {flag}")),
            }
        }
        Ok(WorkerArgs {
            arm: arm.ok_or("worker needs --arm")?,
            threads,
            allocs,
            markers: markers.ok_or("worker needs --markers")?,
            keep_listener,
            serve,
        })
    }

    fn to_args(&self) -> Vec<String> {
        vec![
            "--worker".into(),
            "--arm".into(),
            self.arm.name().into(),
            "--threads".into(),
            self.threads.to_string(),
            "--allocs".into(),
            self.allocs.to_string(),
            "--markers".into(),
            self.markers.display().to_string(),
            "--listener".into(),
            if self.keep_listener { "open" } else { "closed" }.into(),
            "--serve".into(),
            if self.serve { "on" } else { "off" }.into(),
        ]
    }
}

/// `--flag value` pairs, all checked before any is used; every flag takes a value.
fn flag_pairs(args: &[String]) -> Result<Vec<(&str, &str)>, String> {
    bench::flag_pairs(args)
        .map(|pair| match pair? {
            (flag, value) if flag.starts_with("--") => Ok((flag, value)),
            (flag, _) => Err(format!("unexpected argument {flag:?}")),
        })
        .collect()
}

/// `--listener closed|open`: whether the listener stays open through the hold.
fn listener_open(value: &str) -> Result<bool, String> {
    match value {
        "closed" => Ok(false),
        "open" => Ok(true),
        _ => Err(format!("--listener {value:?}: expected closed or open")),
    }
}

/// A number >= 1.
fn positive<N: std::str::FromStr + PartialOrd + From<u8>>(
    flag: &str,
    value: &str,
) -> Result<N, String> {
    match value.parse::<N>() {
        Ok(n) if n >= N::from(1) => Ok(n),
        _ => Err(bad(flag, value)),
    }
}

fn bad(flag: &str, value: &str) -> String {
    format!("{flag} {value:?}: expected a positive number")
}

/// `total` split into `parts` shares that differ by at most one.
fn share(total: u64, parts: u64, index: u64) -> u64 {
    total / parts + u64::from(index < total % parts)
}

// ---------------------------------------------------------------------------
// Tallies
// ---------------------------------------------------------------------------

/// What one thread, one worker or one whole arm counted.
#[derive(Debug, Default)]
struct Tally {
    /// Grants of a port whose marker file already existed.
    double_grants: u64,
    /// Failed binds of `127.0.0.1:port` after a grant.
    bind_failures: u64,
    /// Allocation calls that returned an error (e.g. exhaustion).
    alloc_errors: u64,
    /// Connect/accept/close failures after a successful bind.
    conn_errors: u64,
    /// Duration of every allocation call (failed ones included), in nanoseconds.
    latencies_ns: Vec<u64>,
    /// The same, of each thread's first and last quarter of allocations:
    /// the range fills with TIME_WAIT sockets as an arm runs.
    first_quarter_ns: Vec<u64>,
    last_quarter_ns: Vec<u64>,
    /// The first few error messages, for the report.
    notes: Vec<String>,
    /// Where the workers ran: their identities, as they reported them.
    places: BTreeSet<Place>,
}

/// Who and where a worker is: effective uid, mount namespace, device of `/tmp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Place {
    uid: u32,
    mnt: u64,
    tmp: u64,
}

impl Place {
    /// This process's.
    fn here() -> Place {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        Place {
            uid,
            mnt: fs::metadata("/proc/self/ns/mnt").map_or(0, |m| m.ino()),
            tmp: fs::metadata("/tmp").map_or(0, |m| m.dev()),
        }
    }
}

impl Tally {
    /// Successful allocations: every timed call that did not fail.
    fn allocs(&self) -> u64 {
        (self.latencies_ns.len() as u64).saturating_sub(self.alloc_errors)
    }

    fn note(&mut self, msg: String) {
        if self.notes.len() < MAX_NOTES {
            self.notes.push(msg);
        }
    }

    fn merge(&mut self, other: Tally) {
        self.double_grants += other.double_grants;
        self.bind_failures += other.bind_failures;
        self.alloc_errors += other.alloc_errors;
        self.conn_errors += other.conn_errors;
        self.latencies_ns.extend(other.latencies_ns);
        self.first_quarter_ns.extend(other.first_quarter_ns);
        self.last_quarter_ns.extend(other.last_quarter_ns);
        for n in other.notes {
            self.note(n);
        }
        self.places.extend(other.places);
    }

    /// The wire format a worker prints on stdout.
    fn encode(&self) -> String {
        let mut out = format!(
            "tally {} {} {} {}\nlat",
            self.double_grants, self.bind_failures, self.alloc_errors, self.conn_errors
        );
        for ns in &self.latencies_ns {
            out.push_str(&format!(" {ns}"));
        }
        out.push('\n');
        for (kind, lat) in [
            ("latfirst", &self.first_quarter_ns),
            ("latlast", &self.last_quarter_ns),
        ] {
            out.push_str(kind);
            for ns in lat {
                out.push_str(&format!(" {ns}"));
            }
            out.push('\n');
        }
        for n in &self.notes {
            out.push_str(&format!("note {}\n", n.replace('\n', " | ")));
        }
        for p in &self.places {
            out.push_str(&format!("place {} {} {}\n", p.uid, p.mnt, p.tmp));
        }
        out
    }

    fn decode(text: &str) -> Result<Tally, String> {
        let mut t = Tally::default();
        let mut saw_tally = false;
        for line in text.lines() {
            let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
            match kind {
                "tally" => {
                    let n = numbers(rest)?;
                    let [d, b, e, c] = n[..] else {
                        return Err(format!("bad tally line {line:?}"));
                    };
                    (
                        t.double_grants,
                        t.bind_failures,
                        t.alloc_errors,
                        t.conn_errors,
                    ) = (d, b, e, c);
                    saw_tally = true;
                }
                "lat" => t.latencies_ns = numbers(rest)?,
                "latfirst" => t.first_quarter_ns = numbers(rest)?,
                "latlast" => t.last_quarter_ns = numbers(rest)?,
                "note" => t.note(rest.to_string()),
                "place" => {
                    let n = numbers(rest)?;
                    let [uid, mnt, tmp] = n[..] else {
                        return Err(format!("bad place line {line:?}"));
                    };
                    let uid = u32::try_from(uid).map_err(|_| format!("bad uid in {line:?}"))?;
                    t.places.insert(Place { uid, mnt, tmp });
                }
                _ => return Err(format!("unexpected worker output {line:?}")),
            }
        }
        saw_tally
            .then_some(t)
            .ok_or_else(|| "worker printed no tally".to_string())
    }
}

fn numbers(s: &str) -> Result<Vec<u64>, String> {
    s.split_whitespace()
        .map(|w| w.parse().map_err(|_| format!("not a number: {w:?}")))
        .collect()
}

// ---------------------------------------------------------------------------
// Parent
// ---------------------------------------------------------------------------

/// Runs every requested arm, prints the tables and the summary, and turns
/// the `find_free_port` arms' results into the exit code.
fn parent_main(config: &Config) -> ExitCode {
    let root = match marker_root(&config.markers) {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("port_bench: cannot create the marker directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "port_bench: {} procs x {} threads, {} allocations per arm, markers in {}",
        config.procs,
        config.threads,
        config.allocs,
        root.display()
    );
    for (arm, why) in &config.skipped {
        println!("  arm {} skipped: {why}", arm.name());
    }
    let mut ok = true;
    let mut p50s: Vec<(Arm, Option<u64>)> = Vec::new();
    for &arm in &config.arms {
        if config.settle {
            settle();
        }
        let result = run_arm(config, arm, &root.join(arm.name()));
        ok &= report(config, arm, &result);
        let mut lat = result.tally.latencies_ns.clone();
        lat.sort_unstable();
        p50s.push((arm, percentile(&lat, 0.50)));
    }
    summary(&p50s);
    let _ = fs::remove_dir_all(&root);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `/var/tmp` if it exists: a disk directory (like the `/tmp` this bench
/// used before it had the netns arm) that a private `/tmp` does not hide.
fn default_markers_parent() -> PathBuf {
    let var_tmp = Path::new("/var/tmp");
    if var_tmp.is_dir() {
        var_tmp.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// A fresh directory for the marker files under `parent`, shared by every
/// worker, whatever its uid.
fn marker_root(parent: &Path) -> io::Result<PathBuf> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let dir = parent.join(format!("port-bench-{}-{nanos}", std::process::id()));
    open_dir(&dir)?;
    Ok(dir)
}

/// Creates `dir`, writable by every worker whatever its uid.
fn open_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o777))
}

/// Waits until fewer than [`SETTLED_TIME_WAIT`] TCP sockets in TIME_WAIT are
/// left on ports 15000-32767 (portpicker's and the dynamic range), at most
/// [`SETTLE_LIMIT`].
fn settle() {
    let start = Instant::now();
    let first = time_wait_count();
    let mut left = first;
    while left >= SETTLED_TIME_WAIT && start.elapsed() < SETTLE_LIMIT {
        thread::sleep(Duration::from_millis(500));
        left = time_wait_count();
    }
    if first >= SETTLED_TIME_WAIT {
        println!(
            "\n(settled: waited {:.0} s for {first} TIME_WAIT sockets to expire, {left} left)",
            start.elapsed().as_secs_f64()
        );
    }
}

/// TCP sockets in TIME_WAIT on local ports 15000-32767, IPv4 and IPv6.
fn time_wait_count() -> usize {
    let mut count = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else {
                continue;
            };
            let port = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if *state == "06" && port.is_some_and(|p| (15000..=32767).contains(&p)) {
                count += 1;
            }
        }
    }
    count
}

/// The outcome of one arm.
struct ArmResult {
    tally: Tally,
    wall: Duration,
    /// Workers that crashed or printed garbage, and a setup that is not
    /// what the arm claims.
    worker_failures: Vec<String>,
}

/// How a worker is started: as this process, inside another mount
/// namespace (the pid of a process in it), or as uid 65534.
#[derive(Debug, Clone, Copy)]
enum Placement {
    Plain,
    Enter(u32),
    Nobody,
}

/// A process that keeps a mount namespace with a private tmpfs on `/tmp`
/// alive for the workers that enter it; killed (and reaped) on drop.
struct NamespaceKeeper {
    child: Child,
}

impl NamespaceKeeper {
    fn start() -> Result<NamespaceKeeper, String> {
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs tmpfs /tmp && exec sleep 3600")
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("start unshare (util-linux): {e}"))?;
        let keeper = NamespaceKeeper { child };
        // Ready once the shell has mounted /tmp and become `sleep`.
        let pid = keeper.child.id();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "sleep" {
                return Ok(keeper);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the mount namespace keeper (pid {pid}) did not mount /tmp within 5 s \
                     (is this root?)"
                ));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for NamespaceKeeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the arm's workers, releases them at once, and collects their tallies.
fn run_arm(config: &Config, arm: Arm, markers: &Path) -> ArmResult {
    let mut result = ArmResult {
        tally: Tally::default(),
        wall: Duration::ZERO,
        worker_failures: Vec::new(),
    };
    if let Err(e) = open_dir(markers) {
        result
            .worker_failures
            .push(format!("marker dir {}: {e}", markers.display()));
        return result;
    }
    if arm == Arm::Netns && markers.starts_with("/tmp") {
        result.worker_failures.push(format!(
            "marker dir {} is under /tmp, which each namespace hides: need /dev/shm",
            markers.display()
        ));
        return result;
    }
    let mut keepers = Vec::new();
    if arm == Arm::Netns {
        for _ in 0..2 {
            match NamespaceKeeper::start() {
                Ok(k) => keepers.push(k),
                Err(e) => {
                    result.worker_failures.push(e);
                    return result;
                }
            }
        }
    }
    let mut children = Vec::new();
    for i in 0..config.procs {
        let worker = WorkerArgs {
            arm: arm.allocator(),
            threads: config.threads,
            allocs: share(config.allocs, u64::from(config.procs), u64::from(i)),
            markers: markers.to_path_buf(),
            keep_listener: config.keep_listener,
            serve: true,
        };
        let placement = match arm {
            Arm::Netns => Placement::Enter(keepers[(i % 2) as usize].pid()),
            Arm::Users if i % 2 == 1 => Placement::Nobody,
            _ => Placement::Plain,
        };
        match spawn_worker(&worker, placement) {
            Ok(child) => children.push(child),
            Err(e) => result
                .worker_failures
                .push(format!("spawn worker {i} ({placement:?}): {e}")),
        }
    }
    // Everyone is started: release them together, so they really overlap.
    let start = Instant::now();
    for child in &mut children {
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(b"go\n");
        }
    }
    let readers: Vec<_> = children
        .into_iter()
        .map(|child| thread::spawn(move || collect_worker(child)))
        .collect();
    for reader in readers {
        match reader.join() {
            Ok(Ok(tally)) => result.tally.merge(tally),
            Ok(Err(msg)) => result.worker_failures.push(msg),
            Err(_) => result
                .worker_failures
                .push("a reader thread panicked".to_string()),
        }
    }
    result.wall = start.elapsed();
    drop(keepers);
    if let Err(problem) = check_places(arm, &result.tally.places) {
        result.worker_failures.push(format!("setup: {problem}"));
    }
    result
}

/// Whether the workers ran where the arm says they did.
fn check_places(arm: Arm, places: &BTreeSet<Place>) -> Result<(), String> {
    let here = Place::here();
    let uids: BTreeSet<u32> = places.iter().map(|p| p.uid).collect();
    let mounts: BTreeSet<u64> = places.iter().map(|p| p.mnt).collect();
    let tmps: BTreeSet<u64> = places.iter().map(|p| p.tmp).collect();
    match arm {
        Arm::Netns => {
            let private = mounts.len() == 2
                && !mounts.contains(&here.mnt)
                && tmps.len() == 2
                && !tmps.contains(&here.tmp);
            if !private {
                return Err(format!(
                    "expected 2 mount namespaces with a /tmp each, none ours \
                     (mnt {}, /tmp dev {}); saw {places:?}",
                    here.mnt, here.tmp
                ));
            }
        }
        Arm::Users => {
            if uids != BTreeSet::from([0, NOBODY]) {
                return Err(format!("expected uids 0 and {NOBODY}; saw {uids:?}"));
            }
        }
        Arm::Dynamo | Arm::Portpicker => {}
    }
    Ok(())
}

fn spawn_worker(worker: &WorkerArgs, placement: Placement) -> io::Result<Child> {
    let exe = std::env::current_exe()?;
    let mut command = match placement {
        Placement::Plain => Command::new(&exe),
        Placement::Enter(pid) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--target={pid}"))
                .arg("--mount")
                .arg("--")
                .arg(&exe);
            c
        }
        Placement::Nobody => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={NOBODY}"))
                .arg(format!("--regid={NOBODY}"))
                .arg("--clear-groups")
                .arg(&exe);
            c
        }
    };
    command
        .args(worker.to_args())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
}

/// Waits for a worker and decodes its tally.
fn collect_worker(child: Child) -> Result<Tally, String> {
    let pid = child.id();
    let out = child
        .wait_with_output()
        .map_err(|e| format!("worker {pid}: {e}"))?;
    if !out.status.success() {
        return Err(format!("worker {pid} failed: {}", out.status));
    }
    Tally::decode(&String::from_utf8_lossy(&out.stdout)).map_err(|e| format!("worker {pid}: {e}"))
}

/// Prints the arm's table; returns false if the arm fails the check.
fn report(config: &Config, arm: Arm, r: &ArmResult) -> bool {
    let t = &r.tally;
    let mut lat = t.latencies_ns.clone();
    lat.sort_unstable();
    println!("\n== arm: {} ({}) ==", arm.name(), arm.call());
    let rows = [
        (
            "config",
            format!(
                "{} procs x {} threads, {} allocations requested, listener {} during hold",
                config.procs,
                config.threads,
                config.allocs,
                if config.keep_listener {
                    "open"
                } else {
                    "closed"
                }
            ),
        ),
        ("allocations done", t.allocs().to_string()),
        ("double grants", t.double_grants.to_string()),
        ("bind failures", t.bind_failures.to_string()),
        ("alloc errors", t.alloc_errors.to_string()),
        ("conn errors", t.conn_errors.to_string()),
        ("alloc latency p50", micros(percentile(&lat, 0.50))),
        (
            "  first/last 1/4",
            format!(
                "{} / {} (p50 of each thread's first and last quarter)",
                micros(p50_of(&t.first_quarter_ns)),
                micros(p50_of(&t.last_quarter_ns))
            ),
        ),
        ("alloc latency p90", micros(percentile(&lat, 0.90))),
        ("alloc latency p99", micros(percentile(&lat, 0.99))),
        ("alloc latency max", micros(lat.last().copied())),
        ("alloc latency mean", micros(mean(&lat))),
        ("wall time", format!("{:.2} s", r.wall.as_secs_f64())),
    ];
    for (name, value) in rows {
        println!("  {name:<18} {value}");
    }
    for note in &t.notes {
        println!("  first errors       {note}");
    }
    let uids: BTreeSet<u32> = t.places.iter().map(|p| p.uid).collect();
    let mounts: BTreeSet<u64> = t.places.iter().map(|p| p.mnt).collect();
    println!(
        "  workers ran as     uids {uids:?}, {} mount namespace(s) {mounts:?}",
        mounts.len()
    );
    for failure in &r.worker_failures {
        println!("  WORKER FAILURE     {failure}");
    }
    if arm == Arm::Portpicker {
        return true;
    }
    let pass = t.double_grants == 0 && t.bind_failures == 0 && r.worker_failures.is_empty();
    println!(
        "  check              {}",
        if pass { "PASS" } else { "FAIL" }
    );
    pass
}

/// p50 of each arm against portpicker's in this invocation, and the targets.
fn summary(p50s: &[(Arm, Option<u64>)]) {
    let control = p50s
        .iter()
        .find(|(arm, _)| *arm == Arm::Portpicker)
        .and_then(|(_, p50)| *p50);
    println!(
        "\n== summary: allocation p50 (targets: <= {TARGET_RATIO}x portpicker's, <= {TARGET_P50_US} us) =="
    );
    for &(arm, p50) in p50s {
        let ratio = match (p50, control) {
            (Some(p), Some(c)) if c > 0 => Some(p as f64 / c as f64),
            _ => None,
        };
        let verdict = match (arm, p50, ratio) {
            (Arm::Portpicker, _, _) => "(the control)".to_string(),
            (_, Some(p), Some(r)) => {
                let us = p as f64 / 1_000.0;
                let met = r <= TARGET_RATIO && us <= TARGET_P50_US;
                format!(
                    "{} (ratio {}, {} us {})",
                    if met { "met" } else { "MISSED" },
                    if r <= TARGET_RATIO { "ok" } else { "too high" },
                    TARGET_P50_US,
                    if us <= TARGET_P50_US {
                        "ok"
                    } else {
                        "exceeded"
                    }
                )
            }
            _ => "- (no portpicker arm in this run)".to_string(),
        };
        println!(
            "  {:<11} p50 {:>9}  {:>6}  {verdict}",
            arm.name(),
            micros(p50),
            or_dash(ratio, |r| format!("{r:.2}x"))
        );
    }
}

fn p50_of(values: &[u64]) -> Option<u64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    percentile(&sorted, 0.50)
}

/// The mean of `ns` (none if empty).
fn mean(ns: &[u64]) -> Option<u64> {
    let n = u64::try_from(ns.len()).ok().filter(|n| *n > 0)?;
    Some(ns.iter().sum::<u64>() / n)
}

fn micros(ns: Option<u64>) -> String {
    or_dash(ns, |ns| format!("{:.1} us", ns as f64 / 1_000.0))
}

// ---------------------------------------------------------------------------
// Costs
// ---------------------------------------------------------------------------

/// Calls per part in `--costs`.
const COST_CALLS: usize = 5_000;

/// `--costs PAUSE_US`: p50/p90 of each part of an allocation on one thread,
/// `pause_us` between calls (a sleeping thread wakes to cold caches, as the
/// workers of an arm do).
fn costs_main(pause_us: u64) -> ExitCode {
    // Numbers that are ours for the TCP check (reserved, never bound).
    let held: Vec<dynamo_test::Port> =
        match (0..100).map(|_| dynamo_test::find_free_port()).collect() {
            Ok(held) => held,
            Err(e) => {
                eprintln!("port_bench: {e}");
                return ExitCode::FAILURE;
            }
        };
    let pid = std::process::id();
    println!(
        "port_bench --costs: {COST_CALLS} calls per part, one thread, {pause_us} us pause between calls"
    );
    let mut i = 0usize;
    // Each call returns what it acquired, dropped after the clock stopped
    // (a release is not part of an allocation).
    type Acquired = Box<dyn std::any::Any>;
    let mut part = |name: &str, call: &mut dyn FnMut(usize) -> Result<Acquired, String>| {
        let mut lat = Vec::with_capacity(COST_CALLS);
        for _ in 0..COST_CALLS {
            if pause_us > 0 {
                thread::sleep(Duration::from_micros(pause_us));
            }
            i += 1;
            let started = Instant::now();
            let outcome = call(i);
            lat.push(started.elapsed().as_nanos() as u64);
            match outcome {
                Ok(acquired) => drop(acquired),
                Err(e) => {
                    println!("  {name:<56} failed: {e}");
                    return;
                }
            }
        }
        lat.sort_unstable();
        println!(
            "  {name:<56} p50 {:>8}  p90 {:>8}",
            micros(percentile(&lat, 0.50)),
            micros(percentile(&lat, 0.90))
        );
    };
    part(
        "abstract socket name: socket + bind (the reservation)",
        &mut |i| {
            use std::os::linux::net::SocketAddrExt;
            let name = format!("port-bench/costs/{pid}/{}", i % 1000);
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .map_err(|e| e.to_string())?;
            std::os::unix::net::UnixDatagram::bind_addr(&addr)
                .map(|s| Box::new(s) as Acquired)
                .map_err(|e| e.to_string())
        },
    );
    part("TCP check: [::]:port strict bind + close", &mut |i| {
        let port = held[i % held.len()].get();
        let strict = dynamo_test::admin::Strictness::Strict;
        Ok(Box::new(std::hint::black_box(dynamo_test::admin::is_free(
            port, strict,
        ))))
    });
    part("dynamo_test::find_free_port()", &mut |_| {
        dynamo_test::find_free_port()
            .map(|p| Box::new(p) as Acquired)
            .map_err(|e| e.to_string())
    });
    part("portpicker::pick_unused_port()", &mut |_| {
        portpicker::pick_unused_port()
            .map(|p| Box::new(p) as Acquired)
            .ok_or_else(|| "None".to_string())
    });
    drop(held);
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------
// Worker
// ---------------------------------------------------------------------------

/// Waits for the parent's "go", runs the threads, prints the tally.
fn worker_main(w: &WorkerArgs) -> ExitCode {
    let mut line = String::new();
    if let Err(e) = io::stdin().lock().read_line(&mut line) {
        eprintln!("port_bench worker: waiting for go: {e}");
        return ExitCode::FAILURE;
    }
    let handles: Vec<_> = (0..w.threads)
        .map(|i| {
            let job = Job {
                arm: w.arm,
                markers: w.markers.clone(),
                keep_listener: w.keep_listener,
                serve: w.serve,
            };
            let allocs = share(w.allocs, u64::from(w.threads), u64::from(i));
            thread::Builder::new()
                .name(format!(
                    "port_bench {} pid {} thread {i}",
                    job.arm.name(),
                    std::process::id()
                ))
                .spawn(move || run_thread(&job, allocs, i))
                .expect("spawn worker thread")
        })
        .collect();
    let mut tally = Tally::default();
    tally.places.insert(Place::here());
    for h in handles {
        tally.merge(h.join().expect("worker thread panicked"));
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out
        .write_all(tally.encode().as_bytes())
        .and_then(|()| out.flush())
    {
        eprintln!("port_bench worker: writing the tally: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// What every cycle of a worker thread does.
struct Job {
    arm: Arm,
    /// The shared marker directory of the arm.
    markers: PathBuf,
    /// Whether the listener stays open through the hold.
    keep_listener: bool,
    /// Whether each cycle serves a connection.
    serve: bool,
}

/// One thread's `allocs` cycles.
fn run_thread(job: &Job, allocs: u64, index: u32) -> Tally {
    let mut rng = Rng::seeded(u64::from(index));
    let mut tally = Tally::default();
    for _ in 0..allocs {
        cycle(job, &mut rng, &mut tally);
    }
    let n = tally.latencies_ns.len();
    tally.first_quarter_ns = tally.latencies_ns[..n / 4].to_vec();
    tally.last_quarter_ns = tally.latencies_ns[n - n / 4..].to_vec();
    tally
}

/// A granted port; dropping it releases the reservation (dynamo only).
enum Grant {
    Dynamo(dynamo_test::Port),
    Picked(u16),
}

impl Grant {
    fn number(&self) -> u16 {
        match self {
            Grant::Dynamo(p) => p.get(),
            Grant::Picked(n) => *n,
        }
    }
}

/// The timed call: one allocation through the arm's allocator.
fn allocate(arm: Arm) -> Result<Grant, String> {
    match arm {
        Arm::Dynamo | Arm::Netns | Arm::Users => dynamo_test::find_free_port()
            .map(Grant::Dynamo)
            .map_err(|e| e.to_string()),
        Arm::Portpicker => portpicker::pick_unused_port()
            .map(Grant::Picked)
            .ok_or_else(|| "pick_unused_port returned None".to_string()),
    }
}

/// Allocate, mark, serve one connection, hold, unmark, release.
fn cycle(job: &Job, rng: &mut Rng, tally: &mut Tally) {
    let started = Instant::now();
    let granted = allocate(job.arm);
    tally.latencies_ns.push(started.elapsed().as_nanos() as u64);
    let grant = match granted {
        Ok(g) => g,
        Err(msg) => {
            tally.alloc_errors += 1;
            tally.note(format!("alloc: {msg}"));
            return;
        }
    };
    let port = grant.number();
    let marker = claim_marker(&job.markers, port, tally);
    thread::sleep(Duration::from_micros(rng.below(MAX_BIND_DELAY_US + 1)));
    let mut listener = serve_once(port, job.serve, tally);
    if !job.keep_listener {
        drop(listener.take()); // the server shuts down before the hold
    }
    thread::sleep(Duration::from_micros(rng.below(MAX_HOLD_US + 1)));
    drop(listener);
    if let Some(m) = marker {
        m.remove();
    }
    drop(grant); // releases the reservation (dynamo)
}

/// Claims the port's marker, counting a double grant if another holder has it.
fn claim_marker(dir: &Path, port: u16, tally: &mut Tally) -> Option<Marker> {
    match Marker::claim(dir, port) {
        Ok(m) => {
            tally.double_grants += u64::from(!m.owned);
            Some(m)
        }
        Err(e) => {
            tally.note(format!("marker for port {port}: {e}"));
            None
        }
    }
}

/// Binds the port and (with `serve`) accepts one client and closes the
/// server side of the connection first so that it ends in TIME_WAIT.
/// Returns the listener, or `None` after counting the failure.
fn serve_once(port: u16, serve: bool, tally: &mut Tally) -> Option<TcpListener> {
    let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        Ok(l) => l,
        Err(e) => {
            tally.bind_failures += 1;
            tally.note(format!("bind 127.0.0.1:{port}: {e}"));
            return None;
        }
    };
    if !serve {
        return Some(listener);
    }
    if let Err(e) = one_connection(&listener, port) {
        tally.conn_errors += 1;
        tally.note(format!("connection on port {port}: {e}"));
    }
    Some(listener)
}

/// Connects a client, accepts it, and closes the server side first.
fn one_connection(listener: &TcpListener, port: u16) -> io::Result<()> {
    let mut client = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    let (server, _) = listener.accept()?;
    drop(server); // the server sends the first FIN
    client.set_read_timeout(Some(Duration::from_secs(5)))?;
    match client.read(&mut [0u8; 1])? {
        0 => Ok(()), // saw the server's FIN; dropping the client completes the close
        _ => Err(io::Error::other("unexpected data from the server")),
    }
}

/// The independent double-grant check: one `O_EXCL` file per held port.
struct Marker {
    path: PathBuf,
    /// Whether we created it (false: someone else holds the same port).
    owned: bool,
}

impl Marker {
    fn claim(dir: &Path, port: u16) -> io::Result<Marker> {
        let path = dir.join(port.to_string());
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(_) => Ok(Marker { path, owned: true }),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Marker { path, owned: false }),
            Err(e) => Err(e),
        }
    }

    /// Removes the marker if it is ours; the first holder of a doubly
    /// granted port removes it.
    fn remove(self) {
        if self.owned {
            let _ = fs::remove_file(&self.path);
        }
    }
}
