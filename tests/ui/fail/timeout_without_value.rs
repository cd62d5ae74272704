use dynamo_test::dynamo_test;

#[dynamo_test(timeout)]
async fn t() {}

fn main() {}
