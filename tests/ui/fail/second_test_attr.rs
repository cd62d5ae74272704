use dynamo_test::dynamo_test;

#[dynamo_test]
#[test]
fn t() {}

fn main() {}
