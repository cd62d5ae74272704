use dynamo_test::dynamo_test;

#[dynamo_test(flavor = "multi_thread", worker_threads = "2")]
async fn t() {}

fn main() {}
