//! Cost as the work grows: `me` (the access-token check), refresh and
//! login throughput on a MemoryStore holding 1,000 users and sessions,
//! then on one holding 1,000,000 of each, in the same run; and the
//! resident memory each user and each session costs (`VmRSS` before and
//! after filling).
//!
//! ```sh
//! cargo run --release --example scale            # 1,000,000 users, 5 s per figure
//! SCALE_USERS=100000 SCALE_SECS=3 cargo run --release --example scale
//! ```
//!
//! No HTTP: the flows are called on the manager, as the routes call them,
//! so the figures isolate what the store's size changes. The large store
//! is filled through the store itself (`insert_user`, `insert_session`)
//! with one precomputed Argon2id hash: hashing a million passwords would
//! take hours and measure nothing about scale. Logins use the default
//! (OWASP) Argon2id parameters, so their rate is the machine's hashing
//! rate; `me` and refresh pick a random one of 1,000 sampled sessions
//! (the verified-token cache holds the same number of tokens at both
//! sizes), logins a random user of the whole population. Rate limits are
//! off, as in `scripts/load.sh`.
#![allow(clippy::expect_used, clippy::print_stdout, missing_docs)]

use std::{
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use chrono::Utc;
use parking_lot::Mutex;
use portcullis::store::{SessionStore, UserStore};
use portcullis::{
    AuthConfig, AuthManager, ClientInfo, JwtKeys, MemoryStore, OpaqueToken, PasswordHasher,
    ProviderRequest, Secret, Session, User,
};
use portcullis_credentials::CredentialsProvider;
use rand::Rng;

const PASSWORD: &str = "Zq8#vT2!mW-horse";
/// Concurrent callers per figure (the machine has 2 cores).
const TASKS: usize = 8;
/// Sessions sampled for `me` and refresh.
const SAMPLE: usize = 1000;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Calls `op` from `TASKS` tasks for `secs` seconds; operations per second.
async fn throughput<F, Fut>(secs: u64, op: F) -> f64
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let until = start + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (op, done) = (op.clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    op().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

struct Figures {
    me: f64,
    refresh: f64,
    login: f64,
}

/// A store of `users` users, each with one live session, and the manager
/// over it; returns the sampled sessions' access and refresh tokens.
async fn fill(
    config: &AuthConfig,
    hash: &str,
    users: u64,
    report_memory: bool,
) -> (AuthManager, Vec<String>, Vec<String>) {
    let store = Arc::new(MemoryStore::new());
    let keys = JwtKeys::from_config(&config.jwt).expect("keys");
    let now = Utc::now();
    let ttl = chrono::Duration::days(30);
    let every = (users / SAMPLE as u64).max(1);
    let (mut access, mut refresh) = (Vec::new(), Vec::new());
    let before = rss_kib();
    let started = Instant::now();
    let mut made = Vec::with_capacity(usize::try_from(users).unwrap_or(0));
    for i in 0..users {
        let mut user = User::new(&format!("user{i}@example.com"), now).expect("user");
        user.password_hash = Some(hash.to_owned());
        user.email_verified = true;
        store.insert_user(&user).await.expect("insert user");
        made.push((user.id.clone(), i % every == 0));
    }
    let after_users = rss_kib();
    let users_secs = started.elapsed().as_secs_f64();
    for (id, sampled) in made {
        let user = store.find_user(&id).await.expect("find").expect("user");
        let session = Session::new(&user, "credentials", now, ttl, ClientInfo::default());
        let token = OpaqueToken::generate();
        store
            .insert_session(
                &session,
                &portcullis::store::RefreshToken::new(token.hash(), &session, now),
            )
            .await
            .expect("insert session");
        if sampled && access.len() < SAMPLE {
            access.push(keys.issue(&user, &session.id, now).expect("issue"));
            refresh.push(token.expose().to_owned());
        }
    }
    let after_sessions = rss_kib();
    if report_memory {
        let per = |kib: u64| kib as f64 * 1024.0 / users as f64;
        println!(
            "filled {users} users in {users_secs:.1} s and {users} sessions in {:.1} s",
            started.elapsed().as_secs_f64() - users_secs
        );
        println!(
            "RSS: {} MiB before, {} MiB with the users, {} MiB with the sessions: \
             {:.0} B per user, {:.0} B per session",
            before / 1024,
            after_users / 1024,
            after_sessions / 1024,
            per(after_users.saturating_sub(before)),
            per(after_sessions.saturating_sub(after_users)),
        );
    }
    let manager = AuthManager::builder(config.clone())
        .store_arc(store)
        .provider(CredentialsProvider::new())
        .build()
        .expect("manager");
    (manager, access, refresh)
}

async fn measure(
    manager: AuthManager,
    access: Vec<String>,
    refresh: Vec<String>,
    users: u64,
    secs: u64,
) -> Figures {
    let tokens = Arc::new(access);
    let me = {
        let (manager, tokens) = (manager.clone(), tokens.clone());
        throughput(secs, move || {
            let (manager, tokens) = (manager.clone(), tokens.clone());
            async move {
                let i = rand::thread_rng().gen_range(0..tokens.len());
                manager.authenticate(&tokens[i]).await.expect("me");
            }
        })
        .await
    };
    // Each slot holds its session's current refresh token; a caller takes
    // one out, rotates it and puts the new one back.
    let slots: Arc<Vec<Mutex<Option<String>>>> =
        Arc::new(refresh.into_iter().map(|t| Mutex::new(Some(t))).collect());
    let refresh = {
        let manager = manager.clone();
        throughput(secs, move || {
            let (manager, slots) = (manager.clone(), slots.clone());
            async move {
                let (i, token) = loop {
                    let i = rand::thread_rng().gen_range(0..slots.len());
                    if let Some(token) = slots[i].lock().take() {
                        break (i, token);
                    }
                };
                let next = manager.refresh(&token).await.expect("refresh");
                *slots[i].lock() = Some(next.tokens.refresh_token);
            }
        })
        .await
    };
    let login = {
        let manager = manager.clone();
        throughput(secs, move || {
            let manager = manager.clone();
            async move {
                let i = rand::thread_rng().gen_range(0..users);
                manager
                    .sign_in(
                        "credentials",
                        ProviderRequest::new(serde_json::json!({
                            "email": format!("user{i}@example.com"),
                            "password": PASSWORD,
                        })),
                    )
                    .await
                    .expect("login");
            }
        })
        .await
    };
    Figures { me, refresh, login }
}

fn main() {
    let users = env("SCALE_USERS", 1_000_000);
    let secs = env("SCALE_SECS", 5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut config = AuthConfig::default();
        config.jwt.secret = Some(Secret::new("scale-secret-scale-secret-scale-secret!"));
        config.rate_limits.enabled = false;
        let hash = PasswordHasher::new(&config.password)
            .expect("hasher")
            .hash(PASSWORD)
            .await
            .expect("hash");

        let (manager, access, refresh) = fill(&config, &hash, 1000, false).await;
        let small = measure(manager, access, refresh, 1000, secs).await;
        let (manager, access, refresh) = fill(&config, &hash, users, true).await;
        let large = measure(manager, access, refresh, users, secs).await;

        println!("| flow | 1,000 users (/s) | {users} users (/s) | ratio |");
        println!("|---|---:|---:|---:|");
        for (name, a, b) in [
            ("me", small.me, large.me),
            ("refresh", small.refresh, large.refresh),
            ("login", small.login, large.login),
        ] {
            println!("| {name} | {a:.0} | {b:.0} | {:.2} |", b / a);
        }
    });
}
