//! What a child does between fork and exec. std runs such code only
//! through the unsafe `pre_exec`; each closure here makes only
//! async-signal-safe system calls and allocates nothing.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// The child gets `SIGKILL` when the spawning thread's process `parent`
/// dies, and dies at once if `parent` is already gone (see
/// [`super::signal::die_with_parent`]).
pub(crate) fn dies_with_parent(cmd: &mut Command, parent: u32) {
    // SAFETY: the closure runs between fork and exec and makes only
    // async-signal-safe system calls (prctl, getppid, kill), allocating
    // nothing. std offers no safe way to run code in the child.
    unsafe {
        cmd.pre_exec(move || super::signal::die_with_parent(parent));
    }
}

/// The child starts a session of its own (`setsid`): no process group
/// or terminal signal of the parent's session reaches it. (Do not also
/// ask for `process_group(0)`: a group leader cannot start a session.)
pub(crate) fn in_new_session(cmd: &mut Command) {
    // SAFETY: the closure runs between fork and exec and makes one
    // async-signal-safe system call (setsid), allocating nothing.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setsid()?;
            Ok(())
        });
    }
}
