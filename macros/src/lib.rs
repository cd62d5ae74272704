//! The `#[dynamo_test]` attribute macro. Use it through the `dynamo-test`
//! crate, which re-exports it and holds everything it expands into; see
//! [`dynamo_test`] for the options.

// The macro is thin on purpose, a pipeline whose steps are the modules:
//   parse      the attribute as written, each option with its spans
//   validate   -> config: plain values, every mistake collected
//   signature  the function checked, its parameters described
//   render     the wrapper, calling `<crate>::__private`, from those two
//   entry      runs them; on error, every error plus a harmless fallback
// All behaviour lives in the runtime crate, where unit tests reach it.

use proc_macro::TokenStream;

mod config;
mod entry;
mod errors;
mod parse;
mod render;
mod signature;
mod validate;

/// Turns a function into an integration test with reserved ports,
/// injected fixtures, a timeout and guaranteed teardown.
///
/// Use it through the `dynamo-test` crate, which re-exports it:
///
/// ```ignore
/// use dynamo_test::{dynamo_test, Port, ServicePorts, TestContext};
///
/// #[dynamo_test(timeout = "30s", services(etcd, nats(isolated)))]
/// async fn frontend_answers(
///     api: Port,            // a port reserved for this test alone
///     metrics: u16,         // the same, as a bare number held until teardown
///     ports: ServicePorts,  // the port plan
///     ctx: &TestContext,    // name, output directory, port table
/// ) -> Result<(), Box<dyn std::error::Error>> {
///     let listener = api.into_tokio_listener()?;
///     println!("{} serves on {}", ctx.name(), ports.dynamo_serve_url("/v1/models"));
///     drop(listener);
///     Ok(())
/// }
/// ```
///
/// # Options
///
/// | option | meaning | default |
/// |---|---|---|
/// | `flavor = "current_thread" \| "multi_thread"` | tokio runtime of an async test | `current_thread` |
/// | `worker_threads = N` | worker threads (needs `multi_thread`) | number of CPUs |
/// | `start_paused = true` | start tokio's clock paused (needs `current_thread`) | `false` |
/// | `services(etcd, nats)` | etcd and/or NATS healthy before the body; `etcd(isolated)` / `nats(isolated)` for a private instance (`etcd(shared)`: the default, spelled out); `etcd(cluster = 3)` (3 or 5; `etcd(isolated, cluster = 3)` alike) for a private etcd cluster, every member healthy; `nats(no_jetstream)` (alike with `isolated`) for a private NATS without JetStream (the shared one always has it) | none |
/// | `timeout = "30s"` | limit for setup + body (`ms`, `s`, `m`, `h`; sums like `"1m 30s"` and fractions like `"1.5s"` too); on expiry the test fails naming the test, the limit and its ports, after teardown; it holds even when the body blocks its thread (`std::thread::sleep`, a deadlock), since a test with a timeout runs on a thread of its own | none |
/// | `crate = "path"` | path of the `dynamo-test` crate when renamed | `::dynamo_test` |
///
/// `flavor`, `worker_threads` and `start_paused` configure the runtime of
/// an `async fn`; a plain `fn` takes the others only.
///
/// # Parameters
///
/// Parameters come in any order; each type must implement
/// `dynamo_test::Inject`:
///
/// | parameter | value |
/// |---|---|
/// | `name: u16` | a port reserved for this test (held until teardown), logged as `name` |
/// | `name: Port` | a port reservation owned by the test; `get()`, `url(path)`, `addr()`, `into_std_listener()`, `into_tokio_listener()` |
/// | `ports: ServicePorts` | `etcd_client`, `etcd_peer`, `nats_client`, `nats_http` (fixed), `dynamo_serve` (reserved: first free from `dynamo_serve_base`) |
/// | `ctx: &TestContext` / `ctx: TestContext` | the test's context |
/// | `etcd: Etcd`, `nats: Nats` | the service (requires it, like `services(..)`): URLs, ports, the test's key/subject prefix |
/// | `x: &T`, `x: &mut T` | a `T` injected for the whole test |
/// | your own type | implement `Inject` (async setup; `ctx.defer(..)` for teardown): see its docs |
///
/// A parameter binds a plain name (or `_`): no patterns, no `impl Trait`,
/// no `self`, and the function has no generics.
///
/// # Return type and other attributes
///
/// The function may be `async fn` or `fn`, return `()` or `Result<(), E>`
/// with `E: Debug`, and carry `#[should_panic]` or `#[ignore]`. Do not add
/// `#[test]` or `#[tokio::test]`: `#[dynamo_test]` is the test attribute
/// (rstest's `#[rstest]` goes below it: see [Cases](#cases-rstest)).
///
/// # Cases (rstest)
///
/// For a matrix of cases, write `#[dynamo_test(..)]` **above** rstest's
/// `#[rstest]` (rstest as a dev-dependency; `default-features = false`
/// is enough):
///
/// ```ignore
/// use dynamo_test::{dynamo_test, Error, ServicePorts, TestContext};
/// use rstest::rstest;
///
/// #[dynamo_test(services(etcd, nats), timeout = "60s")]
/// #[rstest]
/// #[case::etcd_nats(Discovery::Etcd, Plane::Nats)]
/// #[case::file_tcp(Discovery::File, Plane::Tcp)]
/// async fn matrix(
///     #[case] discovery: Discovery,             // rstest's: a value per case
///     #[case] plane: Plane,
///     #[values(1, 2)] workers: u16,             // rstest's: crossed with the cases
///     ctx: &TestContext,                        // the harness's
///     ports: ServicePorts,
/// ) -> Result<(), Error> {
///     // Start this case's stack, from `discovery`, `plane` and `workers`.
///     Ok(())
/// }
/// ```
///
/// A parameter with an rstest attribute (`#[case]`, `#[values(..)]`,
/// `#[from(..)]`, `#[with(..)]`, `#[context]`) gets its value from rstest;
/// the others are injected. `#[dynamo_test]` expands first and hands rstest
/// a plain `fn` of rstest's parameters, without a `#[test]` of its own;
/// rstest writes one `#[test]` per case, and each case runs the harness
/// once: it is a test of its own, named after the case as libtest names it
/// (`my_crate::matrix::case_1_etcd_nats::workers_1_1`), with its own output
/// directory, namespace, ports, processes, timeout and teardown. The case's
/// values move into the test; with a `timeout` they must be
/// `Send + 'static` (your types, `String`, `&'static str`).
///
/// Refused at their span: `#[rstest]` above `#[dynamo_test]` (for an
/// `async fn`, rstest itself refuses it first, asking for a `test_attr`:
/// the fix is the order), rstest's `#[timeout]` (use ours), `#[future]`
/// and `#[awt]` (rstest sees a plain `fn`; use an `Inject` fixture),
/// `#[test_attr]`, and the parameter list of `#[rstest(..)]`.
///
/// # Mistakes
///
/// Every misuse is a compile error at the offending span that says what to
/// write, and all the mistakes of one attribute (and of the signature) are
/// reported together:
///
/// ```text
/// error: unknown flavor `multi_threaded`; write `flavor = "current_thread"` or `flavor = "multi_thread"`
///  --> tests/it.rs:3:24
///   |
/// 3 | #[dynamo_test(flavor = "multi_threaded", timeout = "30")]
///   |                        ^^^^^^^^^^^^^^^^
///
/// error: bad timeout "30": it needs a unit (ms, s, m or h); write e.g. `timeout = "30s"`, `"500ms"` or `"2m"`
///  --> tests/it.rs:3:52
///   |
/// 3 | #[dynamo_test(flavor = "multi_threaded", timeout = "30")]
///   |                                                    ^^^^
/// ```
#[proc_macro_attribute]
pub fn dynamo_test(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::dynamo_test(args.into(), item.into()).into()
}
