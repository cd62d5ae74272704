//! Shared instances on the fixed ports: one per port for everything that
//! shares the network namespace (threads, processes, users, containers),
//! started by the first user and stopped by its keeper a grace after the
//! last (see `keeper/mod.rs` for the protocol and its names).
//!
//! A process's first use of an instance, in order:
//! 1. a keeper answers on the port's keeper name: join it as a user
//!    (an incompatible keeper is an error that says who runs it);
//! 2. else take the start lock (waiting while another process starts or
//!    a keeper stops the instance) and look again, then: a service whose
//!    keeper is gone is an error; a healthy instance is external, reused
//!    and never stopped; a port held by something unhealthy is an error
//!    naming the holder; a free port gets a keeper, which starts the
//!    service;
//! 3. wait until healthy, failing at once should the keeper end.

use std::collections::HashMap;
use std::io;
use std::os::unix::net::UnixStream;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::binaries;
use super::joined::{keeper_log_tail, JoinedKeeper};
use super::keeper::protocol::{self, Contact, Hello, KeeperInfo};
use super::keeper::{self, Spec};
use super::kind::{ServiceKind, ServicePortPair};
use crate::error::Error;
use crate::health::{self, Probe, Watch, WatchFuture};
use crate::ports::holders;
use crate::state_dir;
use crate::sys::real_time;
use crate::sys::sync::lock;
use crate::sys::unix_socket;

/// How a shared instance came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Started by the harness (by this or another process sharing the network).
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
/// Limit for a started keeper to listen.
const KEEPER_UP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a failing test waits for a silent instance's keeper to say
/// whether its service died.
const KEEPER_VERDICT_WAIT: Duration = Duration::from_secs(3);
/// Limit for waiting on the start lock: another process's start (up to
/// [`KEEPER_UP_TIMEOUT`]) or a keeper's stop (a few seconds).
const START_LOCK_WAIT: Duration = Duration::from_secs(45);

/// An instance this process uses: where it came from, its health probe
/// (built once, so that its HTTP clients serve every later test), and the
/// connection to its keeper: open until this process exits, which is how
/// the keeper counts it as a user.
struct InUse {
    origin: Origin,
    probe: Box<dyn Probe>,
    keeper: Mutex<Option<JoinedKeeper>>,
    /// Held while a test of this process replaces a keeper that ended, so
    /// that its other tests wait for that and then use the new instance.
    healing: tokio::sync::Mutex<()>,
}

/// What a use found: the origin, and the keeper joined (if any).
struct Found {
    origin: Origin,
    keeper: Option<JoinedKeeper>,
}

impl Found {
    fn external(origin: Origin) -> Found {
        Found {
            origin,
            keeper: None,
        }
    }
}

type Slot = Arc<tokio::sync::OnceCell<InUse>>;

/// Instances this process uses, by kind and port: resolved once per process.
static IN_USE: Mutex<Option<HashMap<(ServiceKind, u16), Slot>>> = Mutex::new(None);

/// The shared instance of `kind` on `ports`, started if needed; healthy.
/// Returns whether the harness started it, and a line for the test's log
/// when it had died and was started again (or joined anew).
pub(crate) async fn acquire(
    kind: ServiceKind,
    ports: ServicePortPair,
) -> Result<(Origin, Option<String>), Error> {
    let slot = {
        let mut map = lock(&IN_USE);
        map.get_or_insert_with(HashMap::new)
            .entry((kind, ports.client))
            .or_default()
            .clone()
    };
    if let Some(in_use) = slot.get() {
        return check_or_heal(kind, ports, in_use).await;
    }
    // The first use checks health itself.
    let in_use = slot
        .get_or_try_init(|| async move {
            let found = first_use(kind, ports).await?;
            Ok::<_, Error>(InUse {
                origin: found.origin,
                probe: kind.probe(ports),
                keeper: Mutex::new(found.keeper),
                healing: tokio::sync::Mutex::new(()),
            })
        })
        .await?;
    Ok((in_use.origin, None))
}

