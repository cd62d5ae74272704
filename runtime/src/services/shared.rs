//! Shared instances on the fixed ports: one per port for the whole run,
//! shared by every thread and process, started by the first user and
//! stopped by its keeper after the last.
//!
//! Per port, in `<state dir>/services/`:
//! - `<name>-<port>.users`: every process using the instance holds a
//!   shared flock on it until it exits (the keeper watches it);
//! - `<name>-<port>.start`: an exclusive flock serialising starters;
//! - `<name>-<port>.record`: written while the harness runs an instance
//!   (keeper pid, service binary), removed by the keeper.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::binaries;
use super::keeper::{self, KeeperSpec};
use super::kind::{ServiceKind, ServicePortPair};
use crate::error::Error;
use crate::health::{self, Probe};
use crate::ports::holders;
use crate::state_dir;
use crate::sys::sync::lock;

/// How a shared instance came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Started by the harness (by this or another process of the run).
    Harness,
    /// Already running when the harness looked, not started by it: reused, never stopped.
    External,
}

/// Default time a shared instance stays up after its last user is gone.
pub const DEFAULT_IDLE_GRACE: Duration = Duration::from_secs(2);
/// Limit for a service to become healthy after start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Limit for an instance found listening to turn healthy (etcd opens its
/// port before it has a leader).
const LISTENING_GRACE: Duration = Duration::from_secs(3);

/// An instance this process uses: where it came from, and its health
/// probe, built once so that its HTTP clients serve every later test.
struct InUse {
    origin: Origin,
    probe: Box<dyn Probe>,
}

type Slot = Arc<tokio::sync::OnceCell<InUse>>;

/// Instances this process uses, by kind and port: resolved once per process.
static IN_USE: Mutex<Option<HashMap<(ServiceKind, u16), Slot>>> = Mutex::new(None);
/// The users-file locks this process holds: released when it exits.
static USER_LOCKS: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// The shared instance of `kind` on `ports`, started if needed; healthy.
/// Returns whether the harness started it.
pub(crate) async fn acquire(kind: ServiceKind, ports: ServicePortPair) -> Result<Origin, Error> {
    let slot = {
        let mut map = lock(&IN_USE);
        map.get_or_insert_with(HashMap::new)
            .entry((kind, ports.client))
            .or_default()
            .clone()
    };
    if let Some(in_use) = slot.get() {
        // Each later test checks health before its body: the instance may have died.
        health::wait(in_use.probe.as_ref(), LISTENING_GRACE).await?;
        return Ok(in_use.origin);
    }
    // The first use checks health itself.
    let in_use = slot
        .get_or_try_init(|| async move {
            let origin = first_use(kind, ports).await?;
            Ok::<_, Error>(InUse {
                origin,
                probe: kind.probe(ports),
            })
        })
        .await?;
    Ok(in_use.origin)
}

/// This process's first use: join the users, then reuse or start.
async fn first_use(kind: ServiceKind, ports: ServicePortPair) -> Result<Origin, Error> {
    let files = Files::new(kind, ports.client)?;
    let users = files.open(&files.users)?;
    // Blocks while a keeper holds the exclusive lock to stop an idle instance.
    let users = blocking(move || users.lock_shared().map(|()| users))
        .await
        .map_err(|e| Error::io(format!("joining the users of {}", kind.name()), e))?;
    lock(&USER_LOCKS).push(users);

    if kind.healthy_now(ports).await {
        return Ok(origin(&files));
    }
    let start_lock = files.open(&files.start)?;
    let start_lock = blocking(move || start_lock.lock().map(|()| start_lock))
        .await
        .map_err(|e| {
            Error::io(
                format!("waiting for another process starting {}", kind.name()),
                e,
            )
        })?;
    let result = reuse_or_start(kind, ports, &files).await;
    drop(start_lock);
    result
}

