//! A minimal NATS client (the text protocol: CONNECT, PUB, SUB, MSG,
//! PING/PONG), enough for tests to send real messages through a real
//! nats-server without pulling a client crate into the build.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// A connection to a NATS server.
pub struct NatsClient {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its subject.
    pub subject: String,
    /// Its payload.
    pub payload: Vec<u8>,
}

impl NatsClient {
    /// Connects to `url` (`nats://host:port`) and completes the handshake.
    pub async fn connect(url: &str) -> std::io::Result<NatsClient> {
        let addr = url.trim_start_matches("nats://");
        let (read, writer) = TcpStream::connect(addr).await?.into_split();
        let mut client = NatsClient {
            reader: BufReader::new(read),
            writer,
        };
        let info = client.line().await?;
        if !info.starts_with("INFO ") {
            return Err(std::io::Error::other(format!(
                "expected INFO, got {info:?}"
            )));
        }
        client
            .send(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n")
            .await?;
        client.expect_pong().await?;
        Ok(client)
    }

    /// Subscribes to `subject` with subscription id `sid`, and waits until
    /// the server has processed it.
    pub async fn subscribe(&mut self, subject: &str, sid: u32) -> std::io::Result<()> {
        self.send(format!("SUB {subject} {sid}\r\nPING\r\n").as_bytes())
            .await?;
        self.expect_pong().await
    }

    /// Publishes `payload` on `subject`.
    pub async fn publish(&mut self, subject: &str, payload: &[u8]) -> std::io::Result<()> {
        let mut frame = format!("PUB {subject} {}\r\n", payload.len()).into_bytes();
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\n");
        self.send(&frame).await
    }

    /// The next message, answering server PINGs meanwhile.
    pub async fn next_message(&mut self, limit: Duration) -> std::io::Result<Message> {
        tokio::time::timeout(limit, self.read_message())
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no message"))?
    }

    async fn read_message(&mut self) -> std::io::Result<Message> {
        loop {
            let line = self.line().await?;
            if line == "PING" {
                self.send(b"PONG\r\n").await?;
                continue;
            }
            let Some(rest) = line.strip_prefix("MSG ") else {
                continue; // +OK, PONG, INFO updates
            };
            let parts: Vec<&str> = rest.split_whitespace().collect();
            let size: usize = parts
                .last()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| std::io::Error::other(line.clone()))?;
            let mut payload = vec![0; size + 2];
            self.reader.read_exact(&mut payload).await?;
            payload.truncate(size);
            return Ok(Message {
                subject: parts[0].to_string(),
                payload,
            });
        }
    }

    async fn expect_pong(&mut self) -> std::io::Result<()> {
        loop {
            match self.line().await?.as_str() {
                "PONG" => return Ok(()),
                "PING" => self.send(b"PONG\r\n").await?,
                err if err.starts_with("-ERR") => {
                    return Err(std::io::Error::other(err.to_string()))
                }
                _ => {}
            }
        }
    }

    async fn line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        Ok(line.trim_end().to_string())
    }

    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes).await
    }
}
