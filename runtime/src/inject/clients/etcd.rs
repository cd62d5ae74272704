//! `etcd_client::Client` as a test parameter (feature `etcd-client`).
//!
//! Plain `etcd_client::Client`, not a wrapper that knows the test's key
//! prefix: it is the type the user's own code takes (a service under test
//! is built from one), and etcd-client already has the prefixed view
//! (`etcd_client::KvClientPrefix`); the prefix is one call away on an
//! `Etcd` parameter of the same test (`etcd.key("x")`), which is the same
//! instance and whose keys under the prefix are deleted at teardown on a
//! shared etcd.

use std::time::Duration;

use etcd_client::{Client, StatusResponse};

use super::{with_causes, with_root_cause};
use crate::context::TestContext;
use crate::error::Error;
use crate::inject::Inject;
use crate::services::{Etcd, Source};
use crate::sys::real_time;

/// How long one endpoint's status check may take during setup (connect
/// and answer), on the real clock.
const STATUS_LIMIT: Duration = Duration::from_secs(5);

/// An [`etcd_client::Client`] connected to every endpoint of the test's
/// etcd (feature `etcd-client`).
///
/// The etcd is the one an [`Etcd`] parameter gets: the test's
/// `services(etcd(..))` (shared, isolated, `cluster = 3`), else the shared
/// one, or `ETCD_ENDPOINTS` when set. Every endpoint (each member of a
/// cluster) answers etcd's `Status` call during setup, or setup fails with
/// what each endpoint said, before the body runs.
///
/// The client is etcd-client's own, with its default options: its
/// requests are spread over the endpoints, and after a member is stopped
/// and started (or restarted, or killed and started) on its port the
/// client connects again by itself. A request made while its member is
/// down, in flight when it went, or sent before the client saw the
/// connection close fails with a connection error (`Unavailable`, or a
/// status caused by the transport: `Cancelled` "connection closed",
/// `Unknown` "transport error"): retry those, as production code would.
/// Keys are not prefixed: take the test's prefix from an `Etcd`
/// parameter (`etcd.key("x")`, `etcd.key_prefix()`), or wrap the KV
/// client in `etcd_client::KvClientPrefix`.
///
/// ```
/// use dynamo_test::{dynamo_test, Etcd};
///
/// #[dynamo_test(services(etcd(isolated)))]
/// async fn writes_through_the_client(mut client: etcd_client::Client, etcd: Etcd) {
///     client.put(etcd.key("k"), "v", None).await.unwrap();
///     let reply = client.get(etcd.key("k"), None).await.unwrap();
///     assert_eq!(reply.kvs()[0].value_str().unwrap(), "v");
///     assert_eq!(etcd.get(&etcd.key("k")).await.unwrap().as_deref(), Some("v"));
/// }
/// # fn main() {}
/// ```
impl Inject for Client {
    async fn inject(ctx: &TestContext, param: &str) -> Result<Self, Error> {
        let etcd = <Etcd as Inject>::inject(ctx, param).await?;
        let endpoints = etcd.endpoints().to_vec();
        let checks = endpoints.iter().map(|e| status_of(e));
        let said = futures_util::future::join_all(checks).await;
        if said.iter().any(Result::is_err) {
            return Err(Error::Service(not_every_endpoint(&etcd, &endpoints, &said)));
        }
        let client = Client::connect(&endpoints, None).await.map_err(|e| {
            Error::Service(format!(
                "could not make an etcd client for {} (each endpoint answered on its own): {}",
                endpoints.join(","),
                describe(&e)
            ))
        })?;
        let statuses: Vec<String> = said.into_iter().filter_map(Result::ok).collect();
        ctx.note(&format!(
            "etcd client `{param}` connected to {} ({})",
            endpoints.join(","),
            statuses.join("; ")
        ));
        Ok(client)
    }
}

/// One endpoint's answer to `Status` through a client of its own, as a
/// line (`etcd 3.4.23, member 2ad646e7201c969c, leader 2ad646e7201c969c`),
/// or why there is none.
async fn status_of(endpoint: &str) -> Result<String, String> {
    let check = async {
        let mut client = Client::connect([endpoint], None)
            .await
            .map_err(|e| describe(&e))?;
        let status = client.status().await.map_err(|e| describe(&e))?;
        judge(&status)
    };
    real_time::timeout(STATUS_LIMIT, check)
        .await
        .unwrap_or_else(|| Err(format!("no answer within {STATUS_LIMIT:?}")))
}

/// A member that answers but knows no leader, or reports errors (an
/// alarm: `NOSPACE`, `CORRUPT`), cannot serve the test.
fn judge(status: &StatusResponse) -> Result<String, String> {
    if !status.errors().is_empty() {
        return Err(format!(
            "etcd {} answers with errors: {}",
            status.version(),
            status.errors().join("; ")
        ));
    }
    if status.leader() == 0 {
        return Err(format!("etcd {} knows no leader", status.version()));
    }
    let member = status.header().map(|h| h.member_id()).unwrap_or_default();
    Ok(format!(
        "etcd {}, member {member:x}, leader {:x}",
        status.version(),
        status.leader()
    ))
}

/// The setup error: what each endpoint said, and what to do.
fn not_every_endpoint(
    etcd: &Etcd,
    endpoints: &[String],
    said: &[Result<String, String>],
) -> String {
    let lines: Vec<String> = endpoints
        .iter()
        .zip(said)
        .map(|(endpoint, answer)| match answer {
            Ok(status) => format!("  {endpoint}: ok ({status})"),
            Err(why) => format!("  {endpoint}: {why}"),
        })
        .collect();
    let failed = said.iter().filter(|s| s.is_err()).count();
    let what_to_do = match etcd.source() {
        Source::FromEnv => "the endpoints come from ETCD_ENDPOINTS: each must be the client URL \
             of an etcd member that answers gRPC (`etcdctl --endpoints=<url> endpoint status`); \
             fix or unset ETCD_ENDPOINTS"
            .to_string(),
        Source::SharedExternal => "this etcd was already on the plan's fixed port and the \
             harness did not start it: check that it is an etcd v3 server (`etcdctl endpoint \
             status`), or stop it so that the harness runs its own"
            .to_string(),
        Source::SharedStarted => format!(
            "the harness started this etcd (shared) and found it healthy over HTTP; its log: {}",
            super::shared_log("etcd", etcd.port())
        ),
        Source::Isolated => {
            let logs: Vec<String> = match etcd.process() {
                Some(process) => vec![process.log_path().display().to_string()],
                None => etcd
                    .members()
                    .iter()
                    .map(|m| m.process().log_path().display().to_string())
                    .collect(),
            };
            format!(
                "the harness started this etcd for the test and found it healthy over HTTP; \
                 its log: {}",
                logs.join(", ")
            )
        }
    };
    format!(
        "expected every endpoint of the test's etcd to answer the etcd client's Status \
         call during setup; {failed} of {} did not:\n{}\n{what_to_do}",
        endpoints.len(),
        lines.join("\n")
    )
}

/// An etcd-client error in a line: a gRPC status as its code and message
/// with the transport's root cause (`Connection refused`), not its debug
/// form.
fn describe(error: &etcd_client::Error) -> String {
    match error {
        etcd_client::Error::GRpcStatus(status) => {
            let text = format!("{:?}: {}", status.code(), status.message());
            match std::error::Error::source(status) {
                Some(cause) => with_root_cause(text, cause),
                None => text,
            }
        }
        other => with_causes(other),
    }
}
