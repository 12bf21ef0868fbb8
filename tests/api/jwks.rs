//! Asymmetric access-token keys: RS256 and EdDSA with `kid`, the JWKS
//! endpoint, key rotation, the HS256 migration path, forged headers, and a
//! cross-check with an independent verifier (PyJWT, from PyPI) that reads
//! only our `/.well-known/jwks.json`.

use std::sync::Arc;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use ed25519_dalek::pkcs8::{
    spki::der::pem::LineEnding, DecodePrivateKey as _, EncodePublicKey as _,
};
use poem::http::StatusCode;
use portcullis::{AuthConfig, JwtAlgorithm, JwtKeyConfig, MemoryStore, Store};
use serde_json::{json, Value};

use crate::common::*;

fn keyed_config(keys: Vec<JwtKeyConfig>, secret: bool) -> AuthConfig {
    let mut config = test_config();
    config.jwt.keys = keys;
    if !secret {
        config.jwt.secret = None;
    }
    config
}

fn header(token: &str) -> Value {
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn ed_public_pem(private: &JwtKeyConfig) -> String {
    let pem = private.private_key_pem.as_ref().unwrap().expose();
    ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
        .unwrap()
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap()
}

async fn jwks(app: &TestApp) -> Value {
    let resp = app.client.get("/.well-known/jwks.json").send().await;
    resp.assert_status_is_ok();
    assert_eq!(resp.0.headers()["cache-control"], "public, max-age=300");
    body(resp).await
}

async fn me_status(app: &TestApp, token: &str) -> StatusCode {
    app.client
        .get("/auth/me")
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .0
        .status()
}

#[tokio::test]
async fn hs256_publishes_no_keys() {
    let app = app().await;
    assert_eq!(jwks(&app).await, json!({"keys": []}));
    let token = app.signed_in("hs@example.com").await.0;
    assert_eq!(header(&token), json!({"typ": "JWT", "alg": "HS256"}));
}

#[tokio::test]
async fn rs256_and_eddsa_tokens_name_their_published_key() {
    for (algorithm, kty) in [(JwtAlgorithm::RS256, "RSA"), (JwtAlgorithm::EdDSA, "OKP")] {
        let key = JwtKeyConfig::generate(algorithm).unwrap();
        let app = app_with_config(keyed_config(vec![key], false)).await;
        let set = jwks(&app).await;
        let keys = set["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1, "{set}");
        let jwk = &keys[0];
        assert_eq!(jwk["kty"], kty);
        assert_eq!(jwk["use"], "sig");
        // The default kid is the RFC 7638 thumbprint: 32 bytes, base64url.
        let kid = jwk["kid"].as_str().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(kid).unwrap().len(), 32);
        // No private member ever leaves the server.
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(jwk.get(private).is_none(), "{jwk}");
        }
        let token = app.signed_in("asym@example.com").await.0;
        let head = header(&token);
        assert_eq!(head["alg"], jwk["alg"]);
        assert_eq!(head["kid"], kid);
        assert_eq!(me_status(&app, &token).await, StatusCode::OK);
    }
}

#[tokio::test]
async fn an_explicit_kid_is_used_and_config_errors_are_clear() {
    let key = JwtKeyConfig::generate(JwtAlgorithm::EdDSA)
        .unwrap()
        .with_kid("2026-11");
    let app = app_with_config(keyed_config(vec![key.clone()], false)).await;
    assert_eq!(jwks(&app).await["keys"][0]["kid"], "2026-11");
    let token = app.signed_in("kid@example.com").await.0;
    assert_eq!(header(&token)["kid"], "2026-11");

    let build = |config: AuthConfig| {
        portcullis::AuthManager::builder(config)
            .store(MemoryStore::new())
            .build()
            .err()
            .map(|err| err.to_string())
    };
    // Two keys with one kid.
    let twice = build(keyed_config(vec![key.clone(), key.clone()], false)).unwrap();
    assert!(twice.contains("used twice"), "{twice}");
    // The first key signs: a public key alone cannot.
    let public = JwtKeyConfig::public(JwtAlgorithm::EdDSA, ed_public_pem(&key));
    let unsigned = build(keyed_config(vec![public], false)).unwrap();
    assert!(unsigned.contains("needs private_key_pem"), "{unsigned}");
    // A key of the wrong algorithm, and garbage.
    let mut wrong = key.clone();
    wrong.algorithm = JwtAlgorithm::RS256;
    assert!(build(keyed_config(vec![wrong], false)).is_some());
    let garbage = JwtKeyConfig::private(JwtAlgorithm::EdDSA, "-----BEGIN PRIVATE KEY-----");
    assert!(build(keyed_config(vec![garbage], false)).is_some());
    // Neither a secret nor keys.
    let none = build(keyed_config(Vec::new(), false)).unwrap();
    assert!(none.contains("required"), "{none}");
}

