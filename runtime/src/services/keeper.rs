//! The keeper: runs one shared service instance and stops it when its
//! last user is gone.
//!
//! Users are processes holding a *shared* `flock` on the service's users
//! file. The keeper (a `/bin/sh` in its own process group, so no test's
//! group signal reaches it) tries for an *exclusive* lock every 200 ms; it
//! gets one only when no user is left, dead users included, since the
//! kernel drops a dead process's locks. After the grace period without
//! users it stops the service while still holding the exclusive lock, so
//! a user arriving meanwhile waits and then starts a fresh instance. It
//! needs `flock(1)` from util-linux.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Env var naming the service a keeper runs (for `dynamo-test` listings).
pub const ENV_SERVICE: &str = "DYNAMO_TEST_SERVICE";

/// The keeper shell's `$0`: how a keeper is recognised in /proc.
const KEEPER_NAME: &str = "dynamo-test-keeper";

/// Whether `pid` is a keeper (its arguments hold the keeper's name).
pub fn is_keeper(pid: u32) -> bool {
    crate::sys::procfs::arguments(pid).is_some_and(|args| args.iter().any(|a| a == KEEPER_NAME))
}

/// The poll interval of the keeper's lock check.
const TICK: Duration = Duration::from_millis(200);

// The killer subshell closes fd 9: it must not hold the users lock after
// the keeper is gone (a stray `sleep 3` did, stalling the next start). It
// sleeps in short steps, so nothing of it outlives the service by more
// than 0.1 s.
const SCRIPT: &str = r#"
users=$1 record=$2 log=$3 ticks=$4 data=$5; shift 5; prog=$1
trap '' INT HUP
"$@" >>"$log" 2>&1 </dev/null &
svc=$!
echo "keeper $$: started $prog as pid $svc" >>"$log"
stop() {
  kill -TERM "$svc" 2>/dev/null
  ( exec 9<&-; i=0
    while [ "$i" -lt 30 ] && kill -0 "$svc" 2>/dev/null; do sleep 0.1; i=$((i+1)); done
    kill -0 "$svc" 2>/dev/null && kill -KILL "$svc" ) & killer=$!
  wait "$svc"
  kill "$killer" 2>/dev/null
  rm -f "$record"; rm -rf "$data"
  echo "keeper $$: stopped $prog (pid $svc): no user left" >>"$log"
}
trap 'stop; exit 0' TERM
exec 9<"$users"
idle=0
while kill -0 "$svc" 2>/dev/null; do
  sleep 0.2
  if flock -n -x 9; then
    idle=$((idle+1))
    if [ "$idle" -ge "$ticks" ]; then stop; exit 0; fi
    flock -u 9
  else
    idle=0
  fi
done
wait "$svc"; status=$?
rm -f "$record"; rm -rf "$data"
echo "keeper $$: $prog exited by itself (status $status)" >>"$log"
"#;

/// How many lock checks in a row must find no user before the keeper
/// stops the service. The first such check comes 0 to one TICK after the
/// last user left, and the k-th one (k - 1) to k TICKs after; so
/// `ceil(grace / TICK) + 1` checks make the wait at least `grace` and
/// less than `grace + 2 TICK`. (A user that comes and goes between two
/// checks is not seen and does not restart the count.)
fn idle_ticks(grace: Duration) -> u128 {
    grace.as_millis().div_ceil(TICK.as_millis()) + 1
}

/// Paths and settings of one keeper.
pub(crate) struct KeeperSpec<'a> {
    pub name: &'a str,
    pub users_file: &'a Path,
    pub record_file: &'a Path,
    pub log_file: &'a Path,
    pub data_dir: &'a Path,
    pub grace: Duration,
    pub program: &'a Path,
    pub args: &'a [String],
}

/// Starts the keeper, which starts the service. The keeper is not tied to
/// this process: it outlives it while other users remain.
pub(crate) fn start(spec: &KeeperSpec) -> std::io::Result<Child> {
    let ticks = idle_ticks(spec.grace);
    Command::new("/bin/sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg(KEEPER_NAME)
        .arg(spec.users_file)
        .arg(spec.record_file)
        .arg(spec.log_file)
        .arg(ticks.to_string())
        .arg(spec.data_dir)
        .arg(spec.program)
        .args(spec.args)
        .env(ENV_SERVICE, spec.name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_outlives_its_last_user_by_at_least_the_grace() {
        for grace_ms in [0, 1, 199, 200, 300, 2000, 5000] {
            let ticks = idle_ticks(Duration::from_millis(grace_ms)) as u64;
            let tick = TICK.as_millis() as u64;
            // The k-th idle check happens within ((k-1)*TICK, k*TICK] of the last user leaving.
            let (earliest, latest) = ((ticks - 1) * tick, ticks * tick);
            assert!(earliest >= grace_ms, "{grace_ms} ms: {ticks} ticks");
            assert!(latest < grace_ms + 2 * tick, "{grace_ms} ms: {ticks} ticks");
        }
    }
}
