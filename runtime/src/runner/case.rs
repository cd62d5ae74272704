//! Which case of a parametrized test is running: one call of an
//! `#[rstest]` function is one case, and each case is a test of its own
//! (its own name, output directory, namespace, ports and teardown).
//!
//! rstest names the cases (`matrix::case_1_etcd_nats`,
//! `matrix::d_1_Etcd::p_2_Tcp`), and only libtest is told the name: it
//! runs every test on a thread named after it, under `cargo test` (with
//! any `--test-threads`) and `cargo nextest run` (one process per test)
//! alike. Its name is the test's path within its crate.

use std::sync::atomic::{AtomicU64, Ordering};

/// The case of test function `test` (its full path, `crate::module::f`)
/// that runs on this thread: `case_1_etcd_nats` when libtest runs
/// `module::f::case_1_etcd_nats` here. On a thread named otherwise (a
/// harness of one's own, a thread the test started), `case-<n>`, `n`
/// counting such cases in this process.
pub(super) fn current(test: &str) -> String {
    match case_of(test, std::thread::current().name()) {
        Some(case) => case.to_string(),
        None => {
            static UNNAMED: AtomicU64 = AtomicU64::new(1);
            format!("case-{}", UNNAMED.fetch_add(1, Ordering::Relaxed))
        }
    }
}

/// The case named by `thread` (libtest's name for the test it runs): what
/// follows `test`'s path within its crate and `::`.
fn case_of<'a>(test: &str, thread: Option<&'a str>) -> Option<&'a str> {
    // libtest's names leave out the crate (`module::f::case_1`).
    let in_crate = test.split_once("::").map_or(test, |(_, path)| path);
    let case = thread?.strip_prefix(in_crate)?.strip_prefix("::")?;
    (!case.is_empty()).then_some(case)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_case_is_what_libtest_names_after_the_function() {
        let cases = [
            (
                "suite::matrix",
                Some("matrix::case_1_etcd_nats"),
                Some("case_1_etcd_nats"),
            ),
            // `#[values]`: one module per parameter.
            (
                "suite::group::matrix",
                Some("group::matrix::d_1_Etcd::p_2_Tcp"),
                Some("d_1_Etcd::p_2_Tcp"),
            ),
            // Another function whose name starts alike.
            ("suite::matrix", Some("matrix_two::case_1"), None),
            ("suite::matrix", Some("matrix"), None),
            ("suite::matrix", Some("matrix::"), None),
            ("suite::matrix", Some("main"), None),
            ("suite::matrix", None, None),
        ];
        for (test, thread, expected) in cases {
            assert_eq!(case_of(test, thread), expected, "{test} on {thread:?}");
        }
    }

    #[test]
    fn this_thread_names_a_case_or_gets_a_number() {
        // libtest runs this test on a thread named after it.
        let here = "dynamo_test::runner::case::tests";
        assert_eq!(current(here), "this_thread_names_a_case_or_gets_a_number");
        let unnamed = std::thread::spawn(|| current("suite::matrix"))
            .join()
            .unwrap();
        assert!(unnamed.starts_with("case-"), "{unnamed}");
        let again = std::thread::spawn(|| current("suite::matrix"))
            .join()
            .unwrap();
        assert_ne!(unnamed, again);
    }
}
