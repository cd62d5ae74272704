//! Port reservations: ports no one else gets while a test holds them.
//!
//! [`find_free_port`] picks a random port from the dynamic range,
//! [`find_free_port_from`] the first free port at or above a base (the port
//! plan's "8000+"). Either returns a [`Port`]: a reservation that no other
//! thread or process using the harness in this network namespace (any
//! user, any container sharing the network) can get until it is dropped.
//! See the README ("How the port allocator works") for the mechanism.

mod allocator;
mod bind_check;
mod error;
pub(crate) mod holders;
mod port;
mod range;
mod reservation;
mod service_ports;
mod spares;

pub use allocator::{find_free_port, find_free_port_from, live_reservations};
pub use bind_check::{is_free, Strictness};
pub use error::{Exhausted, PortError};
pub use port::Port;
pub use range::{
    ephemeral_range, PortRange, DEFAULT_RANGE_HIGH, DEFAULT_RANGE_LOW, ENV_PORT_RANGE,
};
pub use reservation::{Holder, Reservation};
pub(crate) use service_ports::PlanPort;
pub use service_ports::{
    ServicePorts, ENV_DYNAMO_SERVE_BASE, ENV_ETCD_CLIENT_PORT, ENV_ETCD_PEER_PORT,
    ENV_NATS_CLIENT_PORT, ENV_NATS_HTTP_PORT, SERVICE_PORTS,
};

pub(crate) use allocator::reserve;
