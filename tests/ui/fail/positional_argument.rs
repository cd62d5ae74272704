use dynamo_test::dynamo_test;

#[dynamo_test("30s")]
async fn t() {}

fn main() {}
