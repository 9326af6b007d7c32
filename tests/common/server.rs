//! `citytwin serve` for a test: the real binary on a free loopback port, and the requests a
//! dashboard would make to it (HTTP/1.1, no client library).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A server process, stopped (SIGINT) when dropped if the test did not stop it.
pub struct Server {
    child: Child,
    /// `HOST:PORT` it listens on.
    pub addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `citytwin serve --bind 127.0.0.1:0 ARGS…` and wait until it says where it listens.
pub fn start(args: &[&std::ffi::OsStr]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_citytwin"))
        .arg("serve")
        .args(["--bind", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut addr = None;
    for _ in 0..5 {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(rest) = line.strip_prefix("listening on http://") {
            addr = Some(rest.split('/').next().unwrap().to_string());
            break;
        }
    }
    let addr = addr.unwrap_or_else(|| {
        panic!(
            "the server did not say where it listens: {:?}",
            child.wait()
        )
    });
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    Server { child, addr }
}

/// One HTTP/1.1 request; the status and the body.
pub fn http(
    s: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        s.addr
    );
    if let Some(t) = token {
        req += &format!("Authorization: Bearer {t}\r\n");
    }
    let body = body.unwrap_or("");
    req += &format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    c.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    c.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = rest;
        loop {
            let (size, tail) = rest.split_once("\r\n").unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            out += &tail[..n];
            rest = &tail[n + 2..];
        }
        out
    } else {
        rest.to_string()
    };
    (status, body)
}

/// A GET that must answer 200 with JSON.
pub fn get(s: &Server, path: &str) -> Value {
    let (code, body) = http(s, "GET", path, None, None);
    assert_eq!(code, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// The status and error text of a request that must fail.
pub fn fails(
    s: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let (code, text) = http(s, method, path, token, body);
    assert!(code >= 400, "{method} {path} should fail: {text}");
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{method} {path}: error not JSON ({e}): {text}"));
    (code, v["error"].as_str().unwrap().to_string())
}

/// Poll a what-if job until it has ended; its last state.
pub fn wait_job(s: &Server, job: u64) -> Value {
    let t0 = Instant::now();
    loop {
        let j = get(s, &format!("/api/v1/jobs/{job}"));
        if !matches!(j["status"].as_str(), Some("queued" | "running")) {
            return j;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "job {job} did not end: {j}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Stop the server with SIGINT, as an operator would, and check it exits cleanly.
pub fn stop(mut s: Server) {
    // SAFETY: signalling our own child.
    assert_eq!(
        unsafe { libc::kill(s.child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let t0 = Instant::now();
    loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            assert!(st.success(), "serve exited with {st}");
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "serve did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
