//! The thin OS layer: what /proc says, signals and waits, process file
//! descriptors, waits on pipes, timers on the real clock, the current
//! user, locks that survive a panic, abstract Unix socket names
//! (reservations) and sockets (keepers), and what a child does before
//! exec. Everything above it speaks in pids and ports; only this module
//! speaks to the kernel.

pub(crate) mod abstract_socket;
pub(crate) mod pidfd;
pub(crate) mod pipe;
pub mod procfs;
pub(crate) mod real_time;
pub(crate) mod signal;
pub(crate) mod spawn;
pub(crate) mod sync;
pub(crate) mod unix_socket;