/// Sign with the newest key, verify with all until retired: a token from
/// the old key still works on the rotated deployment, and dies when the
/// old key is removed.
#[tokio::test]
async fn rotation_keeps_old_tokens_valid_until_the_key_is_retired() {
    let store: Arc<dyn Store> = test_store().await;
    let old = JwtKeyConfig::generate(JwtAlgorithm::EdDSA).unwrap();
    let new = JwtKeyConfig::generate(JwtAlgorithm::RS256).unwrap();

    let before = app_on_store(keyed_config(vec![old.clone()], false), store.clone(), |b| b).await;
    let old_token = before.signed_in("rotate@example.com").await.0;
    let old_kid = header(&old_token)["kid"].clone();

    let retiring = JwtKeyConfig::public(JwtAlgorithm::EdDSA, ed_public_pem(&old));
    let rotated = app_on_store(
        keyed_config(vec![new.clone(), retiring], false),
        store.clone(),
        |b| b,
    )
    .await;
    let set = jwks(&rotated).await;
    let kids: Vec<&Value> = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["kid"])
        .collect();
    assert_eq!(kids.len(), 2);
    assert_eq!(kids[1], &old_kid, "the retiring key is still published");
    assert_eq!(me_status(&rotated, &old_token).await, StatusCode::OK);
    let new_token = rotated.login("rotate@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(header(&new_token)["alg"], "RS256");
    assert_eq!(&header(&new_token)["kid"], kids[0]);

    let retired = app_on_store(keyed_config(vec![new], false), store, |b| b).await;
    assert_eq!(
        me_status(&retired, &old_token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(me_status(&retired, &new_token).await, StatusCode::OK);
}

/// Moving from HS256 to asymmetric keys: with the secret still configured,
/// HS256 tokens verify until they expire, new ones are signed with the
/// key, and the secret is never published.
#[tokio::test]
async fn switching_from_hs256_keeps_issued_tokens_valid() {
    let store: Arc<dyn Store> = test_store().await;
    let hs = app_on_store(test_config(), store.clone(), |b| b).await;
    let hs_token = hs.signed_in("switch@example.com").await.0;
    let key = JwtKeyConfig::generate(JwtAlgorithm::EdDSA).unwrap();
    let both = app_on_store(keyed_config(vec![key], true), store, |b| b).await;
    assert_eq!(me_status(&both, &hs_token).await, StatusCode::OK);
    let set = jwks(&both).await;
    assert_eq!(set["keys"].as_array().unwrap().len(), 1);
    assert_eq!(set["keys"][0]["kty"], "OKP");
    let token = both.login("switch@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(header(&token)["alg"], "EdDSA");
}

/// A header cannot choose how it is checked: an unknown `kid`, another
/// key's `kid`, `alg` switched to HS256 with the public key as the HMAC
/// secret (algorithm confusion), or `alg: none` are all 401.
#[tokio::test]
async fn forged_headers_get_401() {
    let rsa = JwtKeyConfig::generate(JwtAlgorithm::RS256).unwrap();
    let ed = JwtKeyConfig::generate(JwtAlgorithm::EdDSA).unwrap();
    let app = app_with_config(keyed_config(vec![rsa, ed], false)).await;
    let token = app.signed_in("forge@example.com").await.0;
    let set = jwks(&app).await;
    let rsa_kid = set["keys"][0]["kid"].as_str().unwrap().to_owned();
    let ed_kid = set["keys"][1]["kid"].as_str().unwrap().to_owned();
    assert_eq!(header(&token)["kid"], rsa_kid.as_str());
    let mut parts = token.split('.');
    let (_, payload, signature) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let with_header = |head: Value, signature: &str| {
        format!(
            "{}.{payload}.{signature}",
            URL_SAFE_NO_PAD.encode(head.to_string())
        )
    };
    for head in [
        json!({"typ": "JWT", "alg": "RS256", "kid": "unknown"}),
        json!({"typ": "JWT", "alg": "RS256", "kid": ed_kid}),
        json!({"typ": "JWT", "alg": "EdDSA", "kid": ed_kid}),
        json!({"typ": "JWT", "alg": "RS256"}),
    ] {
        let forged = with_header(head.clone(), signature);
        assert_eq!(
            me_status(&app, &forged).await,
            StatusCode::UNAUTHORIZED,
            "{head}"
        );
    }
    // Algorithm confusion: HS256 keyed with the published RSA key material.
    let head = json!({"typ": "JWT", "alg": "HS256", "kid": rsa_kid});
    let signing_input = format!("{}.{payload}", URL_SAFE_NO_PAD.encode(head.to_string()));
    let n = set["keys"][0]["n"].as_str().unwrap();
    let confused = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(n.as_bytes()),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    let forged = format!("{signing_input}.{confused}");
    assert_eq!(me_status(&app, &forged).await, StatusCode::UNAUTHORIZED);
    let none = with_header(json!({"alg": "none", "kid": rsa_kid}), "");
    assert_eq!(me_status(&app, &none).await, StatusCode::UNAUTHORIZED);
    // The untouched token still works.
    assert_eq!(me_status(&app, &token).await, StatusCode::OK);
}

/// PyJWT (an independent implementation, in Python) fetches our JWKS over
/// HTTP with `PyJWKClient`, picks the key by `kid` and verifies RS256 and
/// EdDSA tokens with `iss` and `aud` required; it refuses a token with a
/// changed claim and one of another deployment.
#[tokio::test]
async fn pyjwt_verifies_our_tokens_from_the_jwks() {
    let python = std::env::var("PORTCULLIS_TEST_PYJWT").unwrap_or_else(|_| {
        panic!(
            "PORTCULLIS_TEST_PYJWT is not set. Run `scripts/test.sh`, which installs PyJWT \
             from PyPI (scripts/pyjwt.sh) and sets it, or export \
             PORTCULLIS_TEST_PYJWT=$(scripts/pyjwt.sh)"
        )
    });
    let rsa = JwtKeyConfig::generate(JwtAlgorithm::RS256).unwrap();
    let ed = JwtKeyConfig::generate(JwtAlgorithm::EdDSA).unwrap();
    let store: Arc<dyn Store> = test_store().await;
    // Two deployments on one store: RS256-signed, then EdDSA-signed with
    // the RSA key still verifying; PyJWT reads the second one's JWKS.
    let first = app_on_store(keyed_config(vec![rsa.clone()], false), store.clone(), |b| b).await;
    let rs_token = first.signed_in("py@example.com").await.0;
    let app = app_on_store(keyed_config(vec![ed, rsa], false), store, |b| b).await;
    let ed_token = app.login("py@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Another deployment's key (not in the JWKS).
    let stranger = app_with_config(keyed_config(
        vec![JwtKeyConfig::generate(JwtAlgorithm::EdDSA).unwrap()],
        false,
    ))
    .await;
    let foreign = stranger.signed_in("py@example.com").await.0;
    // A changed claim under a valid signature.
    let mut parts: Vec<String> = ed_token.split('.').map(str::to_owned).collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    claims["sub"] = json!("someone-else");
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    let tampered = parts.join(".");

    let server = app.serve().await;
    let url = format!("{}/.well-known/jwks.json", server.base);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pyjwt/verify.py");
    let output = tokio::process::Command::new(&python)
        .arg(script)
        .args([&url, "portcullis", "portcullis"])
        .args([&rs_token, &ed_token, &tampered, &foreign])
        .output()
        .await
        .unwrap_or_else(|err| panic!("cannot run {python}: {err}"));
    drop(server);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "verify.py failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(results.len(), 4, "{stdout}");
    let user_id = app.stored("py@example.com").await.unwrap().id.to_string();
    for (result, alg) in results[..2].iter().zip(["RS256", "EdDSA"]) {
        assert_eq!(result["ok"], true, "{result}");
        assert_eq!(result["alg"], alg, "{result}");
        assert_eq!(result["claims"]["sub"], user_id.as_str(), "{result}");
        assert_eq!(result["claims"]["typ"], "access", "{result}");
    }
    assert_eq!(results[2]["ok"], false, "tampered: {}", results[2]);
    assert_eq!(
        results[2]["error"], "InvalidSignatureError",
        "{}",
        results[2]
    );
    assert_eq!(results[3]["ok"], false, "foreign: {}", results[3]);
}
