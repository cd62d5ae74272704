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

#[dynamo_test(services(etcd(cluster = 3), nats(no_jetstream)))]
async fn cluster_and_bare_nats(etcd: Etcd, nats: Nats) {
    let _ = (etcd.members().len(), etcd.endpoints(), nats.url());
}

#[dynamo_test(services(etcd(isolated, cluster = 5), nats(isolated, no_jetstream)))]
async fn spelled_with_isolated(etcd: Etcd) {
    let _ = etcd.leader().await;
}

fn main() {}
