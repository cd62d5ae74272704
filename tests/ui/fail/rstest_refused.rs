//! What rstest offers that cannot work under `#[dynamo_test]`: its own
//! timeout (ours tears down), awaiting (rstest sees a plain `fn`), and the
//! parameter list of `#[rstest(..)]` (a parameter without an rstest
//! attribute is injected).

use dynamo_test::dynamo_test;
use rstest::rstest;

#[dynamo_test]
#[rstest]
#[timeout(std::time::Duration::from_secs(1))]
#[case(1)]
async fn own_timeout(#[case] n: u32, #[future] later: u32) {
    let _ = (n, later);
}

#[dynamo_test]
#[rstest(n, case(1))]
fn listed(n: u32) {
    let _ = n;
}

fn main() {}
