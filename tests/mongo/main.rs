//! MongoStore behaviour that needs the wire server itself: round trips per
//! request (the driver's command monitoring), latency, and a server that
//! stops in the middle of traffic. Needs `PORTCULLIS_TEST_MONGODB_URI` and,
//! for the fault test, `PORTCULLIS_TEST_SECANTUSD` (both set by
//! `scripts/test.sh`).
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

mod indexes;

use std::{
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use poem::{endpoint::BoxEndpoint, http::StatusCode, test::TestClient, EndpointExt, Response};
use portcullis::{api, AuthConfig, AuthManager, MongoConfig, MongoStore, Secret};
use portcullis_credentials::{CredentialsApi, CredentialsProvider};
use serde_json::{json, Value};

const PASSWORD: &str = "Zq8#vT2!mW-horse";

fn config() -> AuthConfig {
    let mut config = AuthConfig::default();
    config.jwt.secret = Some(Secret::new("test-secret-test-secret-test-secret!"));
    config.password.memory_kib = 1024;
    config.password.iterations = 1;
    config
}

fn client(store: MongoStore) -> TestClient<BoxEndpoint<'static, Response>> {
    let manager = AuthManager::builder(config())
        .store(store)
        .provider(CredentialsProvider::new())
        .build()
        .unwrap();
    TestClient::new(api::routes(&manager, CredentialsApi::new(&manager)).boxed())
}

