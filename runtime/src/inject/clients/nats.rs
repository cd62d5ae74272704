//! `async_nats::Client` as a test parameter (feature `async-nats`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};
use tokio::sync::watch;

use super::with_causes;
use crate::context::{TestContext, WeakContext};
use crate::error::Error;
use crate::inject::Inject;
use crate::services::{Nats, Source};
use crate::sys::real_time;

/// How long the first connection may take during setup, on the real clock
/// (async-nats's own limit, 5 s, is on tokio's).
const CONNECT_LIMIT: Duration = Duration::from_secs(10);

/// How long the drain at teardown may take, on the real clock.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// An [`async_nats::Client`] connected to the test's NATS (feature
/// `async-nats`).
///
/// The NATS is the one a [`Nats`] parameter gets: the test's
/// `services(nats(..))` (shared, isolated, `no_jetstream`), else the shared
/// one, or `NATS_SERVER` when set. The connection is named after the test
/// ([`TestContext::name`]: the server's `/connz` shows it), the first
/// connection is made during setup (a server that does not answer as NATS
/// fails setup, before the body), and the client is drained at teardown:
/// its subscriptions end and what it still has to send is flushed, before
/// the test's services stop.
///
/// The client is async-nats's own, with its default options otherwise: when
/// the server goes away (`nats.stop()`, `nats.restart()`) it reconnects by
/// itself with its back-off (at most 4 s between attempts) and subscribes
/// again; what is published meanwhile waits in the client. Its
/// disconnections and reconnections appear in the test's log.
///
/// ```
/// use dynamo_test::{dynamo_test, Nats};
/// use futures_util::StreamExt;
///
/// #[dynamo_test(services(nats(isolated)))]
/// async fn round_trip(client: async_nats::Client, nats: Nats) {
///     let mut sub = client.subscribe(nats.subject("jobs")).await.unwrap();
///     client.publish(nats.subject("jobs"), "one".into()).await.unwrap();
///     assert_eq!(sub.next().await.unwrap().payload, "one");
/// }
/// # fn main() {}
/// ```
impl Inject for Client {
    async fn inject(ctx: &TestContext, param: &str) -> Result<Self, Error> {
        let nats = <Nats as Inject>::inject(ctx, param).await?;
        let servers = nats.urls().to_vec();
        let (closed, closed_seen) = watch::channel(false);
        let options = ConnectOptions::new()
            .name(ctx.name())
            .event_callback(on_event(ctx.downgrade(), param.to_string(), closed));
        let connected = real_time::timeout(CONNECT_LIMIT, options.connect(servers.clone())).await;
        let client = match connected {
            Some(Ok(client)) => client,
            Some(Err(e)) => return Err(Error::Service(not_connected(&nats, &with_causes(&e)))),
            None => {
                let why = format!("no connection within {CONNECT_LIMIT:?}");
                return Err(Error::Service(not_connected(&nats, &why)));
            }
        };
        ctx.note(&format!(
            "NATS client `{param}` connected to {} as `{}`",
            servers.join(","),
            ctx.name()
        ));
        let (c, p) = (client.clone(), param.to_string());
        let weak = ctx.downgrade();
        ctx.defer(format!("drain the NATS client `{param}`"), async move {
            drain(c, closed_seen, &p, weak).await;
        });
        Ok(client)
    }
}

/// The client's event callback: reconnections, disconnections and errors
/// go to the test's log (the first connection is the setup's own line);
/// `Closed` (a drain's end) is signalled.
fn on_event(
    ctx: WeakContext,
    param: String,
    closed: watch::Sender<bool>,
) -> impl Fn(Event) -> std::future::Ready<()> + Send + Sync + 'static {
    let connected_before = AtomicBool::new(false);
    move |event| {
        let line = match event {
            Event::Closed => {
                closed.send_replace(true);
                None
            }
            Event::Draining => None,
            Event::Connected if !connected_before.swap(true, Ordering::SeqCst) => None,
            Event::Connected => Some("reconnected".to_string()),
            other => Some(other.to_string()),
        };
        if let (Some(line), Some(ctx)) = (line, ctx.upgrade()) {
            ctx.note(&format!("NATS client `{param}`: {line}"));
        }
        std::future::ready(())
    }
}

/// Drains `client` and waits for its connection to close, at most
/// [`DRAIN_LIMIT`]. A client the test closed itself is left alone; one
/// that cannot drain (its server stopped by the test) is noted, not
/// failed: its test may have meant it.
async fn drain(client: Client, mut closed: watch::Receiver<bool>, param: &str, ctx: WeakContext) {
    if *closed.borrow() {
        return; // drained or closed by the test
    }
    let drained = real_time::timeout(DRAIN_LIMIT, async {
        if client.drain().await.is_err() {
            return Ok(()); // the connection is gone already
        }
        closed
            .wait_for(|c| *c)
            .await
            .map(drop)
            .map_err(|_| "its event task ended before the connection closed".to_string())
    })
    .await;
    let problem = match drained {
        Some(Ok(())) => return,
        Some(Err(why)) => why,
        None => format!(
            "not closed within {DRAIN_LIMIT:?} (connection {}: a server the test stopped \
             cannot take a drain)",
            client.connection_state()
        ),
    };
    if let Some(ctx) = ctx.upgrade() {
        ctx.note(&format!("NATS client `{param}` not drained: {problem}"));
    }
}

/// The setup error: where the client tried, what it saw, what to do.
fn not_connected(nats: &Nats, why: &str) -> String {
    let what_to_do = match nats.source() {
        Source::FromEnv => "the URLs come from NATS_SERVER: each must be a nats-server's client \
             URL (nats://host:4222; a TCP port that accepts is not enough); fix or unset \
             NATS_SERVER"
            .to_string(),
        Source::SharedExternal => "this NATS was already on the plan's fixed port and the \
             harness did not start it: check that it is a nats-server, or stop it so that the \
             harness runs its own"
            .to_string(),
        Source::SharedStarted => format!(
            "the harness started this NATS (shared) and found it healthy; its log: {}",
            super::shared_log("nats", nats.port())
        ),
        Source::Isolated => match nats.process() {
            Some(process) => format!(
                "the harness started this NATS for the test and found it healthy; its log: {}",
                process.log_path().display()
            ),
            None => "the harness started this NATS for the test and found it healthy".into(),
        },
    };
    format!(
        "expected the NATS client to connect to the test's NATS at {} during setup: {why}\n\
         {what_to_do}",
        nats.urls().join(",")
    )
}
