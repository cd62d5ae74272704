//! Each rule of `RawOptions::build`, and that all mistakes of one attribute
//! are reported together. The exact spans are the trybuild suite's job
//! (tests/ui/fail); these check values and messages.

use std::time::Duration;

use proc_macro2::TokenStream;
use quote::{quote, ToTokens as _};

use crate::config::{Config, Flavor, Mode, Runtime, Service, ServiceKind};
use crate::parse::RawOptions;

const ASYNC: bool = true;
const PLAIN: bool = false;

fn build(args: TokenStream, is_async: bool) -> syn::Result<Config> {
    RawOptions::parse(args)?.build(is_async)
}

fn config(args: TokenStream, is_async: bool) -> Config {
    match build(args, is_async) {
        Ok(config) => config,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

/// Every message, in order.
fn errors(args: TokenStream, is_async: bool) -> Vec<String> {
    match build(args, is_async) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
    }
}

/// The one message of a single mistake.
fn error(args: TokenStream, is_async: bool) -> String {
    let all = errors(args, is_async);
    assert_eq!(all.len(), 1, "expected one error, got {all:#?}");
    all.into_iter().next().unwrap_or_default()
}

fn krate(config: &Config) -> String {
    config.krate.to_token_stream().to_string()
}

const ETCD: Service = Service {
    kind: ServiceKind::Etcd,
    mode: Mode::Shared,
    jetstream: true,
};
const NATS_ISOLATED: Service = Service {
    kind: ServiceKind::Nats,
    mode: Mode::Isolated,
    jetstream: true,
};

#[test]
fn nothing_written_gives_the_defaults() {
    for is_async in [ASYNC, PLAIN] {
        let c = config(quote!(), is_async);
        assert_eq!(c.runtime, Runtime::default());
        assert_eq!(c.runtime.flavor, Flavor::CurrentThread);
        assert!(!c.runtime.start_paused);
        assert_eq!(c.timeout, None);
        assert!(c.services.is_empty());
        assert_eq!(krate(&c), ":: dynamo_test");
    }
}

#[test]
fn every_option_becomes_a_plain_value() {
    let c = config(
        quote!(
            flavor = "multi_thread",
            worker_threads = 4,
            timeout = "1m 30s",
            services(etcd, nats(isolated)),
            crate = "my::dt"
        ),
        ASYNC,
    );
    let multi = Flavor::MultiThread {
        worker_threads: Some(4),
    };
    assert_eq!(c.runtime.flavor, multi);
    assert_eq!(c.timeout, Some(Duration::from_secs(90)));
    assert_eq!(c.services, [ETCD, NATS_ISOLATED]);
    assert_eq!(krate(&c), "my :: dt");
}

#[test]
fn flavors() {
    let multi = config(quote!(flavor = "multi_thread"), ASYNC);
    let default_workers = Flavor::MultiThread {
        worker_threads: None,
    };
    assert_eq!(multi.runtime.flavor, default_workers);
    let current = config(
        quote!(flavor = "current_thread", start_paused = true),
        ASYNC,
    );
    let paused = Runtime {
        flavor: Flavor::CurrentThread,
        start_paused: true,
    };
    assert_eq!(current.runtime, paused);
    // Not paused is no conflict with multi_thread.
    let c = config(quote!(flavor = "multi_thread", start_paused = false), ASYNC);
    assert!(!c.runtime.start_paused);
    assert_eq!(config(quote!(start_paused = true), ASYNC).runtime, paused);
}

#[test]
fn service_modes_and_order() {
    let c = config(quote!(services(nats(isolated), etcd(shared))), ASYNC);
    assert_eq!(c.services, [NATS_ISOLATED, ETCD]);
    assert!(config(quote!(services()), ASYNC).services.is_empty());
}

#[test]
fn clusters_and_nats_without_jetstream() {
    let cluster = |n| Service {
        kind: ServiceKind::Etcd,
        mode: Mode::Cluster(n),
        jetstream: true,
    };
    let bare_nats = Service {
        jetstream: false,
        ..NATS_ISOLATED
    };
    let c = config(
        quote!(services(etcd(cluster = 3), nats(no_jetstream))),
        ASYNC,
    );
    assert_eq!(c.services, [cluster(3), bare_nats]);
    let c = config(
        quote!(services(
            etcd(isolated, cluster = 5),
            nats(no_jetstream, isolated)
        )),
        ASYNC,
    );
    assert_eq!(c.services, [cluster(5), bare_nats]);
    let c = config(quote!(services(etcd(cluster = 3, isolated))), ASYNC);
    assert_eq!(c.services, [cluster(3)]);
}

#[test]
fn cluster_and_jetstream_mistakes() {
    let sizes = "`cluster` takes 3 or 5 (members: an odd number keeps a quorum when one fails)";
    let cases = [
        (quote!(services(etcd(cluster = 4))), format!("{sizes}, not `4`")),
        (quote!(services(etcd(cluster = "3"))), format!("{sizes}, not `\"3\"`")),
        (quote!(services(etcd(cluster = 300))), format!("{sizes}, not `300`")),
        (
            quote!(services(etcd(cluster))),
            "write the cluster's size as `cluster = 3` (or 5)".to_string(),
        ),
        (
            quote!(services(etcd(shared, cluster = 3))),
            "the shared etcd is a single member serving every test: a cluster is private, write `etcd(cluster = 3)`".to_string(),
        ),
        (
            quote!(services(nats(no_jetstream, shared))),
            "the shared NATS always runs JetStream (Dynamo needs it, and it serves every test in the run): write `nats(no_jetstream)` for a private server without it".to_string(),
        ),
        (
            quote!(services(nats(cluster = 3))),
            "`cluster` is for etcd: write `etcd(cluster = 3)`; NATS runs as one private server with `nats(isolated)`".to_string(),
        ),
        (
            quote!(services(etcd(no_jetstream))),
            "`no_jetstream` is for NATS: write `nats(no_jetstream)`".to_string(),
        ),
        (
            quote!(services(etcd(cluster = 3, cluster = 5))),
            "this setting is written twice; write it once".to_string(),
        ),
    ];
    for (args, expected) in cases {
        assert_eq!(error(args, ASYNC), expected);
    }
    // Every mistake at once.
    assert_eq!(
        errors(
            quote!(services(
                etcd(cluster = 4),
                nats(cluster = 3, no_jetstream, shared)
            )),
            ASYNC
        )
        .len(),
        3
    );
}

#[test]
fn a_plain_fn_takes_every_option_but_the_runtime_ones() {
    let c = config(quote!(timeout = "10s", services(etcd), crate = "dt"), PLAIN);
    assert_eq!(c.runtime, Runtime::default());
    assert_eq!(c.timeout, Some(Duration::from_secs(10)));
    assert_eq!(c.services, [ETCD]);
}

#[test]
fn names() {
    let known = "#[dynamo_test] accepts `flavor`, `worker_threads`, `start_paused`, `timeout`, `services`, `crate`";
    assert_eq!(
        error(quote!(retries = 3), ASYNC),
        format!("unknown option `retries`; {known}")
    );
    assert_eq!(
        error(quote!(tokio::flavor = "x"), ASYNC),
        format!("unknown option `tokio::flavor`; {known}")
    );
    assert_eq!(
        error(quote!(timeout = "1s", timeout = "2s"), ASYNC),
        "duplicate option `timeout`; write it once"
    );
    assert_eq!(
        error(quote!(services(etcd), services(nats)), ASYNC),
        "duplicate option `services`; list every service in one `services(...)`"
    );
}

#[test]
fn values_of_the_wrong_kind() {
    let cases = [
        (
            quote!(flavor = multi_thread),
            "`flavor` takes a string: write `flavor = \"multi_thread\"`",
        ),
        (
            quote!(flavor),
            "`flavor` takes a string: write `flavor = \"multi_thread\"`",
        ),
        (
            quote!(flavor("multi_thread")),
            "`flavor` takes a string: write `flavor = \"multi_thread\"`",
        ),
        (
            quote!(worker_threads = "2"),
            "`worker_threads` takes an integer: write `worker_threads = 2`",
        ),
        (
            quote!(start_paused = "yes"),
            "`start_paused` takes a boolean: write `start_paused = true`",
        ),
        (
            quote!(timeout = 30),
            "`timeout` takes a string with a unit (ms, s, m, h): write `timeout = \"30s\"`",
        ),
        (
            quote!(timeout),
            "`timeout` takes a string with a unit (ms, s, m, h): write `timeout = \"30s\"`",
        ),
        (
            quote!(crate = dt),
            "`crate` takes a string: write `crate = \"my_dynamo_test\"`",
        ),
    ];
    for (args, expected) in cases {
        assert_eq!(error(args, ASYNC), expected);
    }
}

#[test]
fn values_out_of_range() {
    assert_eq!(
        error(quote!(flavor = "multi_threaded"), ASYNC),
        "unknown flavor `multi_threaded`; write `flavor = \"current_thread\"` or `flavor = \"multi_thread\"`"
    );
    for workers in [quote!(0), quote!(-1)] {
        assert_eq!(
            error(
                quote!(flavor = "multi_thread", worker_threads = #workers),
                ASYNC
            ),
            "`worker_threads` must be at least 1"
        );
    }
    assert_eq!(
        error(quote!(timeout = "1d"), ASYNC),
        "bad timeout \"1d\": unknown unit `d` (use ms, s, m or h); write e.g. `timeout = \"30s\"`, `\"500ms\"` or `\"2m\"`"
    );
    assert_eq!(
        error(quote!(crate = "not a path"), ASYNC),
        "`crate` takes a path to the dynamo-test crate, e.g. `crate = \"my_dynamo_test\"`"
    );
}

#[test]
fn services_entries() {
    let cases = [
        (quote!(services = "etcd"), "`services` takes a list: write `services(etcd, nats)`"),
        (quote!(services), "`services` takes a list: write `services(etcd, nats)`"),
        (quote!(services[etcd]), "`services` takes a list: write `services(etcd, nats)`"),
        (
            quote!(services(etcd nats)),
            "`services` takes a comma-separated list: write `services(etcd, nats(isolated))`",
        ),
        (
            quote!(services(redis)),
            "unknown service `redis`; `services` takes `etcd` and `nats`, e.g. `services(etcd, nats(isolated))`",
        ),
        (
            quote!(services(nats(private))),
            "unknown setting `private` of `nats`; write `isolated` (a private instance) or `shared` (the default); without JetStream: `nats(no_jetstream)`",
        ),
        (
            quote!(services(nats(isolated, shared))),
            "a service takes one mode: write `nats(isolated)` (a private instance) or `nats(shared)` (the default)",
        ),
        (
            quote!(services(nats())),
            "write `nats(isolated)` (a private instance) or `nats(shared)` (the default); without JetStream: `nats(no_jetstream)`",
        ),
        (quote!(services(etcd = 1)), "write a service as `etcd` or `etcd(isolated)`"),
        (quote!(services(etcd, etcd(isolated))), "this service is listed twice; list it once"),
    ];
    for (args, expected) in cases {
        assert_eq!(error(args, ASYNC), expected);
    }
}

#[test]
fn rules_between_options() {
    assert_eq!(
        error(quote!(worker_threads = 2), ASYNC),
        "`worker_threads` requires the multi-thread runtime; add `flavor = \"multi_thread\"` or remove `worker_threads`"
    );
    assert_eq!(
        error(quote!(flavor = "current_thread", worker_threads = 2), ASYNC),
        "`worker_threads` requires the multi-thread runtime; add `flavor = \"multi_thread\"` or remove `worker_threads`"
    );
    assert_eq!(
        error(quote!(flavor = "multi_thread", start_paused = true), ASYNC),
        "`start_paused` requires the `current_thread` flavor; remove `flavor = \"multi_thread\"` or `start_paused`"
    );
}

#[test]
fn a_rule_is_not_checked_against_a_bad_value() {
    // The flavor's own error says it all; "requires multi_thread" would be noise.
    assert_eq!(
        error(quote!(flavor = "multi_threaded", worker_threads = 2), ASYNC),
        "unknown flavor `multi_threaded`; write `flavor = \"current_thread\"` or `flavor = \"multi_thread\"`"
    );
    assert_eq!(
        error(quote!(flavor = 1, start_paused = true), ASYNC),
        "`flavor` takes a string: write `flavor = \"multi_thread\"`"
    );
    // Two bad entries are two errors, but not "listed twice".
    let all = errors(quote!(services(redis, redis)), ASYNC);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert!(all.iter().all(|e| e.starts_with("unknown service `redis`")));
}

#[test]
fn a_plain_fn_gets_one_error_for_its_runtime_options() {
    let on_plain_fn = |name: &str| {
        format!("`{name}` configures the tokio runtime of an async test; make the function `async` or remove `{name}`")
    };
    assert_eq!(
        error(quote!(flavor = "multi_thread"), PLAIN),
        on_plain_fn("flavor")
    );
    assert_eq!(
        error(quote!(worker_threads = 2), PLAIN),
        on_plain_fn("worker_threads")
    );
    assert_eq!(
        error(quote!(start_paused = false), PLAIN),
        on_plain_fn("start_paused")
    );
    // The first one only, whatever the values: they are all to go.
    assert_eq!(
        error(
            quote!(start_paused = 1, worker_threads = 0, flavor = "bogus"),
            PLAIN
        ),
        on_plain_fn("flavor")
    );
}

#[test]
fn every_mistake_is_reported_at_once() {
    let all = errors(
        quote!(
            retries = 3,
            flavor = "multi_threaded",
            worker_threads = 0,
            start_paused = "yes",
            timeout = "30",
            services(redis, etcd, etcd),
            crate = "not a path",
            timeout = "1s",
        ),
        ASYNC,
    );
    let heads: Vec<&str> = all
        .iter()
        .map(|e| e.split([';', ':']).next().unwrap_or_default())
        .collect();
    assert_eq!(
        heads,
        [
            "unknown option `retries`",
            "duplicate option `timeout`",
            "unknown flavor `multi_threaded`",
            "`worker_threads` must be at least 1",
            "`start_paused` takes a boolean",
            "bad timeout \"30\"",
            "unknown service `redis`",
            "this service is listed twice",
            "`crate` takes a path to the dynamo-test crate, e.g. `crate = \"my_dynamo_test\"`",
        ]
    );
}

#[test]
fn a_plain_fn_reports_its_other_mistakes_too() {
    let all = errors(
        quote!(worker_threads = 2, timeout = "1d", services(redis)),
        PLAIN,
    );
    assert_eq!(all.len(), 3, "{all:#?}");
    assert!(all[0].starts_with("`worker_threads` configures the tokio runtime"));
    assert!(all[1].starts_with("bad timeout \"1d\""));
    assert!(all[2].starts_with("unknown service `redis`"));
}
