//! Requests that an HTTP client refuses to make (a `Content-Length` that lies, hand-made
//! chunks, odd methods, oversized heads), written byte for byte on a TCP connection, and
//! the answers read back until the server closes it.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One answer read off the wire.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Header names in lowercase, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Reads what reqwest got, so both kinds of request are checked alike.
    pub async fn from_reqwest(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect();
        let body = response.bytes().await.expect("a response body").to_vec();
        Self { status, headers, body }
    }
}

/// A request head: the request line, then each header, then the blank line.
pub fn head(request_line: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut head = format!("{request_line}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// `body` in chunked transfer coding, cut into `size`-byte chunks, with the last-chunk.
pub fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut wire = Vec::new();
    for chunk in body.chunks(size) {
        wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        wire.extend_from_slice(chunk);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    wire
}

/// Writes `request` on a new connection to `host` (`127.0.0.1:port`) without closing its
/// side, and returns every answer read before the server closes the connection. The
/// request should end the exchange (with `Connection: close`, or by leaving the server
/// nothing it can answer); a server still holding the connection after `patience` fails
/// the test.
pub async fn exchange(host: &str, request: &[u8], patience: Duration) -> Vec<Reply> {
    let mut stream = TcpStream::connect(host).await.expect("connect");
    // The server may answer and close before it has read everything (an early 413 or 431):
    // the rest of the write then fails, which is not the test's concern.
    let _ = stream.write_all(request).await;
    let mut wire = Vec::new();
    let read = tokio::time::timeout(patience, async {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => wire.extend_from_slice(&buffer[..n]),
            }
        }
    });
    let held = read.await.is_err();
    let replies = parse(&wire);
    assert!(!held, "the server still holds the connection after {replies:?}");
    replies
}

/// Splits what the server wrote into answers, each sized by its `Content-Length`.
fn parse(mut wire: &[u8]) -> Vec<Reply> {
    let mut replies = Vec::new();
    while let Some(end) = wire.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&wire[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let rest = &wire[end + 4..];
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(rest.len())
            .min(rest.len());
        replies.push(Reply { status, headers, body: rest[..length].to_vec() });
        wire = &rest[length..];
    }
    replies
}
