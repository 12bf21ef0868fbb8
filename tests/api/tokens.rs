use std::sync::Arc;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::Duration;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use poem::http::{Method, StatusCode};
use portcullis::{store::OneTimeTokenStore, AuthManager, Limit, MemoryStore, Secret, TokenHash};
use serde_json::{json, Value};

use crate::common::*;

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn sign(claims: &Value, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn access_token_carries_the_documented_claims() {
    let app = app().await;
    let (access, _) = app.signed_in("lee@example.com").await;
    let claims = claims_of(&access);
    for key in [
        "sub", "exp", "iat", "jti", "iss", "aud", "typ", "ver", "sid",
    ] {
        assert!(!claims[key].is_null(), "missing {key}: {claims}");
    }
    assert_eq!(claims["typ"], "access");
    assert_eq!(claims["iss"], "portcullis");
    assert_eq!(claims["aud"], "portcullis");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        1800
    );
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(access.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "HS256");
}

#[tokio::test]
async fn forged_tokens_get_401() {
    let app = app().await;
    let (access, _) = app.signed_in("max@example.com").await;
    let claims = claims_of(&access);

    // Same claims, another key.
    let forged = sign(&claims, "another-secret-another-secret-another");
    let (status, body) = app.me(&forged).await;
    assert_error(status, &body, 401, "UNAUTHENTICATED");

    // alg: none.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = access.split('.').nth(1).unwrap();
    for none in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        let (status, _) = app.me(&none).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    // Tampered payload, original signature.
    let mut tampered = claims.clone();
    tampered["sub"] = json!("someone-else");
    let parts: Vec<&str> = access.split('.').collect();
    let evil = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&tampered).unwrap()),
        parts[2]
    );
    assert_eq!(app.me(&evil).await.0, StatusCode::UNAUTHORIZED);

    for garbage in ["", "abc", "a.b.c", "Bearer", &"x".repeat(10_000)] {
        assert_eq!(
            app.me(garbage).await.0,
            StatusCode::UNAUTHORIZED,
            "{garbage}"
        );
    }
}

