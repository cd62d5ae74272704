use dynamo_test::dynamo_test;

#[dynamo_test(flavor = "multi_thread", worker_threads = 0)]
async fn t() {}

fn main() {}
