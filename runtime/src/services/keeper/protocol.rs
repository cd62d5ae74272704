//! What a keeper and its clients say to each other, and the abstract
//! names they meet at.
//!
//! A client connects to `dynamo-test/keeper/<service>/<port>`. The keeper
//! answers at once with one line, the *hello*:
//!
//! ```text
//! dynamo-test-keeper <protocol> {"service":"etcd","port":2379,...}
//! ```
//!
//! The first two words stay the same in every version; of the JSON,
//! `keeper_pid`, `keeper_uid` and `harness` do too, so that any version
//! can say who runs an instance it cannot join. Then the client sends
//! one request line and reads one answer line (`ok <json>` or
//! `err <text>`):
//! - `use <json>`: this connection is a user until it closes;
//! - `pin <token>` / `unpin <token>`: `dynamo-test up` / `down` keep the
//!   service up without a process (a pin counts as a user);
//! - nothing (closing after the hello): only looking (`dynamo-test ports`).

use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::{json, Value};

use crate::sys::unix_socket;

/// The protocol this harness speaks. A keeper answering with another
/// number is a harness of another version: never joined, never stopped.
pub(crate) const PROTOCOL: u32 = 1;

/// The first word of a hello.
pub(crate) const MAGIC: &str = "dynamo-test-keeper";

/// Prefix of the keepers' listening names.
pub(crate) const KEEPER_PREFIX: &str = "dynamo-test/keeper/";

/// How long a client waits for a keeper's line before giving up on it.
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest line either side accepts.
const MAX_LINE: usize = 64 * 1024;

/// Where the keeper of `service` on `port` listens.
pub(crate) fn keeper_name(service: &str, port: u16) -> String {
    format!("{KEEPER_PREFIX}{service}/{port}")
}

/// The lock serialising starts (and a keeper's stop) of `service` on `port`.
pub(crate) fn start_name(service: &str, port: u16) -> String {
    format!("dynamo-test/start/{service}/{port}")
}

/// Held by a harness-started service process itself (inherited from its
/// keeper): bound while it runs, even if its keeper is gone.
pub(crate) fn service_name(service: &str, port: u16) -> String {
    format!("dynamo-test/service/{service}/{port}")
}

/// `(service, port)` from a keeper name without its prefix (`etcd/2379`).
pub(crate) fn parse_keeper_suffix(suffix: &str) -> Option<(String, u16)> {
    let (service, port) = suffix.split_once('/')?;
    Some((service.to_string(), port.parse().ok()?))
}

/// What a keeper says about itself and its service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeeperInfo {
    pub service: String,
    pub port: u16,
    pub second_port: u16,
    pub keeper_pid: u32,
    pub keeper_uid: u32,
    pub service_pid: u32,
    pub program: String,
    pub log: String,
    pub harness: String,
    pub users: usize,
    pub pins: usize,
    /// `running` or `stopping`.
    pub state: String,
}

impl KeeperInfo {
    /// The hello line (with its newline).
    pub(crate) fn hello(&self) -> String {
        let body = json!({
            "service": self.service,
            "port": self.port,
            "second_port": self.second_port,
            "keeper_pid": self.keeper_pid,
            "keeper_uid": self.keeper_uid,
            "service_pid": self.service_pid,
            "program": self.program,
            "log": self.log,
            "harness": self.harness,
            "users": self.users,
            "pins": self.pins,
            "state": self.state,
        });
        format!("{MAGIC} {PROTOCOL} {body}\n")
    }

    fn from_json(v: &Value) -> Option<KeeperInfo> {
        let text = |k: &str| v[k].as_str().map(str::to_string);
        let number = |k: &str| v[k].as_u64();
        Some(KeeperInfo {
            service: text("service")?,
            port: u16::try_from(number("port")?).ok()?,
            second_port: u16::try_from(number("second_port")?).ok()?,
            keeper_pid: u32::try_from(number("keeper_pid")?).ok()?,
            keeper_uid: u32::try_from(number("keeper_uid")?).ok()?,
            service_pid: u32::try_from(number("service_pid")?).ok()?,
            program: text("program")?,
            log: text("log")?,
            harness: text("harness")?,
            users: usize::try_from(number("users")?).ok()?,
            pins: usize::try_from(number("pins")?).ok()?,
            state: text("state")?,
        })
    }
}

/// A hello, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Hello {
    /// A keeper of this protocol.
    Compatible(KeeperInfo),
    /// A keeper of another protocol: what can be known about who runs it.
    Incompatible {
        protocol: String,
        keeper_pid: Option<u64>,
        keeper_uid: Option<u64>,
        harness: Option<String>,
    },
    /// Not a keeper at all (something else bound the name): its line.
    Stranger(String),
}

