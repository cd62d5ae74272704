//! `#[dynamo_test]` above `#[rstest]`: cases, value lists, a plain and an
//! async fn, a timeout, a case with attributes of its own. (rstest puts the
//! tests under `cfg(test)`, so this checks the expansions parse and
//! expand; tests/tests/rstest_matrix.rs runs them.)

use dynamo_test::{dynamo_test, Error, ServicePorts, TestContext};
use rstest::rstest;

#[derive(Debug, Clone, Copy)]
enum Plane {
    Nats,
    Tcp,
}

#[dynamo_test(services(etcd, nats), timeout = "60s")]
#[rstest]
#[case::nats(Plane::Nats)]
#[should_panic]
#[case::tcp(Plane::Tcp)]
async fn cases(#[case] plane: Plane, ctx: &TestContext, ports: ServicePorts) -> Result<(), Error> {
    let _ = (plane, ctx, ports);
    Ok(())
}

#[dynamo_test]
#[rstest]
fn values(#[values(1, 2)] n: u32, #[values("a", "b")] s: &str, mut api: u16) {
    api += 1;
    let _ = (n, s, api);
}

#[dynamo_test(timeout = "10s")]
#[rstest::rstest]
#[ignore]
fn renamed_path(#[values(Plane::Nats, Plane::Tcp)] mut plane: Plane) {
    plane = match plane {
        Plane::Nats => Plane::Tcp,
        Plane::Tcp => Plane::Nats,
    };
    let _ = plane;
}

fn main() {}
