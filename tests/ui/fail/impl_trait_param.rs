use dynamo_test::dynamo_test;

#[dynamo_test]
async fn t(port: impl Into<u16>) {
    let _: u16 = port.into();
}

fn main() {}
