//! Criterion benches for the hot cryptography: password hash/verify with the
//! default (OWASP) Argon2id parameters, and access-token issue/verify, plus
//! the whole access-token check (`AuthManager::authenticate`) on the memory
//! store. Access tokens are benched with each signing algorithm: HS256,
//! RS256 (2048-bit key) and EdDSA; the `*_uncached` verifies skip the
//! verified-token cache, so they measure the signature check itself.
//!
//! `cargo bench --bench crypto`, or one group: `cargo bench --bench crypto -- jwt/`
#![allow(clippy::expect_used, missing_docs)]

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};
use portcullis::{
    AuthConfig, AuthManager, JwtAlgorithm, JwtKeyConfig, JwtKeys, MemoryStore, PasswordConfig,
    PasswordHasher, ProviderRequest, Registration, Secret, SessionId, User,
};
use portcullis_credentials::CredentialsProvider;

const SECRET: &str = "bench-secret-bench-secret-bench-secret";

fn passwords(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let hasher = PasswordHasher::new(&PasswordConfig::default()).expect("hasher");
    let hash = rt
        .block_on(hasher.hash("correct horse battery staple"))
        .expect("hash");
    let bcrypt = bcrypt::hash("correct horse battery staple", 12).expect("bcrypt");
    let mut group = c.benchmark_group("password");
    group.sample_size(20);
    group.bench_function("argon2id_hash_19MiB_t2", |b| {
        b.to_async(&rt).iter(|| async {
            hasher
                .hash("correct horse battery staple")
                .await
                .expect("hash")
        })
    });
    group.bench_function("argon2id_verify_19MiB_t2", |b| {
        b.to_async(&rt).iter(|| async {
            hasher
                .verify("correct horse battery staple", Some(&hash))
                .await
                .expect("verify")
        })
    });
    // Two verifies at once: what two cores sustain together (memory
    // bandwidth is shared), the ceiling for login throughput.
    group.bench_function("argon2id_verify_2_concurrent", |b| {
        b.to_async(&rt).iter(|| async {
            let (a, b) = tokio::join!(
                hasher.verify("correct horse battery staple", Some(&hash)),
                hasher.verify("correct horse battery staple", Some(&hash)),
            );
            (a.expect("verify"), b.expect("verify"))
        })
    });
    group.bench_function("unknown_user_dummy_verify", |b| {
        b.to_async(&rt).iter(|| async {
            hasher
                .verify("correct horse battery staple", None)
                .await
                .expect("verify")
        })
    });
    group.bench_function("bcrypt_cost12_verify", |b| {
        b.to_async(&rt).iter(|| async {
            hasher
                .verify("correct horse battery staple", Some(&bcrypt))
                .await
                .expect("verify")
        })
    });
    group.finish();
}

fn tokens(c: &mut Criterion) {
    let mut config = AuthConfig::default();
    config.jwt.secret = Some(Secret::new(SECRET));
    let keys = JwtKeys::from_config(&config.jwt).expect("keys");
    let user = User::new("bench@example.com", Utc::now()).expect("user");
    let session = SessionId::generate();
    let token = keys.issue(&user, &session, Utc::now()).expect("token");
    let mut group = c.benchmark_group("jwt");
    group.bench_function("issue_hs256", |b| {
        b.iter(|| keys.issue(&user, &session, Utc::now()).expect("issue"))
    });
    group.bench_function("verify_hs256_cached", |b| {
        b.iter(|| keys.verify(&token, Utc::now()).expect("verify"))
    });
    let mut uncached = config.jwt.clone();
    uncached.verified_cache_size = 0;
    let uncached = JwtKeys::from_config(&uncached).expect("keys");
    group.bench_function("verify_hs256_uncached", |b| {
        b.iter(|| uncached.verify(&token, Utc::now()).expect("verify"))
    });
    // The asymmetric keys, loaded from PEM as an application would.
    for (algorithm, name) in [
        (JwtAlgorithm::RS256, "rs256"),
        (JwtAlgorithm::EdDSA, "eddsa"),
    ] {
        let mut jwt = config.jwt.clone();
        jwt.secret = None;
        jwt.verified_cache_size = 0;
        jwt.keys = vec![JwtKeyConfig::generate(algorithm).expect("key")];
        let keys = JwtKeys::from_config(&jwt).expect("keys");
        let token = keys.issue(&user, &session, Utc::now()).expect("token");
        group.bench_function(format!("issue_{name}"), |b| {
            b.iter(|| keys.issue(&user, &session, Utc::now()).expect("issue"))
        });
        group.bench_function(format!("verify_{name}_uncached"), |b| {
            b.iter(|| keys.verify(&token, Utc::now()).expect("verify"))
        });
    }
    group.finish();

    // The whole check behind GET /auth/me: JWT + one store read.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    config.password.memory_kib = 1024;
    config.password.iterations = 1;
    let manager = AuthManager::builder(config)
        .store(MemoryStore::new())
        .provider(CredentialsProvider::new())
        .build()
        .expect("manager");
    let access = rt.block_on(async {
        manager
            .register(Registration::new("bench@example.com", "Zq8#vT2!mW-horse"))
            .await
            .expect("register");
        manager
            .sign_in(
                "credentials",
                ProviderRequest::new(
                    serde_json::json!({"email": "bench@example.com", "password": "Zq8#vT2!mW-horse"}),
                ),
            )
            .await
            .expect("sign in")
            .tokens
            .access_token
    });
    c.bench_function("manager/authenticate", |b| {
        b.to_async(&rt)
            .iter(|| async { manager.authenticate(&access).await.expect("auth") })
    });
}

criterion_group!(benches, passwords, tokens);
criterion_main!(benches);