/// A later test's look at an instance this process uses: healthy, or
/// (harness-started) healed once its keeper says it ended. A service killed
/// a moment ago is silent before its keeper knows: the look goes on for
/// [`LISTENING_GRACE`], healing as soon as the keeper says goodbye.
async fn check_or_heal(
    kind: ServiceKind,
    ports: ServicePortPair,
    in_use: &InUse,
) -> Result<(Origin, Option<String>), Error> {
    const LOOK: Duration = Duration::from_millis(50);
    // Counted from the first look, not from a wait for another test's heal.
    let mut deadline = None;
    loop {
        if in_use.origin == Origin::Harness {
            if let Some(healed) = heal(kind, ports, in_use).await? {
                return Ok(healed);
            }
        }
        let now = Instant::now();
        let last = now >= *deadline.get_or_insert(now + LISTENING_GRACE);
        match health::wait(in_use.probe.as_ref(), LOOK).await {
            Ok(_) => return Ok((in_use.origin, None)),
            // Out of time, or an answer that no wait changes.
            Err(wait) if last || wait.fatal.is_some() => {
                return Err(not_answering(kind, ports, in_use.origin, &wait))
            }
            Err(_) => {}
        }
    }
}

/// If our keeper has ended (its service died, it was told to stop), joins
/// whoever runs the instance now, starting it if nobody does (the start
/// lock makes that once per death, across processes), lest a newer keeper
/// stop it under us without counting us. `None`: our keeper still serves.
async fn heal(
    kind: ServiceKind,
    ports: ServicePortPair,
    in_use: &InUse,
) -> Result<Option<(Origin, Option<String>)>, Error> {
    let _one_at_a_time = in_use.healing.lock().await;
    let ended = {
        let mut keeper = lock(&in_use.keeper);
        match keeper.as_mut() {
            Some(k) if !k.is_gone() => return Ok(None),
            Some(k) => Some((
                k.describe(kind),
                k.goodbye().unwrap_or("closed").to_string(),
            )),
            None => None,
        }
    };
    let found = first_use(kind, ports).await?;
    let note = match (&ended, &found.keeper) {
        (Some((what, how)), Some(new)) => {
            let now = if new.started_here() {
                format!("started it again: {}", new.describe(kind))
            } else {
                format!("joined the one running now: {}", new.describe(kind))
            };
            Some(format!("{what} had ended ({how}); {now}"))
        }
        (Some((what, how)), None) => Some(format!(
            "{what} had ended ({how}); a healthy {} not started by the harness answers on port {} \
             now, and is used as external",
            kind.name(),
            ports.client
        )),
        (None, _) => None,
    };
    *lock(&in_use.keeper) = found.keeper;
    Ok(Some((found.origin, note)))
}

