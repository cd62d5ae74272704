use dynamo_test::dynamo_test;

#[dynamo_test(timeout = "0s")]
async fn t() {}

fn main() {}
