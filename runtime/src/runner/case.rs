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
/// `module::f::case_1_etcd_nats` here; `None` when it runs `module::f`
/// itself (rstest without cases or values makes one test of the
/// function's name). On a thread named otherwise (a harness of one's own,
/// a thread the test started), `case-<n>`, `n` counting such cases in this
/// process.
pub(super) fn current(test: &str) -> Option<String> {
    match named_by(test, std::thread::current().name()) {
        Some(Named::Function) => None,
        Some(Named::Case(case)) => Some(case.to_string()),
        None => {
            static UNNAMED: AtomicU64 = AtomicU64::new(1);
            Some(format!("case-{}", UNNAMED.fetch_add(1, Ordering::Relaxed)))
        }
    }
}

/// What libtest's name for the running test says of test function `test`.
#[derive(Debug, PartialEq, Eq)]
enum Named<'a> {
    /// The test is the function itself.
    Function,
    /// The test is this case of the function.
    Case(&'a str),
}

/// What `thread` (libtest's name for the test it runs) names of `test`:
/// the function itself, or what follows its path within its crate and
/// `::`; `None` if neither.
fn named_by<'a>(test: &str, thread: Option<&'a str>) -> Option<Named<'a>> {
    // libtest's names leave out the crate (`module::f::case_1`).
    let in_crate = test.split_once("::").map_or(test, |(_, path)| path);
    match thread?.strip_prefix(in_crate)? {
        "" => Some(Named::Function),
        rest => rest
            .strip_prefix("::")
            .filter(|case| !case.is_empty())
            .map(Named::Case),
    }
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
                Some(Named::Case("case_1_etcd_nats")),
            ),
            // `#[values]`: one module per parameter.
            (
                "suite::group::matrix",
                Some("group::matrix::d_1_Etcd::p_2_Tcp"),
                Some(Named::Case("d_1_Etcd::p_2_Tcp")),
            ),
            ("suite::matrix", Some("matrix"), Some(Named::Function)),
            // Another function whose name starts alike.
            ("suite::matrix", Some("matrix_two::case_1"), None),
            ("suite::matrix", Some("matrix::"), None),
            ("suite::matrix", Some("main"), None),
            ("suite::matrix", None, None),
        ];
        for (test, thread, expected) in cases {
            assert_eq!(named_by(test, thread), expected, "{test} on {thread:?}");
        }
    }

    #[test]
    fn this_thread_names_a_case_or_gets_a_number() {
        // libtest runs this test on a thread named after it.
        let here = "dynamo_test::runner::case::tests";
        assert_eq!(
            current(here).as_deref(),
            Some("this_thread_names_a_case_or_gets_a_number")
        );
        let function =
            "dynamo_test::runner::case::tests::this_thread_names_a_case_or_gets_a_number";
        assert_eq!(current(function), None);
        let unnamed = std::thread::spawn(|| current("suite::matrix"))
            .join()
            .unwrap()
            .unwrap_or_default();
        assert!(unnamed.starts_with("case-"), "{unnamed}");
        let again = std::thread::spawn(|| current("suite::matrix"))
            .join()
            .unwrap();
        assert_ne!(Some(unnamed), again);
    }
}
