//! The surface for tools: what the `dynamo-test` command (and the harness's
//! own tests) read and do beyond a test's view. A test author needs none of
//! it.
//!
//! - **Reservations**: who holds which port in this network namespace
//!   ([`live_reservations`], [`Reservation`], [`Holder`]), the dynamic
//!   range and the kernel's ephemeral range, the bind check.
//! - **Port holders**: which process listens on a port ([`listeners`]).
//! - **Shared services**: their kinds and ports, the instances keepers run
//!   in this network namespace, whoever started them ([`records`]),
//!   keeping one up and letting it go ([`pin`], [`unpin`]), starting one
//!   as a test would ([`acquire_shared`]), the binaries.
//! - **Embedding** (the pytest plugin, a Python extension module): how
//!   keepers are started when this executable cannot simply be re-run
//!   ([`set_keeper_launcher`], [`run_keeper_from_env`]), a reservation
//!   under a label of the caller's ([`reserve_port`]), and the teardown of
//!   a [`TestContext`](crate::TestContext) that another test runner drives
//!   ([`end_elsewhere`]: the failure report, then teardown).
//! - **Orphans**: processes tagged with [`ENV_OWNER`] whose owner is dead
//!   ([`find_orphans`], [`stop_orphan`]); tags ([`OwnerTag`]) name the
//!   owner's PID namespace, and an owner of another namespace is never
//!   judged; a shared service ([`ENV_SERVICE`]) is never an orphan, and
//!   helpers carry no tag ([`strip_owner_tag`]).
//! - **Signalling a process found in /proc**: [`PinnedProcess`] (a pidfd,
//!   then the identity checked again: a reused pid is never hit),
//!   [`check_reach`] (another user's process, or one of a nested PID
//!   namespace, is left alone), [`Unreachable`] (why not).
//! - **Processes in /proc**: [`ProcStat`], [`ProcStatus`], [`procfs`].
//! - **Output and state directories**: where logs go ([`output_root`],
//!   [`project_output_root`]; one directory per run,
//!   `<root>/<test>/<run id>/`, and a [`LATEST_LINK`] beside the runs),
//!   which ones the harness made ([`is_harness_dir`]: they hold
//!   [`MARKER_FILE`]) and which a running test holds
//!   ([`output_dir_in_use`]), the per-user state directory (shared
//!   services' files; reservations do not live there).

pub use crate::output_dir::{
    is_harness_dir, output_dir_in_use, output_dir_override, output_root, project_output_root,
    OutputRoot, ENV_OUTPUT_DIR, IN_USE_FILE, LATEST_LINK, MARKER_FILE,
};
pub use crate::ports::holders::{is_listening, listeners, Listener};
pub use crate::ports::{
    ephemeral_range, is_free, live_reservations, Holder, PortRange, Reservation, Strictness,
    DEFAULT_RANGE_HIGH, DEFAULT_RANGE_LOW, ENV_DYNAMO_SERVE_BASE, ENV_ETCD_CLIENT_PORT,
    ENV_ETCD_PEER_PORT, ENV_NATS_CLIENT_PORT, ENV_NATS_HTTP_PORT, ENV_PORT_RANGE,
};
pub use crate::process::logs::tail as log_tail;
pub use crate::process::pinned::{check_proc, check_reach, PinnedProcess, Unreachable};
pub use crate::process::sweep::{
    find_orphans, orphan, owner_status, start_time, stop_orphan, strip_owner_tag, Orphan,
    OwnerStatus, OwnerTag, Stopped, Sweep, ENV_OWNER, ENV_OWNER_NAME,
};
pub use crate::services::binaries::{find as find_binary, BinaryNotFound};
pub use crate::services::keeper::{
    data_lock_path, is_keeper, run_from_env as run_keeper_from_env,
    set_launcher as set_keeper_launcher, KeeperLauncher, ENV_KEEPER, ENV_SERVICE,
};
pub use crate::services::kind::{ServiceKind, ServicePortPair};
pub use crate::services::shared::{
    coordination_in_use, pin, records, unpin, Origin, ServiceRecord, Unpinned, DEFAULT_IDLE_GRACE,
    ENV_IDLE_GRACE,
};
pub use crate::state_dir::{
    current_uid, ensure_private_dir, ensure_state_subdir, open_lock_file, state_dir_path,
    ENV_STATE_DIR,
};
pub use crate::sys::procfs::{self, ProcStat, ProcStatus};

pub use crate::duration::parse_duration;
pub use crate::runner::{end_elsewhere, Ended};

use crate::error::Error;

/// The endpoints of `kind` that the environment names (`ETCD_ENDPOINTS`,
/// `NATS_SERVER`: a test then uses them and starts nothing), if set; a bad
/// value is an error naming the variable.
pub fn endpoints_from_env(kind: ServiceKind) -> Result<Option<Vec<String>>, Error> {
    crate::services::instance::endpoints_from_env(kind)
}

/// Obtains the shared instance of `kind` for this process (as a test
/// would), starting it if needed; `dynamo-test up` holds it this way.
pub async fn acquire_shared(kind: ServiceKind) -> Result<(ServicePortPair, Origin), Error> {
    crate::services::acquire_shared(kind).await
}

/// Reserves a port for `label` (who holds it, as listings show it): random
/// from the dynamic range, or the first free one at or above `base`. For
/// callers whose thread name says nothing (another language's threads).
pub fn reserve_port(
    label: &str,
    base: Option<u16>,
) -> Result<crate::Port, crate::ports::PortError> {
    crate::ports::reserve(label, base)
}
