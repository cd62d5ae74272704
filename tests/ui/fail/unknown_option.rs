use dynamo_test::dynamo_test;

#[dynamo_test(retries = 3)]
async fn t() {}

fn main() {}
