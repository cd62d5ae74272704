use dynamo_test::dynamo_test;

#[dynamo_test(worker_threads = 2)]
async fn t() {}

fn main() {}
