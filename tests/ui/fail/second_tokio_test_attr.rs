use dynamo_test::dynamo_test;

#[dynamo_test]
#[tokio::test]
async fn t() {}

fn main() {}
