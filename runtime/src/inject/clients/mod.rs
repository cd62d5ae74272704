//! Connected clients as test parameters, each behind the cargo feature of
//! its crate (off by default):
//!
//! - `etcd-client`: an [`etcd_client::Client`] connected to every endpoint
//!   of the test's etcd, each endpoint's status checked during setup
//!   (`etcd.rs`);
//! - `async-nats`: an [`async_nats::Client`] connected to the test's NATS,
//!   named after the test, drained at teardown (`nats.rs`).
//!
//! Both get the test's instance the way an `Etcd` / `Nats` parameter does
//! (shared, isolated, a cluster, or `ETCD_ENDPOINTS` / `NATS_SERVER`): they
//! inject one first and connect to its endpoints.

#[cfg(feature = "etcd-client")]
mod etcd;
#[cfg(feature = "async-nats")]
mod nats;

/// `error` and each error it was caused by, `: `-joined, skipping a cause
/// whose text is there already (tonic and hyper repeat themselves).
/// (Built without the features too, so that its tests run in the default
/// build.)
#[cfg_attr(
    not(any(feature = "etcd-client", feature = "async-nats")),
    allow(dead_code)
)]
fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        let line = next.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = next.source();
    }
    text
}

/// `text`, then the deepest cause of `error` unless `text` holds it: the
/// OS's words (`Connection refused (os error 111)`) after a message that
/// already says what failed.
#[cfg_attr(not(feature = "etcd-client"), allow(dead_code))]
fn with_root_cause(text: String, error: &(dyn std::error::Error + 'static)) -> String {
    let mut root = error;
    while let Some(next) = root.source() {
        root = next;
    }
    let line = root.to_string();
    if text.contains(&line) {
        text
    } else {
        format!("{text}: {line}")
    }
}

/// Where the harness writes a shared service's log (see services/shared.rs).
#[cfg(any(feature = "etcd-client", feature = "async-nats"))]
fn shared_log(kind: &str, port: Option<u16>) -> String {
    let port = port.map_or_else(|| "<port>".to_string(), |p| p.to_string());
    match crate::output_dir::output_root() {
        Ok(root) => root
            .join("services")
            .join(format!("{kind}-{port}.log"))
            .display()
            .to_string(),
        Err(e) => format!("unknown ({e})"),
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn causes_are_joined_once_each() {
        let e = Layer(
            "transport error",
            Some(Box::new(Layer(
                "tcp connect error",
                Some(Box::new(Layer("tcp connect error", None))),
            ))),
        );
        assert_eq!(super::with_causes(&e), "transport error: tcp connect error");
    }

    #[test]
    fn the_root_cause_follows_the_message() {
        let e = Layer(
            "transport error",
            Some(Box::new(Layer("Connection refused", None))),
        );
        let text = super::with_root_cause("Unavailable: tcp connect error".into(), &e);
        assert_eq!(text, "Unavailable: tcp connect error: Connection refused");
        let same = super::with_root_cause("refused: Connection refused".into(), &e);
        assert_eq!(same, "refused: Connection refused");
    }
}
