//! The thin OS layer: what /proc says, signals and waits, the current
//! user, abstract Unix socket names, and locks that survive a panic.
//! Everything above it speaks in pids and ports; only this module speaks to
//! the kernel.

pub(crate) mod abstract_socket;
pub mod procfs;
pub(crate) mod signal;
pub(crate) mod sync;
