use dynamo_test::dynamo_test;

#[dynamo_test]
async fn t() -> impl std::fmt::Debug {
    0
}

fn main() {}
