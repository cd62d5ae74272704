use dynamo_test::dynamo_test;

#[dynamo_test]
async fn t() -> i32 {
    0
}

fn main() {}
