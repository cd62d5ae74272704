use dynamo_test::dynamo_test;

#[dynamo_test(timeout = "30")]
async fn t() {}

fn main() {}
