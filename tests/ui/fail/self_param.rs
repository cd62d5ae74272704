use dynamo_test::dynamo_test;

struct Suite;

impl Suite {
    #[dynamo_test]
    async fn t(&self) {}
}

fn main() {}
