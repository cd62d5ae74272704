use dynamo_test::dynamo_test;

#[dynamo_test(flavor = "multi_threaded")]
async fn t() {}

fn main() {}
