use dynamo_test::dynamo_test;

#[dynamo_test(start_paused = "yes")]
async fn t() {}

fn main() {}
