use dynamo_test::dynamo_test;

#[dynamo_test(timeout = "1d")]
async fn t() {}

fn main() {}