async fn reuse_or_start(
    kind: ServiceKind,
    ports: ServicePortPair,
    files: &Files,
) -> Result<Origin, Error> {
    if kind.healthy_now(ports).await {
        // Another process started it while we waited for the start lock.
        return Ok(origin(files));
    }
    if accepts(ports.client).await || accepts(ports.second).await {
        return wait_for_stranger(kind, ports, files).await;
    }
    start(kind, ports, files).await?;
    Ok(Origin::Harness)
}

/// Something listens on the ports but is not (yet) healthy.
async fn wait_for_stranger(
    kind: ServiceKind,
    ports: ServicePortPair,
    files: &Files,
) -> Result<Origin, Error> {
    match health::wait(kind.probe(ports).as_ref(), LISTENING_GRACE).await {
        Ok(_) => Ok(origin(files)),
        Err(wait) => {
            // One /proc scan per port, the second only if the first is empty.
            let (port, held_by) = match holders::listeners(ports.client) {
                found if !found.is_empty() => (ports.client, found),
                _ => (ports.second, holders::listeners(ports.second)),
            };
            let who: Vec<String> = held_by.iter().map(|l| l.to_string()).collect();
            Err(Error::Service(format!(
                "port {port} (the {} port of the plan) is held by {}, which is not a healthy {}: {wait}\n\
                 fix: stop that process, or move the harness's {} ports with the DYNAMO_TEST_* port variables, \
                 or set {} to a running {}",
                kind.name(),
                who.join(", "),
                kind.program(),
                kind.name(),
                kind.endpoints_env(),
                kind.name()
            )))
        }
    }
}

/// Starts the keeper (which starts the service) and waits until healthy.
async fn start(kind: ServiceKind, ports: ServicePortPair, files: &Files) -> Result<(), Error> {
    let program = binaries::find(kind.program(), kind.bin_env(), kind.endpoints_env())
        .map_err(|e| Error::Service(e.to_string()))?;
    let data_dir = files.dir.join(format!(
        "{}-{}-data-{}",
        kind.name(),
        ports.client,
        std::process::id()
    ));
    let log_dir = crate::output_dir::output_root()?.join("services");
    std::fs::create_dir_all(&log_dir)
        .map_err(|e| Error::io(format!("creating {}", log_dir.display()), e))?;
    let log_file = log_dir.join(format!("{}-{}.log", kind.name(), ports.client));
    let args = kind.args(ports, &data_dir);
    let spec = KeeperSpec {
        name: kind.name(),
        users_file: &files.users,
        record_file: &files.record,
        log_file: &log_file,
        data_dir: &data_dir,
        grace: idle_grace()?,
        program: &program,
        args: &args,
    };
    let keeper =
        keeper::start(&spec).map_err(|e| Error::io("starting the service keeper (/bin/sh)", e))?;
    let record = format!(
        "keeper_pid={}\nprogram={}\nlog={}\n",
        keeper.id(),
        program.display(),
        log_file.display()
    );
    std::fs::write(&files.record, record)
        .map_err(|e| Error::io("writing the service record", e))?;
    let waited = health::wait(kind.probe(ports).as_ref(), START_TIMEOUT).await;
    // The keeper outlives us when others still use the service; reap it if it ends first.
    crate::process::reap_in_background(keeper);
    waited.map(|_| ()).map_err(|wait| {
        Error::Service(format!(
            "started {} ({}) but it did not become healthy: {wait}\nlog {}:\n{}",
            kind.name(),
            program.display(),
            log_file.display(),
            crate::process::tail(&log_file, crate::process::TAIL_LINES)
        ))
    })
}

/// Whether something accepts TCP connections on loopback `port` (127.0.0.1
/// or ::1). A refused connect costs microseconds; scanning
/// /proc/net/tcp{,6} costs 10-800 ms with a large socket table, so the scan
/// is kept for error messages. (A listener on another specific address
/// does not conflict with ours.)
async fn accepts(port: u16) -> bool {
    health::tcp(format!("localhost:{port}"))
        .check(Duration::from_millis(200))
        .await
        .is_ready()
}

