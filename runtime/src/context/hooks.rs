//! What the context gives the modules below it, which never see it: a
//! process owner (logs, env, teardown), a service host (namespace, ports,
//! data dir) and a Dynamo stack host (the same, plus the port plan).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::TestContext;
use crate::dynamo::StackHost;
use crate::error::Error;
use crate::ports::ServicePorts;
use crate::process::{ManagedProcess, Owner, ProcessBuilder};
use crate::services::Host;

impl Owner for TestContext {
    fn child_env(&self) -> Vec<(String, String)> {
        TestContext::child_env(self)
    }

    fn new_log_path(&self, name: &str) -> PathBuf {
        TestContext::new_log_path(self, name)
    }

    /// Stopped at teardown (in reverse order of start, with the rest):
    /// what it stopped outside the process group is noted, and a process
    /// that would not exit fails the test.
    fn adopt(&self, process: &ManagedProcess) {
        self.record_process(process);
        // Weak: the context owns this step, and must not be kept alive by it.
        let (handle, ctx) = (process.clone(), self.downgrade());
        self.defer(format!("stop process `{}`", process.name()), async move {
            let report = handle.stop_reporting().await;
            let Some(ctx) = ctx.upgrade() else { return };
            if !report.outside_group.is_empty() {
                ctx.note(&format!(
                    "teardown: process `{}`: stopped outside its process group: {}",
                    handle.name(),
                    report.outside_group.join(", ")
                ));
            }
            if let Err(stuck) = report.result {
                ctx.teardown_failed(stuck.to_string());
            }
        });
    }

    fn note(&self, message: &str) {
        TestContext::note(self, message);
    }
}

impl Host for TestContext {
    fn namespace(&self) -> &str {
        TestContext::namespace(self)
    }

    fn output_dir(&self) -> &Path {
        TestContext::output_dir(self)
    }

    fn reserve_port(&self, name: &str) -> Result<u16, Error> {
        TestContext::reserve_port(self, name)
    }

    fn record_port(&self, name: &str, port: u16) {
        TestContext::record_port(self, name, port);
    }

    fn process(&self, name: &str, program: OsString) -> ProcessBuilder {
        ProcessBuilder::new(Arc::new(self.clone()), name, program)
    }
}

impl StackHost for TestContext {
    fn reserve_port_from(&self, name: &str, base: u16) -> Result<u16, Error> {
        TestContext::reserve_port_from(self, name, base)
    }

    fn service_ports(&self) -> Result<ServicePorts, Error> {
        TestContext::service_ports(self)
    }
}
