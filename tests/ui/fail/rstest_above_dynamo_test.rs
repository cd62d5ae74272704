//! `#[rstest]` above `#[dynamo_test]`: rstest expands first and gives the
//! test a `#[test]` of its own (spanned at `#[rstest]`), with the injected
//! parameters taken for rstest fixtures. (Cases would put the tests under
//! `cfg(test)`, which a trybuild case does not compile: this one has none.)

use dynamo_test::dynamo_test;
use rstest::rstest;

#[rstest]
#[dynamo_test(timeout = "10s")]
fn wrong_order(api: u16) {
    let _ = api;
}

fn main() {}
