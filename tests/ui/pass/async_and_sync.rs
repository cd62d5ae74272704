//! The simplest tests: no options, no parameters, async and plain.

use dynamo_test::dynamo_test;

#[dynamo_test]
async fn async_test() {}

#[dynamo_test]
fn plain_test() {}

#[dynamo_test(timeout = "30s")]
async fn async_with_timeout() {
    tokio::task::yield_now().await;
}

#[dynamo_test(timeout = "2m")]
fn plain_with_timeout() {}

#[dynamo_test(timeout = "1h")]
pub fn public_plain_test() {}

fn main() {}