#[tokio::test]
async fn wrong_audience_issuer_or_type_get_401() {
    let app = app().await;
    let (access, _) = app.signed_in("ned@example.com").await;
    let claims = claims_of(&access);
    let (status, _) = app.me(&sign(&claims, SECRET)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "re-signing the same claims is valid"
    );
    for (key, value) in [
        ("aud", json!("another-service")),
        ("iss", json!("someone-else")),
        ("typ", json!("refresh")),
        ("ver", json!(7)),
        ("sid", json!("not-a-session")),
    ] {
        let mut bad = claims.clone();
        bad[key] = value;
        let (status, body) = app.me(&sign(&bad, SECRET)).await;
        assert_error(status, &body, 401, "UNAUTHENTICATED");
    }
    let mut missing = claims.clone();
    missing.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        app.me(&sign(&missing, SECRET)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn another_deployment_audience_is_refused() {
    // A manager for another audience, same secret: its tokens do not work here.
    let mut config = test_config();
    config.jwt.audience = "billing".into();
    config.jwt.secret = Some(Secret::new(SECRET));
    let other = app_with_config(config).await;
    let (foreign, _) = other.signed_in("olga@example.com").await;
    let app = app().await;
    app.register("olga@example.com").await;
    assert_eq!(app.me(&foreign).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expired_access_tokens_get_401() {
    let app = app().await;
    let (access, refresh) = app.signed_in("pia@example.com").await;
    app.clock.advance(Duration::seconds(1799));
    assert_eq!(app.me(&access).await.0, StatusCode::OK);
    app.clock.advance(Duration::seconds(1));
    let (status, body) = app.me(&access).await;
    assert_error(status, &body, 401, "UNAUTHENTICATED");
    // The refresh token still works and gives a fresh access token.
    let (status, pair) = app.refresh(&refresh).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.me(pair["access_token"].as_str().unwrap()).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn token_version_bump_kills_old_access_and_refresh_tokens() {
    let app = app().await;
    let (access, refresh) = app.signed_in("quinn@example.com").await;
    let (access2, refresh2) = {
        let t = app.login("quinn@example.com").await;
        (
            t["access_token"].as_str().unwrap().to_owned(),
            t["refresh_token"].as_str().unwrap().to_owned(),
        )
    };
    let user = app
        .store
        .as_ref()
        .find_user_by_email("quinn@example.com")
        .await
        .unwrap()
        .unwrap();
    let bumped = app.manager.revoke_all_sessions(&user.id).await.unwrap();
    assert_eq!(bumped.token_version, user.token_version + 1);
    assert!(app.event_names().contains(&"sessions_revoked"));
    for token in [&access, &access2] {
        assert_eq!(app.me(token).await.0, StatusCode::UNAUTHORIZED);
    }
    for token in [&refresh, &refresh2] {
        let (status, body) = app.refresh(token).await;
        assert_error(status, &body, 401, "INVALID_REFRESH_TOKEN");
    }
    // A new sign-in works with the new version.
    let fresh = app.login("quinn@example.com").await;
    assert_eq!(claims_of(fresh["access_token"].as_str().unwrap())["ver"], 1);
    assert_eq!(
        app.me(fresh["access_token"].as_str().unwrap()).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_bump_alone_kills_tokens_even_without_revoking_sessions() {
    // Crash safety: only the first write of revoke_all_sessions happened.
    let app = app().await;
    let (access, refresh) = app.signed_in("rae@example.com").await;
    let store = app.store.as_ref();
    let user = store
        .find_user_by_email("rae@example.com")
        .await
        .unwrap()
        .unwrap();
    store
        .bump_token_version(&user.id, app.manager.now())
        .await
        .unwrap();
    assert_eq!(app.me(&access).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.refresh(&refresh).await.0, StatusCode::UNAUTHORIZED);
}

#[test]
fn builder_refuses_bad_configuration() {
    let mut config = test_config();
    config.jwt.secret = Some(Secret::new("too-short"));
    let err = AuthManager::builder(config).build().unwrap_err();
    assert_eq!(err.code(), "CONFIG_ERROR");

    let mut config = test_config();
    config.jwt.secret = None;
    assert!(AuthManager::builder(config).build().is_err());

    let err = AuthManager::builder(test_config())
        .provider(portcullis_credentials::CredentialsProvider::new())
        .provider(portcullis_credentials::CredentialsProvider::new())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("duplicate provider id"), "{err}");

    let mut config = test_config();
    config.public_url = Some("not a url".into());
    assert!(AuthManager::builder(config).build().is_err());

    let mut config = test_config();
    config.transport.bearer = false;
    config.transport.cookies = false;
    assert!(AuthManager::builder(config).build().is_err());

    let mut config = test_config();
    config.password.memory_kib = 1;
    assert!(AuthManager::builder(config).build().is_err());
}

#[test]
fn config_deserializes_with_defaults() {
    let config: portcullis::AuthConfig = serde_json::from_value(json!({
        "jwt": {"secret": "0123456789abcdef0123456789abcdef", "access_ttl_secs": 600},
        "transport": {"cookies": true, "cookie": {"secure": false}}
    }))
    .unwrap();
    assert_eq!(config.jwt.access_ttl_secs, 600);
    assert_eq!(config.jwt.issuer, "portcullis");
    assert!(config.transport.cookies && config.transport.bearer);
    assert_eq!(config.password.memory_kib, 19 * 1024);
    assert_eq!(config.password.iterations, 2);
    assert_eq!(config.rate_limits.email_per_ip, Limit::new(20, 3600));
    assert_eq!(config.rate_limits.email_per_address, Limit::new(5, 3600));
    assert_eq!(config.refresh.session_ttl_secs, 30 * 24 * 3600);
    assert_eq!(config.http.max_body_bytes, 64 * 1024);
    assert!(format!("{:?}", config.jwt.secret).contains("redacted"));
    assert!(serde_json::from_value::<portcullis::AuthConfig>(json!({"jwt": {"nope": 1}})).is_err());
}

#[tokio::test]
async fn refresh_and_access_tokens_are_not_interchangeable() {
    let app = app().await;
    let (access, refresh) = app.signed_in("tom@example.com").await;
    // The opaque refresh token is no bearer token…
    let (status, body) = app.me(&refresh).await;
    assert_error(status, &body, 401, "UNAUTHENTICATED");
    // …and the JWT is no refresh token.
    let (status, body) = app.refresh(&access).await;
    assert_error(status, &body, 401, "INVALID_REFRESH_TOKEN");
    // Neither attempt harmed the session: each works where it belongs.
    assert_eq!(app.me(&access).await.0, StatusCode::OK);
    assert_eq!(app.refresh(&refresh).await.0, StatusCode::OK);
}

/// A dump of the whole store (the memory store's `Debug` prints every
/// record) holds no emailed or refresh token, only their SHA-256.
#[tokio::test]
async fn the_store_keeps_only_hashes_of_tokens() {
    let store = Arc::new(MemoryStore::new());
    let app = app_on_store(test_config(), store.clone(), |b| {
        b.provider(TrustEmailProvider)
    })
    .await;
    let (_, refresh) = app.signed_in("dump@example.com").await;
    let verify = link_token(&app.mail("dump@example.com", "Confirm your email").await);
    let (status, _) = app
        .post(
            "/auth/forgot-password",
            json!({"email": "dump@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let reset = link_token(&app.mail("dump@example.com", "Reset").await);
    let (access, _) = app.passwordless("code@example.com").await;
    let (status, body) = app
        .call(Method::POST, "/auth/account/delete-code", &access, None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mail = app.mail("code@example.com", "Confirm the deletion").await;
    let code = mail
        .text
        .lines()
        .find(|l| l.len() == 43 && !l.contains(' '))
        .expect("the code on its own line")
        .to_owned();

    let dump = format!("{store:?}");
    assert!(
        dump.contains("code@example.com"),
        "the dump shows the records"
    );
    for token in [&refresh, &verify, &reset, &code] {
        assert_eq!(token.len(), 43, "256 bits, base64url");
        assert!(!dump.contains(token.as_str()), "raw token stored: {token}");
    }
    // What is stored is the hash: the records are found by it.
    let now = app.manager.now();
    for (token, purpose) in [
        (&verify, "verify_email"),
        (&reset, "reset_password"),
        (&code, "delete_account"),
    ] {
        let record = store
            .find_one_time_token(&TokenHash::of(token), purpose, now)
            .await
            .unwrap()
            .expect("found by its SHA-256");
        assert_eq!(record.hash, TokenHash::of(token));
    }
    let refresh_hash = TokenHash::of(&refresh);
    assert!(
        dump.contains(&format!("{refresh_hash:?}")),
        "the refresh token's hash is stored"
    );
}
