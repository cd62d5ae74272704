//! Port reservations and the port plan, as Python sees them.

use std::sync::Mutex;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use dynamo_test::{admin, Port, ServicePorts};

use crate::errors;

/// A reserved TCP port: no other holder in this network namespace (Rust
/// or Python, any user or container) gets the number until it is released
/// (`release()`, the end of a `with` block, garbage collection, or the
/// death of this process). It does not occupy the socket: bind the number
/// yourself, or pass it to the process you start.
#[pyclass(module = "dynamo_test._native", frozen)]
pub struct Reservation {
    number: u16,
    label: String,
    /// `None` once released.
    held: Mutex<Option<Port>>,
}

impl Reservation {
    fn new(port: Port) -> Reservation {
        Reservation {
            number: port.get(),
            label: port.label().to_string(),
            held: Mutex::new(Some(port)),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Option<Port>> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[pymethods]
impl Reservation {
    /// The port number.
    #[getter]
    fn port(&self) -> u16 {
        self.number
    }

    /// Who holds it, as `dynamo-test ports` lists it.
    #[getter]
    fn label(&self) -> &str {
        &self.label
    }

    /// Whether it is still held.
    #[getter]
    fn held_now(&self) -> bool {
        self.held().is_some()
    }

    /// Gives the number back (idempotent).
    fn release(&self) {
        self.held().take();
    }

    fn __int__(&self) -> u16 {
        self.number
    }

    fn __index__(&self) -> u16 {
        self.number
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        _kind: Option<&Bound<'_, PyAny>>,
        _value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        self.release();
        false
    }

    fn __repr__(&self) -> String {
        let state = if self.held().is_some() {
            "held"
        } else {
            "released"
        };
        format!(
            "<Reservation port={} {state} label={:?}>",
            self.number, self.label
        )
    }
}

/// Reserves a random free port from the dynamic range for `label`.
#[pyfunction]
pub fn find_free_port(py: Python<'_>, label: &str) -> PyResult<Reservation> {
    reserve(py, label, None)
}

/// Reserves the first free port at or above `base` for `label`.
#[pyfunction]
pub fn find_free_port_from(py: Python<'_>, base: i64, label: &str) -> PyResult<Reservation> {
    reserve(py, label, Some(port_argument("base", base)?))
}

/// `value` as a port number, or a ValueError naming the argument.
pub fn port_argument(name: &str, value: i64) -> PyResult<u16> {
    u16::try_from(value)
        .ok()
        .filter(|&port| port > 0)
        .ok_or_else(|| {
            PyValueError::new_err(format!("{name} must be a port (1-65535), got {value}"))
        })
}

fn reserve(py: Python<'_>, label: &str, base: Option<u16>) -> PyResult<Reservation> {
    let label = label.to_string();
    py.detach(|| admin::reserve_port(&label, base))
        .map(Reservation::new)
        .map_err(errors::from_port_error)
}

/// The dynamic range in force, `(low, high)` inclusive: where
/// `find_free_port()` draws from (`DYNAMO_TEST_PORT_RANGE`, else 20000 up
/// to below the kernel's ephemeral range, at most 32767).
#[pyfunction]
pub fn dynamic_range() -> PyResult<(u16, u16)> {
    let range = admin::PortRange::dynamic_from_env().map_err(|e| errors::from_error(e.into()))?;
    Ok((range.low, range.high))
}

/// The port plan in force (the plan's keys, env overrides applied).
#[pyfunction]
pub fn service_ports(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    plan_dict(py, &plan()?, false)
}

/// The plan in force, or the EnvVarError naming the bad variable.
pub fn plan() -> PyResult<ServicePorts> {
    ServicePorts::from_env().map_err(|e| errors::from_error(e.into()))
}

/// The plan as a dict: its five keys, and `dynamo_serve` when reserved.
pub fn plan_dict<'py>(
    py: Python<'py>,
    plan: &ServicePorts,
    with_serve: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("etcd_client", plan.etcd_client)?;
    dict.set_item("etcd_peer", plan.etcd_peer)?;
    dict.set_item("nats_client", plan.nats_client)?;
    dict.set_item("nats_http", plan.nats_http)?;
    dict.set_item("dynamo_serve_base", plan.dynamo_serve_base)?;
    if with_serve {
        dict.set_item("dynamo_serve", plan.dynamo_serve)?;
    }
    Ok(dict)
}

/// Every live reservation in this network namespace (any process, user
/// or language): dicts with `port`, `pid` and `label` (`None` when the
/// holder's record is unreadable).
#[pyfunction]
pub fn reservations(py: Python<'_>) -> PyResult<Vec<Bound<'_, PyDict>>> {
    let live = py
        .detach(admin::live_reservations)
        .map_err(errors::from_port_error)?;
    live.into_iter()
        .map(|r| {
            let dict = PyDict::new(py);
            dict.set_item("port", r.port)?;
            dict.set_item("pid", r.holder.as_ref().map(|h| h.pid))?;
            dict.set_item("label", r.holder.as_ref().map(|h| h.label.clone()))?;
            Ok(dict)
        })
        .collect()
}