/// What a failing test should know of the shared instance of `kind` on
/// `ports` it used: that the harness-started one died (how, its log's tail)
/// or was stopped. `None` if it still answers or is not ours. A service
/// killed a moment ago may not be known dead to its keeper yet (it looks
/// every 100 ms): a silent one gets a few seconds for the keeper's word.
pub(crate) async fn death_note(kind: ServiceKind, ports: ServicePortPair) -> Option<String> {
    let slot = lock(&IN_USE).as_ref()?.get(&(kind, ports.client))?.clone();
    let in_use = slot.get()?;
    let note = || lock(&in_use.keeper).as_mut()?.death_note(kind);
    if let Some(note) = note() {
        return Some(note);
    }
    if health::wait(in_use.probe.as_ref(), Duration::from_secs(1))
        .await
        .is_ok()
    {
        return None;
    }
    let deadline = Instant::now() + KEEPER_VERDICT_WAIT;
    while Instant::now() < deadline {
        if let Some(note) = note() {
            return Some(note);
        }
        real_time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// An instance that answered before and does not now: ours (its keeper
/// still counts us, so it is hung, not dead), or external, which the
/// harness never restarts.
fn not_answering(
    kind: ServiceKind,
    ports: ServicePortPair,
    origin: Origin,
    wait: &health::WaitError,
) -> Error {
    let name = kind.name();
    match origin {
        Origin::External => Error::Service(format!(
            "the {name} on port {} is external (not started by the harness: a healthy {name} \
             was already on the plan's fixed port when this run first looked) and no longer \
             answers: {wait}\nthe harness never restarts an instance it did not start: \
             restart it, or stop it for good so that the next run starts its own",
            ports.client
        )),
        Origin::Harness => Error::Service(format!(
            "the shared {name} on port {}, started by the harness, runs but does not answer: \
             {wait}",
            ports.client
        )),
    }
}

/// This process's first use: join a keeper, or decide under the start lock.
async fn first_use(kind: ServiceKind, ports: ServicePortPair) -> Result<Found, Error> {
    let started = Instant::now();
    loop {
        match contact(kind, ports.client).await? {
            Contact::Answered(hello, stream) => {
                if let Some(found) = join(kind, ports, hello, stream).await? {
                    return Ok(found);
                }
            }
            // Stopping: it holds the start lock until its service is down.
            Contact::Closing => {}
            Contact::NoKeeper => {
                if let Some(start_lock) = try_start_lock(kind, ports.client)? {
                    if let Some(found) = decide(kind, ports, start_lock).await? {
                        return Ok(found);
                    }
                }
            }
        }
        if started.elapsed() > START_LOCK_WAIT {
            return Err(start_lock_timeout(kind, ports.client));
        }
        real_time::sleep(Duration::from_millis(fastrand::u64(2..8))).await;
    }
}

/// Under the start lock, with no keeper answering a moment ago.
/// `None`: look again (a keeper appeared and went).
async fn decide(
    kind: ServiceKind,
    ports: ServicePortPair,
    start_lock: std::os::unix::net::UnixListener,
) -> Result<Option<Found>, Error> {
    match contact(kind, ports.client).await? {
        Contact::Answered(hello, stream) => {
            drop(start_lock);
            return join(kind, ports, hello, stream).await;
        }
        Contact::Closing => return Ok(None),
        Contact::NoKeeper => {}
    }
    let marker = protocol::service_name(kind.name(), ports.client);
    if unix_socket::is_bound(&marker).unwrap_or(false) {
        return Err(keeperless(kind, ports.client, &marker));
    }
    if kind.healthy_now(ports).await {
        return external(kind, ports.client).map(|o| Some(Found::external(o)));
    }
    if accepts(ports.client).await || accepts(ports.second).await {
        return wait_for_stranger(kind, ports)
            .await
            .map(|o| Some(Found::external(o)));
    }
    let joined = start(kind, ports).await?;
    drop(start_lock);
    let keeper = match wait_healthy(kind, ports, joined, true).await? {
        Health::Ready(keeper) => keeper,
        // Ours died before it was healthy: that is the answer.
        Health::KeeperEnded(e) | Health::Failed(e) => return Err(e),
    };
    Ok(Some(Found {
        origin: Origin::Harness,
        keeper,
    }))
}

/// The keeper's hello in hand: joins as a user and waits until healthy.
/// `None`: the keeper went away meanwhile (look again).
async fn join(
    kind: ServiceKind,
    ports: ServicePortPair,
    hello: Hello,
    stream: UnixStream,
) -> Result<Option<Found>, Error> {
    let Some(joined) = register(kind, ports, hello, stream).await? else {
        return Ok(None);
    };
    let keeper = match wait_healthy(kind, ports, joined, false).await? {
        Health::Ready(keeper) => keeper,
        // Its service died (the keeper still answered a moment ago): look
        // again, and start it if nobody does.
        Health::KeeperEnded(_) => return Ok(None),
        Health::Failed(e) => return Err(e),
    };
    Ok(Some(Found {
        origin: Origin::Harness,
        keeper,
    }))
}

/// A keeper this process is a user of.
struct Joined {
    info: KeeperInfo,
    stream: UnixStream,
}

/// Checks the hello and sends `use`. `None` if the keeper closed first.
async fn register(
    kind: ServiceKind,
    ports: ServicePortPair,
    hello: Hello,
    stream: UnixStream,
) -> Result<Option<Joined>, Error> {
    let info = match hello {
        Hello::Compatible(info) => info,
        other => return Err(cannot_join(kind, ports.client, &other)),
    };
    if info.second_port != ports.second {
        let (client_var, second_var) = kind.port_vars();
        return Err(Error::Service(format!(
            "the shared {} on port {} (keeper pid {}, uid {}) has its {} port on {}, but this \
             run's port plan says {}: the plans of the processes sharing it disagree\n\
             fix: set {second_var} to the same value everywhere, or give this run its own \
             {} ports ({client_var} / {second_var})",
            kind.name(),
            ports.client,
            info.keeper_pid,
            info.keeper_uid,
            kind.second_port_name(),
            info.second_port,
            ports.second,
            kind.name(),
        )));
    }
    let exe = keeper::executable().display().to_string();
    let request = format!("use {}", json!({"pid": std::process::id(), "exe": exe}));
    let answer = blocking(move || protocol::request(&stream, &request).map(|a| (a, stream))).await;
    match answer {
        Ok((Ok(_), stream)) => Ok(Some(Joined { info, stream })),
        // Its goodbye came instead of an answer: stopping after all.
        Ok((Err(said), _)) if said.starts_with("bye ") => Ok(None),
        Ok((Err(refused), _)) => Err(Error::Service(format!(
            "the keeper of the shared {} on port {} (pid {}) refused this process as a user: {refused}",
            kind.name(),
            ports.client,
            info.keeper_pid
        ))),
        // It closed between its hello and our request: stopping after all.
        Err(_) => Ok(None),
    }
}

/// Waits until the joined instance is healthy, failing at once should
/// its keeper end (the service exited, say). Returns the connection.
async fn wait_healthy(
    kind: ServiceKind,
    ports: ServicePortPair,
    joined: Joined,
    started_here: bool,
) -> Result<Health, Error> {
    let Joined { info, stream } = joined;
    // The uid the kernel saw listen, not the one the hello claims.
    let keeper_uid = unix_socket::peer(&stream).map(|(_, uid)| uid);
    let watch = stream
        .set_nonblocking(true)
        .and_then(|()| tokio::net::UnixStream::from_std(stream))
        .map(|stream| KeeperWatch {
            stream,
            said: Mutex::new(Vec::new()),
            info: info.clone(),
            keeper_uid,
        })
        .map_err(|e| Error::io("watching the service keeper", e))?;
    let probe = kind.probe(ports);
    let waited = health::Wait::new(probe.as_ref(), START_TIMEOUT)
        .watch(&watch)
        .run()
        .await;
    let said = String::from_utf8_lossy(&lock(&watch.said)).into_owned();
    let keeper = watch
        .stream
        .into_std()
        .ok()
        .map(|stream| JoinedKeeper::new(stream, info.clone(), started_here, keeper_uid, &said));
    match waited {
        Ok(_) => Ok(Health::Ready(keeper)),
        Err(wait) => {
            let error = Error::Service(format!(
                "the shared {} on port {} (keeper pid {}, uid {}) did not become healthy: {wait}",
                kind.name(),
                ports.client,
                info.keeper_pid,
                info.keeper_uid
            ));
            let ended = keeper.is_some_and(|k| k.is_gone());
            Ok(if ended {
                Health::KeeperEnded(error)
            } else {
                Health::Failed(error)
            })
        }
    }
}

/// How a wait for a joined instance's health ended.
enum Health {
    /// Healthy, with the keeper's connection.
    Ready(Option<JoinedKeeper>),
    /// Its keeper ended meanwhile (its service died): a joiner looks again.
    KeeperEnded(Error),
    /// Not healthy in time.
    Failed(Error),
}

/// The keeper's connection, watched during a health wait: it says `bye`
/// and closes when it stops its service.
struct KeeperWatch {
    stream: tokio::net::UnixStream,
    said: Mutex<Vec<u8>>,
    info: KeeperInfo,
    /// The keeper's uid from `SO_PEERCRED`.
    keeper_uid: Option<u32>,
}

impl Watch for KeeperWatch {
    fn changed(&self) -> WatchFuture<'_, ()> {
        Box::pin(std::future::pending())
    }

    fn gone(&self) -> WatchFuture<'_, String> {
        Box::pin(async move {
            loop {
                if self.stream.readable().await.is_err() {
                    break;
                }
                let mut buf = [0u8; 512];
                match self.stream.try_read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => lock(&self.said).extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(_) => break,
                }
            }
            let said = String::from_utf8_lossy(&lock(&self.said)).into_owned();
            let why = said
                .lines()
                .find_map(|l| l.strip_prefix("bye "))
                .unwrap_or("no reason given")
                .to_string();
            format!(
                "its keeper (pid {}) stopped it: {why}",
                self.info.keeper_pid
            )
        })
    }

    fn report(&self) -> String {
        let log = std::path::Path::new(&self.info.log);
        format!(
            "{} (pid {}), keeper pid {}; log {}:\n{}",
            self.info.program,
            self.info.service_pid,
            self.info.keeper_pid,
            log.display(),
            keeper_log_tail(log, self.keeper_uid)
        )
    }
}

