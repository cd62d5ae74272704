use dynamo_test::{dynamo_test, Etcd, Nats, ServicePorts};

#[dynamo_test(services(etcd, nats))]
async fn shared(etcd: Etcd, nats: Nats) {
    let _ = (etcd.url(), nats.url());
}

#[dynamo_test(services(etcd(isolated), nats(shared)), timeout = "30s")]
async fn isolated(etcd: Etcd, ports: ServicePorts) {
    let _ = (etcd.port(), ports.etcd_client);
}

#[dynamo_test(services(nats))]
fn plain_fn_with_services(nats: Nats) {
    let _ = nats.subject("x");
}

fn main() {}
