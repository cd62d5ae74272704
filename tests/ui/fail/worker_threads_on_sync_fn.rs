use dynamo_test::dynamo_test;

// Not "add flavor = multi_thread" (which a plain fn cannot take either).
#[dynamo_test(worker_threads = 2)]
fn t() {}

fn main() {}
