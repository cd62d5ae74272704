//! Helpers shared by the harness's own integration tests (in `tests/tests/`).

pub mod orphans;
pub mod servers;

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Mutex;

/// Ports held by tests of this process right now: a second, independent
/// check that the allocator never hands one number to two holders.
static HELD: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// Marks `ports` as held by the calling test; panics if any is held already.
/// The returned guard unmarks them.
pub fn hold(ports: &[u16]) -> HeldPorts {
    let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
    let set = held.get_or_insert_with(HashSet::new);
    for &p in ports {
        assert!(set.insert(p), "port {p} granted to two tests at once");
    }
    HeldPorts(ports.to_vec())
}

/// Ports marked by [`hold`]; unmarked on drop.
pub struct HeldPorts(Vec<u16>);

impl Drop for HeldPorts {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(set) = held.as_mut() {
            for p in &self.0 {
                set.remove(p);
            }
        }
    }
}

/// Binds every port on 127.0.0.1 and, where IPv6 works, on [::1]: what a
/// test's servers would do. Panics with the port when a bind fails.
pub fn bind_all(ports: &[u16]) -> Vec<TcpListener> {
    let mut listeners = Vec::new();
    for &p in ports {
        listeners.push(
            TcpListener::bind(("127.0.0.1", p))
                .unwrap_or_else(|e| panic!("bind 127.0.0.1:{p}: {e}")),
        );
        if let Ok(v6) = TcpListener::bind(("::1", p)) {
            listeners.push(v6);
        }
    }
    listeners
}

/// Defines one `#[dynamo_test]` per name: each takes three ports (`u16`,
/// `Port`, `ServicePorts`), marks them held, binds them and holds them a
/// while. Used by two test binaries, which nextest runs at the same time.
#[macro_export]
macro_rules! port_tests {
    ($($name:ident),* $(,)?) => {$(
        #[::dynamo_test::dynamo_test(timeout = "60s")]
        async fn $name(api: u16, worker: ::dynamo_test::Port, ports: ::dynamo_test::ServicePorts) {
            let numbers = [api, worker.get(), ports.dynamo_serve];
            let _held = $crate::hold(&numbers);
            let _listeners = $crate::bind_all(&numbers);
            assert!(ports.dynamo_serve >= ports.dynamo_serve_base);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    )*};
}
