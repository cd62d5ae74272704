//! Reaping helper processes (watchdogs, keepers) that nobody waits for.

use std::process::Child;

/// Reaps `child` off the caller's thread whenever it exits (a watchdog
/// shell exits within milliseconds; a keeper may run for long).
pub(crate) fn reap_in_background(mut child: Child) {
    let _ = std::thread::Builder::new()
        .name("dynamo-test-reaper".into())
        .spawn(move || {
            let _ = child.wait();
        });
}
