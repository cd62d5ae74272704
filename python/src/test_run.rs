//! One pytest test as the runtime sees it: a `TestContext` (its name,
//! namespace, output directory, port table and teardown), driven by the
//! plugin instead of `#[dynamo_test]`.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use dynamo_test::{admin, Inject, ServicePorts, TestContext};

use std::sync::atomic::{AtomicBool, Ordering};

use crate::block::{block_on, block_on_to_the_end};
use crate::errors;
use crate::services::{Etcd, Nats};

/// The harness's side of one test: what it reserved and obtained, released
/// by [`TestRun::finish`].
#[pyclass(module = "dynamo_test._native", frozen)]
pub struct TestRun {
    ctx: TestContext,
    /// Set by `finish()`: the run holds nothing more after it.
    finished: AtomicBool,
}

impl TestRun {
    /// The context, unless the run has finished (what it would acquire
    /// then would be held until garbage collection).
    fn open(&self) -> PyResult<&TestContext> {
        match self.finished.load(Ordering::SeqCst) {
            false => Ok(&self.ctx),
            true => Err(errors::harness(format!(
                "the run of {} has finished: it reserves and obtains nothing more",
                self.ctx.name()
            ))),
        }
    }
}

#[pymethods]
impl TestRun {
    /// Not a test class, whatever its name says (pytest collects `Test*`).
    #[classattr]
    #[allow(non_upper_case_globals)]
    const __test__: bool = false;

    /// A run of the test named `name` (pytest's node id); creates its
    /// output directory.
    #[new]
    fn new(name: &str) -> PyResult<TestRun> {
        let ctx = TestContext::new(name).map_err(errors::from_error)?;
        Ok(TestRun {
            ctx,
            finished: AtomicBool::new(false),
        })
    }

    /// The test's name.
    #[getter]
    fn name(&self) -> &str {
        self.ctx.name()
    }

    /// The namespace of this run (`DYN_NAMESPACE`, key and subject prefixes).
    #[getter]
    fn namespace(&self) -> &str {
        self.ctx.namespace()
    }

    /// This run's output directory.
    #[getter]
    fn output_dir(&self) -> PathBuf {
        self.ctx.output_dir().to_path_buf()
    }

    /// Reserves a random port named `name`, held until `finish()`.
    fn reserve_port(&self, py: Python<'_>, name: &str) -> PyResult<u16> {
        let ctx = self.open()?;
        py.detach(|| ctx.reserve_port(name))
            .map_err(errors::from_error)
    }

    /// Reserves the first free port at or above `base`, held until `finish()`.
    fn reserve_port_from(&self, py: Python<'_>, name: &str, base: i64) -> PyResult<u16> {
        let base = crate::ports::port_argument("base", base)?;
        let ctx = self.open()?;
        py.detach(|| ctx.reserve_port_from(name, base))
            .map_err(errors::from_error)
    }

    /// Adds `name -> port` to the port table without reserving it.
    fn record_port(&self, name: &str, port: u16) {
        self.ctx.record_port(name, port);
    }

    /// The plan in force, with `dynamo_serve` reserved from its base for
    /// this test (logged in the port table under `name`).
    #[pyo3(signature = (name = "service_ports"))]
    fn service_ports<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyDict>> {
        let (ctx, name) = (self.open()?.clone(), name.to_string());
        let plan = block_on(py, async move { ServicePorts::inject(&ctx, &name).await })?
            .map_err(errors::from_error)?;
        crate::ports::plan_dict(py, &plan, true)
    }

    /// The test's etcd (shared, or `ETCD_ENDPOINTS`), healthy.
    fn etcd(&self, py: Python<'_>) -> PyResult<Etcd> {
        let ctx = self.open()?.clone();
        let inner = block_on(
            py,
            async move { dynamo_test::Etcd::inject(&ctx, "etcd").await },
        )?
        .map_err(errors::from_error)?;
        Ok(Etcd { inner })
    }

    /// The test's NATS (shared, or `NATS_SERVER`), healthy.
    fn nats(&self, py: Python<'_>) -> PyResult<Nats> {
        let ctx = self.open()?.clone();
        let inner = block_on(
            py,
            async move { dynamo_test::Nats::inject(&ctx, "nats").await },
        )?
        .map_err(errors::from_error)?;
        Ok(Nats { inner })
    }

    /// The env vars a child of this test should get (`DYN_NAMESPACE`, the
    /// services' endpoints).
    fn child_env(&self) -> Vec<(String, String)> {
        self.ctx.child_env()
    }

    /// `(name, port)` of every port the test uses, in order.
    fn ports(&self) -> Vec<(String, u16)> {
        self.ctx.ports()
    }

    /// The port table as one line: `free_port=23001 service_ports.dynamo_serve=8000`.
    fn port_table(&self) -> String {
        self.ctx.port_table()
    }

    /// Writes a harness line into the test's output.
    fn note(&self, message: &str) {
        self.ctx.note(message);
    }

    /// Ends the run: for a failed test (`failure`: pytest's verdict in
    /// words) the failure report is observed and written, then everything
    /// is released, newest first. Returns what went wrong during teardown
    /// and the report's path (`None` when nothing failed). Only the first
    /// call does anything; a Ctrl-C meanwhile is raised once it is done.
    #[pyo3(signature = (failure = None))]
    fn finish(
        &self,
        py: Python<'_>,
        failure: Option<String>,
    ) -> PyResult<(Vec<String>, Option<PathBuf>)> {
        if self.finished.swap(true, Ordering::SeqCst) {
            return Ok((Vec::new(), None));
        }
        let ctx = self.ctx.clone();
        let ended = block_on_to_the_end(py, async move {
            admin::end_elsewhere(&ctx, failure.as_deref()).await
        })?;
        Ok((ended.teardown_problems, ended.report))
    }

    fn __repr__(&self) -> String {
        format!(
            "<TestRun {} namespace={}>",
            self.ctx.name(),
            self.ctx.namespace()
        )
    }
}
