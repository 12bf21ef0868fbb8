//! ID tokens the test forges, from an issuer the test controls (a small
//! poem server with discovery, a JWKS and a token endpoint): a token signed
//! by a key outside the JWKS, for another client, expired; a discovery
//! document naming another issuer; an issuer that announces RFC 9207.

use std::sync::Arc;

use chrono::Duration;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parking_lot::Mutex;
use poem::{get, handler, post, web::Data, web::Json, EndpointExt, Route};
use portcullis_oauth::OAuthProvider;
use serde_json::{json, Value};

use crate::{common::TestApp, support::*};

// P-256 key pairs made for these tests only: A is in the JWKS, B is not.
const KEY_A: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgWs/s9yD9LLGCJlMW
56DTRoq/1tOBBUpj+odv8xFDEpuhRANCAASaADYTT2kYD6Be7F/pDFWdBMNEtTjv
0J6Haos/ep2t5/wXNcIMQzwn+QOT1QUNIoFEwlAQ3MzUWDeIZ4lUpS0e
-----END PRIVATE KEY-----";
const KEY_B: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSCyLTTzlWZ02p7Bd
XI9mlGqVTa4ZMgPnsPicaNS0lu6hRANCAATbhFXUvZGyuZuZTwy8ZQ2YJVBD8PoU
mVwBlB/Xncjg7LLfuSTEwif1+S1gcRVaR3v+fLF+m4BDKsgzFZYptQlT
-----END PRIVATE KEY-----";

#[derive(Default)]
struct Issuer {
    base: String,
    /// The `issuer` the discovery document names (default: `base`).
    announced: Option<String>,
    iss_parameter: bool,
    /// The ID token the token endpoint answers next.
    id_token: String,
}

type Shared = Arc<Mutex<Issuer>>;

#[handler]
fn discovery_endpoint(issuer: Data<&Shared>) -> Json<Value> {
    let issuer = issuer.lock();
    let base = &issuer.base;
    Json(json!({
        "issuer": issuer.announced.clone().unwrap_or_else(|| base.clone()),
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
        "authorization_response_iss_parameter_supported": issuer.iss_parameter,
    }))
}

#[handler]
fn jwks_endpoint() -> Json<Value> {
    Json(json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "a", "use": "sig", "alg": "ES256",
        "x": "mgA2E09pGA-gXuxf6QxVnQTDRLU479Ceh2qLP3qdrec",
        "y": "_Bc1wgxDPCf5A5PVBQ0igUTCUBDczNRYN4hniVSlLR4",
    }]}))
}

#[handler]
fn token_endpoint(issuer: Data<&Shared>) -> Json<Value> {
    Json(json!({
        "access_token": "at", "token_type": "Bearer", "expires_in": 3600,
        "id_token": issuer.lock().id_token.clone(),
    }))
}

struct Forger {
    issuer: Shared,
    app: TestApp,
}

impl Forger {
    async fn start(configure: impl FnOnce(&mut Issuer)) -> Self {
        let issuer = Shared::default();
        let base = serve(
            Route::new()
                .at("/.well-known/openid-configuration", get(discovery_endpoint))
                .at("/jwks", get(jwks_endpoint))
                .at("/token", post(token_endpoint))
                .data(issuer.clone()),
        )
        .await;
        {
            let mut issuer = issuer.lock();
            issuer.base = base.clone();
            configure(&mut issuer);
        }
        let provider = OAuthProvider::oidc("forged", base, CLIENT_ID, "secret");
        let app = app_with(config(), vec![provider]).await;
        Self { issuer, app }
    }

    /// Claims a genuine token of this sign-in would carry.
    fn claims(&self, nonce: &str) -> Value {
        let now = self.app.manager.now().timestamp();
        json!({
            "iss": self.issuer.lock().base, "aud": CLIENT_ID, "sub": "forged-1",
            "iat": now, "exp": now + 300, "nonce": nonce,
            "email": "forged@example.com", "email_verified": true,
        })
    }

    /// Starts a sign-in, has the token endpoint answer the ID token
    /// `make(claims of this sign-in)` signed with `key`, and comes back
    /// with a code (appending `extra` to the callback query).
    async fn sign_in(&self, key: &str, make: impl FnOnce(Value) -> Value, extra: &str) -> Answer {
        let mut browser = Browser::new();
        let authorize = browser.authorize(&self.app, "forged").await;
        let nonce = param(&authorize, "nonce").expect("a nonce");
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("a".into());
        let claims = make(self.claims(&nonce));
        self.issuer.lock().id_token = jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_ec_pem(key.as_bytes()).unwrap(),
        )
        .unwrap();
        let state = param(&authorize, "state").unwrap();
        browser
            .get(
                &self.app,
                &format!("/auth/oauth/forged/callback?code=c&state={state}{extra}"),
            )
            .await
    }
}

fn set(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

#[tokio::test]
async fn an_id_token_outside_the_issuers_keys_is_refused() {
    let forger = Forger::start(|_| {}).await;
    let answer = forger.sign_in(KEY_B, |c| c, "").await;
    answer.assert_error(422, "OAUTH_ID_TOKEN_INVALID");
    assert!(
        answer.body["message"]
            .as_str()
            .unwrap()
            .contains("signature"),
        "{answer:?}"
    );

    // Signed with the right key, for another client.
    let answer = forger
        .sign_in(KEY_A, |c| set(c, "aud", json!("someone-else")), "")
        .await;
    answer.assert_error(422, "OAUTH_ID_TOKEN_INVALID");
    assert!(answer.body["message"]
        .as_str()
        .unwrap()
        .contains("another client"));

    // By another issuer.
    let answer = forger
        .sign_in(
            KEY_A,
            |c| set(c, "iss", json!("https://evil.example.com")),
            "",
        )
        .await;
    answer.assert_error(422, "OAUTH_ID_TOKEN_INVALID");

    // Expired on the manager's clock (not on the wall clock).
    forger.app.clock.advance(Duration::hours(2));
    let wall_clock_exp = chrono::Utc::now().timestamp() + 300;
    let answer = forger
        .sign_in(KEY_A, |c| set(c, "exp", json!(wall_clock_exp)), "")
        .await;
    answer.assert_error(422, "OAUTH_ID_TOKEN_INVALID");
    assert!(answer.body["message"].as_str().unwrap().contains("expired"));

    // The genuine article signs in.
    let answer = forger.sign_in(KEY_A, |c| c, "").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        me(&forger.app, &answer.body).await["email"],
        "forged@example.com"
    );
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_refused() {
    let forger = Forger::start(|issuer| {
        issuer.announced = Some("https://accounts.example.com".into());
    })
    .await;
    let mut browser = Browser::new();
    browser
        .get(&forger.app, "/auth/oauth/forged/authorize")
        .await
        .assert_error(503, "SERVICE_UNAVAILABLE");
}

#[tokio::test]
async fn an_issuer_that_announces_rfc_9207_must_send_iss() {
    let forger = Forger::start(|issuer| issuer.iss_parameter = true).await;
    let answer = forger.sign_in(KEY_A, |c| c, "").await;
    answer.assert_error(422, "OAUTH_ISSUER_MISMATCH");
    let base = forger.issuer.lock().base.clone();
    let answer = forger.sign_in(KEY_A, |c| c, &format!("&iss={base}")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}
