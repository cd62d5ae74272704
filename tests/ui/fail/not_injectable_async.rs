use dynamo_test::dynamo_test;

#[dynamo_test]
async fn t(name: String) {
    let _ = name;
}

fn main() {}
