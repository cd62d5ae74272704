//! Shared etcd/NATS are run by a keeper process (see the runtime's
//! `services/keeper`). A test binary re-runs itself as the keeper; a
//! Python interpreter cannot, so it runs a short command that loads this
//! library with `ctypes` and calls [`dynamo_test_run_keeper`], outside
//! any import (no interpreter state, no loader lock held).

use std::ffi::OsString;
use std::path::PathBuf;

use pyo3::prelude::*;

use dynamo_test::admin::{self, KeeperLauncher};

/// The command a keeper runs: `sys.argv[1]` is this library's path.
const LOAD_AND_RUN: &str =
    "import ctypes, sys; sys.exit(ctypes.CDLL(sys.argv[1]).dynamo_test_run_keeper())";

/// Tells the runtime how this interpreter starts keepers: `python` (the
/// running interpreter) loading `library` (this module's file). Called
/// once by the package's `__init__`; later calls change nothing and
/// return `False`.
#[pyfunction]
pub fn set_keeper_launcher(python: PathBuf, library: PathBuf) -> bool {
    admin::set_keeper_launcher(KeeperLauncher {
        program: python,
        // Isolated (-I: no user site, no PYTHON* variables) and without
        // `site` (-S): only ctypes is needed.
        args: vec![
            OsString::from("-I"),
            OsString::from("-S"),
            OsString::from("-c"),
            OsString::from(LOAD_AND_RUN),
            library.into_os_string(),
        ],
    })
}

/// Runs the keeper described by the environment; its exit code.
#[no_mangle]
pub extern "C" fn dynamo_test_run_keeper() -> i32 {
    admin::run_keeper_from_env()
}
