//! Port allocator benchmark: `dynamo_test::find_free_port` against
//! `portpicker::pick_unused_port` under many processes and threads.
//!
//! ```text
//! port_bench [--procs P] [--threads T] [--allocs N] [--arm dynamo|portpicker|both]
//!            [--listener closed|open]
//! ```
//!
//! For each arm the parent re-executes its own binary as P worker processes
//! (hidden `--worker` flag), each running T threads; the N allocations of the
//! arm are divided across the P x T threads. Each cycle of a thread:
//!
//! 1. allocate a port (only this call is timed);
//! 2. claim an `O_EXCL` marker file for the port in a directory shared by all
//!    workers of the arm: if it already exists, another holder was granted
//!    the same port while it still held it (a *double grant*);
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
//! Workers print their tallies on stdout; the parent adds them up and prints
//! one table per arm. The exit code is 1 if the dynamo arm had any double
//! grant or bind failure (or a worker failed), 2 on a usage error, so the
//! command doubles as a check.

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dynamo_test_examples::bench::{self, or_dash, percentile, Cli, Rng};

const CLI: Cli = Cli {
    name: "port_bench",
    usage: "usage: port_bench [--procs P] [--threads T] [--allocs N] [--arm dynamo|portpicker|both]
  --procs P     worker processes per arm (default 16)
  --threads T   threads per worker process (default 4)
  --allocs N    allocations per arm, divided across all threads (default 12800)
  --arm A       dynamo, portpicker or both (default both)
  --listener L  during the hold the listener is closed (default) or open",
};

/// Longest random delay between the allocation and the bind.
const MAX_BIND_DELAY_US: u64 = 2_000;
/// Longest random hold after the connection has been closed.
const MAX_HOLD_US: u64 = 20_000;
/// How many error messages a worker reports verbatim.
const MAX_NOTES: usize = 3;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--worker") {
        return match WorkerArgs::parse(&args[1..]) {
            Ok(w) => worker_main(&w),
            Err(msg) => CLI.usage_error(&msg),
        };
    }
    CLI.main(&args, Config::parse, parent_main)
}

// ---------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------

/// Which allocator an arm exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arm {
    /// `dynamo_test::find_free_port`: flock reservation plus bind check.
    Dynamo,
    /// `portpicker::pick_unused_port`: a bind check only (the control).
    Portpicker,
}

impl Arm {
    fn name(self) -> &'static str {
        match self {
            Arm::Dynamo => "dynamo",
            Arm::Portpicker => "portpicker",
        }
    }

    fn call(self) -> &'static str {
        match self {
            Arm::Dynamo => "dynamo_test::find_free_port()",
            Arm::Portpicker => "portpicker::pick_unused_port()",
        }
    }

    fn parse(s: &str) -> Result<Arm, String> {
        match s {
            "dynamo" => Ok(Arm::Dynamo),
            "portpicker" => Ok(Arm::Portpicker),
            _ => Err(format!("unknown arm {s:?}")),
        }
    }
}

/// The parent's settings.
#[derive(Debug)]
struct Config {
    procs: u32,
    threads: u32,
    allocs: u64,
    arms: Vec<Arm>,
    /// Whether the listener stays open through the hold.
    keep_listener: bool,
}

impl Config {
    fn parse(args: &[String]) -> Result<Config, String> {
        let mut c = Config {
            procs: 16,
            threads: 4,
            allocs: 12_800,
            arms: vec![Arm::Dynamo, Arm::Portpicker],
            keep_listener: false,
        };
        for (flag, value) in flag_pairs(args)? {
            match flag {
                "--procs" => c.procs = positive(flag, value)?,
                "--threads" => c.threads = positive(flag, value)?,
                "--allocs" => c.allocs = positive(flag, value)?,
                "--arm" if value == "both" => c.arms = vec![Arm::Dynamo, Arm::Portpicker],
                "--arm" => c.arms = vec![Arm::parse(value)?],
                "--listener" => c.keep_listener = listener_open(value)?,
                _ => return Err(format!("unknown flag {flag}")),
            }
        }
        Ok(c)
    }
}

/// A worker's settings, passed by the parent after `--worker`.
#[derive(Debug)]
struct WorkerArgs {
    arm: Arm,
    threads: u32,
    allocs: u64,
    markers: PathBuf,
    keep_listener: bool,
}

