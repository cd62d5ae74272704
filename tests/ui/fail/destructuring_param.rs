use dynamo_test::dynamo_test;

#[dynamo_test]
async fn t((a, b): (u16, u16)) {
    let _ = (a, b);
}

fn main() {}
