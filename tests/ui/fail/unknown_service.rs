use dynamo_test::dynamo_test;

#[dynamo_test(services(etcd, redis))]
async fn t() {}

fn main() {}
