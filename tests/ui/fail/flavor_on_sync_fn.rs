use dynamo_test::dynamo_test;

#[dynamo_test(flavor = "multi_thread")]
fn t() {}

fn main() {}