async fn call(
    cli: &TestClient<BoxEndpoint<'static, Response>>,
    method: &str,
    path: &str,
    body: Option<Value>,
    bearer: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = match method {
        "GET" => cli.get(path),
        _ => cli.post(path),
    };
    if let Some(token) = bearer {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    if let Some(body) = body {
        req = req.body_json(&body);
    }
    let resp = req.send().await;
    let status = resp.0.status();
    let bytes = resp.0.into_body().into_bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn login_body(email: &str) -> Value {
    json!({"email": email, "password": PASSWORD})
}

#[tokio::test]
async fn round_trips_per_request_and_latency() {
    let commands: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = commands.clone();
    let mut options = mongodb::options::ClientOptions::parse(portcullis_testkit::mongo_uri())
        .await
        .unwrap();
    options.command_event_handler = Some(mongodb::event::EventHandler::callback(
        move |event: mongodb::event::command::CommandEvent| {
            if let mongodb::event::command::CommandEvent::Started(started) = event {
                seen.lock().push(started.command_name);
            }
        },
    ));
    let db = format!("pt_rt_{}", uuid::Uuid::new_v4().simple());
    let store = MongoStore::connect_with_options(
        options,
        &MongoConfig::new(portcullis_testkit::mongo_uri()).with_database(db),
    )
    .await
    .unwrap();
    let cli = client(store);
    let (status, _) = call(
        &cli,
        "POST",
        "/auth/register",
        Some(login_body("rt@example.com")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let measure = |name: &'static str| {
        let commands = commands.clone();
        move |max: usize| {
            let ran = std::mem::take(&mut *commands.lock());
            println!("{name}: {} command(s) {ran:?}", ran.len());
            assert!(
                ran.len() <= max,
                "{name} took {} round trips: {ran:?}",
                ran.len()
            );
            ran.len()
        }
    };
    let _ = measure("setup")(usize::MAX);

    let (status, pair) = call(
        &cli,
        "POST",
        "/auth/login",
        Some(login_body("rt@example.com")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // 5 commands (was 7): reserve the account's failure slot before the
    // password is checked (issue 12, defect 4), one `findAndModify` that
    // pushes a lease and reads the window as it stood; find the user; read
    // their second factors and passkeys (issue 13) in one `aggregate` with
    // `$unionWith`; insert the session; clear the slot (`delete`). The last
    // two of issue 14's target of 3 would need the slot and a "has a second
    // factor" mark on the user document (see README, "Performance").
    let login = measure("login")(5);
    assert_eq!(login, 5);
    let access = pair["access_token"].as_str().unwrap().to_owned();
    let refresh = pair["refresh_token"].as_str().unwrap().to_owned();

    let (status, _) = call(&cli, "GET", "/auth/me", None, Some(&access)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(measure("me")(1), 1);

    let (status, pair) = call(
        &cli,
        "POST",
        "/auth/refresh",
        Some(json!({"refresh_token": refresh})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(measure("refresh")(2), 2);
    let mut refresh = pair["refresh_token"].as_str().unwrap().to_owned();

    // Latency per request against the wire server (in-process HTTP).
    let n = 200;
    let started = Instant::now();
    for _ in 0..n {
        call(&cli, "GET", "/auth/me", None, Some(&access)).await;
    }
    let me = started.elapsed() / n;
    let started = Instant::now();
    for _ in 0..n {
        let (_, pair) = call(
            &cli,
            "POST",
            "/auth/refresh",
            Some(json!({"refresh_token": refresh})),
            None,
        )
        .await;
        refresh = pair["refresh_token"].as_str().unwrap().to_owned();
    }
    let rotate = started.elapsed() / n;
    let logins = 20;
    let started = Instant::now();
    for _ in 0..logins {
        call(
            &cli,
            "POST",
            "/auth/login",
            Some(login_body("rt@example.com")),
            None,
        )
        .await;
    }
    let login = started.elapsed() / logins;
    commands.lock().clear();
    println!(
        "latency on the wire server (test Argon2 parameters for login): me {me:?}, refresh {rotate:?}, login {login:?}"
    );
}

/// A SecantusDB process the test can stop and start.
struct Server {
    bin: String,
    port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl Server {
    fn start(bin: &str, port: u16, dir: std::path::PathBuf) -> Self {
        let mut server = Self {
            bin: bin.to_owned(),
            port,
            dir,
            child: None,
        };
        server.up();
        server
    }

    fn up(&mut self) {
        let child = Command::new(&self.bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--storage-path",
            ])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start secantusd-py");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "SecantusDB did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server the way an operator does (SIGTERM), and waits.
    fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_stopping_mid_traffic_gives_503_then_recovers() {
    let bin = std::env::var("PORTCULLIS_TEST_SECANTUSD").unwrap_or_else(|_| {
        panic!("PORTCULLIS_TEST_SECANTUSD is not set: run scripts/test.sh (it installs SecantusDB)")
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("pt-fault-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut server = Server::start(&bin, port, dir.clone());
    let uri = format!("mongodb://127.0.0.1:{port}/?directConnection=true");
    let mut mongo = MongoConfig::new(uri);
    mongo.timeout_ms = 1000;
    let cli = Arc::new(client(MongoStore::connect(&mongo).await.unwrap()));

    let (status, _) = call(
        &cli,
        "POST",
        "/auth/register",
        Some(login_body("keep@example.com")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, pair) = call(
        &cli,
        "POST",
        "/auth/login",
        Some(login_body("keep@example.com")),
        None,
    )
    .await;
    let access = pair["access_token"].as_str().unwrap().to_owned();

    // Traffic while the server stops.
    let traffic = {
        let cli = cli.clone();
        let access = access.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            let until = Instant::now() + Duration::from_secs(4);
            while Instant::now() < until {
                let started = Instant::now();
                let (status, body) = call(&cli, "GET", "/auth/me", None, Some(&access)).await;
                statuses.push((status, body, started.elapsed()));
            }
            statuses
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.down();
    let statuses = traffic.await.unwrap();
    assert!(
        statuses.iter().any(|(s, _, _)| *s == StatusCode::OK),
        "traffic ran before the stop"
    );
    let unavailable: Vec<_> = statuses
        .iter()
        .filter(|(s, _, _)| *s == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert!(!unavailable.is_empty(), "requests after the stop get 503");
    for (status, body, took) in &statuses {
        assert!(
            *status == StatusCode::OK || *status == StatusCode::SERVICE_UNAVAILABLE,
            "{status} {body}"
        );
        if *status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(body["code"], "SERVICE_UNAVAILABLE", "{body}");
            assert!(
                !body.to_string().to_lowercase().contains("mongo"),
                "no driver detail: {body}"
            );
        }
        assert!(
            *took < Duration::from_secs(4),
            "a request hung for {took:?}"
        );
    }

    // Writes while down: 503, and nothing half-applied.
    let (status, body) = call(
        &cli,
        "POST",
        "/auth/register",
        Some(login_body("during@example.com")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (status, _) = call(
        &cli,
        "POST",
        "/auth/login",
        Some(login_body("keep@example.com")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    // Back up: the same app instance serves again, nothing was lost.
    server.up();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = call(&cli, "GET", "/auth/me", None, Some(&access)).await;
        if status == StatusCode::OK {
            assert_eq!(body["email"], "keep@example.com");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "did not recover: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, _) = call(
        &cli,
        "POST",
        "/auth/login",
        Some(login_body("keep@example.com")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(
        &cli,
        "POST",
        "/auth/register",
        Some(login_body("during@example.com")),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the failed registration left nothing behind: {body}"
    );
    server.down();
    let _ = std::fs::remove_dir_all(dir);
}

/// A link stored before links recorded `email_verified` (a document without
/// the field) reads as unverified, and dies when the owner resets the
/// password over HTTP.
#[tokio::test]
async fn links_stored_without_email_verified_die_when_the_owner_resets() {
    use portcullis::store::AccountStore;
    let store = portcullis_testkit::mongo_store().await;
    let outbox = portcullis::Outbox::new();
    let mut config = config();
    config.public_url = Some("https://api.example.com".into());
    let manager = AuthManager::builder(config)
        .store_arc(store.clone())
        .provider(CredentialsProvider::new())
        .email_sender(outbox.clone())
        .build()
        .unwrap();
    let cli = TestClient::new(api::routes(&manager, CredentialsApi::new(&manager)).boxed());
    let (status, user) = call(
        &cli,
        "POST",
        "/auth/register",
        Some(login_body("legacy@example.com")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    let user_id = user["id"].as_str().unwrap();
    // As an older version stored it: no `email_verified`.
    store
        .database()
        .collection::<mongodb::bson::Document>("portcullis_linked_accounts")
        .insert_one(mongodb::bson::doc! {
            "provider": "acme",
            "subject": "old-1",
            "user_id": user_id,
            "email": "legacy@example.com",
            "created_at": mongodb::bson::DateTime::now(),
        })
        .await
        .unwrap();
    let link = store
        .find_linked_account("acme", "old-1")
        .await
        .unwrap()
        .unwrap();
    assert!(!link.email_verified);

    let (status, _) = call(
        &cli,
        "POST",
        "/auth/forgot-password",
        Some(json!({"email": "legacy@example.com"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    manager.wait_for_deliveries().await;
    let reset = outbox
        .sent()
        .into_iter()
        .find(|m| m.subject.contains("Reset your"))
        .unwrap();
    let at = reset.text.find("?token=").unwrap() + "?token=".len();
    let token: String = reset.text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let (status, body) = call(
        &cli,
        "POST",
        "/auth/reset-password",
        Some(json!({"token": token, "password": "Another-9-password!"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    manager.wait_for_deliveries().await;
    assert!(store
        .find_linked_account("acme", "old-1")
        .await
        .unwrap()
        .is_none());
    assert!(outbox
        .sent()
        .iter()
        .any(|m| m.to == "legacy@example.com" && m.subject.contains("Sign-in methods removed")));
}

/// A user document written before server-only metadata existed (only
/// `metadata`) still loads, signs in and shows an empty `app_metadata`;
/// the app's first write adds the field and leaves the profile alone.
#[tokio::test]
async fn users_stored_without_app_metadata_still_load() {
    use portcullis::store::UserStore;
    let store = portcullis_testkit::mongo_store().await;
    let manager = AuthManager::builder(config())
        .store_arc(store.clone())
        .provider(CredentialsProvider::new())
        .build()
        .unwrap();
    let cli = TestClient::new(api::routes(&manager, CredentialsApi::new(&manager)).boxed());
    let (status, user) = call(
        &cli,
        "POST",
        "/auth/register",
        Some(login_body("old@example.com")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    let users = store
        .database()
        .collection::<mongodb::bson::Document>("portcullis_users");
    // As the old code wrote it: profile metadata, no `app_metadata`.
    let id = user["id"].as_str().unwrap();
    let result = users
        .update_one(
            mongodb::bson::doc! {"_id": id},
            mongodb::bson::doc! {
                "$set": {"metadata": {"theme": "dark"}},
                "$unset": {"app_metadata": ""},
            },
        )
        .await
        .unwrap();
    assert_eq!(result.modified_count, 1);
    let raw = users
        .find_one(mongodb::bson::doc! {"_id": id})
        .await
        .unwrap()
        .unwrap();
    assert!(!raw.contains_key("app_metadata"));

    let (status, tokens) = call(
        &cli,
        "POST",
        "/auth/login",
        Some(login_body("old@example.com")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let (status, me) = call(&cli, "GET", "/users/me", None, Some(access)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["metadata"], json!({"theme": "dark"}));
    assert_eq!(me["app_metadata"], json!({}));

    let flags = json!({"open_invoice": true});
    let user = store
        .find_user_by_email("old@example.com")
        .await
        .unwrap()
        .unwrap();
    manager
        .set_app_metadata(&user.id, flags.as_object().unwrap().clone())
        .await
        .unwrap();
    let raw = users
        .find_one(mongodb::bson::doc! {"_id": id})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        raw.get_document("app_metadata").unwrap(),
        &mongodb::bson::doc! {"open_invoice": true}
    );
    assert_eq!(
        raw.get_document("metadata").unwrap(),
        &mongodb::bson::doc! {"theme": "dark"}
    );
}
