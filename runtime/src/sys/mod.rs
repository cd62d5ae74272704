//! The thin OS layer: what /proc says, signals and waits, process file
//! descriptors, the current user, and locks that survive a panic.
//! Everything above it speaks in pids and ports; only this module speaks to
//! the kernel.

pub(crate) mod pidfd;
pub mod procfs;
pub(crate) mod signal;
pub(crate) mod sync;