/// Something listens on the ports but is not (yet) healthy.
async fn wait_for_stranger(kind: ServiceKind, ports: ServicePortPair) -> Result<Origin, Error> {
    match health::wait(kind.probe(ports).as_ref(), LISTENING_GRACE).await {
        Ok(_) => external(kind, ports.client),
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

/// A healthy instance with no keeper: external, unless an earlier
/// version of the harness (a shell keeper with a record file in this
/// state directory) runs it.
fn external(kind: ServiceKind, port: u16) -> Result<Origin, Error> {
    let Some((keeper_pid, record)) = legacy_keeper(kind, port) else {
        return Ok(Origin::External);
    };
    Err(Error::Service(format!(
        "the shared {} on port {port} is run by an earlier version of dynamo-test (shell keeper \
         pid {keeper_pid}, record {record}), which this version can neither join nor stop\n\
         fix: let that run end (its keeper stops the service a grace after its last test), \
         use one dynamo-test version on this machine, or give this run other {} ports ({})",
        kind.name(),
        kind.name(),
        port_vars_text(kind)
    )))
}

/// The keeper pid and record path of an earlier version's shell keeper
/// for `kind` on `port`, if one runs.
fn legacy_keeper(kind: ServiceKind, port: u16) -> Option<(u32, String)> {
    let dir = state_dir::ensure_state_subdir("services").ok()?;
    let record = dir.join(format!("{}-{port}.record", kind.name()));
    let text = std::fs::read_to_string(&record).ok()?;
    let pid: u32 = text
        .lines()
        .find_map(|l| l.strip_prefix("keeper_pid="))?
        .parse()
        .ok()?;
    keeper::is_keeper(pid).then(|| (pid, record.display().to_string()))
}

/// Starts a keeper, which starts the service, and joins it once it
/// listens. The caller holds the start lock.
async fn start(kind: ServiceKind, ports: ServicePortPair) -> Result<Joined, Error> {
    let program = binaries::find(kind.program(), kind.bin_env(), kind.endpoints_env())
        .map_err(|e| Error::Service(e.to_string()))?;
    let dir = state_dir::ensure_state_subdir("services")?;
    let data_dir = dir.join(format!(
        "{}-{}-data-{}",
        kind.name(),
        ports.client,
        std::process::id()
    ));
    let log_dir = crate::output_dir::output_root()?.join("services");
    std::fs::create_dir_all(&log_dir)
        .map_err(|e| Error::io(format!("creating {}", log_dir.display()), e))?;
    let log_file = log_dir.join(format!("{}-{}.log", kind.name(), ports.client));
    let utf8 = |what: &str, path: &std::path::Path| {
        path.to_str().map(str::to_string).ok_or_else(|| {
            Error::Service(format!(
                "the {what} path {} is not UTF-8, which the keeper's settings need",
                path.display()
            ))
        })
    };
    let spec = Spec {
        service: kind.name().to_string(),
        port: ports.client,
        second_port: ports.second,
        program: utf8(kind.bin_env(), &program)?,
        args: kind.args(ports, &data_dir),
        log: utf8("log", &log_file)?,
        data_dir: utf8("data directory", &data_dir)?,
        grace: idle_grace()?,
    };
    let mut child = keeper::spawn(&spec).map_err(|e| {
        Error::Service(format!(
            "could not start the keeper of the shared {} on port {} ({}): {e}",
            kind.name(),
            ports.client,
            keeper::executable().display()
        ))
    })?;
    let started = Instant::now();
    loop {
        if let Contact::Answered(hello, stream) = contact(kind, ports.client).await? {
            if let Some(joined) = register(kind, ports, hello, stream).await? {
                // The keeper outlives us when others still use the service; reap it if it ends first.
                crate::process::reap_in_background(child);
                return Ok(joined);
            }
            // It is stopping before serving (its service exited, say):
            // still holding the start lock, wait for its exit, after which
            // its log is complete and its names are gone.
            return Err(keeper_ended_early(kind, &spec, child).await);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(keeper_exited(kind, &spec, status));
        }
        if started.elapsed() > KEEPER_UP_TIMEOUT {
            let what = format!("did not listen within {KEEPER_UP_TIMEOUT:?} (killed)");
            return Err(keeper_killed(kind, &spec, child, &what));
        }
        real_time::sleep(Duration::from_millis(2)).await;
    }
}

/// Waits (bounded) for a keeper that closed before serving to exit, and
/// says why it ended.
async fn keeper_ended_early(kind: ServiceKind, spec: &Spec, mut child: Child) -> Error {
    let started = Instant::now();
    while started.elapsed() < KEEPER_UP_TIMEOUT {
        if let Ok(Some(status)) = child.try_wait() {
            return keeper_exited(kind, spec, status);
        }
        real_time::sleep(Duration::from_millis(10)).await;
    }
    keeper_killed(
        kind,
        spec,
        child,
        "closed at once and did not exit (killed)",
    )
}

fn keeper_exited(kind: ServiceKind, spec: &Spec, status: std::process::ExitStatus) -> Error {
    let meaning = keeper::early_exit_meaning(status);
    keeper_failed(kind, spec, &format!("exited ({status}): {meaning},"))
}

fn keeper_killed(kind: ServiceKind, spec: &Spec, mut child: Child, what: &str) -> Error {
    // Unreaped, so the pid is still this child's.
    let _ = child.kill();
    let _ = child.wait();
    keeper_failed(kind, spec, what)
}

fn keeper_failed(kind: ServiceKind, spec: &Spec, what: &str) -> Error {
    let log = std::path::Path::new(&spec.log);
    Error::Service(format!(
        "the keeper for the shared {} on port {} {what} before serving ({})\nlog {}:\n{}\n\
         fix: see the log; or start {} yourself and set {}",
        kind.name(),
        spec.port,
        keeper::how_run(),
        log.display(),
        crate::process::tail(log, crate::process::TAIL_LINES),
        kind.program(),
        kind.endpoints_env()
    ))
}

/// Knocks on the keeper's name (off the async threads: the hello wait
/// may block up to a few seconds).
async fn contact(kind: ServiceKind, port: u16) -> Result<Contact, Error> {
    let name = kind.name();
    blocking(move || protocol::contact(name, port))
        .await
        .map_err(|e| {
            Error::Service(format!(
                "asking the keeper of the shared {name} on port {port}: {e}"
            ))
        })
}

/// The start lock of `kind` on `port`, if free now.
fn try_start_lock(
    kind: ServiceKind,
    port: u16,
) -> Result<Option<std::os::unix::net::UnixListener>, Error> {
    let name = protocol::start_name(kind.name(), port);
    match unix_socket::listen(&name) {
        Ok(held) => Ok(Some(held)),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Ok(None),
        Err(e) => Err(Error::io(format!("binding the start lock @{name}"), e)),
    }
}

fn start_lock_timeout(kind: ServiceKind, port: u16) -> Error {
    let name = protocol::start_name(kind.name(), port);
    Error::Service(format!(
        "waited {START_LOCK_WAIT:?} for another process starting or stopping the shared {} on \
         port {port}: @{name} is held by {}\n\
         fix: look at that process (`dynamo-test ports`), or give this run other {} ports ({})",
        kind.name(),
        pids_text(&unix_socket::holders(&name)),
        kind.name(),
        port_vars_text(kind)
    ))
}

fn keeperless(kind: ServiceKind, port: u16, marker: &str) -> Error {
    Error::Service(format!(
        "a {} that dynamo-test started runs on port {port} without its keeper (killed?): \
         nothing would stop it and nothing tracks its users, so it is not shared (it holds \
         @{marker}: {})\n\
         fix: `dynamo-test clean` (as its user, or root) stops it; or give this run other {} ports ({})",
        kind.name(),
        pids_text(&unix_socket::holders(marker)),
        kind.name(),
        port_vars_text(kind)
    ))
}

fn cannot_join(kind: ServiceKind, port: u16, hello: &Hello) -> Error {
    let name = protocol::keeper_name(kind.name(), port);
    let who = match hello {
        Hello::Incompatible {
            protocol,
            keeper_pid,
            keeper_uid,
            harness,
        } => format!(
            "a dynamo-test keeper of another version (protocol {protocol}, harness {}, keeper \
             pid {}, uid {}) runs it; this harness ({}) speaks protocol {}",
            harness.as_deref().unwrap_or("unknown"),
            keeper_pid.map_or("unknown".into(), |p| p.to_string()),
            keeper_uid.map_or("unknown".into(), |u| u.to_string()),
            env!("CARGO_PKG_VERSION"),
            protocol::PROTOCOL
        ),
        Hello::Stranger(line) => format!(
            "something that is not a dynamo-test keeper listens on @{name} ({}) and said {line:?}",
            pids_text(&unix_socket::holders(&name))
        ),
        Hello::Compatible(_) => "its keeper answered".into(),
    };
    Error::Service(format!(
        "cannot join the shared {} on port {port}: {who}. This run neither stops it nor uses it \
         as if nobody managed it\n\
         fix: use one dynamo-test version everywhere this network is shared (other users, \
         containers on the host network), or wait until it stops (a grace after its last user), \
         or give this run other {} ports ({})",
        kind.name(),
        kind.name(),
        port_vars_text(kind)
    ))
}

fn pids_text(pids: &[u32]) -> String {
    match pids {
        [] => "a process this user cannot see (another user's?)".to_string(),
        pids => {
            let shown: Vec<String> = pids
                .iter()
                .map(|&pid| match crate::sys::procfs::command_line(pid) {
                    Some(cmd) => format!("pid {pid} ({cmd})"),
                    None => format!("pid {pid}"),
                })
                .collect();
            shown.join(", ")
        }
    }
}

fn port_vars_text(kind: ServiceKind) -> String {
    let (client, second) = kind.port_vars();
    format!("{client} / {second}")
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

/// Env var: milliseconds a shared service stays up after its last user
/// (default 2000, 200 to 5000; the keeper sees a user leave at once).
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

/// Runs blocking socket calls off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e.to_string())))
}

/// A shared instance some harness runs now, as its keeper describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRecord {
    /// `etcd` or `nats`.
    pub name: String,
    /// Its client port.
    pub port: u16,
    /// Its second port (etcd peer, NATS monitor), if the keeper said.
    pub second_port: Option<u16>,
    /// The keeper's pid (in the keeper's PID namespace), if it said.
    pub keeper_pid: Option<u32>,
    /// The keeper's uid, if it said.
    pub keeper_uid: Option<u32>,
    /// The service's pid, if the keeper said.
    pub service_pid: Option<u32>,
    /// Processes connected as users now.
    pub users: usize,
    /// `dynamo-test up` pins keeping it up.
    pub pins: usize,
    /// The service binary.
    pub program: String,
    /// Its log file (in the keeper's mount namespace).
    pub log: String,
    /// The keeper's harness version, if it said.
    pub harness: Option<String>,
    /// Why this harness cannot join it (another protocol, not a keeper,
    /// no answer); `None` if it can.
    pub problem: Option<String>,
}

impl ServiceRecord {
    fn from_hello(name: String, port: u16, hello: Hello) -> ServiceRecord {
        let mut record = ServiceRecord {
            name,
            port,
            second_port: None,
            keeper_pid: None,
            keeper_uid: None,
            service_pid: None,
            users: 0,
            pins: 0,
            program: String::new(),
            log: String::new(),
            harness: None,
            problem: None,
        };
        match hello {
            Hello::Compatible(info) => {
                record.second_port = Some(info.second_port);
                record.keeper_pid = Some(info.keeper_pid);
                record.keeper_uid = Some(info.keeper_uid);
                record.service_pid = Some(info.service_pid);
                record.users = info.users;
                record.pins = info.pins;
                record.program = info.program;
                record.log = info.log;
                record.harness = Some(info.harness);
            }
            Hello::Incompatible {
                protocol,
                keeper_pid,
                keeper_uid,
                harness,
            } => {
                record.keeper_pid = keeper_pid.and_then(|p| u32::try_from(p).ok());
                record.keeper_uid = keeper_uid.and_then(|u| u32::try_from(u).ok());
                record.harness = harness;
                record.problem = Some(format!(
                    "a keeper of protocol {protocol}; this harness speaks {}",
                    protocol::PROTOCOL
                ));
            }
            Hello::Stranger(line) => {
                record.problem = Some(format!("not a dynamo-test keeper; it said {line:?}"));
            }
        }
        record
    }
}

/// The shared instances that keepers run in this network namespace (any
/// user, any container, any state directory), each asked for its hello.
pub fn records() -> Result<Vec<ServiceRecord>, Error> {
    let mut found = Vec::new();
    for suffix in unix_socket::listening_names(protocol::KEEPER_PREFIX) {
        let Some((name, port)) = protocol::parse_keeper_suffix(&suffix) else {
            continue;
        };
        match protocol::contact(&name, port) {
            Ok(Contact::Answered(hello, _)) => {
                found.push(ServiceRecord::from_hello(name, port, hello));
            }
            Ok(Contact::NoKeeper | Contact::Closing) => {}
            Err(e) => {
                let mut record =
                    ServiceRecord::from_hello(name, port, Hello::Stranger(String::new()));
                record.problem = Some(e.to_string());
                found.push(record);
            }
        }
    }
    found.sort_by(|a, b| (&a.name, a.port).cmp(&(&b.name, b.port)));
    Ok(found)
}

/// Whether any of the coordination names of `kind` on `port` (keeper,
/// start lock, service) is bound: something of a shared instance is
/// still around.
pub fn coordination_in_use(kind: ServiceKind, port: u16) -> bool {
    [
        protocol::keeper_name(kind.name(), port),
        protocol::start_name(kind.name(), port),
        protocol::service_name(kind.name(), port),
    ]
    .iter()
    .any(|name| unix_socket::is_bound(name).unwrap_or(false))
}

/// The outcome of [`unpin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpinned {
    /// No keeper runs the instance (nothing to keep up).
    NoKeeper,
    /// The keeper did not know the token (it was restarted since).
    NotPinned,
    /// Removed; users and pins still keeping it up.
    Removed {
        /// Processes still using it.
        users: usize,
        /// Other pins.
        pins: usize,
    },
}