impl Hello {
    pub(crate) fn parse(line: &str) -> Hello {
        let line = line.trim_end();
        let mut words = line.splitn(3, ' ');
        let (Some(MAGIC), Some(protocol)) = (words.next(), words.next()) else {
            return Hello::Stranger(shorten(line));
        };
        let body: Value = words
            .next()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        if protocol == PROTOCOL.to_string() {
            if let Some(info) = KeeperInfo::from_json(&body) {
                return Hello::Compatible(info);
            }
        }
        Hello::Incompatible {
            protocol: protocol.to_string(),
            keeper_pid: body["keeper_pid"].as_u64(),
            keeper_uid: body["keeper_uid"].as_u64(),
            harness: body["harness"].as_str().map(str::to_string),
        }
    }
}

fn shorten(text: &str) -> String {
    let cut: String = text.chars().take(120).collect();
    if cut.len() < text.len() {
        format!("{cut}...")
    } else {
        cut
    }
}

/// The outcome of knocking on a keeper's name.
#[derive(Debug)]
pub(crate) enum Contact {
    /// Nothing listens there.
    NoKeeper,
    /// Connected, but the keeper closed before its hello: it is stopping
    /// (it holds the start lock until its service is down).
    Closing,
    /// The keeper's hello, and the connection.
    Answered(Hello, UnixStream),
}

/// Connects to the keeper of `service` on `port` and reads its hello.
/// Blocking: at most [`ANSWER_TIMEOUT`] for the hello.
pub(crate) fn contact(service: &str, port: u16) -> io::Result<Contact> {
    let name = keeper_name(service, port);
    let stream = match unix_socket::connect(&name) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return Ok(Contact::NoKeeper),
        Err(e) => return Err(e),
    };
    stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    match read_line(&stream) {
        Ok(Some(line)) => Ok(Contact::Answered(Hello::parse(&line), stream)),
        Ok(None) => Ok(Contact::Closing),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(Contact::Closing),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the keeper on @{name} accepted but sent no hello within {ANSWER_TIMEOUT:?} \
                     (hung, or not a dynamo-test keeper)"
                ),
            ))
        }
        Err(e) => Err(e),
    }
}

/// Sends one request line and reads the answer: `Ok(Ok(json))` for
/// `ok <json>`, `Ok(Err(text))` for `err <text>`.
pub(crate) fn request(stream: &UnixStream, line: &str) -> io::Result<Result<Value, String>> {
    unix_socket::send_all(stream, format!("{line}\n").as_bytes())?;
    stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    let Some(answer) = read_line(stream)? else {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the keeper closed the connection without answering",
        ));
    };
    Ok(parse_answer(&answer))
}

fn parse_answer(answer: &str) -> Result<Value, String> {
    let answer = answer.trim_end();
    if let Some(body) = answer.strip_prefix("ok") {
        return Ok(serde_json::from_str(body.trim()).unwrap_or(Value::Null));
    }
    Err(answer.strip_prefix("err ").unwrap_or(answer).to_string())
}

/// Reads one line, byte by byte (nothing past the newline is consumed:
/// the next line belongs to the next exchange). `None` at EOF before
/// any byte.
pub(crate) fn read_line(mut stream: &UnixStream) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte) {
            Ok(0) if line.is_empty() => return Ok(None),
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) if line.len() >= MAX_LINE => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"))
            }
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> KeeperInfo {
        KeeperInfo {
            service: "etcd".into(),
            port: 2379,
            second_port: 2380,
            keeper_pid: 42,
            keeper_uid: 1000,
            service_pid: 43,
            program: "/usr/bin/etcd".into(),
            log: "/tmp/a b/etcd-2379.log".into(),
            harness: "0.1.0".into(),
            users: 2,
            pins: 1,
            state: "running".into(),
        }
    }

    #[test]
    fn a_hello_round_trips() {
        let hello = info().hello();
        assert!(hello.starts_with("dynamo-test-keeper 1 {"), "{hello}");
        assert!(hello.ends_with('\n'));
        assert_eq!(Hello::parse(&hello), Hello::Compatible(info()));
    }

    #[test]
    fn another_protocol_still_says_who_runs_it() {
        let line =
            r#"dynamo-test-keeper 7 {"keeper_pid":9,"keeper_uid":0,"harness":"0.9.0","new":true}"#;
        assert_eq!(
            Hello::parse(line),
            Hello::Incompatible {
                protocol: "7".into(),
                keeper_pid: Some(9),
                keeper_uid: Some(0),
                harness: Some("0.9.0".into())
            }
        );
        // Our number with fields missing is no keeper we can join either.
        assert!(matches!(
            Hello::parse("dynamo-test-keeper 1 {}"),
            Hello::Incompatible { .. }
        ));
        assert_eq!(
            Hello::parse("SSH-2.0-OpenSSH\r\n"),
            Hello::Stranger("SSH-2.0-OpenSSH".into())
        );
    }

    #[test]
    fn answers_and_names() {
        assert_eq!(parse_answer("ok {\"users\":3}\n"), Ok(json!({"users": 3})));
        assert_eq!(parse_answer("err not pinned\n"), Err("not pinned".into()));
        assert_eq!(keeper_name("nats", 4222), "dynamo-test/keeper/nats/4222");
        assert_eq!(
            parse_keeper_suffix("nats/4222"),
            Some(("nats".to_string(), 4222))
        );
        assert_eq!(parse_keeper_suffix("nats/x"), None);
    }
}
