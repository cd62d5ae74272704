use dynamo_test::dynamo_test;

#[dynamo_test(services = "etcd")]
async fn t() {}

fn main() {}
