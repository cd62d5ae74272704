use dynamo_test::dynamo_test;

#[dynamo_test(flavor)]
async fn t() {}

fn main() {}
