//! What a stack needs from the test it runs in (its context implements
//! it): what a service needs (namespace, output dir, ports, processes),
//! plus the port plan. The dynamo module never sees the context itself.

use crate::error::Error;
use crate::ports::ServicePorts;
use crate::services::Host;

/// The test a stack belongs to.
pub(crate) trait StackHost: Host {
    /// Reserves the first free port at or above `base`, held until teardown.
    fn reserve_port_from(&self, name: &str, base: u16) -> Result<u16, Error>;
    /// The port plan in force for the test.
    fn service_ports(&self) -> Result<ServicePorts, Error>;
}
