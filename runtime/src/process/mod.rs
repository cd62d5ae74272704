//! Managed child processes: started by a test, watched while it waits for
//! them, logged to files, and never outliving the test.
//!
//! Each child runs in its own process group, so teardown reaches its
//! grandchildren: SIGTERM to the group, a grace period, SIGKILL to the
//! group, reap. Three more guards cover the cases where teardown never runs
//! (a SIGKILLed test, nextest's SIGTERM on timeout, which skips
//! destructors):
//! - the child gets a parent-death signal (`PR_SET_PDEATHSIG`), set up from
//!   a long-lived spawner thread because the kernel ties it to the
//!   spawning *thread* (`spawner.rs`);
//! - a tiny watchdog (`/bin/sh`, a member of the child's group, so that
//!   the group's number cannot be reused while it runs) holds a pipe from
//!   the test process and kills its own group when the pipe closes
//!   (`watchdog.rs`): this reaches grandchildren too;
//! - children carry an owner tag
//!   (`DYNAMO_TEST_OWNER=pid:starttime:pidns`), so a sweep can find tagged
//!   processes whose owner is dead (`sweep.rs`; the `dynamo-test clean`
//!   command), and never judges an owner of another PID namespace.
//!
//! - descendants that leave the group carry the child's own tag
//!   (`DYNAMO_TEST_CHILD`), so a stop finds and stops them too, and the
//!   watchdog sweeps them when the test process dies (`descendants.rs`).
//!
//! No signal reaches a number that may have been reused: a group is
//! signalled only while its leader is our unreaped child (`group.rs`) or
//! by a member of it (the watchdog); a process found in /proc only through
//! a pidfd opened before its identity is checked again (`pinned.rs`).

mod builder;
mod command;
mod descendants;
mod group;
mod line_splitter;
mod log_wait;
pub(crate) mod logs;
mod managed;
mod owner;
pub(crate) mod pinned;
mod reaper;
mod spawner;
pub(crate) mod sweep;
mod watchdog;

pub use builder::{ProcessBuilder, DEFAULT_GRACE, DEFAULT_STARTUP_TIMEOUT};
pub(crate) use command::{check_executable, first_executable};
pub use log_wait::{LogPattern, LogPatternError};
pub(crate) use logs::{tail, tail_of};
pub(crate) use managed::TAIL_LINES;
pub use managed::{ManagedProcess, ProcessError};

pub(crate) use owner::Owner;
pub(crate) use reaper::reap_in_background;
