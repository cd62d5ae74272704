use dynamo_test::dynamo_test;

#[dynamo_test(services(nats(private)))]
async fn t() {}

fn main() {}
