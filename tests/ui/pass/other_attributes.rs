//! Attributes libtest understands pass through to the wrapper.

use dynamo_test::dynamo_test;

#[dynamo_test]
#[should_panic]
async fn panics() {
    panic!("expected");
}

#[dynamo_test(timeout = "1s")]
#[should_panic(expected = "boom")]
fn plain_panics() {
    panic!("boom");
}

#[dynamo_test]
#[ignore]
async fn ignored() {}

#[dynamo_test]
#[ignore = "needs etcd"]
fn ignored_with_reason(port: u16) {
    let _ = port;
}

/// Doc comments and lints are kept too.
#[dynamo_test]
#[allow(unused_variables)]
async fn documented(port: u16) {}

fn main() {}
