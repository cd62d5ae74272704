use dynamo_test::dynamo_test;

#[dynamo_test(timeout = "1s", timeout = "2s")]
async fn t() {}

fn main() {}
