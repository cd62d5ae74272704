use dynamo_test::dynamo_test;

#[dynamo_test(timeout = "1s" flavor = "multi_thread")]
async fn t() {}

fn main() {}
