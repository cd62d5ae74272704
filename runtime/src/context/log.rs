//! The harness's lines in a test's output.

/// Prints a harness line for test `name`. Uses `println!`, so libtest
/// captures it with the test's output and shows it when the test fails
/// (or always, under `--nocapture`).
///
/// `println!` panics when stdout is gone (`--nocapture | head`); a lost
/// log line must not abort the teardown that logs it, so the panic is
/// contained here (the panic hook still reports it on stderr).
pub(crate) fn log(name: &str, message: &str) {
    let _ = std::panic::catch_unwind(|| println!("[dynamo-test] {name}: {message}"));
}
