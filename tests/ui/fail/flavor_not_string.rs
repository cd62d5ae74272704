use dynamo_test::dynamo_test;

#[dynamo_test(flavor = multi_thread)]
async fn t() {}

fn main() {}
