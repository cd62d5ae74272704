use dynamo_test::dynamo_test;

#[dynamo_test]
async fn t() -> &'static str {
    "done"
}

fn main() {}
