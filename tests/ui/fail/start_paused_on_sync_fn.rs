use dynamo_test::dynamo_test;

#[dynamo_test(start_paused = true)]
fn t() {}

fn main() {}
