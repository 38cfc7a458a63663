//! HTTP on the RESP port: a connection whose first bytes are `GET /`,
//! `HEAD /` or `POST /` is an HTTP client (a Prometheus scrape, a health
//! check, a browser). One request per connection: the reply says
//! `Connection: close`.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest request head accepted (request line and headers).
const MAX_HEAD: usize = 16 * 1024;

pub struct HttpRequest {
    pub method: String,
    /// The path without its query string.
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

pub struct HttpResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        HttpResponse {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }
}

/// Whether the bytes read so far start an HTTP request: None while they
/// are too few to tell (a client may send `GE` and `T /metrics` apart).
pub fn sniff(buf: &[u8]) -> Option<bool> {
    let marks = [&b"GET /"[..], b"HEAD /", b"POST /"];
    if marks.iter().any(|m| buf.starts_with(m)) {
        Some(true)
    } else if marks
        .iter()
        .any(|m| buf.len() < m.len() && m.starts_with(buf))
    {
        None
    } else {
        Some(false)
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    }
}

/// Parses a complete request head; None while it is incomplete, Err when
/// it is malformed.
fn parse(buf: &[u8]) -> Option<Result<HttpRequest, ()>> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(target)) = (first.next(), first.next()) else {
        return Some(Err(()));
    };
    let path = target.split('?').next().unwrap_or("/").to_string();
    let mut headers = Vec::new();
    for l in lines {
        let Some((n, v)) = l.split_once(':') else {
            return Some(Err(()));
        };
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    Some(Ok(HttpRequest {
        method: method.to_string(),
        path,
        headers,
    }))
}

/// Serves one HTTP request whose first bytes are in `buf`, then closes.
pub async fn serve<IO: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut IO,
    mut buf: Vec<u8>,
    respond: impl FnOnce(&HttpRequest) -> HttpResponse,
) {
    let req = loop {
        match parse(&buf) {
            Some(Ok(r)) => break Some(r),
            Some(Err(())) => break None,
            None if buf.len() > MAX_HEAD => break None,
            None => match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
        }
    };
    let (resp, head_only) = match &req {
        Some(r) => (respond(r), r.method == "HEAD"),
        None => (HttpResponse::new(400, "text/plain", "bad request\n"), false),
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len()
    )
    .into_bytes();
    for (n, v) in &resp.headers {
        out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(&resp.body);
    }
    let _ = stream.write_all(&out).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_and_parses_request_heads() {
        assert_eq!(sniff(b"GET /metrics HTTP/1.1\r\n"), Some(true));
        assert_eq!(sniff(b"GET key\r\n"), Some(false));
        assert_eq!(sniff(b"*1\r\n$4\r\nPING\r\n"), Some(false));
        assert_eq!(sniff(b"GE"), None);
        assert_eq!(sniff(b"HEAD "), None);
        assert_eq!(sniff(b"GET k"), Some(false));
        assert!(parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n").is_none());
        let Some(Ok(r)) = parse(b"GET /metrics?x=1 HTTP/1.1\r\nAuthorization: Basic YQ==\r\n\r\n")
        else {
            panic!("not parsed");
        };
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/metrics"));
        assert_eq!(r.header("authorization"), Some("Basic YQ=="));
        assert!(matches!(parse(b"GET\r\n\r\n"), Some(Err(()))));
    }
}
