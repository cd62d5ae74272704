//! What a stack needs from the test it runs in (its context implements
//! it): the dynamo module never sees the context itself.

use std::ffi::OsString;
use std::path::Path;

use crate::error::Error;
use crate::ports::ServicePorts;
use crate::process::{Owner, ProcessBuilder};

/// The test a stack belongs to.
pub(crate) trait StackHost: Owner {
    /// The test's namespace (`DYN_NAMESPACE`).
    fn namespace(&self) -> &str;
    /// The test's output directory (the stack's files go under it).
    fn output_dir(&self) -> &Path;
    /// Reserves a random port named `name`, held until the test's teardown.
    fn reserve_port(&self, name: &str) -> Result<u16, Error>;
    /// Reserves the first free port at or above `base`, held until teardown.
    fn reserve_port_from(&self, name: &str, base: u16) -> Result<u16, Error>;
    /// The port plan in force for the test.
    fn service_ports(&self) -> Result<ServicePorts, Error>;
    /// A managed process owned by the test.
    fn process(&self, name: &str, program: OsString) -> ProcessBuilder;
}
