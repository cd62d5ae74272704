use dynamo_test::dynamo_test;

#[dynamo_test(timeout = "1s", flavor = "multi_thread", worker_threads = 2)]
fn t() {}

fn main() {}
