use dynamo_test::dynamo_test;

#[dynamo_test(services(etcd(cluster = 4)))]
async fn t() {}

fn main() {}
