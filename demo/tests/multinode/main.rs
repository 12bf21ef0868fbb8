//! Two demo-server processes (`demo/src/main.rs`) on one MongoDB wire
//! server, as two nodes behind a load balancer: a token issued by one node
//! refreshes on the other, reuse detection and session revocation act on
//! both, and rate limits are counted once for both.
//!
//! Every test starts its own pair of nodes on a fresh database of the server
//! named by `PORTCULLIS_TEST_MONGODB_URI` (set by `scripts/test.sh`; without
//! it the tests fail with instructions, never skip). Both nodes share one JWT
//! secret, keep rate limits on (the defaults) and trust `127.0.0.1` as a
//! proxy, so a test picks its client IP with `X-Forwarded-For`.
//!
//! The server binary is the demo package's own, which `cargo test` builds
//! for this test (`cargo test -p portcullis-demo --test multinode`; set
//! `PORTCULLIS_TEST_SERVER` to test another build). The nodes are killed
//! when a test ends, also when it fails; their logs are in
//! `target/tmp/multinode/` and printed when a test fails.
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr
)]

mod limits;
mod sessions;
mod tokens;

use std::{
    fs,
    io::Write,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub const PASSWORD: &str = "Zq8#vT2!mW-horse";
pub const SUPERUSER_EMAIL: &str = "root@example.com";
pub const SUPERUSER_PASSWORD: &str = "Root#pass-Zq8vT2!mW";
const JWT_SECRET: &str = "multinode-shared-secret-multinode-shared-secret";

/// The demo server binary: `PORTCULLIS_TEST_SERVER`, else the one cargo
/// built for this test (`CARGO_BIN_EXE_portcullis-demo`, always current).
fn server_binary() -> PathBuf {
    match std::env::var("PORTCULLIS_TEST_SERVER") {
        Ok(path) => PathBuf::from(path),
        Err(_) => PathBuf::from(env!("CARGO_BIN_EXE_portcullis-demo")),
    }
}

/// `n` distinct free ports (the listeners are held until all are chosen).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("a local address").port())
        .collect()
}

/// One demo-server process. Killed on drop; when dropped during a panic it
/// prints the end of its log first.
#[derive(Debug)]
pub struct Node {
    pub name: &'static str,
    pub base: String,
    child: Child,
    log: PathBuf,
    http: reqwest::Client,
}

