//! Passkeys over HTTP, answered by `webauthn-authenticator-rs`'s software
//! authenticator: real attestations and signatures that `webauthn-rs`
//! checks, as a browser's would be.
//!
//! The software authenticator keeps no resident keys and returns no user
//! handle, so for a discoverable sign-in the test plays the browser's part
//! that a platform authenticator plays: it names the credential it holds
//! and adds the user handle (the account's id) to the assertion.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use poem::http::{Method, StatusCode};
use portcullis::{
    factor::Sealer, store::PasskeyRecord, AuthConfig, PasskeyConfig, SealingKeyConfig,
};
use serde_json::{json, Value};
use webauthn_authenticator_rs::{
    prelude::{CreationChallengeResponse, RequestChallengeResponse, Url, WebauthnAuthenticator},
    softpasskey::SoftPasskey,
};

use crate::common::*;
use crate::mfa::MfaApp as _;

/// The page's origin: WebAuthn allows plain HTTP on localhost only.
const ORIGIN: &str = "http://localhost:3000";

fn passkey_config() -> AuthConfig {
    let mut config = test_config();
    config.mfa.sealing_keys = vec![SealingKeyConfig::new("k1", Sealer::generate_key())];
    let mut passkeys = PasskeyConfig::default();
    passkeys.rp_id = Some("localhost".into());
    passkeys.origins = vec![ORIGIN.into()];
    config.mfa.passkeys = passkeys;
    config
}

/// A software authenticator and what it registered.
struct Authenticator {
    soft: SoftPasskey,
    credential_id: Option<String>,
    /// The user handle a discoverable credential returns.
    user_handle: Option<Vec<u8>>,
}

impl Authenticator {
    fn new() -> Self {
        Self {
            // `true`: it reports user verification (a PIN or biometric).
            soft: SoftPasskey::new(true),
            credential_id: None,
            user_handle: None,
        }
    }

    /// Answers creation options as `navigator.credentials.create` would.
    fn create(&mut self, origin: &str, options: &Value) -> Value {
        let mut options = options.clone();
        // The software key cannot be resident; the server asks for it.
        let selection = &mut options["publicKey"]["authenticatorSelection"];
        assert_eq!(selection["residentKey"], "required");
        assert_eq!(selection["userVerification"], "required");
        selection["residentKey"] = json!("discouraged");
        selection["requireResidentKey"] = json!(false);
        let user_id = options["publicKey"]["user"]["id"].as_str().unwrap();
        self.user_handle = Some(URL_SAFE_NO_PAD.decode(user_id).unwrap());
        let ccr: CreationChallengeResponse = serde_json::from_value(options).unwrap();
        let credential = self
            .soft
            .do_registration(Url::parse(origin).unwrap(), ccr)
            .expect("the authenticator registers");
        let credential = serde_json::to_value(credential).unwrap();
        self.credential_id = Some(credential["id"].as_str().unwrap().to_owned());
        credential
    }

    /// Answers request options as `navigator.credentials.get` would.
    fn get(&mut self, origin: &str, options: &Value) -> Value {
        let mut options = options.clone();
        let id = self.credential_id.clone().expect("registered");
        let public_key = &mut options["publicKey"];
        let discoverable = public_key["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty);
        if discoverable {
            public_key["allowCredentials"] = json!([{ "type": "public-key", "id": id }]);
        }
        let rcr: RequestChallengeResponse = serde_json::from_value(options).unwrap();
        let assertion = self
            .soft
            .do_authentication(Url::parse(origin).unwrap(), rcr)
            .expect("the authenticator signs");
        let mut assertion = serde_json::to_value(assertion).unwrap();
        if discoverable {
            let handle = self.user_handle.as_ref().unwrap();
            assertion["response"]["userHandle"] = json!(URL_SAFE_NO_PAD.encode(handle));
        }
        assertion
    }
}

/// What the passkey tests do through a test app.
trait PasskeyApp {
    /// Registers, verifies the address (as the emailed link would) and
    /// signs in; returns the access token.
    async fn verified(&self, email: &str) -> String;

    /// A password sign-in that must end in the MFA challenge; its token.
    async fn mfa_challenge(&self, email: &str) -> String;

    async fn passkey_options(&self, access: &str) -> Value;

    /// Registers a passkey of `key` for the caller of `access`.
    async fn add_passkey(&self, access: &str, key: &mut Authenticator, name: &str) -> Value;

    async fn sign_in_options(&self, mfa_token: Option<&str>) -> Value;

    /// A discoverable sign-in with `key`: the answer.
    async fn passkey_sign_in(&self, key: &mut Authenticator) -> (StatusCode, Value);

    async fn passkeys(&self, access: &str) -> Vec<Value>;

