//! Small TCP servers with scripted behaviour, good and hostile, for the
//! health tests. Each serves on a listener the test owns and runs until the
//! test's runtime ends.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server does with one connection.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Reads the request, writes these bytes, closes.
    Respond(Vec<u8>),
    /// Reads the request and never answers.
    Silent,
    /// Writes `head`, then one body byte per `every`.
    Drip { head: Vec<u8>, every: Duration },
    /// Writes a 200 head announcing `size` bytes, then the bytes.
    Huge { size: usize },
}

/// An HTTP/1.1 response with a body and `Connection: close`.
pub fn response(status: u16, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nContent-Type: application/json\r\nConnection: close\r\n{extra_headers}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serves `listener`: request number `n` (from 0) gets `script(n)`.
/// Connections that close without a request do not count.
pub fn serve(listener: TcpListener, script: impl Fn(usize) -> Behaviour + Send + Sync + 'static) {
    let script = Arc::new(script);
    let count = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (script, count) = (script.clone(), count.clone());
            tokio::spawn(async move {
                let mut stream = stream;
                if read_request_head(&mut stream).await {
                    handle(stream, script(count.fetch_add(1, Ordering::SeqCst))).await;
                }
            });
        }
    });
}

/// Serves `listener` by closing every connection as soon as it is accepted.
pub fn serve_closing(listener: TcpListener) {
    tokio::spawn(async move { while listener.accept().await.is_ok() {} });
}

async fn handle(mut stream: TcpStream, behaviour: Behaviour) {
    let _ = match behaviour {
        Behaviour::Respond(bytes) => stream.write_all(&bytes).await,
        Behaviour::Silent => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        }
        Behaviour::Drip { head, every } => drip(&mut stream, &head, every).await,
        Behaviour::Huge { size } => huge(&mut stream, size).await,
    };
}

/// Reads up to the end of the request head; false if the peer closed first.
async fn read_request_head(stream: &mut TcpStream) -> bool {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") && seen.len() < 64 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    true
}

async fn drip(stream: &mut TcpStream, head: &[u8], every: Duration) -> std::io::Result<()> {
    stream.write_all(head).await?;
    loop {
        tokio::time::sleep(every).await;
        stream.write_all(b"x").await?;
    }
}

async fn huge(stream: &mut TcpStream, size: usize) -> std::io::Result<()> {
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    let chunk = vec![b'a'; 64 * 1024];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        stream.write_all(&chunk[..n]).await?;
        left -= n;
    }
    Ok(())
}
