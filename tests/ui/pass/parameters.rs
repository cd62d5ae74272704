//! Every way to receive an injected value.

use dynamo_test::{dynamo_test, Port, ServicePorts, TestContext};

#[dynamo_test]
async fn builtin_types(api: u16, port: Port, ports: ServicePorts, ctx: &TestContext) {
    let _ = (api, port, ports.dynamo_serve, ctx.port_table());
}

#[dynamo_test]
async fn context_by_value(ctx: TestContext) {
    let _ = ctx.port_table();
}

#[dynamo_test]
async fn wildcard_and_mut(_: u16, mut x: u16, _unused: Port) {
    x += 1;
    let _ = x;
}

#[dynamo_test(timeout = "5s")]
fn plain_fn_parameters(api: u16, ports: dynamo_test::ServicePorts, ctx: &dynamo_test::TestContext) {
    let _ = (api, ports, ctx);
}

#[dynamo_test]
fn plain_fn_without_timeout(_: u16, mut x: u16, ctx: TestContext) {
    x += 1;
    let _ = (x, ctx);
}

fn main() {}
