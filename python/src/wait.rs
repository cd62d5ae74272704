//! Readiness waits for Python, on the runtime's probes: the same backoff,
//! the same per-attempt limits and the same failure story.

use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use dynamo_test::admin::{self, ServiceKind};
use dynamo_test::health::{self, Probe};
use dynamo_test::Error;

use crate::block::block_on;
use crate::errors;

/// `timeout` seconds as a duration; a negative or non-finite one is a ValueError.
pub fn seconds(timeout: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(timeout)
        .map_err(|_| PyValueError::new_err(format!("timeout must be seconds >= 0, got {timeout}")))
}

/// Waits for `probe`; the seconds it took.
fn wait_for(py: Python<'_>, probe: Box<dyn Probe>, timeout: f64) -> PyResult<f64> {
    let limit = seconds(timeout)?;
    let waited = block_on(py, async move { health::wait(probe.as_ref(), limit).await })?;
    match waited {
        Ok(ready) => Ok(ready.elapsed.as_secs_f64()),
        Err(e) => Err(errors::from_error(Error::Wait(Box::new(e)))),
    }
}

/// Waits until `url` answers HTTP 2xx (or `status`), its body containing
/// `contains` if given.
#[pyfunction]
#[pyo3(signature = (url, timeout = 30.0, *, status = None, contains = None))]
pub fn wait_http(
    py: Python<'_>,
    url: String,
    timeout: f64,
    status: Option<i64>,
    contains: Option<String>,
) -> PyResult<f64> {
    let mut probe = health::http(url);
    if let Some(status) = status {
        let code = u16::try_from(status)
            .ok()
            .filter(|code| (100..=599).contains(code))
            .ok_or_else(|| {
                PyValueError::new_err(format!("status must be 100-599, got {status}"))
            })?;
        probe = probe.expect_status(code);
    }
    if let Some(text) = contains {
        probe = probe.expect_body_contains(text);
    }
    wait_for(py, probe.boxed(), timeout)
}

/// Waits until etcd at `url` is healthy: its `/health` says so, which
/// needs a leader. By default the test's etcd: the first of
/// `ETCD_ENDPOINTS`, else the plan's port on loopback.
#[pyfunction]
#[pyo3(signature = (url = None, timeout = 30.0))]
pub fn wait_etcd(py: Python<'_>, url: Option<String>, timeout: f64) -> PyResult<f64> {
    let url = or_default(url, ServiceKind::Etcd)?;
    wait_for(py, health::etcd(&url).boxed(), timeout)
}

/// Waits until a NATS server at `url` greets a client with its `INFO`
/// line. By default the test's NATS: the first of `NATS_SERVER`, else the
/// plan's port on loopback.
#[pyfunction]
#[pyo3(signature = (url = None, timeout = 30.0))]
pub fn wait_nats(py: Python<'_>, url: Option<String>, timeout: f64) -> PyResult<f64> {
    let url = or_default(url, ServiceKind::Nats)?;
    wait_for(py, health::nats_client(&url).boxed(), timeout)
}

/// Waits until the OpenAI-compatible server at `base_url` lists every one
/// of `models` in `GET /v1/models`.
#[pyfunction]
#[pyo3(signature = (base_url, models, timeout = 60.0))]
pub fn wait_openai_models(
    py: Python<'_>,
    base_url: String,
    models: Vec<String>,
    timeout: f64,
) -> PyResult<f64> {
    wait_for(
        py,
        health::openai_models(&base_url, models).boxed(),
        timeout,
    )
}

/// `url`, else where a test finds `kind`: the environment's first
/// endpoint, else the plan's fixed port on loopback.
fn or_default(url: Option<String>, kind: ServiceKind) -> PyResult<String> {
    if let Some(url) = url {
        return Ok(url);
    }
    let named = admin::endpoints_from_env(kind).map_err(errors::from_error)?;
    if let Some(first) = named.and_then(|endpoints| endpoints.into_iter().next()) {
        return Ok(first);
    }
    let ports = kind.fixed_ports(&crate::ports::plan()?);
    Ok(kind.client_url(ports))
}
