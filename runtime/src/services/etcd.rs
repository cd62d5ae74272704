//! `Etcd`: the handle a test gets for etcd.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::cluster::EtcdMember;
use super::instance::{Instance, Source};
use crate::error::Error;
use crate::health::http_client::{Client as HttpClient, Request};
use crate::process::ManagedProcess;

/// etcd for one test: endpoints, ports, the test's key prefix, a few key
/// operations over etcd's JSON gateway, and (isolated mode) stop/start/kill.
///
/// A private cluster (`services(etcd(cluster = 3))`) lists its
/// [`members`](Etcd::members), says which is the [`leader`](Etcd::leader),
/// and takes faults one member at a time ([`member`](Etcd::member)); key
/// operations go to a member that answers.
///
/// Injecting it (`etcd: Etcd`) requires etcd, as `services(etcd)` does.
/// Keys under [`Etcd::key_prefix`] are deleted at teardown.
#[derive(Clone, Debug)]
pub struct Etcd {
    instance: Arc<Instance>,
    http: HttpClient,
}

impl Etcd {
    pub(crate) fn new(instance: Arc<Instance>) -> Etcd {
        Etcd {
            instance,
            http: HttpClient::new(),
        }
    }

    /// The first client URL, e.g. `http://127.0.0.1:2379`.
    pub fn url(&self) -> &str {
        &self.instance.endpoints[0]
    }

    /// Every client URL (what children get as `ETCD_ENDPOINTS`, comma-joined).
    pub fn urls(&self) -> &[String] {
        &self.instance.endpoints
    }

    /// Every client URL: [`Etcd::urls`], by etcd clients' name for it.
    pub fn endpoints(&self) -> &[String] {
        self.urls()
    }

    /// The members of a private cluster, in order (empty for a single etcd).
    pub fn members(&self) -> &[EtcdMember] {
        &self.instance.members
    }

    /// Member `i` of a private cluster, for its faults
    /// (`etcd.member(0)?.kill()`), or an error saying how many there are.
    pub fn member(&self, i: usize) -> Result<&EtcdMember, Error> {
        let members = self.members();
        members.get(i).ok_or_else(|| {
            Error::Service(match members.len() {
                0 => format!(
                    "etcd.member({i}): this etcd is not a cluster; \
                     write #[dynamo_test(services(etcd(cluster = 3)))]"
                ),
                n => format!(
                    "etcd.member({i}): the cluster has {n} members, 0 to {}",
                    n - 1
                ),
            })
        })
    }

    /// Which member of a private cluster leads now (its index in
    /// [`Etcd::members`]): asks each member that answers for its status
    /// (`/v3/maintenance/status`: its own id and its leader's). An error
    /// when no answering member names a leader among the answering ones
    /// (an election is under way, or the quorum is lost), with what each
    /// member said.
    pub async fn leader(&self) -> Result<usize, Error> {
        if self.members().is_empty() {
            return Err(Error::Service(
                "etcd.leader(): this etcd is a single member, which leads itself; \
                 for a cluster write #[dynamo_test(services(etcd(cluster = 3)))]"
                    .into(),
            ));
        }
        let mut ids = Vec::new();
        let mut said = Vec::new();
        for (i, member) in self.members().iter().enumerate() {
            match self.status(&member.client_url()).await {
                Ok(status) => {
                    said.push(format!("{}: {}", member.name(), status.summary()));
                    ids.push((i, status));
                }
                Err(e) => said.push(format!("{}: {e}", member.name())),
            }
        }
        // The leader a majority of all members names: a member that was
        // paused may still name itself (an older term) for a moment.
        let named = |id: &str| {
            ids.iter()
                .filter(|(_, s)| s.leader.as_deref() == Some(id))
                .count()
        };
        let majority = self.members().len() / 2 + 1;
        let found = ids
            .iter()
            .find(|(_, s)| named(&s.member_id) >= majority)
            .map(|(i, _)| *i);
        found.ok_or_else(|| Error::Service(format!("etcd has no leader now: {}", said.join("; "))))
    }

    /// The client port, when the harness knows it (not for `ETCD_ENDPOINTS`;
    /// a cluster's first member's).
    pub fn port(&self) -> Option<u16> {
        self.instance.ports.map(|p| p.client)
    }

    /// The peer port, when the harness knows it (a cluster's first member's).
    pub fn peer_port(&self) -> Option<u16> {
        self.instance.ports.map(|p| p.second)
    }

    /// Where the instance comes from.
    pub fn source(&self) -> Source {
        self.instance.source
    }

    /// This test's key prefix, `/<namespace>/`: keys under it are the
    /// test's own and are deleted at teardown.
    pub fn key_prefix(&self) -> String {
        format!("/{}/", self.instance.namespace)
    }

