use dynamo_test::dynamo_test;

#[dynamo_test(tokio::flavor = "multi_thread")]
async fn t() {}

fn main() {}
