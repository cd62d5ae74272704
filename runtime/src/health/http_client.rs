//! A small HTTP/1.1 client for the probes and etcd's JSON gateway.
//!
//! One connection per request (no pool, no proxy), the body read up to a
//! cap, everything within one timeout; redirects are the caller's to
//! follow ([`Request::redirected`] says where). Loopback names are
//! connected on 127.0.0.1 and ::1 explicitly, and a connection refused on
//! every address is [`Error::Refused`] before any HTTP work, so polling a
//! server that is not up yet stays cheap. HTTPS (rustls with ring, the
//! webpki roots plus the caller's own) needs the `https` feature; without
//! it an `https://` request is [`Error::Fatal`].
//!
//! Built on hyper's `client::conn::http1` rather than a general client
//! (reqwest, url, a TLS stack): every user of the crate compiles this, for
//! probes that mostly target loopback (BENCHMARKS.md, "Build weight").

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, StatusCode, Uri};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::target::addresses;
use super::tcp::{connect_any, REFUSED};

/// What an `https://` request answers in a build without the `https` feature.
pub(crate) const HTTPS_NEEDS_FEATURE: &str = "HTTPS is not compiled in: enable the `https` \
     feature of dynamo-test (dynamo-test = { ..., features = [\"https\"] } in Cargo.toml)";

/// An `http://` or `https://` URL, reduced to what a request needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Url {
    https: bool,
    /// The host, lowercase; an IPv6 literal keeps its brackets (`[::1]`).
    host: String,
    port: u16,
    /// The request target: path and query, at least `/`.
    target: String,
}

impl Url {
    /// Parses `text`; the error is a whole sentence naming the URL.
    pub(crate) fn parse(text: &str) -> Result<Url, String> {
        let bad = |why: &dyn fmt::Display| format!("bad URL {text:?}: {why}");
        let uri: Uri = text.parse().map_err(|e| bad(&e))?;
        let https = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => false,
            Some(s) if s.eq_ignore_ascii_case("https") => true,
            Some(s) => return Err(format!("unsupported URL scheme {s:?} (use http or https)")),
            None => return Err(bad(&"no scheme (use http:// or https://)")),
        };
        let Some(authority) = uri.authority() else {
            return Err(bad(&"no host"));
        };
        if authority.as_str().contains('@') {
            return Err(bad(
                &"user info (user:password@) is not supported: send an Authorization header",
            ));
        }
        let host = authority.host().to_ascii_lowercase();
        if host.is_empty() {
            return Err(bad(&"no host"));
        }
        if let Some(v6) = host.strip_prefix('[') {
            let literal = v6.strip_suffix(']').unwrap_or(v6);
            if literal.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad(&format!("{host} is not an IPv6 address")));
            }
        }
        // `Authority::port` is `None` for a port that is no u16 too.
        let after_host = authority.as_str().get(authority.host().len()..);
        let port = match after_host.unwrap_or_default().strip_prefix(':') {
            None | Some("") if https => 443,
            None | Some("") => 80,
            Some(port) => port
                .parse()
                .map_err(|_| bad(&format!("bad port {port:?}")))?,
        };
        let target = match uri.path_and_query().map(|pq| pq.as_str()) {
            None | Some("") => "/".to_string(),
            Some(pq) if pq.starts_with('/') => pq.to_string(),
            Some(pq) => format!("/{pq}"),
        };
        Ok(Url {
            https,
            host,
            port,
            target,
        })
    }

    /// The URL `location` (a `Location` header: absolute or relative)
    /// points to, seen from this one.
    pub(crate) fn join(&self, location: &str) -> Result<Url, String> {
        let location = location.split('#').next().unwrap_or_default().trim();
        if has_scheme(location) {
            return Url::parse(location);
        }
        if location.starts_with("//") {
            return Url::parse(&format!("{}:{location}", self.scheme()));
        }
        let path = self.target.split('?').next().unwrap_or("/");
        let target = if location.is_empty() {
            self.target.clone()
        } else if location.starts_with('/') {
            location.to_string()
        } else if location.starts_with('?') {
            format!("{path}{location}")
        } else {
            let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
            format!("{dir}{location}")
        };
        Url::parse(&format!(
            "{}{}",
            self.origin(),
            remove_dot_segments(&target)
        ))
    }

    fn scheme(&self) -> &'static str {
        if self.https {
            "https"
        } else {
            "http"
        }
    }

    /// `host` or `host:port`, the port only when it is not the scheme's default.
    fn authority(&self) -> String {
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// `scheme://authority`.
    fn origin(&self) -> String {
        format!("{}://{}", self.scheme(), self.authority())
    }

    fn same_origin(&self, other: &Url) -> bool {
        self.https == other.https && self.host == other.host && self.port == other.port
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.origin(), self.target)
    }
}

