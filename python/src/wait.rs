//! Readiness waits for Python, on the runtime's probes: the same backoff,
//! the same per-attempt limits and the same failure story.

use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use dynamo_test::health::{self, Probe};
use dynamo_test::{Error, ServicePorts};

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
    status: Option<u16>,
    contains: Option<String>,
) -> PyResult<f64> {
    let mut probe = health::http(url);
    if let Some(status) = status {
        probe = probe.expect_status(status);
    }
    if let Some(text) = contains {
        probe = probe.expect_body_contains(text);
    }
    wait_for(py, probe.boxed(), timeout)
}

/// Waits until etcd at `url` (default: the plan's etcd) is healthy: its
/// `/health` says so, which needs a leader.
#[pyfunction]
#[pyo3(signature = (url = None, timeout = 30.0))]
pub fn wait_etcd(py: Python<'_>, url: Option<String>, timeout: f64) -> PyResult<f64> {
    let url = match url {
        Some(url) => url,
        None => format!("http://127.0.0.1:{}", plan()?.etcd_client),
    };
    wait_for(py, health::etcd(&url).boxed(), timeout)
}

/// Waits until a NATS server at `url` (default: the plan's) greets a
/// client with its `INFO` line.
#[pyfunction]
#[pyo3(signature = (url = None, timeout = 30.0))]
pub fn wait_nats(py: Python<'_>, url: Option<String>, timeout: f64) -> PyResult<f64> {
    let url = match url {
        Some(url) => url,
        None => format!("nats://127.0.0.1:{}", plan()?.nats_client),
    };
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

fn plan() -> PyResult<ServicePorts> {
    ServicePorts::from_env().map_err(|e| errors::from_error(e.into()))
}
