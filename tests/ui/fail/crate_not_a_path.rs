#[dynamo_test::dynamo_test(crate = "not a path")]
async fn t() {}

fn main() {}