impl WorkerArgs {
    fn parse(args: &[String]) -> Result<WorkerArgs, String> {
        let (mut arm, mut threads, mut allocs, mut markers) = (None, 1, 0, None);
        let mut keep_listener = false;
        for (flag, value) in flag_pairs(args)? {
            match flag {
                "--arm" => arm = Some(Arm::parse(value)?),
                "--threads" => threads = positive(flag, value)?,
                "--allocs" => allocs = value.parse().map_err(|_| bad(flag, value))?,
                "--markers" => markers = Some(PathBuf::from(value)),
                "--listener" => keep_listener = listener_open(value)?,
                _ => return Err(format!("unknown worker flag {flag}")),
            }
        }
        Ok(WorkerArgs {
            arm: arm.ok_or("worker needs --arm")?,
            threads,
            allocs,
            markers: markers.ok_or("worker needs --markers")?,
            keep_listener,
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
    /// The first few error messages, for the report.
    notes: Vec<String>,
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
        for n in other.notes {
            self.note(n);
        }
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
        for n in &self.notes {
            out.push_str(&format!("note {}\n", n.replace('\n', " | ")));
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
                "note" => t.note(rest.to_string()),
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

/// Runs every requested arm, prints the tables, and turns the dynamo arm's
/// result into the exit code.
fn parent_main(config: &Config) -> ExitCode {
    let root = match marker_root() {
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
    let mut ok = true;
    for &arm in &config.arms {
        let result = run_arm(config, arm, &root.join(arm.name()));
        ok &= report(config, arm, &result);
    }
    let _ = fs::remove_dir_all(&root);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A fresh directory for the marker files, shared by every worker.
fn marker_root() -> io::Result<PathBuf> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("port-bench-{}-{nanos}", std::process::id()));
    fs::create_dir(&dir)?;
    Ok(dir)
}

/// The outcome of one arm.
struct ArmResult {
    tally: Tally,
    wall: Duration,
    /// Workers that crashed or printed garbage.
    worker_failures: Vec<String>,
}

/// Starts the arm's workers, releases them at once, and collects their tallies.
fn run_arm(config: &Config, arm: Arm, markers: &Path) -> ArmResult {
    let mut result = ArmResult {
        tally: Tally::default(),
        wall: Duration::ZERO,
        worker_failures: Vec::new(),
    };
    if let Err(e) = fs::create_dir(markers) {
        result
            .worker_failures
            .push(format!("marker dir {}: {e}", markers.display()));
        return result;
    }
    let mut children = Vec::new();
    for i in 0..config.procs {
        let worker = WorkerArgs {
            arm,
            threads: config.threads,
            allocs: share(config.allocs, u64::from(config.procs), u64::from(i)),
            markers: markers.to_path_buf(),
            keep_listener: config.keep_listener,
        };
        match spawn_worker(&worker) {
            Ok(child) => children.push(child),
            Err(e) => result
                .worker_failures
                .push(format!("spawn worker {i}: {e}")),
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
        match reader.join().expect("reader thread panicked") {
            Ok(tally) => result.tally.merge(tally),
            Err(msg) => result.worker_failures.push(msg),
        }
    }
    result.wall = start.elapsed();
    result
}

fn spawn_worker(worker: &WorkerArgs) -> io::Result<Child> {
    Command::new(std::env::current_exe()?)
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
        ("alloc latency p99", micros(percentile(&lat, 0.99))),
        ("alloc latency max", micros(lat.last().copied())),
        ("wall time", format!("{:.2} s", r.wall.as_secs_f64())),
    ];
    for (name, value) in rows {
        println!("  {name:<18} {value}");
    }
    for note in &t.notes {
        println!("  first errors       {note}");
    }
    for failure in &r.worker_failures {
        println!("  WORKER FAILURE     {failure}");
    }
    if arm != Arm::Dynamo {
        return true;
    }
    let pass = t.double_grants == 0 && t.bind_failures == 0 && r.worker_failures.is_empty();
    println!(
        "  check              {}",
        if pass { "PASS" } else { "FAIL" }
    );
    pass
}

fn micros(ns: Option<u64>) -> String {
    or_dash(ns, |ns| format!("{:.1} us", ns as f64 / 1_000.0))
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
}

/// One thread's `allocs` cycles.
fn run_thread(job: &Job, allocs: u64, index: u32) -> Tally {
    let mut rng = Rng::seeded(u64::from(index));
    let mut tally = Tally::default();
    for _ in 0..allocs {
        cycle(job, &mut rng, &mut tally);
    }
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
        Arm::Dynamo => dynamo_test::find_free_port()
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
    let mut listener = serve_once(port, tally);
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

/// Binds the port, accepts one client, and closes the server side of the
/// connection first so that it ends in TIME_WAIT. Returns the listener, or
/// `None` after counting the failure.
fn serve_once(port: u16, tally: &mut Tally) -> Option<TcpListener> {
    let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        Ok(l) => l,
        Err(e) => {
            tally.bind_failures += 1;
            tally.note(format!("bind 127.0.0.1:{port}: {e}"));
            return None;
        }
    };
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
