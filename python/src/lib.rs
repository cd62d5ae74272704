//! `dynamo_test._native`: the runtime's reservations, per-test contexts,
//! shared etcd/NATS and readiness probes for Python. One implementation:
//! every protocol (abstract-socket reservations, keepers, probes) is the
//! runtime's own; this crate only converts values and errors. The Python
//! package around it (`python/dynamo_test/`) adds the pytest plugin.

mod block;
mod errors;
mod keeper;
mod ports;
mod services;
mod test_run;
mod wait;

use pyo3::prelude::*;

/// The native half of the `dynamo_test` Python package.
#[pymodule]
mod _native {
    #[pymodule_export]
    use crate::keeper::set_keeper_launcher;
    #[pymodule_export]
    use crate::ports::{
        dynamic_range, find_free_port, find_free_port_from, reservations, service_ports,
        Reservation,
    };
    #[pymodule_export]
    use crate::services::{shared_services, Etcd, Nats};
    #[pymodule_export]
    use crate::test_run::TestRun;
    #[pymodule_export]
    use crate::wait::{wait_etcd, wait_http, wait_nats, wait_openai_models};
}

// The keeper's entry point for the launcher command (`keeper.rs`).
pub use keeper::dynamo_test_run_keeper;
