use dynamo_test::dynamo_test;

#[dynamo_test]
struct NotATest;

fn main() {}