/// Whether `text` starts with `scheme:` (a letter, then letters, digits,
/// `+`, `-` or `.`), i.e. is an absolute URL.
fn has_scheme(text: &str) -> bool {
    let Some((scheme, _)) = text.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Resolves `.` and `..` segments of a request target's path (RFC 3986, 5.2.4).
fn remove_dot_segments(target: &str) -> String {
    let (path, query) = target.split_at(target.find('?').unwrap_or(target.len()));
    if !path.split('/').any(|s| s == "." || s == "..") {
        return target.to_string();
    }
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let mut out: Vec<&str> = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {}
            ".." => {
                out.pop();
            }
            s => {
                out.push(s);
                continue;
            }
        }
        if last {
            out.push("");
        }
    }
    format!("/{}{query}", out.join("/"))
}

/// One request: method, URL, headers and body.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub(crate) method: Method,
    pub(crate) url: Url,
    /// Sent as given; `Host` and `Accept: */*` are added unless present.
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Request {
    /// A request without headers or body.
    pub(crate) fn new(method: Method, url: Url) -> Request {
        Request {
            method,
            url,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// A `POST` of `body` to `url`.
    pub(crate) fn post(url: &str, body: impl Into<Bytes>) -> Result<Request, String> {
        let mut request = Request::new(Method::POST, Url::parse(url)?);
        request.body = body.into();
        Ok(request)
    }

    /// The request to send next if `response` redirects (301, 302, 303,
    /// 307, 308 with a usable `Location`), as browsers do: 301-303 turn
    /// into a bodiless `GET` (`HEAD` stays), 307 and 308 keep method and
    /// body; credentials are not sent to another origin. `None` if the
    /// response is not a redirect to follow.
    pub(crate) fn redirected(&self, response: &Response) -> Option<Request> {
        let status = response.status.as_u16();
        if !matches!(status, 301 | 302 | 303 | 307 | 308) {
            return None;
        }
        let location = response.headers.get(header::LOCATION)?.to_str().ok()?;
        let url = self.url.join(location).ok()?;
        let mut next = self.clone();
        if status <= 303 {
            next.body = Bytes::new();
            for name in [
                header::TRANSFER_ENCODING,
                header::CONTENT_ENCODING,
                header::CONTENT_TYPE,
                header::CONTENT_LENGTH,
            ] {
                next.headers.remove(name);
            }
            if next.method != Method::HEAD {
                next.method = Method::GET;
            }
        }
        if !url.same_origin(&self.url) {
            for name in [
                header::AUTHORIZATION,
                header::COOKIE,
                HeaderName::from_static("cookie2"),
                header::PROXY_AUTHORIZATION,
                header::WWW_AUTHENTICATE,
            ] {
                next.headers.remove(name);
            }
        }
        next.url = url;
        Some(next)
    }

    /// The request in hyper's terms: origin-form target, `Host` added.
    fn to_hyper(&self) -> Result<hyper::Request<Full<Bytes>>, Error> {
        let uri: Uri =
            self.url.target.parse().map_err(|e| {
                Error::Fatal(format!("bad request target {:?}: {e}", self.url.target))
            })?;
        let host = HeaderValue::from_str(&self.url.authority())
            .map_err(|e| Error::Fatal(format!("bad host {:?}: {e}", self.url.host)))?;
        let mut request = hyper::Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = uri;
        *request.headers_mut() = self.headers.clone();
        let headers = request.headers_mut();
        if !headers.contains_key(header::HOST) {
            headers.insert(header::HOST, host);
        }
        if !headers.contains_key(header::ACCEPT) {
            headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        }
        Ok(request)
    }
}

/// An answer: status, headers, and the body up to the cap.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    /// The body, or its first `max_body` bytes when `truncated`.
    pub(crate) body: Vec<u8>,
    /// Whether the body was longer than the cap (and was cut there).
    pub(crate) truncated: bool,
}

impl Response {
    /// The whole body as text (lossy UTF-8); an error if it was cut.
    pub(crate) fn text(&self) -> Result<String, String> {
        if self.truncated {
            return Err(format!(
                "reply larger than the {} byte cap",
                self.body.len()
            ));
        }
        Ok(String::from_utf8_lossy(&self.body).into_owned())
    }
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Error {
    /// Every address refused the connection: nothing listens (yet).
    Refused,
    /// No whole answer within the timeout (connect included).
    Timeout(Duration),
    /// The request cannot work as given, and waiting will not change that
    /// (HTTPS without the `https` feature, a bad root certificate).
    Fatal(String),
    /// Anything else on the way: resolving, connecting, TLS, HTTP, I/O.
    Failed(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Refused => f.write_str(REFUSED),
            Error::Timeout(after) => write!(f, "timed out after {after:?}"),
            Error::Fatal(why) | Error::Failed(why) => f.write_str(why),
        }
    }
}

/// The client: the caller's extra root certificates and, with the `https`
/// feature, the TLS configuration built from them on first use (shared by
/// clones). Cheap to create and to clone.
#[derive(Clone, Default)]
pub(crate) struct Client {
    /// Extra trusted roots, PEM (used with the `https` feature only).
    roots: Vec<Vec<u8>>,
    #[cfg(feature = "https")]
    tls: std::sync::Arc<std::sync::OnceLock<Result<std::sync::Arc<tls::ClientConfig>, String>>>,
}

impl Client {
    /// A client that trusts the webpki roots (for HTTPS).
    pub(crate) fn new() -> Client {
        Client::default()
    }

    /// Also trusts the certificates in `pem` (HTTPS only).
    pub(crate) fn add_root_pem(&mut self, pem: Vec<u8>) {
        self.roots.push(pem);
        #[cfg(feature = "https")]
        {
            // A configuration built before does not have this root.
            self.tls = Default::default();
        }
    }

    /// Sends `request` on a new connection and reads the answer, its body
    /// up to `max_body` bytes, all within `timeout`.
    pub(crate) async fn send(
        &self,
        request: &Request,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Response, Error> {
        if request.url.https && !cfg!(feature = "https") {
            return Err(Error::Fatal(HTTPS_NEEDS_FEATURE.into()));
        }
        let exchange = self.connect_and_exchange(request, timeout, max_body);
        match crate::sys::real_time::timeout(timeout, exchange).await {
            Some(result) => result,
            None => Err(Error::Timeout(timeout)),
        }
    }

    async fn connect_and_exchange(
        &self,
        request: &Request,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Response, Error> {
        let url = &request.url;
        let targets = addresses(&url.host, url.port)
            .await
            .map_err(Error::Failed)?;
        let tcp = connect_any(&targets, timeout).await.map_err(|e| {
            if e == REFUSED {
                Error::Refused
            } else {
                Error::Failed(e)
            }
        })?;
        // Built once connected: a refused attempt does nothing more.
        let request = request.to_hyper()?;
        #[cfg(feature = "https")]
        if url.https {
            let stream = tls::connect(self, url, tcp).await?;
            return exchange(stream, request, max_body).await;
        }
        exchange(tcp, request, max_body).await
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("extra_roots", &self.roots.len())
            .finish_non_exhaustive()
    }
}

/// One HTTP/1.1 exchange on `io`, driving the connection in this task (no
/// spawn): when the caller stops waiting, the connection is dropped with it.
async fn exchange<S>(
    io: S,
    request: hyper::Request<Full<Bytes>>,
    max_body: usize,
) -> Result<Response, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(Io(io))
        .await
        .map_err(|e| Error::Failed(describe(&e)))?;
    let answer = async move {
        let response = sender.send_request(request).await?;
        let (head, body) = response.into_parts();
        let (body, truncated) = read_capped(body, max_body).await?;
        Ok::<_, hyper::Error>(Response {
            status: head.status,
            headers: head.headers,
            body,
            truncated,
        })
    };
    tokio::pin!(answer);
    tokio::pin!(conn);
    let mut conn_error = None;
    let mut driving = true;
    loop {
        tokio::select! {
            result = &mut answer => {
                // The connection's own error says more than "canceled".
                let failed = |e: hyper::Error| conn_error.unwrap_or_else(|| describe(&e));
                return result.map_err(|e| Error::Failed(failed(e)));
            }
            done = &mut conn, if driving => {
                driving = false;
                conn_error = done.err().map(|e| describe(&e));
            }
        }
    }
}

/// Reads `body` up to `max` bytes: the bytes, and whether there were more.
async fn read_capped(mut body: Incoming, max: usize) -> Result<(Vec<u8>, bool), hyper::Error> {
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(chunk) = frame?.into_data() else {
            continue; // trailers
        };
        let room = max.saturating_sub(bytes.len());
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            return Ok((bytes, true));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok((bytes, false))
}

/// What went wrong in hyper: the error and its causes, joined with ": ";
/// for a request canceled by its connection, only the connection's cause.
fn describe(e: &hyper::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) if e.is_canceled() => chain(cause),
        _ => chain(e),
    }
}

