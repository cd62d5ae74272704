//! The keeper process: one thread, one `poll` over the listener, the
//! users' connections and the service's pidfd.
//!
//! Signals reach only what the keeper holds: the service is its unreaped
//! child, in a process group of its own. The keeper signals that group
//! only while the leader is unreaped (running or a zombie), when no other
//! process can own that number, and reaps the leader only after its last
//! signal (the shell keepers of earlier versions signalled after reaping).

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::protocol::{self, KeeperInfo};
use super::{Spec, ENV_KEEPER, ENV_SERVICE};
use crate::sys::signal::{self, ChildState, PidFd, Signal};
use crate::sys::unix_socket;

/// The longest the keeper sleeps in `poll` (signals and timeouts of
/// half-open connections are looked at this often).
const TICK: Duration = Duration::from_millis(100);
/// A connection that sent no request by then is dropped.
const PENDING_LIMIT: Duration = Duration::from_secs(10);
/// SIGTERM to the service, then SIGKILL after this.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// A signalled keeper waits this long for the start lock before it
/// stops its service without it.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// The pause after an accept that failed other than "none left".
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Exit code: the settings in `DYNAMO_TEST_KEEPER` were not understood.
pub(crate) const EXIT_BAD_SPEC: i32 = 81;
/// Exit code: the log file could not be opened.
pub(crate) const EXIT_NO_LOG: i32 = 82;
/// Exit code: the keeper or its service could not start (said in the log).
pub(crate) const EXIT_NOT_STARTED: i32 = 83;
/// Exit code: the keeper panicked.
pub(crate) const EXIT_PANIC: i32 = 84;
/// Exit code: the service exited by itself (said in the log).
pub(crate) const EXIT_SERVICE_EXITED: i32 = 85;
/// Exit code: a signal (SIGTERM, SIGINT, SIGHUP) stopped the keeper. A
/// keeper that stopped its service after the grace exits 0.
pub(crate) const EXIT_SIGNALLED: i32 = 86;

/// The keeper's entry point (from the pre-main hook): the exit code.
pub(super) fn main(spec: &OsStr) -> i32 {
    let spec = match spec
        .to_str()
        .ok_or("not UTF-8".to_string())
        .and_then(Spec::from_json)
    {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("dynamo-test keeper: bad {ENV_KEEPER}: {e}");
            return EXIT_BAD_SPEC;
        }
    };
    let mut log = match open_log(&spec.log) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("dynamo-test keeper: cannot open its log {}: {e}", spec.log);
            return EXIT_NO_LOG;
        }
    };
    match Keeper::start(spec, &mut log) {
        Ok(mut keeper) => match keeper.serve() {
            Ended::Idle => 0,
            Ended::Signalled => EXIT_SIGNALLED,
            Ended::ServiceExited => EXIT_SERVICE_EXITED,
        },
        Err(e) => {
            let _ = writeln!(log, "keeper {}: {e}", std::process::id());
            EXIT_NOT_STARTED
        }
    }
}

