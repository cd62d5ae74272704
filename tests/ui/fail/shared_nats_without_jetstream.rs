use dynamo_test::dynamo_test;

#[dynamo_test(services(nats(shared, no_jetstream)))]
async fn t() {}

fn main() {}
