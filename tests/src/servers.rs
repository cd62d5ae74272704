//! Small TCP servers with scripted behaviour, good and hostile, for the
//! health tests. Each serves on a listener the test owns and runs until the
//! test's runtime ends.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
    serve_requests(listener, move |n, _| script(n));
}

/// Like [`serve`], and `script` also sees the request received: its head
/// and body as text (lossy UTF-8).
pub fn serve_requests(
    listener: TcpListener,
    script: impl Fn(usize, &str) -> Behaviour + Send + Sync + 'static,
) {
    let script = Arc::new(script);
    let count = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (script, count) = (script.clone(), count.clone());
            tokio::spawn(async move {
                let mut stream = stream;
                if let Some(request) = read_request(&mut stream).await {
                    let n = count.fetch_add(1, Ordering::SeqCst);
                    handle(stream, script(n, &request)).await;
                }
            });
        }
    });
}

/// The requests a recording server received, in order of arrival.
#[derive(Clone, Default)]
pub struct Requests(Arc<Mutex<Vec<String>>>);

impl Requests {
    /// The requests so far (head and body as text).
    pub fn texts(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How many requests arrived so far.
    pub fn count(&self) -> usize {
        self.texts().len()
    }
}

/// Serves `behaviour` to every request and records what arrived.
pub fn serve_recording(listener: TcpListener, behaviour: Behaviour) -> Requests {
    let requests = Requests::default();
    let seen = requests.clone();
    serve_requests(listener, move |_, request| {
        seen.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(request.to_string());
        behaviour.clone()
    });
    requests
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

/// Largest request read; the probes under test send small ones.
const MAX_REQUEST: usize = 64 * 1024;

/// Reads the request head and its `Content-Length` body; `None` if the
/// peer closed before the head was complete.
async fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    let head_end = loop {
        if let Some(i) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if seen.len() >= MAX_REQUEST {
            break seen.len();
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    };
    let want = head_end + content_length(&seen[..head_end]).min(MAX_REQUEST);
    while seen.len() < want {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    Some(String::from_utf8_lossy(&seen).into_owned())
}

/// The `Content-Length` of a request head (0 if absent or unreadable).
fn content_length(head: &[u8]) -> usize {
    String::from_utf8_lossy(head)
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0)
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