impl Node {
    fn spawn(name: &'static str, database: &str, port: u16) -> Node {
        let bin = server_binary();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("multinode");
        fs::create_dir_all(&dir).expect("the log directory");
        let log = dir.join(format!("{database}-{name}.log"));
        let log_file = fs::File::create(&log).expect("the node's log file");
        let addr = format!("127.0.0.1:{port}");
        let mut command = Command::new(&bin);
        // Nothing from the caller's PORTCULLIS_* (e.g. PORTCULLIS_RATE_LIMITS=off)
        // may change the nodes' configuration.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PORTCULLIS_") {
                command.env_remove(key);
            }
        }
        let child = command
            .env("PORTCULLIS_ADDR", &addr)
            .env("PORTCULLIS_MONGODB_URI", portcullis_testkit::mongo_uri())
            .env("PORTCULLIS_MONGODB_DATABASE", database)
            .env("PORTCULLIS_JWT_SECRET", JWT_SECRET)
            .env("PORTCULLIS_TRUSTED_PROXIES", "127.0.0.1")
            .env("PORTCULLIS_SUPERUSER_EMAIL", SUPERUSER_EMAIL)
            .env("PORTCULLIS_SUPERUSER_PASSWORD", SUPERUSER_PASSWORD)
            .env("RUST_LOG", "info,poem=warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("the node's log file"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", bin.display()));
        Node {
            name,
            base: format!("http://{addr}"),
            child,
            log,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
        }
    }

    /// Waits until the node answers. `Err` when it exited because its port
    /// was taken meanwhile; panics with its log for any other exit.
    async fn ready(&mut self) -> Result<(), ()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("the node's status") {
                let log = self.log_tail();
                if log.contains("in use") {
                    return Err(());
                }
                panic!(
                    "node {} exited at start-up ({status}); log:\n{log}",
                    self.name
                );
            }
            if let Ok(resp) = self
                .http
                .get(format!("{}/auth/providers", self.base))
                .send()
                .await
            {
                if resp.status() == StatusCode::OK {
                    return Ok(());
                }
            }
            assert!(
                Instant::now() < deadline,
                "node {} did not answer within 60 s; log:\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Sends a request from client IP `ip` (through the trusted-proxy
    /// header), with an optional JSON body and bearer token.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        ip: &str,
        body: Option<Value>,
        bearer: Option<&str>,
    ) -> Reply {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header("x-forwarded-for", ip);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|err| panic!("{method} {path} on node {}: {err}", self.name));
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().expect("an ASCII Retry-After").to_owned());
        let text = resp.text().await.expect("a response body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| {
                panic!(
                    "{method} {path} on node {}: not JSON ({status}): {text}",
                    self.name
                )
            })
        };
        Reply {
            status,
            body,
            retry_after,
        }
    }

    pub async fn register(&self, ip: &str, email: &str) -> Value {
        let reply = self
            .call(
                Method::POST,
                "/auth/register",
                ip,
                Some(json!({"email": email, "password": PASSWORD})),
                None,
            )
            .await;
        reply.expect(StatusCode::CREATED, "register")
    }

    /// Signs in and returns `(access_token, refresh_token)`.
    pub async fn login(&self, ip: &str, email: &str, password: &str) -> (String, String) {
        let reply = self
            .call(
                Method::POST,
                "/auth/login",
                ip,
                Some(json!({"email": email, "password": password})),
                None,
            )
            .await;
        pair(&reply.expect(StatusCode::OK, "login"))
    }

    pub async fn me(&self, ip: &str, access: &str) -> Reply {
        self.call(Method::GET, "/auth/me", ip, None, Some(access))
            .await
    }

    pub async fn refresh(&self, ip: &str, refresh: &str) -> Reply {
        self.call(
            Method::POST,
            "/auth/refresh",
            ip,
            Some(json!({"refresh_token": refresh})),
            None,
        )
        .await
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(
                err,
                "---- node {} ({}) log, last lines ({}):\n{}",
                self.name,
                self.base,
                self.log.display(),
                self.log_tail()
            );
        }
    }
}

/// A response: status, JSON body (`Null` when empty), `Retry-After`.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub retry_after: Option<String>,
}

impl Reply {
    /// The body, after checking the status.
    #[track_caller]
    pub fn expect(self, status: StatusCode, what: &str) -> Value {
        assert_eq!(self.status, status, "{what}: {:?}", self.body);
        self.body
    }

    /// Checks the documented error shape: this status and code.
    #[track_caller]
    pub fn expect_error(&self, status: StatusCode, code: &str, what: &str) {
        assert_eq!(self.status, status, "{what}: {:?}", self.body);
        assert_eq!(self.body["code"], code, "{what}: {:?}", self.body);
        assert!(self.body["message"].is_string(), "{what}: {:?}", self.body);
    }
}

/// `(access_token, refresh_token)` of a token-pair body.
pub fn pair(body: &Value) -> (String, String) {
    let field = |name: &str| {
        body[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in {body}"))
            .to_owned()
    };
    (field("access_token"), field("refresh_token"))
}

/// Two nodes on one fresh database, both started at once (so they also race
/// to create the superuser and the indexes, as nodes of a deployment do).
#[derive(Debug)]
pub struct Cluster {
    pub a: Node,
    pub b: Node,
}

impl Cluster {
    pub async fn start() -> Cluster {
        let database = format!("pt_multinode_{}", uuid::Uuid::new_v4().simple());
        // A port can be taken between choosing it and the node binding it:
        // then the pair starts again on other ports.
        for _ in 0..3 {
            let ports = free_ports(2);
            let mut a = Node::spawn("A", &database, ports[0]);
            let mut b = Node::spawn("B", &database, ports[1]);
            if a.ready().await.is_ok() && b.ready().await.is_ok() {
                return Cluster { a, b };
            }
        }
        panic!("the nodes could not bind a free port in three tries");
    }

    /// Both nodes, A first.
    pub fn nodes(&self) -> [&Node; 2] {
        [&self.a, &self.b]
    }
}