/// A running instance is ours if a keeper record exists.
fn origin(files: &Files) -> Origin {
    if files.record.exists() {
        Origin::Harness
    } else {
        Origin::External
    }
}

/// Env var: milliseconds a shared service stays up after its last user
/// (default 2000, 200 to 5000; the keeper checks every 200 ms, so the stop
/// comes at most 400 ms after that).
pub const ENV_IDLE_GRACE: &str = "DYNAMO_TEST_SERVICE_GRACE_MS";

fn idle_grace() -> Result<Duration, Error> {
    let ms = crate::env::parse::<u64>(
        &crate::env::process_env,
        ENV_IDLE_GRACE,
        "milliseconds, 200 to 5000",
    )?;
    match ms {
        None => Ok(DEFAULT_IDLE_GRACE),
        Some(ms) if (200..=5000).contains(&ms) => Ok(Duration::from_millis(ms)),
        Some(ms) => Err(crate::env::EnvError::new(
            ENV_IDLE_GRACE,
            &ms.to_string(),
            "milliseconds, 200 to 5000",
        )
        .into()),
    }
}

/// Runs blocking lock calls off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
}

/// The coordination files of one service port.
struct Files {
    dir: PathBuf,
    users: PathBuf,
    start: PathBuf,
    record: PathBuf,
}

impl Files {
    fn new(kind: ServiceKind, port: u16) -> Result<Files, Error> {
        let dir = state_dir::ensure_state_subdir("services")?;
        let base = format!("{}-{port}", kind.name());
        Ok(Files {
            users: dir.join(format!("{base}.users")),
            start: dir.join(format!("{base}.start")),
            record: dir.join(format!("{base}.record")),
            dir,
        })
    }

    fn open(&self, path: &std::path::Path) -> Result<File, Error> {
        state_dir::open_lock_file(path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))
    }
}

/// A shared instance the harness runs now (or ran: see `keeper_alive`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRecord {
    /// `etcd` or `nats`.
    pub name: String,
    /// Its client port.
    pub port: u16,
    /// The keeper's pid.
    pub keeper_pid: Option<u32>,
    /// Whether the keeper still runs (false: a stale record).
    pub keeper_alive: bool,
    /// The service binary.
    pub program: String,
    /// Its log file.
    pub log: String,
    /// The record file.
    pub path: PathBuf,
}

/// The records of the shared instances in the state directory.
pub fn records() -> Result<Vec<ServiceRecord>, Error> {
    let dir = state_dir::ensure_state_subdir("services")?;
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut found: Vec<ServiceRecord> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| parse_record(&e.path()))
        .collect();
    found.sort_by(|a, b| (&a.name, a.port).cmp(&(&b.name, b.port)));
    Ok(found)
}

fn parse_record(path: &std::path::Path) -> Option<ServiceRecord> {
    let stem = path.file_name()?.to_str()?.strip_suffix(".record")?;
    let (name, port) = stem.rsplit_once('-')?;
    let text = std::fs::read_to_string(path).ok()?;
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_string)
    };
    let keeper_pid: Option<u32> = field("keeper_pid").and_then(|p| p.parse().ok());
    let keeper_alive = keeper_pid.is_some_and(super::keeper::is_keeper);
    Some(ServiceRecord {
        name: name.to_string(),
        port: port.parse().ok()?,
        keeper_pid,
        keeper_alive,
        program: field("program").unwrap_or_default(),
        log: field("log").unwrap_or_default(),
        path: path.to_path_buf(),
    })
}

/// The users file of the shared instance of `kind` on `port`, created if
/// missing (for `dynamo-test up`, whose holder locks it).
pub fn users_file(kind: ServiceKind, port: u16) -> Result<PathBuf, Error> {
    let files = Files::new(kind, port)?;
    files.open(&files.users)?;
    Ok(files.users)
}