    /// A session of `key`'s owner that passed the second factor (a
    /// passkey sign-in): what managing factors needs.
    async fn passkey_session(&self, key: &mut Authenticator) -> String;

    /// Answers a password sign-in's challenge with `recovery_code`.
    async fn answer_with_code(&self, email: &str, recovery_code: &str) -> (StatusCode, Value);

    /// `recovery_codes_left` of `GET /auth/mfa`.
    async fn codes_left(&self, access: &str) -> Value;
}

impl PasskeyApp for TestApp {
    async fn verified(&self, email: &str) -> String {
        self.register(email).await;
        self.mark_verified(email).await;
        self.login(email).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn mfa_challenge(&self, email: &str) -> String {
        let (status, body) = self
            .post("/auth/login", json!({"email": email, "password": PASSWORD}))
            .await;
        assert_error(status, &body, 403, "MFA_REQUIRED");
        body["mfa"]["mfa_token"].as_str().unwrap().to_owned()
    }

    async fn passkey_options(&self, access: &str) -> Value {
        let (status, body) = self
            .call(
                Method::POST,
                "/auth/passkeys/register/options",
                access,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["expires_in"], 300);
        body
    }

    async fn add_passkey(&self, access: &str, key: &mut Authenticator, name: &str) -> Value {
        let started = self.passkey_options(access).await;
        let credential = key.create(ORIGIN, &started["options"]);
        let resp = self
            .client
            .post("/auth/passkeys/register")
            .header("origin", APP_ORIGIN)
            .header("authorization", format!("Bearer {access}"))
            .body_json(&json!({
                "ceremony_id": started["ceremony_id"],
                "name": name,
                "credential": credential,
            }))
            .send()
            .await;
        assert_eq!(resp.0.headers()["cache-control"], "no-store");
        let (status, body) = parts(resp).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    async fn passkey_session(&self, key: &mut Authenticator) -> String {
        let (status, tokens) = self.passkey_sign_in(key).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        tokens["access_token"].as_str().unwrap().to_owned()
    }

    async fn answer_with_code(&self, email: &str, recovery_code: &str) -> (StatusCode, Value) {
        let token = self.mfa_challenge(email).await;
        self.post(
            "/auth/mfa/verify",
            json!({ "mfa_token": token, "recovery_code": recovery_code }),
        )
        .await
    }

    async fn codes_left(&self, access: &str) -> Value {
        let (status, body) = self.call(Method::GET, "/auth/mfa", access, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["recovery_codes_left"].clone()
    }

    async fn sign_in_options(&self, mfa_token: Option<&str>) -> Value {
        let body = match mfa_token {
            Some(token) => json!({ "mfa_token": token }),
            None => json!({}),
        };
        let (status, body) = self.post("/auth/passkeys/login/options", body).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn passkey_sign_in(&self, key: &mut Authenticator) -> (StatusCode, Value) {
        let started = self.sign_in_options(None).await;
        let assertion = key.get(ORIGIN, &started["options"]);
        self.post(
            "/auth/passkeys/login",
            json!({ "ceremony_id": started["ceremony_id"], "credential": assertion }),
        )
        .await
    }

    async fn passkeys(&self, access: &str) -> Vec<Value> {
        let (status, body) = self.call(Method::GET, "/auth/passkeys", access, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["passkeys"].as_array().unwrap().clone()
    }
}

/// The claims of an access token (read, not verified).
fn claims(access: &str) -> Value {
    let payload = access.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn a_passkey_signs_in_alone_and_answers_the_challenge_of_a_password_sign_in() {
    let app = app_with_config(passkey_config()).await;
    let email = "pia@example.com";
    let access = app.verified(email).await;
    let mut key = Authenticator::new();
    let added = app.add_passkey(&access, &mut key, "Laptop").await;
    assert_eq!(added["name"], "Laptop");
    assert_eq!(added["id"], key.credential_id.clone().unwrap());
    assert!(added["last_used_at"].is_null());
    assert!(app.event_names().contains(&"passkey_registered"));
    let notice = app.mail(email, "passkey").await;
    assert!(notice.text.contains("Laptop"), "{}", notice.text);

    // A passkey alone: no email, no password, no second step.
    let (status, tokens) = app.passkey_sign_in(&mut key).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(claims(access)["amr"], json!(["hwk", "user", "mfa"]));
    let (status, me) = app.me(access).await;
    assert_eq!(
        (status, me["email"].as_str()),
        (StatusCode::OK, Some(email))
    );
    let listed = app.passkeys(access).await;
    assert_eq!(listed.len(), 1);
    assert!(listed[0]["last_used_at"].is_string(), "{listed:?}");

    // A password now needs the passkey as a second factor.
    let (status, body) = app
        .post("/auth/login", json!({"email": email, "password": PASSWORD}))
        .await;
    assert_error(status, &body, 403, "MFA_REQUIRED");
    assert!(body.get("access_token").is_none());
    let methods = body["mfa"]["methods"].as_array().unwrap();
    assert!(methods.contains(&json!("passkey")), "{methods:?}");
    let mfa_token = body["mfa"]["mfa_token"].as_str().unwrap();
    let started = app.sign_in_options(Some(mfa_token)).await;
    let allowed = &started["options"]["publicKey"]["allowCredentials"];
    assert_eq!(allowed[0]["id"], key.credential_id.clone().unwrap());
    let assertion = key.get(ORIGIN, &started["options"]);
    let (status, tokens) = app
        .post(
            "/auth/passkeys/login",
            json!({
                "ceremony_id": started["ceremony_id"],
                "credential": assertion,
                "mfa_token": mfa_token,
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["amr"],
        json!(["pwd", "hwk", "mfa"])
    );
    // The challenge is spent.
    let (status, body) = app
        .post(
            "/auth/passkeys/login/options",
            json!({ "mfa_token": mfa_token }),
        )
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");
}

#[tokio::test]
async fn a_ceremony_works_once_for_its_session_and_its_lifetime() {
    let app = app_with_config(passkey_config()).await;
    let email = "once@example.com";
    let access = app.verified(email).await;
    let other = app.login(email).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut key = Authenticator::new();
    // Begun by one session, finished by another: refused, and used up.
    let started = app.passkey_options(&access).await;
    let credential = key.create(ORIGIN, &started["options"]);
    let finish = json!({ "ceremony_id": started["ceremony_id"], "credential": credential });
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/passkeys/register",
            &other,
            Some(finish.clone()),
        )
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/passkeys/register",
            &access,
            Some(finish),
        )
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    assert!(app.passkeys(&access).await.is_empty());

    app.add_passkey(&access, &mut key, "Key").await;
    // With a passkey on, managing passkeys needs a session that used one.
    let (status, tokens) = app.passkey_sign_in(&mut key).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    // A credential another account holds: 409.
    let mut twin = Authenticator::new();
    let started = app.passkey_options(&access).await;
    assert_eq!(
        started["options"]["publicKey"]["excludeCredentials"][0]["id"],
        key.credential_id.clone().unwrap(),
        "the registered passkey is excluded"
    );
    let credential = twin.create(ORIGIN, &started["options"]);
    // Another account registered this credential id meanwhile.
    let someone = app.register("someone@example.com").await;
    let taken = PasskeyRecord::new(
        twin.credential_id.clone().unwrap(),
        portcullis::UserId::new(someone["id"].as_str().unwrap()),
        "Theirs".into(),
        json!({}),
        0,
        app.manager.now(),
    );
    app.store.insert_passkey(&taken).await.unwrap();
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/passkeys/register",
            &access,
            Some(json!({ "ceremony_id": started["ceremony_id"], "credential": credential })),
        )
        .await;
    assert_error(status, &body, 409, "PASSKEY_ALREADY_REGISTERED");
    assert_eq!(app.passkeys(&access).await.len(), 1);

    // A sign-in ceremony answers once.
    let started = app.sign_in_options(None).await;
    let assertion = key.get(ORIGIN, &started["options"]);
    let finish = json!({ "ceremony_id": started["ceremony_id"], "credential": assertion });
    let (status, body) = app.post("/auth/passkeys/login", finish.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.post("/auth/passkeys/login", finish).await;
    assert_error(status, &body, 410, "TOKEN_GONE");

    // And not after its five minutes.
    let started = app.sign_in_options(None).await;
    let assertion = key.get(ORIGIN, &started["options"]);
    app.clock.advance(chrono::Duration::seconds(301));
    let (status, body) = app
        .post(
            "/auth/passkeys/login",
            json!({ "ceremony_id": started["ceremony_id"], "credential": assertion }),
        )
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");
}

#[tokio::test]
async fn a_wrong_origin_a_bad_signature_and_a_counter_that_went_back_are_refused() {
    let app = app_with_config(passkey_config()).await;
    let email = "clone@example.com";
    let access = app.verified(email).await;
    let mut key = Authenticator::new();

    // Registration from a page on another origin.
    let started = app.passkey_options(&access).await;
    let credential = key.create("https://localhost:4443", &started["options"]);
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/passkeys/register",
            &access,
            Some(json!({ "ceremony_id": started["ceremony_id"], "credential": credential })),
        )
        .await;
    assert_error(status, &body, 422, "INVALID_PASSKEY");
    app.add_passkey(&access, &mut key, "Key").await;
    let id = key.credential_id.clone().unwrap();

    let refused = |status: StatusCode, body: &Value| {
        assert_error(status, body, 422, "INVALID_PASSKEY");
    };
    // An assertion for another origin.
    let started = app.sign_in_options(None).await;
    let assertion = key.get("https://localhost:4443", &started["options"]);
    let (status, body) = app
        .post(
            "/auth/passkeys/login",
            json!({ "ceremony_id": started["ceremony_id"], "credential": assertion }),
        )
        .await;
    refused(status, &body);
    // A signature that does not verify.
    let started = app.sign_in_options(None).await;
    let mut assertion = key.get(ORIGIN, &started["options"]);
    let signature = assertion["response"]["signature"].as_str().unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    assertion["response"]["signature"] = json!(URL_SAFE_NO_PAD.encode(bytes));
    let (status, body) = app
        .post(
            "/auth/passkeys/login",
            json!({ "ceremony_id": started["ceremony_id"], "credential": assertion }),
        )
        .await;
    refused(status, &body);
    // Another account's user handle on this credential.
    let started = app.sign_in_options(None).await;
    let mut assertion = key.get(ORIGIN, &started["options"]);
    assertion["response"]["userHandle"] = json!(URL_SAFE_NO_PAD.encode([7u8; 16]));
    let (status, body) = app
        .post(
            "/auth/passkeys/login",
            json!({ "ceremony_id": started["ceremony_id"], "credential": assertion }),
        )
        .await;
    refused(status, &body);
    // Not a credential at all.
    let started = app.sign_in_options(None).await;
    let (status, body) = app
        .post(
            "/auth/passkeys/login",
            json!({ "ceremony_id": started["ceremony_id"], "credential": {"id": 1} }),
        )
        .await;
    refused(status, &body);

    // A clone of the key was used meanwhile: the stored counter is ahead
    // of this key's.
    let record = app.store.find_passkey(&id).await.unwrap().unwrap();
    assert!(app
        .store
        .use_passkey(
            &id,
            record.counter,
            &record.credential,
            1000,
            app.manager.now()
        )
        .await
        .unwrap());
    let (status, body) = app.passkey_sign_in(&mut key).await;
    refused(status, &body);
    assert!(app.event_names().contains(&"login_failed"));
    let stored = app.store.find_passkey(&id).await.unwrap().unwrap();
    assert_eq!(stored.counter, 1000, "a refused use changes nothing");
}

#[tokio::test]
async fn passkeys_are_listed_renamed_and_removed_by_their_owner_only() {
    let app = app_with_config(passkey_config()).await;
    let access = app.verified("owner@example.com").await;
    let stranger = app.verified("stranger@example.com").await;
    let mut laptop = Authenticator::new();
    let mut phone = Authenticator::new();
    app.add_passkey(&access, &mut laptop, "Laptop").await;
    let (_, tokens) = app.passkey_sign_in(&mut laptop).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    app.clock.advance(chrono::Duration::seconds(1));
    app.add_passkey(&access, &mut phone, "Phone").await;
    let listed = app.passkeys(&access).await;
    let names: Vec<_> = listed.iter().map(|p| p["name"].clone()).collect();
    assert_eq!(names, [json!("Laptop"), json!("Phone")]);
    assert!(listed[0].get("credential").is_none(), "no key material");
    let path = format!("/auth/passkeys/{}", laptop.credential_id.clone().unwrap());

    let (status, body) = app
        .call(
            Method::PATCH,
            &path,
            &access,
            Some(json!({"name": " Work laptop "})),
        )
        .await;
    assert_eq!(
        (status, &body["name"]),
        (StatusCode::OK, &json!("Work laptop"))
    );
    let (status, body) = app
        .call(Method::PATCH, &path, &access, Some(json!({"name": ""})))
        .await;
    assert_error(status, &body, 422, "INVALID_NAME");
    for (method, json) in [
        (Method::PATCH, Some(json!({"name": "Mine now"}))),
        (Method::DELETE, None),
    ] {
        let (status, body) = app.call(method, &path, &stranger, json).await;
        assert_error(status, &body, 404, "NOT_FOUND");
    }
    assert!(app.passkeys(&stranger).await.is_empty());

    let (status, body) = app.call(Method::DELETE, &path, &access, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(app.event_names().contains(&"passkey_removed"));
    let names: Vec<_> = app
        .passkeys(&access)
        .await
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(names, [json!("Phone")]);
    // The removed one signs in no more.
    let (status, body) = app.passkey_sign_in(&mut laptop).await;
    assert_error(status, &body, 422, "INVALID_PASSKEY");
    let (status, _) = app.passkey_sign_in(&mut phone).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_last_way_in_is_never_removed() {
    let app = app_with(passkey_config(), |b| b.provider(FakeOAuthProvider)).await;
    // An account with no password: one linked identity only.
    let sign_in = app
        .manager
        .sign_in(
            "fake-oauth",
            portcullis::ProviderRequest::new(
                json!({"sub": "s-1", "email": "oauth@example.com", "verified": true}),
            ),
        )
        .await
        .unwrap();
    let access = sign_in.tokens.access_token.clone();
    let mut key = Authenticator::new();
    app.add_passkey(&access, &mut key, "Key").await;
    // The passkey is now a way in: the identity may go ...
    let (status, body) = app
        .call(
            Method::DELETE,
            "/auth/account/linked/fake-oauth",
            &access,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // ... and then the passkey may not (asked from a passkey session,
    // as removing one needs).
    let (_, tokens) = app.passkey_sign_in(&mut key).await;
    let access = tokens["access_token"].as_str().unwrap();
    let path = format!("/auth/passkeys/{}", key.credential_id.clone().unwrap());
    let (status, body) = app.call(Method::DELETE, &path, access, None).await;
    assert_error(status, &body, 409, "LAST_SIGN_IN_METHOD");
    let (status, _) = app.passkey_sign_in(&mut key).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn registering_needs_a_recent_sign_in_and_the_second_factor() {
    let app = app_with_config(passkey_config()).await;
    let email = "stale@example.com";
    let access = app.verified(email).await;
    let mut key = Authenticator::new();
    app.add_passkey(&access, &mut key, "First").await;
    // A password-only session cannot add a passkey to an account that has
    // one: that would let a stolen password add the thief's key.
    let (status, body) = app
        .post("/auth/login", json!({"email": email, "password": PASSWORD}))
        .await;
    assert_error(status, &body, 403, "MFA_REQUIRED");
    let (status, pair) = app
        .call(
            Method::POST,
            "/auth/account/change-password",
            &access,
            Some(json!({"current_password": PASSWORD, "new_password": "Another!Long-pass-42"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let password_only = pair["access_token"].as_str().unwrap();
    for (method, path) in [
        (Method::POST, "/auth/passkeys/register/options".to_owned()),
        (
            Method::DELETE,
            format!("/auth/passkeys/{}", key.credential_id.clone().unwrap()),
        ),
    ] {
        let (status, body) = app.call(method, &path, password_only, None).await;
        assert_error(status, &body, 403, "SECOND_FACTOR_REQUIRED");
    }
    // A passkey session past the recent-sign-in window must sign in again.
    let (status, tokens) = app.passkey_sign_in(&mut key).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let fresh = tokens["access_token"].as_str().unwrap().to_owned();
    app.passkey_options(&fresh).await;
    app.clock.advance(chrono::Duration::minutes(16));
    let (status, tokens) = app
        .post(
            "/auth/refresh",
            json!({ "refresh_token": tokens["refresh_token"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/passkeys/register/options",
            tokens["access_token"].as_str().unwrap(),
            None,
        )
        .await;
    assert_error(status, &body, 403, "REAUTHENTICATION_REQUIRED");
}

#[tokio::test]
async fn without_a_relying_party_passkeys_answer_503() {
    let app = app().await;
    let access = app.verified("plain@example.com").await;
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/passkeys/register/options",
            &access,
            None,
        )
        .await;
    assert_error(status, &body, 503, "PASSKEYS_NOT_CONFIGURED");
    let (status, body) = app.post("/auth/passkeys/login/options", json!({})).await;
    assert_error(status, &body, 503, "PASSKEYS_NOT_CONFIGURED");
    // And a password sign-in is not held up by a second factor it lacks.
    app.login("plain@example.com").await;
}

#[tokio::test]
async fn an_address_nobody_proved_cannot_hold_a_passkey() {
    // The pre-hijack: an attacker registers the victim's address first.
    // A passkey would survive the owner's password reset and sign the
    // attacker in, so none can be added before the address is proven.
    let app = app_with_config(passkey_config()).await;
    let (squatter, _) = app.signed_in("victim@example.com").await;
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/passkeys/register/options",
            &squatter,
            None,
        )
        .await;
    assert_error(status, &body, 403, "EMAIL_NOT_VERIFIED");
    assert!(app.passkeys(&squatter).await.is_empty());
    assert!(!app.event_names().contains(&"passkey_registered"));
}

#[tokio::test]
async fn a_passkey_sign_in_checks_the_account_and_the_client_like_any_sign_in() {
    let app = app_with_config(passkey_config()).await;
    let email = "gone@example.com";
    let access = app.verified(email).await;
    let mut key = Authenticator::new();
    app.add_passkey(&access, &mut key, "Key").await;

    // A ceremony answered from another client (another user agent).
    let started = app.sign_in_options(None).await;
    let assertion = key.get(ORIGIN, &started["options"]);
    let (status, body) = parts(
        app.client
            .post("/auth/passkeys/login")
            .header("origin", APP_ORIGIN)
            .header("user-agent", "another-browser/1.0")
            .body_json(&json!({ "ceremony_id": started["ceremony_id"], "credential": assertion }))
            .send()
            .await,
    )
    .await;
    assert_error(status, &body, 410, "TOKEN_GONE");

    // A deactivated account signs in with no passkey either.
    let user = app.stored(email).await.unwrap();
    app.store
        .patch_user(
            &user.id,
            &portcullis::UserPatch::new().is_active(false),
            app.manager.now(),
        )
        .await
        .unwrap();
    let (status, body) = app.passkey_sign_in(&mut key).await;
    assert_error(status, &body, 403, "USER_INACTIVE");
    let failures = app
        .events
        .lock()
        .iter()
        .filter(|e| e.name() == "login_failed")
        .count();
    assert_eq!(failures, 2, "each refusal is a login_failed event");
}

#[tokio::test]
async fn a_passkey_answers_only_the_challenge_its_ceremony_was_begun_with() {
    let app = app_with_config(passkey_config()).await;
    let email = "two-steps@example.com";
    let access = app.verified(email).await;
    let mut key = Authenticator::new();
    app.add_passkey(&access, &mut key, "Key").await;
    let first = app.mfa_challenge(email).await;
    let second = app.mfa_challenge(email).await;
    let started = app.sign_in_options(Some(&first)).await;
    let assertion = key.get(ORIGIN, &started["options"]);
    // Begun for the first challenge, sent with the second: refused, and
    // the second challenge's answer is gone with it.
    let (status, body) = app
        .post(
            "/auth/passkeys/login",
            json!({ "ceremony_id": started["ceremony_id"], "credential": assertion, "mfa_token": second }),
        )
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    // A discoverable ceremony cannot answer a challenge either.
    let started = app.sign_in_options(None).await;
    let assertion = key.get(ORIGIN, &started["options"]);
    let (status, body) = app
        .post(
            "/auth/passkeys/login",
            json!({ "ceremony_id": started["ceremony_id"], "credential": assertion, "mfa_token": first }),
        )
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");
}

#[tokio::test]
async fn a_credential_that_is_not_an_object_is_refused_before_any_ceremony_is_spent() {
    let app = app_with_config(passkey_config()).await;
    let started = app.sign_in_options(None).await;
    for credential in [json!(null), json!("text"), json!([1, 2])] {
        let (status, body) = app
            .post(
                "/auth/passkeys/login",
                json!({ "ceremony_id": started["ceremony_id"], "credential": credential }),
            )
            .await;
        assert_error(status, &body, 422, "VALIDATION_ERROR");
    }
    let (status, body) = app
        .post(
            "/auth/passkeys/login",
            json!({ "ceremony_id": started["ceremony_id"] }),
        )
        .await;
    assert_error(status, &body, 422, "VALIDATION_ERROR");
    // The ceremony is still open: a junk object spends it.
    let (status, body) = app
        .post(
            "/auth/passkeys/login",
            json!({ "ceremony_id": started["ceremony_id"], "credential": {"id": "x"} }),
        )
        .await;
    assert_error(status, &body, 422, "INVALID_PASSKEY");
}

#[tokio::test]
async fn parallel_removals_never_remove_the_last_way_in() {
    let spy = crate::spy::SpyStore::new(test_store().await);
    let app = app_on_store(passkey_config(), spy.clone(), |b| {
        b.provider(FakeOAuthProvider)
    })
    .await;
    let sign_in = app
        .manager
        .sign_in(
            "fake-oauth",
            portcullis::ProviderRequest::new(
                json!({"sub": "s-2", "email": "two-keys@example.com", "verified": true}),
            ),
        )
        .await
        .unwrap();
    let mut first = Authenticator::new();
    let mut second = Authenticator::new();
    app.add_passkey(&sign_in.tokens.access_token, &mut first, "First")
        .await;
    let (_, tokens) = app.passkey_sign_in(&mut first).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    app.add_passkey(&access, &mut second, "Second").await;
    let (status, _) = app
        .call(
            Method::DELETE,
            "/auth/account/linked/fake-oauth",
            &access,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // The two passkeys are the only ways in; both removals at once, each
    // past its first check (two left) before either deletes.
    *spy.passkey_deletes.lock() = Some(std::sync::Arc::new(tokio::sync::Barrier::new(2)));
    let paths = [&first, &second]
        .map(|key| format!("/auth/passkeys/{}", key.credential_id.clone().unwrap()));
    let (a, b) = tokio::join!(
        app.call(Method::DELETE, &paths[0], &access, None),
        app.call(Method::DELETE, &paths[1], &access, None),
    );
    let statuses = [a.0, b.0];
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::NO_CONTENT || *s == StatusCode::CONFLICT),
        "{a:?} {b:?}"
    );
    let removed = statuses
        .iter()
        .filter(|s| **s == StatusCode::NO_CONTENT)
        .count();
    let left = app.passkeys(&access).await.len();
    assert!(left >= 1, "the account kept a way in: {a:?} {b:?}");
    assert_eq!(left, 2 - removed);
}

#[tokio::test]
async fn an_unlink_racing_the_removal_of_the_last_passkey_keeps_a_way_in() {
    let spy = crate::spy::SpyStore::new(test_store().await);
    let app = app_on_store(passkey_config(), spy.clone(), |b| {
        b.provider(FakeOAuthProvider)
    })
    .await;
    let sign_in = app
        .manager
        .sign_in(
            "fake-oauth",
            portcullis::ProviderRequest::new(
                json!({"sub": "s-3", "email": "race@example.com", "verified": true}),
            ),
        )
        .await
        .unwrap();
    let mut key = Authenticator::new();
    app.add_passkey(&sign_in.tokens.access_token, &mut key, "Key")
        .await;
    let (_, tokens) = app.passkey_sign_in(&mut key).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    // The identity and the passkey are the two ways in; each removal sees
    // the other one before either deletes.
    *spy.passkey_deletes.lock() = Some(std::sync::Arc::new(tokio::sync::Barrier::new(2)));
    let path = format!("/auth/passkeys/{}", key.credential_id.clone().unwrap());
    let (unlink, remove) = tokio::join!(
        app.call(
            Method::DELETE,
            "/auth/account/linked/fake-oauth",
            &access,
            None
        ),
        app.call(Method::DELETE, &path, &access, None),
    );
    *spy.passkey_deletes.lock() = None;
    for (status, _) in [&unlink, &remove] {
        assert!(
            *status == StatusCode::NO_CONTENT || *status == StatusCode::CONFLICT,
            "{unlink:?} {remove:?}"
        );
    }
    let user = app.stored("race@example.com").await.unwrap();
    let linked = app
        .store
        .list_linked_accounts(&user.id)
        .await
        .unwrap()
        .len();
    let passkeys = app.passkeys(&access).await.len();
    assert!(
        linked + passkeys >= 1,
        "a way in is left: {unlink:?} {remove:?}"
    );
}

/// The recovery codes a registration answered.
fn codes_of(registered: &Value) -> Vec<String> {
    registered["recovery_codes"]
        .as_array()
        .unwrap_or_else(|| panic!("no recovery codes in {registered}"))
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_first_passkey_brings_ten_recovery_codes_that_answer_the_challenge_once() {
    let app = app_with_config(passkey_config()).await;
    let email = "lost-key@example.com";
    let access = app.verified(email).await;
    assert_eq!(app.codes_left(&access).await, 0);
    let mut laptop = Authenticator::new();
    let first = app.add_passkey(&access, &mut laptop, "Laptop").await;
    let codes = codes_of(&first);
    assert_eq!(codes.len(), 10);
    let mut unique = codes.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10);
    let access = app.passkey_session(&mut laptop).await;
    assert_eq!(app.codes_left(&access).await, 10);

    // A second passkey keeps the set: no new codes.
    let mut phone = Authenticator::new();
    let second = app.add_passkey(&access, &mut phone, "Phone").await;
    assert!(second["recovery_codes"].is_null(), "{second}");
    assert_eq!(app.codes_left(&access).await, 10);

    // The authenticators are lost: a password sign-in's challenge offers
    // the codes, and one answers it, once.
    let (status, body) = app
        .post("/auth/login", json!({"email": email, "password": PASSWORD}))
        .await;
    assert_error(status, &body, 403, "MFA_REQUIRED");
    assert_eq!(body["mfa"]["methods"], json!(["passkey", "recovery_code"]));
    let typed = format!("{}-{}", &codes[3][..8], &codes[3][8..]).to_lowercase();
    let (status, tokens) = app.answer_with_code(email, &typed).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(claims(access)["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(app.codes_left(access).await, 9);
    let notice = app.mail(email, "A recovery code was used").await;
    assert!(notice.text.contains("9 unused codes"), "{}", notice.text);
    assert!(app.event_names().contains(&"recovery_code_used"));
    let (status, body) = app.answer_with_code(email, &codes[3]).await;
    assert_error(status, &body, 422, "INVALID_MFA_CODE");
    assert_eq!(app.codes_left(access).await, 9);
}

#[tokio::test]
async fn passkey_only_users_regenerate_their_recovery_codes() {
    let app = app_with_config(passkey_config()).await;
    let email = "new-codes@example.com";
    let password_session = app.verified(email).await;
    let mut key = Authenticator::new();
    let old = codes_of(&app.add_passkey(&password_session, &mut key, "Key").await);

    // From a session that did not pass the passkey: refused, as for TOTP.
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/mfa/recovery-codes",
            &password_session,
            None,
        )
        .await;
    assert_error(status, &body, 403, "SECOND_FACTOR_REQUIRED");
    let access = app.passkey_session(&mut key).await;
    let (status, body) = app
        .call(Method::POST, "/auth/mfa/recovery-codes", &access, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fresh = body["recovery_codes"].as_array().unwrap();
    assert_eq!(fresh.len(), 10);
    assert!(app.event_names().contains(&"recovery_codes_regenerated"));
    assert_eq!(app.codes_left(&access).await, 10);
    let (status, body) = app.answer_with_code(email, &old[0]).await;
    assert_error(status, &body, 422, "INVALID_MFA_CODE");
    let (status, body) = app
        .answer_with_code(email, fresh[0].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn recovery_codes_outlive_totp_while_a_passkey_is_left() {
    let app = app_with_config(passkey_config()).await;
    let email = "both@example.com";
    let access = app.verified(email).await;
    let enrolled = app.enrol(&access, email).await;
    // A session through TOTP registers a passkey: TOTP's set stays.
    let token = app.mfa_challenge(email).await;
    let (status, tokens) = app
        .post(
            "/auth/mfa/verify",
            json!({ "mfa_token": token, "code": app.code(&enrolled.totp) }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let mut key = Authenticator::new();
    let added = app.add_passkey(&access, &mut key, "Key").await;
    assert!(added["recovery_codes"].is_null(), "{added}");

    // TOTP goes; the passkey is left, and so are the codes.
    let (status, body) = app
        .call(Method::DELETE, "/auth/mfa/totp", &access, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(app.codes_left(&access).await, 10);
    let (status, body) = app
        .post("/auth/login", json!({"email": email, "password": PASSWORD}))
        .await;
    assert_error(status, &body, 403, "MFA_REQUIRED");
    assert_eq!(body["mfa"]["methods"], json!(["passkey", "recovery_code"]));
    let (status, body) = app
        .answer_with_code(email, &enrolled.recovery_codes[0])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .answer_with_code(email, &enrolled.recovery_codes[0])
        .await;
    assert_error(status, &body, 422, "INVALID_MFA_CODE");
}

#[tokio::test]
async fn the_last_passkey_takes_the_recovery_codes_with_it() {
    let app = app_with_config(passkey_config()).await;
    let email = "last-key@example.com";
    let access = app.verified(email).await;
    let mut laptop = Authenticator::new();
    let codes = codes_of(&app.add_passkey(&access, &mut laptop, "Laptop").await);
    let access = app.passkey_session(&mut laptop).await;
    let mut phone = Authenticator::new();
    app.add_passkey(&access, &mut phone, "Phone").await;
    let path =
        |key: &Authenticator| format!("/auth/passkeys/{}", key.credential_id.clone().unwrap());

    // One passkey goes, one is left: the codes stay.
    let (status, body) = app
        .call(Method::DELETE, &path(&laptop), &access, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(app.codes_left(&access).await, 10);
    // The last one goes (TOTP off; the password is a way in): so do they.
    let (status, body) = app.call(Method::DELETE, &path(&phone), &access, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(app.codes_left(&access).await, 0);
    let user = app.stored(email).await.unwrap();
    assert!(app.store.list_factors(&user.id).await.unwrap().is_empty());
    // A password signs in alone again, and a code answers nothing.
    app.login(email).await;

    // A new first passkey brings a new set; the old one does not revive.
    let mut fresh = Authenticator::new();
    let new_codes = codes_of(&app.add_passkey(&access, &mut fresh, "Fresh").await);
    assert!(!new_codes.contains(&codes[0]));
    let (status, body) = app.answer_with_code(email, &codes[0]).await;
    assert_error(status, &body, 422, "INVALID_MFA_CODE");
    let (status, body) = app.answer_with_code(email, &new_codes[0]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn adding_totp_beside_a_passkey_needs_a_session_that_passed_it() {
    let app = app_with_config(passkey_config()).await;
    let email = "totp-beside@example.com";
    // This session signed in with the password alone, before the passkey.
    let access = app.verified(email).await;
    let mut laptop = Authenticator::new();
    let codes = codes_of(&app.add_passkey(&access, &mut laptop, "Laptop").await);
    // TOTP's confirmation would replace the passkey's recovery codes: the
    // password-only session may not start it.
    let (status, body) = app
        .call(Method::POST, "/auth/mfa/totp/setup", &access, None)
        .await;
    assert_error(status, &body, 403, "SECOND_FACTOR_REQUIRED");
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/mfa/totp/confirm",
            &access,
            Some(json!({"code": "123456"})),
        )
        .await;
    assert_error(status, &body, 403, "SECOND_FACTOR_REQUIRED");
    assert_eq!(app.codes_left(&access).await, 10);
    let (status, body) = app.answer_with_code(email, &codes[0]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A session that passed the passkey may.
    let access = app.passkey_session(&mut laptop).await;
    let (status, body) = app
        .call(Method::POST, "/auth/mfa/totp/setup", &access, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