/// Asks the keeper of `kind` on `port` to keep its service up until
/// [`unpin`] with the same `token` (what `dynamo-test up` does): whether
/// it was pinned with that token already.
pub fn pin(kind: ServiceKind, port: u16, token: &str) -> Result<bool, Error> {
    let answer = ask(kind, port, &format!("pin {token}"))?.ok_or_else(|| {
        Error::Service(format!(
            "no keeper runs the shared {} on port {port}: nothing to keep up",
            kind.name()
        ))
    })?;
    let value = answer.map_err(|refused| {
        Error::Service(format!(
            "the keeper of the shared {} on port {port} refused the pin: {refused}",
            kind.name()
        ))
    })?;
    Ok(value["already"].as_bool().unwrap_or(false))
}

/// Removes the pin `token` (what `dynamo-test down` does); the keeper
/// stops the service a grace later if nobody else uses it.
pub fn unpin(kind: ServiceKind, port: u16, token: &str) -> Result<Unpinned, Error> {
    match ask(kind, port, &format!("unpin {token}"))? {
        None => Ok(Unpinned::NoKeeper),
        Some(Err(_)) => Ok(Unpinned::NotPinned),
        Some(Ok(v)) => Ok(Unpinned::Removed {
            users: count(&v["users"]),
            pins: count(&v["pins"]),
        }),
    }
}

