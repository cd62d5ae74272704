use dynamo_test::dynamo_test;

#[dynamo_test(flavor = "multi_thread", start_paused = true)]
async fn t() {}

fn main() {}
