use dynamo_test::dynamo_test;

#[dynamo_test]
fn t() -> i32 {
    0
}

fn main() {}
