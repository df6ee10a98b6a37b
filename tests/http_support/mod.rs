//! Plain HTTP/1.1 over TCP or a unix socket for tests that drive real
//! `vigil serve` processes (no client library between the test and what a
//! curl user would see).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// One HTTP/1.1 exchange with `Connection: close`: (status, body).
pub fn exchange(
    mut s: impl Read + Write,
    method: &str,
    path: &str,
    body: &str,
) -> Option<(u16, String)> {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Some((status, body))
}

pub fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(len.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

pub fn tcp(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    exchange(s, method, path, body)
}

pub fn unix(sock: &Path, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let s = std::os::unix::net::UnixStream::connect(sock).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    exchange(s, method, path, body)
}
