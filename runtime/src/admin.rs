//! What tools read and do: for tools like the `dynamo-test` command, not
//! for test authors (a test needs nothing here: see the crate root).
//!
//! This module is the stable surface for tools. A tool imports the
//! harness's internals from here and from nowhere else: the names below stay
//! here when the modules behind them move.
//!
//! # Reservations
//!
//! The ports that tests hold now, and who holds them.
//!
//! - [`live_reservations`]: every live reservation in the state directory,
//!   as a [`Reservation`] (port and [`Holder`]: pid, test name, since when).
//! - [`PortRange`], [`ephemeral_range`]: the range tests reserve from
//!   (`PortRange::dynamic_from_env`) and the kernel's ephemeral range, which
//!   it must stay below.
//!
//! # Port holders
//!
//! Who listens on a port, from `/proc` (what `netstat -tulpn` shows).
//!
//! - [`listeners`]: every process listening on a TCP port, as a
//!   [`Listener`] (pid and command line, when visible).
//! - [`is_listening`]: whether anything listens there (no process scan).
//!
//! # Service records
//!
//! The shared etcd and NATS instances that the harness runs on the port
//! plan's fixed ports, their keepers and their users.
//!
//! - [`records`]: the [`ServiceRecord`] of each shared instance (keeper pid,
//!   whether the keeper still runs, binary, log, record file).
//! - [`acquire_shared`]: obtains the shared instance of a kind as a test
//!   would, starting it if needed; says on which ports ([`ServicePortPair`])
//!   and whether the harness started it ([`Origin`]).
//! - [`users_file`]: the file whose shared lock makes a process a user of
//!   the shared instance (a holder of it keeps the instance up).
//! - [`find_binary`]: the binary the harness runs for a program (etcd,
//!   nats-server, flock): its env var, else PATH, /usr/sbin, /usr/local/bin;
//!   or why there is none ([`BinaryNotFound`]).
//! - [`is_keeper`], [`ENV_SERVICE`]: whether a pid is a keeper; the env var
//!   with which keepers tag what they start.
//!
//! # Orphans
//!
//! Processes the harness started whose owner is gone, and the `/proc`
//! readers to check a pid before signalling it.
//!
//! - [`find_orphans`], [`orphan`]: tagged processes whose owning test
//!   process is dead ([`Orphan`]); [`stop_orphans`] SIGKILLs them after
//!   checking again. [`ENV_OWNER`] and [`ENV_OWNER_NAME`] are the tags.
//! - [`procfs`]: pids, command lines, arguments and environment of
//!   processes; [`ProcStat`]: state, parent, group and start time (a pid is
//!   the process found only while its start time matches).
//! - [`DEFAULT_GRACE`]: how long a stop waits between SIGTERM and SIGKILL.
//!
//! # Output dirs
//!
//! Where tests write their logs, and which of those directories a running
//! test holds.
//!
//! - [`output_root`]: the root, as a test binary finds it;
//!   [`project_output_root`]: as found from a directory of a project
//!   ([`OutputRoot`]: the path and where it came from); [`ENV_OUTPUT_DIR`]
//!   overrides both.
//! - [`output_dir_in_use`], [`IN_USE_FILE`]: a running test holds a shared
//!   lock on the `.in-use` file of its directory.
//!
//! # State directory
//!
//! The per-user directory of lock files (reservations, service leases).
//!
//! - [`ensure_state_subdir`]: a subdirectory, created private and checked
//!   ([`StateDirError`] otherwise).
//! - [`open_lock_file`]: opens (creating, 0600) a lock file there, never
//!   through a symlink.

// Inlined: the docs show these items here, where tools find them.
#[doc(inline)]
pub use crate::output_dir::{
    output_dir_in_use, output_root, project_output_root, OutputRoot, ENV_OUTPUT_DIR, IN_USE_FILE,
};
#[doc(inline)]
pub use crate::ports::holders::{is_listening, listeners, Listener};
#[doc(inline)]
pub use crate::ports::{ephemeral_range, live_reservations, Holder, PortRange, Reservation};
#[doc(inline)]
pub use crate::process::sweep::{find_orphans, orphan, stop_orphans, Orphan};
#[doc(inline)]
pub use crate::process::{procfs, ProcStat, DEFAULT_GRACE, ENV_OWNER, ENV_OWNER_NAME};
#[doc(inline)]
pub use crate::services::keeper::{is_keeper, ENV_SERVICE};
#[doc(inline)]
pub use crate::services::{
    acquire_shared, find_binary, records, users_file, BinaryNotFound, Origin, ServicePortPair,
    ServiceRecord,
};
#[doc(inline)]
pub use crate::state_dir::{ensure_state_subdir, open_lock_file, StateDirError};