fn open_log(path: &str) -> io::Result<File> {
    if let Some(dir) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// How long nobody has used the instance.
#[derive(Debug, Default)]
pub(super) struct Idle {
    since: Option<Instant>,
}

impl Idle {
    /// At `now`, the instance is `busy` (users or pins) or not, and a user
    /// or pin came or went (`touched`). Busy stops the count; idle starts
    /// it, and a user that came and went meanwhile restarts it: however
    /// short its use, the grace counts from its leaving.
    pub(super) fn update(&mut self, busy: bool, touched: bool, now: Instant) {
        if busy {
            self.since = None;
        } else if touched || self.since.is_none() {
            self.since = Some(now);
        }
    }

    /// Time until the grace is over, if idle.
    pub(super) fn left(&self, now: Instant, grace: Duration) -> Option<Duration> {
        self.since
            .map(|since| grace.saturating_sub(now.saturating_duration_since(since)))
    }

    /// Whether the instance has been idle for `grace`.
    pub(super) fn due(&self, now: Instant, grace: Duration) -> bool {
        self.left(now, grace).is_some_and(|left| left.is_zero())
    }
}

/// How serving ended.
enum Ended {
    /// The grace was over: the keeper stopped the service.
    Idle,
    /// A signal: the keeper stopped the service.
    Signalled,
    /// The service exited by itself.
    ServiceExited,
}

enum Role {
    /// Connected, hello sent, no request yet.
    Pending,
    /// Sent `use`: a user until it closes.
    User,
}

struct Conn {
    stream: UnixStream,
    role: Role,
    since: Instant,
    peer: String,
    input: Vec<u8>,
}

struct Keeper {
    spec: Spec,
    log: File,
    listener: Option<UnixListener>,
    /// Bound by us and inherited by the service: see the module doc.
    /// Closed before the start lock goes, so a newcomer that takes the
    /// lock never sees a marker without a keeper.
    marker: Option<UnixListener>,
    /// A lock on `<data dir>.in-use`, held from before the service starts
    /// until its data is gone: `dynamo-test clean` never removes a data dir
    /// whose lock is held (from any uid or PID namespace: it is a flock).
    data_lock: Option<File>,
    service: Child,
    service_pid: u32,
    pidfd: Option<PidFd>,
    conns: Vec<Conn>,
    pins: BTreeSet<String>,
    idle: Idle,
    /// A user or pin came or went since the last look.
    touched: bool,
    /// Some connection ever became a user or pinned the service.
    ever_used: bool,
    /// The last failure noted by [`Keeper::note_once`].
    last_failure: Option<String>,
    signalled: Arc<AtomicBool>,
}

impl Keeper {
    fn start(spec: Spec, log: &mut File) -> Result<Keeper, String> {
        let me = std::process::id();
        let _ = writeln!(
            log,
            "keeper {me}: starting {} for {} on port {} (grace {:?})",
            spec.program, spec.service, spec.port, spec.grace
        );
        let signalled = Arc::new(AtomicBool::new(false));
        for sig in [
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGHUP,
        ] {
            signal_hook::flag::register(sig, signalled.clone())
                .map_err(|e| format!("cannot handle signal {sig}: {e}"))?;
        }
        let name = protocol::keeper_name(&spec.service, spec.port);
        let listener = unix_socket::listen(&name)
            .map_err(|e| format!("cannot listen on @{name} (another keeper?): {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("@{name}: {e}"))?;
        let marker_name = protocol::service_name(&spec.service, spec.port);
        let marker = unix_socket::listen(&marker_name).map_err(|e| {
            format!("cannot bind @{marker_name} (a harness-started service without keeper still runs?): {e}")
        })?;
        let data_lock = lock_data_dir(std::path::Path::new(&spec.data_dir))?;
        let service = spawn_service(&spec, log, marker.as_fd())
            .map_err(|e| format!("cannot start {}: {e}", spec.program))?;
        let service_pid = service.id();
        let pidfd = PidFd::open(service_pid).ok();
        let _ = writeln!(
            log,
            "keeper {me}: started {} as pid {service_pid}",
            spec.program
        );
        Ok(Keeper {
            log: log.try_clone().map_err(|e| e.to_string())?,
            spec,
            listener: Some(listener),
            marker: Some(marker),
            data_lock: Some(data_lock),
            service,
            service_pid,
            pidfd,
            conns: Vec::new(),
            pins: BTreeSet::new(),
            idle: Idle::default(),
            touched: false,
            ever_used: false,
            last_failure: None,
            signalled,
        })
    }

    /// Notes `text` unless it is the failure noted last (until an accept
    /// succeeds again).
    fn note_once(&mut self, text: &str) {
        if self.last_failure.as_deref() != Some(text) {
            self.note(text);
            self.last_failure = Some(text.to_string());
        }
    }

    fn note(&mut self, text: &str) {
        let _ = writeln!(self.log, "keeper {}: {text}", std::process::id());
    }

    fn users(&self) -> usize {
        self.conns
            .iter()
            .filter(|c| matches!(c.role, Role::User))
            .count()
    }

    /// Users or pins keep the service up. (A connection still in its
    /// handshake does not, but no stop happens while one is open: see
    /// [`Keeper::serve`]. A `dynamo-test ports` that only looks so does
    /// not extend the grace.)
    fn busy(&self) -> bool {
        self.users() > 0 || !self.pins.is_empty()
    }

    fn handshaking(&self) -> bool {
        self.conns.iter().any(|c| matches!(c.role, Role::Pending))
    }

    fn info(&self, state: &str) -> KeeperInfo {
        KeeperInfo {
            service: self.spec.service.clone(),
            port: self.spec.port,
            second_port: self.spec.second_port,
            keeper_pid: std::process::id(),
            keeper_uid: signal::current_uid(),
            service_pid: self.service_pid,
            program: self.spec.program.clone(),
            log: self.spec.log.clone(),
            harness: env!("CARGO_PKG_VERSION").to_string(),
            users: self.users(),
            pins: self.pins.len(),
            state: state.to_string(),
        }
    }

    /// Serves until the service is stopped or gone.
    fn serve(&mut self) -> Ended {
        self.idle.update(false, false, Instant::now());
        loop {
            let timeout = self
                .idle
                .left(Instant::now(), self.spec.grace)
                .map_or(TICK, |left| left.min(TICK))
                .max(Duration::from_millis(1));
            let ready = self.wait(timeout);
            if self.signalled.load(Ordering::Relaxed) {
                self.finish("signalled", LOCK_WAIT);
                return Ended::Signalled;
            }
            if let ChildState::Exited(status) = signal::child_state(self.service_pid) {
                // Said at once: a starter reads the log as soon as we close.
                let (program, pid) = (self.spec.program.clone(), self.service_pid);
                self.note(&format!(
                    "{program} (pid {pid}) exited by itself ({status})"
                ));
                // Never used, the lock is our starter's, which waits for
                // our exit to say why: no wait for a lock that stays held.
                let wait = if self.ever_used {
                    LOCK_WAIT
                } else {
                    Duration::ZERO
                };
                // `died: ...`: what its users' failing tests show.
                self.finish(&format!("died: {}", how_it_ended(status)), wait);
                return Ended::ServiceExited;
            }
            self.accept();
            self.read(&ready);
            let now = Instant::now();
            self.conns.retain(|c| {
                !matches!(c.role, Role::Pending) || now.duration_since(c.since) < PENDING_LIMIT
            });
            self.idle.update(self.busy(), self.touched, now);
            self.touched = false;
            if self.idle.due(now, self.spec.grace)
                && !self.handshaking()
                && self.stop_if_still_idle()
            {
                return Ended::Idle;
            }
        }
    }

    /// Polls the listener, the pidfd and the connections; which
    /// connections are readable.
    fn wait(&self, timeout: Duration) -> Vec<bool> {
        let mut fds: Vec<BorrowedFd<'_>> = Vec::new();
        if let Some(l) = &self.listener {
            fds.push(l.as_fd());
        }
        if let Some(p) = &self.pidfd {
            fds.push(p.as_fd());
        }
        let fixed = fds.len();
        fds.extend(self.conns.iter().map(|c| c.stream.as_fd()));
        match unix_socket::poll_readable(&fds, timeout) {
            Ok(ready) => ready[fixed..].to_vec(),
            // Should poll itself fail, look at everything after a tick.
            Err(_) => {
                std::thread::sleep(timeout);
                vec![true; self.conns.len()]
            }
        }
    }

    /// Takes every pending connection and greets it. Whether any came.
    fn accept(&mut self) -> bool {
        let mut came = false;
        loop {
            let Some(listener) = &self.listener else {
                return came;
            };
            let stream = match listener.accept() {
                Ok((stream, _)) => {
                    self.last_failure = None;
                    stream
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // That one knock gave up; others may wait behind it.
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return came,
                Err(e) => {
                    // Out of descriptors, say: the knock stays queued and
                    // the listener readable, so pause instead of spinning.
                    self.note_once(&format!("cannot accept a connection: {e}"));
                    std::thread::sleep(ACCEPT_BACKOFF);
                    return came;
                }
            };
            came = true;
            let peer = unix_socket::peer(&stream).map_or("a peer".to_string(), |(pid, uid)| {
                format!("pid {pid} uid {uid}")
            });
            let hello = self.info("running").hello();
            if stream.set_nonblocking(true).is_ok()
                && unix_socket::send_all(&stream, hello.as_bytes()).is_ok()
            {
                self.conns.push(Conn {
                    stream,
                    role: Role::Pending,
                    since: Instant::now(),
                    peer,
                    input: Vec::new(),
                });
            }
        }
    }

    /// Reads what the readable connections sent: requests, or EOF.
    fn read(&mut self, ready: &[bool]) {
        let mut gone = Vec::new();
        let mut requests = Vec::new();
        for (i, conn) in self.conns.iter_mut().enumerate() {
            if !ready.get(i).copied().unwrap_or(false) {
                continue;
            }
            let mut buf = [0u8; 1024];
            loop {
                match conn.stream.read(&mut buf) {
                    Ok(0) => {
                        gone.push(i);
                        break;
                    }
                    Ok(n) => conn.input.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        gone.push(i);
                        break;
                    }
                }
            }
            while let Some(end) = conn.input.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = conn.input.drain(..=end).collect();
                requests.push((i, String::from_utf8_lossy(&line).trim().to_string()));
            }
            if conn.input.len() > 64 * 1024 {
                gone.push(i);
            }
        }
        for (i, line) in requests {
            if !gone.contains(&i) {
                self.handle(i, &line);
            }
        }
        gone.sort_unstable();
        gone.dedup();
        for i in gone.into_iter().rev() {
            let conn = self.conns.remove(i);
            if matches!(conn.role, Role::User) {
                self.touched = true;
                let users = self.users();
                self.note(&format!("user left: {}; {users} left", conn.peer));
            }
        }
    }

    fn handle(&mut self, i: usize, line: &str) {
        let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
        let answer = match verb {
            "use" => {
                self.conns[i].role = Role::User;
                self.touched = true;
                self.ever_used = true;
                let who: Value = serde_json::from_str(rest).unwrap_or(Value::Null);
                let users = self.users();
                let peer = self.conns[i].peer.clone();
                let exe = who["exe"].as_str().unwrap_or("?");
                self.note(&format!("user joined: {peer} ({exe}); {users} users"));
                format!("ok {}", json!({"users": users}))
            }
            "pin" | "unpin" if !valid_token(rest) => {
                "err a token is 1 to 128 characters without spaces".to_string()
            }
            "pin" => {
                self.touched = true;
                self.ever_used = true;
                let already = !self.pins.insert(rest.to_string());
                let peer = self.conns[i].peer.clone();
                self.note(&format!("pinned by {peer} (dynamo-test up)"));
                format!(
                    "ok {}",
                    json!({"already": already, "pins": self.pins.len()})
                )
            }
            "unpin" => {
                if self.pins.remove(rest) {
                    self.touched = true;
                    let peer = self.conns[i].peer.clone();
                    self.note(&format!("unpinned by {peer} (dynamo-test down)"));
                    let (users, pins) = (self.users(), self.pins.len());
                    format!("ok {}", json!({"users": users, "pins": pins}))
                } else {
                    "err not pinned with this token".to_string()
                }
            }
            _ => format!(
                "err unknown request `{verb}` (this keeper speaks protocol {})",
                protocol::PROTOCOL
            ),
        };
        let _ = unix_socket::send_all(&self.conns[i].stream, format!("{answer}\n").as_bytes());
    }

    /// The grace is over: takes the start lock, makes sure no newcomer
    /// knocked meanwhile, closes the listener and stops the service.
    /// False (and serving on) if a starter holds the lock or someone came.
    fn stop_if_still_idle(&mut self) -> bool {
        let start_name = protocol::start_name(&self.spec.service, self.spec.port);
        let Ok(lock) = unix_socket::listen(&start_name) else {
            // A starter is deciding: it connects to us next and joins.
            return false;
        };
        if self.accept() {
            return false;
        }
        let grace = self.spec.grace;
        self.listener = None;
        self.stop(&format!("no user left for {grace:?}"), Some(lock));
        true
    }

    /// Stops for `reason` (a signal, the service's own exit): takes the
    /// start lock if it can within `lock_wait`, closes the listener,
    /// stops the service.
    fn finish(&mut self, reason: &str, lock_wait: Duration) {
        let start_name = protocol::start_name(&self.spec.service, self.spec.port);
        let started = Instant::now();
        let lock = loop {
            match unix_socket::listen(&start_name) {
                Ok(lock) => break Some(lock),
                Err(_) if started.elapsed() < lock_wait => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(_) => break None,
            }
        };
        self.listener = None;
        self.stop(reason, lock);
    }

    /// With the listener closed: says goodbye to the users, stops the
    /// service and its group, reaps it, removes its data, then lets the
    /// start lock go.
    fn stop(&mut self, reason: &str, lock: Option<UnixListener>) {
        let bye = format!("bye {reason}\n");
        for conn in self.conns.drain(..) {
            let _ = unix_socket::send_all(&conn.stream, bye.as_bytes());
        }
        let status = self.stop_service();
        let _ = std::fs::remove_dir_all(&self.spec.data_dir);
        let _ = std::fs::remove_file(data_lock_path(std::path::Path::new(&self.spec.data_dir)));
        self.data_lock = None;
        let program = self.spec.program.clone();
        let pid = self.service_pid;
        let status = status.map_or("status unknown".to_string(), |s| s.to_string());
        self.note(&format!(
            "stopped {program} (pid {pid}, {status}): {reason}"
        ));
        // The service (which held the marker too) is reaped: the marker goes,
        // then the lock.
        self.marker = None;
        drop(lock);
    }

    /// SIGTERM to the service's group, SIGKILL after [`STOP_GRACE`] (and
    /// to what is left of the group either way), then the reap.
    fn stop_service(&mut self) -> Option<ExitStatus> {
        let pid = self.service_pid;
        signal::signal_child_group(pid, Signal::TERM);
        let deadline = Instant::now() + STOP_GRACE;
        while signal::child_state(pid) == ChildState::Running && Instant::now() < deadline {
            match &self.pidfd {
                Some(pidfd) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let _ = unix_socket::poll_readable(&[pidfd.as_fd()], left);
                }
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        if signal::child_state(pid) == ChildState::Running {
            self.note(&format!(
                "pid {pid} still runs {STOP_GRACE:?} after SIGTERM: SIGKILL"
            ));
        }
        // The leader is unreaped still: the group id is ours.
        signal::signal_child_group(pid, Signal::KILL);
        self.service.wait().ok()
    }
}

fn valid_token(token: &str) -> bool {
    (1..=128).contains(&token.len()) && !token.contains(char::is_whitespace)
}

/// The service: its own process group, output to the log, killed with
/// the keeper, holding the marker socket.
fn spawn_service(spec: &Spec, log: &File, marker: BorrowedFd<'_>) -> io::Result<Child> {
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .env_remove(ENV_KEEPER)
        .env(ENV_SERVICE, &spec.service)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?)
        .process_group(0);
    // The keeper has no tag to pass on; should one reach it anyway, the
    // service (shared by tests) must not inherit it.
    crate::process::sweep::strip_owner_tag(&mut cmd);
    crate::sys::spawn::dies_with_parent(&mut cmd, std::process::id());
    unix_socket::inheritable(marker, || cmd.spawn())?
}

/// `<data dir>.in-use`, beside the data dir (the service wants its data dir
/// to itself).
pub fn data_lock_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    let mut name = data_dir.as_os_str().to_owned();
    name.push(".in-use");
    std::path::PathBuf::from(name)
}

/// Takes the lock on `<data dir>.in-use` for the keeper's lifetime.
fn lock_data_dir(data_dir: &std::path::Path) -> Result<File, String> {
    let path = data_lock_path(data_dir);
    let file = File::create(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.try_lock().map_err(|e| {
        format!(
            "cannot lock {} (another keeper uses this data dir?): {e}",
            path.display()
        )
    })?;
    Ok(file)
}

/// `killed by signal 9 (SIGKILL)`, `exited with code 3`.
fn how_it_ended(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        // std says `signal: 9 (SIGKILL)`.
        (None, Some(_)) => format!(
            "killed by {}",
            status.to_string().replacen("signal: ", "signal ", 1)
        ),
        (None, None) => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_service_outlives_its_last_user_by_the_grace() {
        let t0 = Instant::now();
        for grace in [ms(0), ms(1), ms(200), ms(2000), ms(5000)] {
            let mut idle = Idle::default();
            idle.update(true, true, t0);
            assert!(!idle.due(t0 + ms(10_000), grace), "busy is never due");
            // The last user leaves at t0 + 50 ms.
            idle.update(false, true, t0 + ms(50));
            assert_eq!(idle.left(t0 + ms(50), grace), Some(grace));
            if !grace.is_zero() {
                assert!(!idle.due(t0 + ms(50) + grace - ms(1), grace));
            }
            assert!(idle.due(t0 + ms(50) + grace, grace), "{grace:?}");
            // Later looks while idle do not move the start.
            idle.update(false, false, t0 + ms(60));
            assert!(idle.due(t0 + ms(50) + grace, grace));
        }
    }

    #[test]
    fn a_user_that_comes_and_goes_restarts_the_grace() {
        let t0 = Instant::now();
        let grace = ms(300);
        let mut idle = Idle::default();
        idle.update(false, false, t0);
        // A user joins and leaves between two looks: only `touched` tells.
        idle.update(false, true, t0 + ms(250));
        assert!(!idle.due(t0 + ms(300), grace));
        assert_eq!(idle.left(t0 + ms(300), grace), Some(ms(250)));
        assert!(idle.due(t0 + ms(550), grace));
        // Looking without a user (a `ports` listing) changes nothing.
        idle.update(false, false, t0 + ms(400));
        assert!(idle.due(t0 + ms(550), grace));
    }

    #[test]
    fn tokens() {
        assert!(valid_token("a1b2"));
        assert!(!valid_token(""));
        assert!(!valid_token("a b"));
        assert!(!valid_token(&"x".repeat(129)));
    }
}