    /// `key_prefix() + name`.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.key_prefix())
    }

    /// Puts `key` = `value` (through etcd's `/v3/kv/put` gateway).
    pub async fn put(&self, key: &str, value: &str) -> Result<(), Error> {
        self.call(
            "/v3/kv/put",
            json!({"key": base64::encode(key), "value": base64::encode(value)}),
        )
        .await
        .map(|_| ())
    }

    /// The value of `key`, if set (through `/v3/kv/range`).
    pub async fn get(&self, key: &str) -> Result<Option<String>, Error> {
        let reply = self
            .call("/v3/kv/range", json!({"key": base64::encode(key)}))
            .await?;
        let value = reply["kvs"][0]["value"].as_str().and_then(base64::decode);
        Ok(value)
    }

    /// Every `(key, value)` under `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, String)>, Error> {
        let body = json!({"key": base64::encode(prefix), "range_end": base64::encode_bytes(&prefix_end(prefix))});
        let reply = self.call("/v3/kv/range", body).await?;
        let kvs = reply["kvs"].as_array().cloned().unwrap_or_default();
        Ok(kvs
            .iter()
            .filter_map(|kv| {
                Some((
                    base64::decode(kv["key"].as_str()?)?,
                    base64::decode(kv["value"].as_str()?)?,
                ))
            })
            .collect())
    }

    /// At most `limit` keys under `prefix` (values not fetched), and how
    /// many there are in all; keys that are not UTF-8 are shown lossily.
    pub(crate) async fn keys(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<(Vec<String>, u64), Error> {
        let body = json!({
            "key": base64::encode(prefix),
            "range_end": base64::encode_bytes(&prefix_end(prefix)),
            "keys_only": true,
            "limit": limit,
        });
        let reply = self.call("/v3/kv/range", body).await?;
        let keys = reply["kvs"]
            .as_array()
            .map(|kvs| {
                kvs.iter()
                    .filter_map(|kv| base64::decode_lossy(kv["key"].as_str()?))
                    .collect()
            })
            .unwrap_or_default();
        // The gateway writes int64 fields as strings.
        let count = match &reply["count"] {
            Value::String(n) => n.parse().unwrap_or(0),
            n => n.as_u64().unwrap_or(0),
        };
        Ok((keys, count))
    }

    /// Deletes every key under `prefix`; returns how many.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u64, Error> {
        let body = json!({"key": base64::encode(prefix), "range_end": base64::encode_bytes(&prefix_end(prefix))});
        let reply = self.call("/v3/kv/deleterange", body).await?;
        Ok(reply["deleted"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0))
    }

    /// The etcd process, in isolated mode (`None` for a cluster: each
    /// member has its own, see [`Etcd::members`]).
    pub fn process(&self) -> Option<&ManagedProcess> {
        self.instance.process.as_ref()
    }

    /// Stops the isolated instance gracefully (isolated mode only).
    pub async fn stop(&self) -> Result<(), Error> {
        self.instance.stop().await
    }

    /// Starts the isolated instance again on the same ports (and data) and
    /// waits until healthy (isolated mode only).
    pub async fn start(&self) -> Result<(), Error> {
        self.instance.start().await
    }

    /// Kills the isolated instance at once, SIGKILL (isolated mode only).
    pub fn kill(&self) -> Result<(), Error> {
        self.instance.kill()
    }

    /// Freezes the isolated instance (SIGSTOP to its process group): hung,
    /// not dead; its clients' requests stall (isolated mode only).
    pub fn pause(&self) -> Result<(), Error> {
        self.instance.pause()
    }

    /// Lets a paused instance run again, SIGCONT (isolated mode only).
    pub fn resume(&self) -> Result<(), Error> {
        self.instance.resume()
    }

    /// Stops and starts the isolated instance on the same ports and data;
    /// healthy on return (isolated mode only).
    pub async fn restart(&self) -> Result<(), Error> {
        self.instance.restart().await
    }

    /// Waits up to `limit` until it answers its health check again (after a
    /// fault; any mode).
    pub async fn wait_healthy(&self, limit: Duration) -> Result<(), Error> {
        self.instance.wait_healthy(limit).await
    }

    /// A member's own id and its leader's.
    async fn status(&self, base: &str) -> Result<Status, Error> {
        let reply = self
            .call_one(base, "/v3/maintenance/status", json!({}))
            .await
            .map_err(|(_, e)| e)?;
        let field = |v: &Value| v.as_str().map(str::to_string);
        Ok(Status {
            member_id: field(&reply["header"]["member_id"]).unwrap_or_default(),
            leader: field(&reply["leader"]).filter(|l| l != "0"),
            errors: reply["errors"]
                .as_array()
                .map(|a| a.iter().filter_map(field).collect())
                .unwrap_or_default(),
        })
    }

    /// Calls `path` on the first endpoint that can be reached: a member
    /// that refuses the connection (killed, stopped) or does not answer in
    /// time (paused: after the 5 s request limit) is skipped; so is one that
    /// answers with a passing election error (`leader changed`, `no
    /// leader`, `request timed out`: a cluster electing), for up to
    /// [`ELECTION_PATIENCE`]; any other answer (even an error) is final.
    async fn call(&self, path: &str, body: Value) -> Result<Value, Error> {
        let deadline = std::time::Instant::now() + ELECTION_PATIENCE;
        loop {
            let mut failures = Vec::new();
            let mut electing = false;
            for base in self.urls() {
                match self.call_one(base, path, body.clone()).await {
                    Ok(reply) => return Ok(reply),
                    Err((Reached::Yes, e)) if is_election(&e) => {
                        electing = true;
                        failures.push(e.to_string());
                    }
                    Err((Reached::Yes, e)) => return Err(e),
                    Err((Reached::No, e)) => failures.push(e.to_string()),
                }
            }
            if !electing || std::time::Instant::now() >= deadline {
                return Err(Error::Service(failures.join("; ")));
            }
            crate::sys::real_time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn call_one(
        &self,
        base: &str,
        path: &str,
        body: Value,
    ) -> Result<Value, (Reached, Error)> {
        let url = format!("{base}{path}");
        let failed = |why: String| Error::Service(format!("etcd {url}: {why}"));
        let request =
            Request::post(&url, body.to_string()).map_err(|e| (Reached::Yes, failed(e)))?;
        let response = self
            .http
            .send(&request, Duration::from_secs(5), MAX_REPLY)
            .await
            .map_err(|e| (Reached::No, failed(e.to_string())))?;
        let status = response.status;
        let text = response.text().map_err(|e| (Reached::Yes, failed(e)))?;
        if !status.is_success() {
            return Err((Reached::Yes, failed(format!("HTTP {status}: {text}"))));
        }
        serde_json::from_str(&text)
            .map_err(|e| (Reached::Yes, failed(format!("bad JSON ({e}): {text}"))))
    }
}

/// Whether a call got an answer (final) or not (try another member).
enum Reached {
    Yes,
    No,
}

/// What a member says of itself in `/v3/maintenance/status`.
struct Status {
    member_id: String,
    /// `None`: it knows no leader.
    leader: Option<String>,
    /// etcd's own words, e.g. `etcdserver: no leader`.
    errors: Vec<String>,
}

impl Status {
    fn summary(&self) -> String {
        match (&self.leader, self.errors.is_empty()) {
            (Some(leader), true) => format!("id {} follows {leader}", self.member_id),
            (_, false) => self.errors.join("; "),
            (None, true) => "names no leader".to_string(),
        }
    }
}

/// The largest gateway reply read (a test's keys are few and small).
const MAX_REPLY: usize = 16 << 20;

/// The end of the key range that holds every key starting with `prefix`.
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // every key
}

