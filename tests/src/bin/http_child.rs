//! `http_child PORT [DELAY_MS]`: after DELAY_MS, serves `200 {"status":"ok"}`
//! on 127.0.0.1:PORT to every request, logging each to stdout. A stand-in
//! server for the process tests.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = match args.next().map(|p| p.parse()) {
        Some(Ok(p)) => p,
        _ => {
            eprintln!("usage: http_child PORT [DELAY_MS]");
            std::process::exit(2);
        }
    };
    let delay: u64 = args.next().and_then(|d| d.parse().ok()).unwrap_or(0);
    println!("http_child starting, listening in {delay} ms");
    std::thread::sleep(Duration::from_millis(delay));
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("http_child: cannot bind 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    };
    println!("http_child listening on 127.0.0.1:{port}");
    for stream in listener.incoming().flatten() {
        let mut reader = BufReader::new(&stream);
        let mut request_line = String::new();
        let _ = reader.read_line(&mut request_line);
        let mut line = String::new();
        while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
            line.clear();
        }
        println!("request: {}", request_line.trim());
        let body = r#"{"status":"ok"}"#;
        let _ = write!(
            &stream,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}
