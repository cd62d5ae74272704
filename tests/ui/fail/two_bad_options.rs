use dynamo_test::dynamo_test;

// Both mistakes of one attribute are reported in one compile.
#[dynamo_test(flavor = "multi_threaded", timeout = "30")]
async fn t() {}

fn main() {}