/// An error and its causes, joined with ": ".
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A tokio stream as hyper's I/O. Reads copy through a small buffer, which
/// keeps the adapter free of `unsafe` (hyper's cursor only advances
/// unsafely); a probe's answers are small.
struct Io<S>(S);

impl<S: AsyncRead + Unpin> hyper::rt::Read for Io<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let mut scratch = [0u8; 8192];
        let room = buf.remaining().min(scratch.len());
        let mut read = ReadBuf::new(&mut scratch[..room]);
        match Pin::new(&mut self.0).poll_read(cx, &mut read) {
            Poll::Ready(Ok(())) => {
                buf.put_slice(read.filled());
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> hyper::rt::Write for Io<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
}

/// TLS through rustls (ring), trusting the webpki roots and the client's own.
#[cfg(feature = "https")]
mod tls {
    use std::sync::Arc;

    use tokio::net::TcpStream;
    use tokio_rustls::client::TlsStream;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    pub(super) use tokio_rustls::rustls::ClientConfig;
    use tokio_rustls::rustls::RootCertStore;

    use super::{Client, Error, Url};

    /// The TLS session over `tcp` for `url`'s host.
    pub(super) async fn connect(
        client: &Client,
        url: &Url,
        tcp: TcpStream,
    ) -> Result<TlsStream<TcpStream>, Error> {
        let config = client
            .tls
            .get_or_init(|| config(&client.roots))
            .clone()
            .map_err(Error::Fatal)?;
        let host = url.host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| Error::Fatal(format!("{host:?} is not a TLS server name: {e}")))?;
        tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| Error::Failed(format!("TLS handshake: {e}")))
    }

    fn config(roots: &[Vec<u8>]) -> Result<Arc<ClientConfig>, String> {
        let mut store: RootCertStore = webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect();
        for pem in roots {
            let mut found = 0;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("bad root certificate: {e}"))?;
                store
                    .add(cert)
                    .map_err(|e| format!("bad root certificate: {e}"))?;
                found += 1;
            }
            if found == 0 {
                return Err("bad root certificate: no CERTIFICATE in the PEM text".into());
            }
        }
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(store)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn a_root_must_be_a_certificate() {
            assert!(super::config(&[]).is_ok());
            let err = super::config(&[b"junk".to_vec()]).unwrap_err();
            assert_eq!(err, "bad root certificate: no CERTIFICATE in the PEM text");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn urls_are_split() {
        let u = url("http://LocalHost:8000/health?x=1");
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("localhost", 8000, "/health?x=1")
        );
        assert!(!u.https);
        let u = url("https://[::1]/");
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("[::1]", 443, "/")
        );
        assert!(u.https);
        assert_eq!(url("http://127.0.0.1").target, "/");
        assert_eq!(url("http://h?q").target, "/?q");
        assert_eq!(url("http://h:80/a").to_string(), "http://h/a");
        assert_eq!(url("http://[::1]:9/a").to_string(), "http://[::1]:9/a");
    }

    #[test]
    fn bad_urls_say_why() {
        let err = |text: &str| Url::parse(text).unwrap_err();
        assert_eq!(
            err("ftp://x/"),
            r#"unsupported URL scheme "ftp" (use http or https)"#
        );
        assert!(err("not a url").starts_with(r#"bad URL "not a url": "#));
        assert!(err("/health").contains("no scheme"), "{}", err("/health"));
        assert!(err("http://u:p@h/").contains("user info"));
        assert!(err("http://[zz]/").contains("not an IPv6 address"));
        assert!(err("http://h:99999/").starts_with("bad URL"));
    }

    #[test]
    fn locations_are_joined() {
        let base = url("http://h:81/a/b?q");
        let join = |loc: &str| base.join(loc).unwrap().to_string();
        assert_eq!(join("/c"), "http://h:81/c");
        assert_eq!(join("c"), "http://h:81/a/c");
        assert_eq!(join("../c"), "http://h:81/c");
        assert_eq!(join("./"), "http://h:81/a/");
        assert_eq!(join("?r"), "http://h:81/a/b?r");
        assert_eq!(join("#frag"), "http://h:81/a/b?q");
        assert_eq!(join("//other/x"), "http://other/x");
        assert_eq!(join("https://[::1]:8443/y"), "https://[::1]:8443/y");
        assert!(base.join("ftp://x/").is_err());
    }

    fn answer(status: u16, location: Option<&str>) -> Response {
        let mut headers = HeaderMap::new();
        if let Some(location) = location {
            headers.insert(header::LOCATION, HeaderValue::from_str(location).unwrap());
        }
        Response {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: Vec::new(),
            truncated: false,
        }
    }

    #[test]
    fn redirects_rewrite_the_request_as_browsers_do() {
        let mut post = Request::post("http://h/a", "data").unwrap();
        post.headers
            .insert(header::AUTHORIZATION, HeaderValue::from_static("secret"));
        post.headers
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));

        let next = post.redirected(&answer(302, Some("/b"))).unwrap();
        assert_eq!(next.method, Method::GET);
        assert!(next.body.is_empty());
        assert!(!next.headers.contains_key(header::CONTENT_TYPE));
        assert!(next.headers.contains_key(header::AUTHORIZATION));
        assert_eq!(next.url.to_string(), "http://h/b");

        let next = post
            .redirected(&answer(307, Some("http://other/b")))
            .unwrap();
        assert_eq!(next.method, Method::POST);
        assert_eq!(next.body, "data");
        assert!(!next.headers.contains_key(header::AUTHORIZATION));

        assert!(post.redirected(&answer(302, None)).is_none());
        assert!(post.redirected(&answer(200, Some("/b"))).is_none());
        assert!(post.redirected(&answer(304, Some("/b"))).is_none());
    }

    #[test]
    fn a_cut_body_is_no_text() {
        let mut r = answer(200, None);
        r.body = b"abc".to_vec();
        assert_eq!(r.text().as_deref(), Ok("abc"));
        r.truncated = true;
        assert!(r.text().unwrap_err().contains("larger than"));
    }

    #[test]
    fn dot_segments() {
        assert_eq!(remove_dot_segments("/a/b/../c"), "/a/c");
        assert_eq!(remove_dot_segments("/a/b/.."), "/a/");
        assert_eq!(remove_dot_segments("/a/./b?x=/../"), "/a/b?x=/../");
        assert_eq!(remove_dot_segments("/../.."), "/");
        assert_eq!(remove_dot_segments("/plain"), "/plain");
    }

    #[cfg(not(feature = "https"))]
    #[tokio::test]
    async fn https_needs_the_feature() {
        // Port 1: nothing listens; the answer comes before any connect.
        let request = Request::new(Method::GET, url("https://127.0.0.1:1/"));
        let err = Client::new()
            .send(&request, Duration::from_secs(1), 1024)
            .await
            .unwrap_err();
        assert_eq!(err, Error::Fatal(HTTPS_NEEDS_FEATURE.into()));
    }
}
