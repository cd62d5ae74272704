use dynamo_test::dynamo_test;

#[dynamo_test]
#[case(1)]
fn forgot_rstest(#[case] n: u32, api: u16) {
    let _ = (n, api);
}

fn main() {}
