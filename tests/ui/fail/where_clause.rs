use dynamo_test::dynamo_test;

#[dynamo_test]
fn t()
where
    u16: Copy,
{
}

fn main() {}
