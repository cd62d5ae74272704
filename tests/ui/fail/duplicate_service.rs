use dynamo_test::dynamo_test;

#[dynamo_test(services(etcd, nats, etcd(isolated)))]
async fn t() {}

fn main() {}