fn count(v: &Value) -> usize {
    v.as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
}

/// One request to a compatible keeper; `None` if no keeper answers.
fn ask(kind: ServiceKind, port: u16, line: &str) -> Result<Option<Result<Value, String>>, Error> {
    let failed = |e: io::Error| {
        Error::Service(format!(
            "asking the keeper of the shared {} on port {port}: {e}",
            kind.name()
        ))
    };
    match protocol::contact(kind.name(), port).map_err(failed)? {
        Contact::NoKeeper | Contact::Closing => Ok(None),
        Contact::Answered(Hello::Compatible(_), stream) => {
            protocol::request(&stream, line).map(Some).map_err(failed)
        }
        Contact::Answered(other, _) => Err(cannot_join(kind, port, &other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keeper_log_is_shown_only_if_it_is_a_file_of_the_keeper_s_uid() {
        let dir = std::env::temp_dir().join(format!("dt-keeper-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("etcd.log");
        std::fs::write(&log, "one\ntwo\n").unwrap();
        let me = crate::sys::signal::current_uid();
        assert!(keeper_log_tail(&log, Some(me)).ends_with("two"));
        // Another uid's keeper naming a file of ours: not printed.
        let other = keeper_log_tail(&log, Some(me.wrapping_add(1)));
        assert!(other.starts_with("(not shown"), "{other}");
        assert!(!other.contains("two"), "{other}");
        assert!(keeper_log_tail(&log, None).starts_with("(not shown"));
        // A symlink to it: not followed.
        let link = dir.join("link.log");
        std::os::unix::fs::symlink(&log, &link).unwrap();
        let linked = keeper_log_tail(&link, Some(me));
        assert!(!linked.contains("two"), "{linked}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
