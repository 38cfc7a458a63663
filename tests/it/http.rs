//! HTTP on the RESP port: /metrics (checked by a Prometheus text parser:
//! `promtool check metrics` when installed, else the format's line rules),
//! /healthz, the status page, and RESP left alone.

use crate::support::{damselfly, which, Conn};
use std::io::{Read, Write};
use std::net::TcpStream;

/// Sends one raw HTTP request; returns (status line, headers, body).
fn http(port: u16, request: &str) -> (String, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(request.as_bytes()).expect("write");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let (head, body) = text.split_once("\r\n\r\n").expect("no header end");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_string(), body.to_string())
}

fn get(port: u16, path: &str) -> (String, String, String) {
    http(port, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"))
}

/// The text format's rules: comments are HELP/TYPE, every sample line is
/// `name[{labels}] value` with a declared family and a float value.
fn check_exposition(text: &str) {
    let mut declared = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut w = rest.split(' ');
            let name = w.next().unwrap_or_default();
            let kind = w.next().unwrap_or_default();
            assert!(
                ["counter", "gauge", "untyped", "summary", "histogram"].contains(&kind),
                "{line}"
            );
            assert!(declared.insert(name.to_string()), "family twice: {name}");
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        value
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let name = series.split('{').next().unwrap_or_default();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        assert!(declared.contains(name), "sample before its TYPE: {line}");
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
            }
        }
    }
}

#[test]
fn metrics_scrape_has_dragonflys_names_and_parses() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    c.cmd(&["SET", "a", "1"]);
    c.cmd(&["SET", "b", "1", "EX", "100"]);
    c.cmd(&["GET", "a"]);
    c.cmd(&["GET", "missing"]);
    let (status, headers, body) = get(d.port, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(headers.contains("Content-Type: text/plain"));
    for want in [
        "dragonfly_uptime_in_seconds ",
        "dragonfly_connected_clients ",
        "dragonfly_memory_used_bytes ",
        "dragonfly_used_memory_rss_bytes ",
        "dragonfly_memory_max_bytes 0\n",
        "dragonfly_commands_processed_total ",
        "dragonfly_keyspace_hits_total 1\n",
        "dragonfly_keyspace_misses_total 1\n",
        "dragonfly_expired_keys_total 0\n",
        "dragonfly_evicted_keys_total 0\n",
        "dragonfly_db_keys{db=\"db0\"} 2\n",
        "dragonfly_db_keys_expiring{db=\"db0\"} 1\n",
        "dragonfly_commands_total{cmd=\"set\"} 2\n",
        "dragonfly_commands_duration_seconds{cmd=\"get\"} ",
        "# TYPE dragonfly_connected_replica_lag_records gauge",
        "dragonfly_net_input_bytes_total ",
        "dragonfly_net_output_bytes_total ",
    ] {
        assert!(body.contains(want), "no {want:?} in\n{body}");
    }
    check_exposition(&body);
    if let Some(promtool) = which("promtool") {
        let mut child = std::process::Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(body.as_bytes())
            .expect("feed promtool");
        let out = child.wait_with_output().expect("promtool output");
        assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn healthz_status_page_and_other_paths() {
    let d = damselfly(&[]);
    let (status, _, body) = get(d.port, "/healthz");
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 200 OK", "OK\n")
    );
    let (status, _, body) = get(d.port, "/");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("maxmemory_policy: noeviction"), "{body}");
    let (status, _, _) = get(d.port, "/nope");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, headers, body) = http(d.port, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(headers.contains("Content-Length: "));
    assert!(body.is_empty());
    let (status, _, _) = http(
        d.port,
        "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    let (status, _, _) = http(d.port, "GET /\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
}

#[test]
fn resp_clients_are_not_taken_for_http() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    // An inline GET without a leading slash is a Redis command.
    c.send_raw(b"SET /k v\r\nGET key\r\n");
    assert_eq!(c.read(), b"+OK\r\n");
    assert_eq!(c.read(), b"$-1\r\n");
    assert_eq!(c.cmd(&["GET", "/k"]), "$1\r\nv\r\n");
}

/// A request whose first bytes arrive alone (`GE`, then the rest) is still
/// HTTP: the sniffer waits until the bytes can tell.
#[test]
fn a_request_split_inside_its_method_is_still_http() {
    let d = damselfly(&[]);
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s.write_all(b"GE").expect("write");
    // Pacing, not a timing assertion: lets the server read "GE" alone.
    std::thread::sleep(std::time::Duration::from_millis(100));
    s.write_all(b"T /healthz HTTP/1.1\r\n\r\n").expect("write");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    // And an inline command split the same way is still RESP.
    let mut c = Conn::open(d.port);
    c.send_raw(b"GE");
    std::thread::sleep(std::time::Duration::from_millis(100));
    c.send_raw(b"T nokey\r\n");
    assert_eq!(c.read(), b"$-1\r\n");
}
