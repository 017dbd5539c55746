//! The little HTTP/1.x the console speaks, without I/O: a strict parser of request heads
//! and the response bytes. One request per connection (`connection: close`), GET and HEAD
//! only: the console faces the network, so anything else is refused with its status.

use std::fmt::Write as _;

/// Largest request head read; past it the answer is 431 and the connection closes.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Most header lines a head may have.
const MAX_HEADERS: usize = 64;

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// `GET` or `HEAD` (others are refused while parsing).
    pub method: Method,
    /// The path, percent-decoded, without the query.
    pub path: String,
    /// The raw query string (after `?`), if any.
    pub query: Option<String>,
}

/// The methods served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// HEAD: as GET without the body.
    Head,
}

/// Why a head is refused: its status code and a reason for the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The status code (400, 405, 431, 505).
    pub status: u16,
    /// What was wrong.
    pub reason: String,
}

fn refuse(status: u16, reason: impl Into<String>) -> Refusal {
    Refusal { status, reason: reason.into() }
}

/// Parses the head at the start of `buf`: `Ok(None)` while it is incomplete (and still
/// within [`MAX_HEAD_BYTES`]).
///
/// # Errors
/// A [`Refusal`]: 400 for a malformed head, 405 for a method other than GET or HEAD, 431
/// for a head over [`MAX_HEAD_BYTES`] or with too many headers, 505 for a version other
/// than HTTP/1.0 or HTTP/1.1.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, Refusal> {
    let Some(end) = find_head_end(buf) else {
        if buf.len() > MAX_HEAD_BYTES {
            return Err(refuse(431, format!("request head over {MAX_HEAD_BYTES} bytes")));
        }
        return Ok(None);
    };
    if end > MAX_HEAD_BYTES {
        return Err(refuse(431, format!("request head over {MAX_HEAD_BYTES} bytes")));
    }
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| refuse(400, "head is not UTF-8"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refuse(400, format!("malformed request line {request_line:?}")));
    };
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(refuse(400, format!("malformed method {method:?}")));
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        v if v.starts_with("HTTP/") => return Err(refuse(505, format!("{v} is not served"))),
        v => return Err(refuse(400, format!("malformed version {v:?}"))),
    };
    let mut headers = 0;
    let mut host = false;
    for line in lines.filter(|l| !l.is_empty()) {
        headers += 1;
        if headers > MAX_HEADERS {
            return Err(refuse(431, format!("more than {MAX_HEADERS} header lines")));
        }
        let Some((name, _value)) = line.split_once(':') else {
            return Err(refuse(400, format!("header line without a colon: {line:?}")));
        };
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(refuse(400, format!("malformed header name {name:?}")));
        }
        host |= name.eq_ignore_ascii_case("host");
    }
    if http11 && !host {
        return Err(refuse(400, "HTTP/1.1 request without a Host header"));
    }
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        other => return Err(refuse(405, format!("method {other} is not allowed"))),
    };
    if !target.starts_with('/') {
        return Err(refuse(400, format!("request target {target:?} is not a path")));
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (target, None),
    };
    let path = percent_decode(path).ok_or_else(|| refuse(400, "malformed percent-encoding"))?;
    Ok(Some(Head { method, path, query }))
}

/// The length of the head including its blank line, once it is all in.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// RFC 9110's token characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `%XX` decoded; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `s` percent-encoded for a path segment (what [`percent_decode`] reads back).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A response: status, content type, body.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `content-type`.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into().into_bytes(),
        }
    }

    /// The head and (unless `head_only`) the body, as sent.
    pub fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\ncache-control: no-store\r\nx-content-type-options: nosniff\r\nconnection: close\r\n",
            self.status,
            reason_phrase(self.status),
            self.content_type,
            self.body.len()
        );
        if self.status == 405 {
            head.push_str("allow: GET, HEAD\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Internal Server Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> Result<Option<Head>, Refusal> {
        parse_head(s.as_bytes())
    }

    #[test]
    fn a_get_parses_with_its_path_decoded_and_its_query_apart() {
        let h = parsed("GET /groups/my%20group?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").unwrap().unwrap();
        assert_eq!(
            h,
            Head {
                method: Method::Get,
                path: "/groups/my group".into(),
                query: Some("x=1".into())
            }
        );
        let h = parsed("HEAD /metrics HTTP/1.0\n\n").unwrap().unwrap();
        assert_eq!((h.method, h.path.as_str()), (Method::Head, "/metrics"));
    }

    #[test]
    fn an_incomplete_head_asks_for_more_until_it_is_too_large() {
        assert_eq!(parsed("GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
        let long = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(parsed(&long).unwrap_err().status, 431);
        let long =
            format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(parsed(&long).unwrap_err().status, 431);
        let many: String = (0..100).map(|i| format!("X{i}: y\r\n")).collect();
        assert_eq!(parsed(&format!("GET / HTTP/1.0\r\n{many}\r\n")).unwrap_err().status, 431);
    }

    #[test]
    fn bad_heads_get_their_status() {
        for (head, status) in [
            ("POST /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 405),
            ("DELETE / HTTP/1.0\r\n\r\n", 405),
            ("GET / HTTP/2.0\r\n\r\n", 505),
            ("GET / FTP/1.0\r\n\r\n", 400),
            ("GET /\r\n\r\n", 400),
            ("GET  / HTTP/1.0\r\n\r\n", 400),
            ("G(T / HTTP/1.0\r\n\r\n", 400),
            ("GET http://x/ HTTP/1.0\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\n\r\n", 400),
            ("GET / HTTP/1.0\r\nno colon\r\n\r\n", 400),
            ("GET / HTTP/1.0\r\nbad name: x\r\n\r\n", 400),
            ("GET /%zz HTTP/1.0\r\n\r\n", 400),
            ("GET /%ff HTTP/1.0\r\n\r\n", 400),
        ] {
            assert_eq!(parsed(head).unwrap_err().status, status, "{head:?}");
        }
        assert_eq!(parse_head(b"GET /\xff HTTP/1.0\r\n\r\n").unwrap_err().status, 400);
    }

    #[test]
    fn percent_encoding_round_trips() {
        for s in ["plain", "a b/c?d%e", "grüße"] {
            assert_eq!(percent_decode(&percent_encode(s)).as_deref(), Some(s));
        }
    }

    #[test]
    fn responses_carry_their_length_and_close_and_head_drops_the_body() {
        let r = Response::text(200, "hello");
        let full = String::from_utf8(r.to_bytes(false)).unwrap();
        assert!(full.starts_with("HTTP/1.1 200 OK\r\n"), "{full}");
        assert!(full.contains("content-length: 5\r\n") && full.contains("connection: close\r\n"));
        assert!(full.ends_with("\r\n\r\nhello"));
        let head = String::from_utf8(r.to_bytes(true)).unwrap();
        assert!(head.ends_with("\r\n\r\n"));
        let refused = String::from_utf8(Response::text(405, "no").to_bytes(false)).unwrap();
        assert!(refused.contains("allow: GET, HEAD\r\n"));
    }
}
