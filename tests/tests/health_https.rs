//! HTTPS through rustls: a real TLS server with a self-signed certificate,
//! probed without trusting it (a clear certificate error) and with it
//! trusted (ready).

use std::sync::Arc;
use std::time::{Duration, Instant};

use dynamo_test::health;
use dynamo_test::{dynamo_test, Port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

/// Serves `200 {}` over TLS on the reserved port; returns the certificate (PEM).
fn serve_tls(port: Port) -> String {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let pem = certified.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = port.into_tokio_listener().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 2048];
                let _ = tls.read(&mut buf).await;
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    pem
}

#[dynamo_test(timeout = "30s")]
async fn https_with_an_untrusted_certificate_says_so(api: Port) {
    let url = format!("https://localhost:{api}/health");
    serve_tls(api);
    let limit = Duration::from_millis(500);
    let started = Instant::now();
    let err = health::http(&url).wait(limit).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        took <= limit + Duration::from_millis(200),
        "wait took {took:?}, limit {limit:?}: {err}"
    );
    assert!(err.history.to_lowercase().contains("certificate"), "{err}");
}

#[dynamo_test(timeout = "30s")]
async fn https_with_the_certificate_trusted_is_ready(api: Port) {
    let url = format!("https://localhost:{api}/health");
    let pem = serve_tls(api);
    let ready = health::http(&url)
        .root_certificate_pem(pem)
        .expect_body_contains("{}")
        .wait(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(ready.attempts, 1);
}
