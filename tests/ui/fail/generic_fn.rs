use dynamo_test::dynamo_test;

#[dynamo_test]
async fn t<T: Default>() {
    let _ = T::default();
}

fn main() {}
