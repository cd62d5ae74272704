//! The test's etcd and NATS, as Python sees them: the runtime's handles
//! (`dynamo_test::Etcd`, `dynamo_test::Nats`) behind Python classes.

use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use dynamo_test::admin::ServiceKind;
use dynamo_test::services::Source;

use crate::block::block_on;
use crate::errors;

/// How a service was found, in the words the failure report uses.
fn source_name(source: Source) -> &'static str {
    match source {
        Source::SharedStarted => "shared-started",
        Source::SharedExternal => "shared-external",
        Source::FromEnv => "from-env",
        Source::Isolated => "isolated",
    }
}

/// What a child needs to find the service: the variable Dynamo reads
/// (the runtime's name for it), every URL comma-joined.
fn child_env(kind: ServiceKind, urls: &[String]) -> HashMap<&'static str, String> {
    HashMap::from([(kind.endpoints_env(), urls.join(","))])
}

/// The test's etcd: the shared instance on the plan's fixed port (or
/// `ETCD_ENDPOINTS`), with a key prefix of the test's own; keys under it
/// are deleted when the test ends.
#[pyclass(module = "dynamo_test._native", frozen)]
pub struct Etcd {
    pub(crate) inner: dynamo_test::Etcd,
}

#[pymethods]
impl Etcd {
    /// The first client URL, e.g. `http://127.0.0.1:2379`.
    #[getter]
    fn url(&self) -> &str {
        self.inner.url()
    }

    /// Every client URL.
    #[getter]
    fn endpoints(&self) -> Vec<String> {
        self.inner.endpoints().to_vec()
    }

    /// The client port (`None` for `ETCD_ENDPOINTS`).
    #[getter]
    fn port(&self) -> Option<u16> {
        self.inner.port()
    }

    /// The peer port (`None` for `ETCD_ENDPOINTS`).
    #[getter]
    fn peer_port(&self) -> Option<u16> {
        self.inner.peer_port()
    }

    /// `shared-started`, `shared-external` or `from-env`.
    #[getter]
    fn source(&self) -> &'static str {
        source_name(self.inner.source())
    }

    /// The test's key prefix, `/<namespace>/`.
    #[getter]
    fn key_prefix(&self) -> String {
        self.inner.key_prefix()
    }

    /// `key_prefix + name`.
    fn key(&self, name: &str) -> String {
        self.inner.key(name)
    }

    /// `{"ETCD_ENDPOINTS": "<every URL, comma-joined>"}`, for a child.
    fn env(&self) -> HashMap<&'static str, String> {
        child_env(ServiceKind::Etcd, self.inner.endpoints())
    }

    /// Puts `key` = `value`.
    fn put(&self, py: Python<'_>, key: String, value: String) -> PyResult<()> {
        let etcd = self.inner.clone();
        block_on(py, async move { etcd.put(&key, &value).await })?.map_err(errors::from_error)
    }

    /// The value of `key`, or `None`.
    fn get(&self, py: Python<'_>, key: String) -> PyResult<Option<String>> {
        let etcd = self.inner.clone();
        block_on(py, async move { etcd.get(&key).await })?.map_err(errors::from_error)
    }

    /// Every `(key, value)` under `prefix`.
    fn list(&self, py: Python<'_>, prefix: String) -> PyResult<Vec<(String, String)>> {
        let etcd = self.inner.clone();
        block_on(py, async move { etcd.list(&prefix).await })?.map_err(errors::from_error)
    }

    /// Waits up to `timeout` seconds until it answers its health check.
    #[pyo3(signature = (timeout = 10.0))]
    fn wait_healthy(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        let etcd = self.inner.clone();
        let limit = crate::wait::seconds(timeout)?;
        block_on(py, async move { etcd.wait_healthy(limit).await })?.map_err(errors::from_error)
    }

    fn __repr__(&self) -> String {
        format!(
            "<Etcd {} ({}) prefix={}>",
            self.inner.endpoints().join(","),
            self.source(),
            self.inner.key_prefix()
        )
    }
}

/// The test's NATS: the shared server on the plan's fixed port (or
/// `NATS_SERVER`), with a subject prefix of the test's own.
#[pyclass(module = "dynamo_test._native", frozen)]
pub struct Nats {
    pub(crate) inner: dynamo_test::Nats,
}

#[pymethods]
impl Nats {
    /// The client URL, e.g. `nats://127.0.0.1:4222`.
    #[getter]
    fn url(&self) -> &str {
        self.inner.url()
    }

    /// Every server URL.
    #[getter]
    fn urls(&self) -> Vec<String> {
        self.inner.urls().to_vec()
    }

    /// The client port (`None` for `NATS_SERVER`).
    #[getter]
    fn port(&self) -> Option<u16> {
        self.inner.port()
    }

    /// The HTTP monitoring port (`None` for `NATS_SERVER`).
    #[getter]
    fn monitor_port(&self) -> Option<u16> {
        self.inner.monitor_port()
    }

    /// `http://127.0.0.1:<monitor port>` (`None` for `NATS_SERVER`).
    #[getter]
    fn monitor_url(&self) -> Option<String> {
        self.inner.monitor_url()
    }

    /// `shared-started`, `shared-external` or `from-env`.
    #[getter]
    fn source(&self) -> &'static str {
        source_name(self.inner.source())
    }

    /// The test's subject prefix, `<namespace>.`.
    #[getter]
    fn subject_prefix(&self) -> String {
        self.inner.subject_prefix()
    }

    /// `subject_prefix + name`.
    fn subject(&self, name: &str) -> String {
        self.inner.subject(name)
    }

    /// `{"NATS_SERVER": "<every URL, comma-joined>"}`, for a child.
    fn env(&self) -> HashMap<&'static str, String> {
        child_env(ServiceKind::Nats, self.inner.urls())
    }

    fn __repr__(&self) -> String {
        format!(
            "<Nats {} ({}) prefix={}>",
            self.inner.urls().join(","),
            self.source(),
            self.inner.subject_prefix()
        )
    }
}

/// The shared instances keepers run in this network namespace (whoever
/// started them: Rust or Python): dicts with `name`, `port`,
/// `keeper_pid`, `service_pid`, `users` (processes using it now), `pins`
/// and `problem`.
#[pyfunction]
pub fn shared_services(py: Python<'_>) -> PyResult<Vec<Bound<'_, PyDict>>> {
    let records = py
        .detach(dynamo_test::admin::records)
        .map_err(errors::from_error)?;
    records
        .into_iter()
        .map(|r| {
            let dict = PyDict::new(py);
            dict.set_item("name", r.name)?;
            dict.set_item("port", r.port)?;
            dict.set_item("keeper_pid", r.keeper_pid)?;
            dict.set_item("service_pid", r.service_pid)?;
            dict.set_item("users", r.users)?;
            dict.set_item("pins", r.pins)?;
            dict.set_item("problem", r.problem)?;
            Ok(dict)
        })
        .collect()
}
