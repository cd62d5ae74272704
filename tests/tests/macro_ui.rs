//! The `#[dynamo_test]` macro's specification, as trybuild cases: what it
//! accepts (`ui/pass/`) and the exact error for each mistake (`ui/fail/`).
//!
//! Regenerate the `.stderr` files after changing a message with
//! `TRYBUILD=overwrite cargo test -p dynamo-test-suite --test macro_ui`,
//! then read every diff: each case must show one clear error at the right span.

#[test]
fn macro_ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
}