/// How long a call waits out a cluster's election (each member answering
/// an election error) before it gives up.
const ELECTION_PATIENCE: Duration = Duration::from_secs(10);

/// Whether an answer is an error of a cluster electing a leader, which
/// passes: worth asking again.
fn is_election(e: &Error) -> bool {
    let text = e.to_string().to_lowercase();
    [
        "leader changed",
        "no leader",
        "request timed out",
        "too many requests",
    ]
    .iter()
    .any(|passing| text.contains(passing))
}

/// etcd's gateway takes and gives bytes fields in standard base64.
mod base64 {
    use ::base64::engine::general_purpose::STANDARD;
    use ::base64::Engine as _;

    pub(super) fn encode(text: &str) -> String {
        STANDARD.encode(text)
    }

    pub(super) fn encode_bytes(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }

    /// `None` for bad base64 or bytes that are not UTF-8.
    pub(super) fn decode(text: &str) -> Option<String> {
        String::from_utf8(STANDARD.decode(text).ok()?).ok()
    }

    /// `None` for bad base64; bytes that are not UTF-8 replaced.
    pub(super) fn decode_lossy(text: &str) -> Option<String> {
        Some(String::from_utf8_lossy(&STANDARD.decode(text).ok()?).into_owned())
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn round_trips() {
            for s in ["", "f", "fo", "foo", "foob", "/ns-1/key"] {
                assert_eq!(super::decode(&super::encode(s)).as_deref(), Some(s));
            }
            assert_eq!(super::encode("foob"), "Zm9vYg==");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_next_key() {
        assert_eq!(prefix_end("/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
    }
}
