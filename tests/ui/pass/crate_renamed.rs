//! `crate = "..."`: the expansion names only the given path.

extern crate dynamo_test as renamed;

use renamed::dynamo_test;

#[dynamo_test(crate = "renamed", timeout = "1s")]
async fn async_renamed(port: u16, ctx: &renamed::TestContext) {
    let _ = (port, ctx);
}

#[dynamo_test(crate = "renamed")]
fn plain_renamed(ports: renamed::ServicePorts) -> Result<(), String> {
    let _ = ports;
    Ok(())
}

mod nested {
    #[renamed::dynamo_test(crate = "renamed", flavor = "multi_thread", worker_threads = 1)]
    async fn in_a_module(port: renamed::Port) {
        let _ = port;
    }
}

fn main() {}
