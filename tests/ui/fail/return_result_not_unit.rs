use dynamo_test::dynamo_test;

#[dynamo_test]
async fn t() -> Result<u16, String> {
    Ok(0)
}

fn main() {}
