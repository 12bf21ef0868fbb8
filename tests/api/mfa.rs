//! Second factors over HTTP: TOTP enrolment, recovery codes, and the MFA
//! challenge every sign-in ends in once a factor is on.

use futures_util::future::join_all;
use poem::http::{Method, StatusCode};
use portcullis::{
    factor::{Sealer, Totp},
    veto_fn, Action, AuthConfig, Error, MfaAnswer, SealingKeyConfig, Veto,
};
use serde_json::{json, Value};

use crate::common::*;

/// The test config with one sealing key.
fn mfa_config() -> AuthConfig {
    let mut config = test_config();
    config.mfa.sealing_keys = vec![SealingKeyConfig::new("k1", Sealer::generate_key())];
    config
}

/// What a test needs after enrolling: the app's generator and the codes.
pub(crate) struct Enrolled {
    pub(crate) totp: Totp,
    pub(crate) recovery_codes: Vec<String>,
}

/// What the MFA tests do through a test app.
pub(crate) trait MfaApp {
    /// The unix time of the app's clock.
    fn unix(&self) -> u64;

    /// The code the app shows now.
    fn code(&self, totp: &Totp) -> String;

    /// Moves the clock to the next 30-second step (a step is used once).
    fn next_step(&self);

    /// Starts and confirms TOTP for the caller of `access`, whose address
    /// is verified first (enrolment needs it).
    async fn enrol(&self, access: &str, email: &str) -> Enrolled;

    /// A password sign-in that must end in the MFA challenge; its token.
    async fn challenged(&self, email: &str) -> String;

    async fn verify(&self, body: Value) -> (StatusCode, Value);

    async fn factors(&self, access: &str) -> Value;
}

impl MfaApp for TestApp {
    fn unix(&self) -> u64 {
        u64::try_from(self.manager.now().timestamp()).unwrap()
    }

    fn code(&self, totp: &Totp) -> String {
        totp.code_at_step(Totp::step_of(self.unix()))
    }

    fn next_step(&self) {
        self.clock.advance(chrono::Duration::seconds(30));
    }

    async fn enrol(&self, access: &str, email: &str) -> Enrolled {
        self.mark_verified(email).await;
        let (status, setup) = self
            .call(Method::POST, "/auth/mfa/totp/setup", access, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{setup}");
        let totp = Totp::from_base32(setup["secret"].as_str().unwrap(), "Portcullis", email)
            .expect("an app reads the secret");
        let (status, body) = self
            .call(
                Method::POST,
                "/auth/mfa/totp/confirm",
                access,
                Some(json!({ "code": self.code(&totp) })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let recovery_codes = body["recovery_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        self.next_step();
        Enrolled {
            totp,
            recovery_codes,
        }
    }

    async fn challenged(&self, email: &str) -> String {
        let (status, body) = self
            .post("/auth/login", json!({"email": email, "password": PASSWORD}))
            .await;
        assert_error(status, &body, 403, "MFA_REQUIRED");
        assert!(body.get("access_token").is_none(), "{body}");
        assert_eq!(body["mfa"]["methods"], json!(["totp", "recovery_code"]));
        assert_eq!(body["mfa"]["expires_in"], 300);
        body["mfa"]["mfa_token"].as_str().unwrap().to_owned()
    }

    async fn verify(&self, body: Value) -> (StatusCode, Value) {
        self.post("/auth/mfa/verify", body).await
    }

    async fn factors(&self, access: &str) -> Value {
        let (status, body) = self.call(Method::GET, "/auth/mfa", access, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

#[tokio::test]
async fn enrolling_totp_makes_every_password_sign_in_ask_for_a_code() {
    let app = app_with_config(mfa_config()).await;
    let email = "ada@example.com";
    let (access, _) = app.signed_in(email).await;
    assert_eq!(
        app.factors(&access).await,
        json!({
            "totp": false,
            "totp_pending": false,
            "totp_enrolled_at": null,
            "totp_last_used_at": null,
            "recovery_codes_left": 0
        })
    );

    // A second factor survives a password reset, so it needs an address
    // someone proved: else whoever registered the address first would
    // lock its owner out of the account they recover by mail.
    let (status, refused) = app
        .call(Method::POST, "/auth/mfa/totp/setup", &access, None)
        .await;
    assert_error(status, &refused, 403, "EMAIL_NOT_VERIFIED");
    assert_eq!(app.factors(&access).await["totp_pending"], false);
    app.mark_verified(email).await;

    // Setup: a secret and its URI; nothing is on yet.
    let resp = app
        .client
        .post("/auth/mfa/totp/setup")
        .header("authorization", format!("Bearer {access}"))
        .send()
        .await;
    resp.assert_header("cache-control", "no-store");
    let setup = body(resp).await;
    let secret = setup["secret"].as_str().unwrap();
    let uri = setup["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Portcullis:ada%40example.com?"),
        "{uri}"
    );
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert_eq!(app.factors(&access).await["totp_pending"], true);
    app.login(email).await;

    // A wrong code does not turn it on.
    let totp = Totp::from_base32(secret, "Portcullis", email).unwrap();
    let wrong = format!(
        "{:06}",
        (app.code(&totp).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/mfa/totp/confirm",
            &access,
            Some(json!({ "code": wrong })),
        )
        .await;
    assert_error(status, &body, 422, "INVALID_MFA_CODE");
    assert_eq!(body["field"], "code");

    // The right one does, and answers ten distinct recovery codes.
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/mfa/totp/confirm",
            &access,
            Some(json!({ "code": app.code(&totp) })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let codes: Vec<&str> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 10);
    let mut unique = codes.clone();
    unique.dedup();
    assert_eq!(unique.len(), 10);
    let status = app.factors(&access).await;
    assert_eq!(status["totp"], true);
    assert_eq!(status["totp_pending"], false);
    assert_eq!(status["recovery_codes_left"], 10);
    assert!(status["totp_enrolled_at"].is_string());
    app.mail(email, "A second factor was added").await;

    // At rest: the secret is sealed, the codes are hashes.
    let user = app.stored(email).await.unwrap();
    let factors = app.store.list_factors(&user.id).await.unwrap();
    let sealed = factors[0].secret.as_ref().unwrap();
    assert_eq!(sealed.key_id, "k1");
    assert!(!sealed.ciphertext.contains(secret));
    let hashes: Vec<&str> = factors[1].codes.iter().map(|h| h.as_str()).collect();
    assert!(codes.iter().all(|c| !hashes.contains(c)));
    assert!(hashes.contains(&portcullis::TokenHash::of(codes[0]).as_str()));

    // Sign-in now ends in a challenge; the code of the step used to
    // confirm is spent, the next one opens a session.
    let token = app.challenged(email).await;
    let (status, body) = app
        .verify(json!({ "mfa_token": token, "code": app.code(&totp) }))
        .await;
    assert_error(status, &body, 422, "INVALID_MFA_CODE");
    app.next_step();
    let (status, tokens) = app
        .verify(json!({ "mfa_token": token, "code": app.code(&totp) }))
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let (status, me) = app.me(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    // The challenge worked once.
    app.next_step();
    let (status, body) = app
        .verify(json!({ "mfa_token": token, "code": app.code(&totp) }))
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    let names = app.event_names();
    for name in [
        "factor_enrolled",
        "mfa_challenged",
        "mfa_challenge_failed",
        "mfa_challenge_passed",
    ] {
        assert!(names.contains(&name), "{name}: {names:?}");
    }
    assert_eq!(
        names.last(),
        Some(&"login_succeeded"),
        "the session opens after the second factor: {names:?}"
    );
    assert!(
        !names.contains(&"login_failed"),
        "a challenge is not a failed sign-in: {names:?}"
    );
}

#[tokio::test]
async fn a_replayed_code_is_refused_even_under_16_parallel_answers() {
    let mut config = mfa_config();
    // The store's single use is under test here, not the account delay.
    config.rate_limits.enabled = false;
    config.rate_limits.failed_sign_in_free = 100;
    let app = app_with_config(config).await;
    let email = "race@example.com";
    let (access, _) = app.signed_in(email).await;
    let enrolled = app.enrol(&access, email).await;
    let mut tokens = Vec::new();
    for _ in 0..16 {
        tokens.push(app.challenged(email).await);
    }
    let code = app.code(&enrolled.totp);
    let answers = tokens
        .iter()
        .map(|token| app.verify(json!({ "mfa_token": token, "code": code })));
    let results = join_all(answers).await;
    let ok = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!(ok, 1, "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != StatusCode::OK) {
        assert_error(*status, body, 422, "INVALID_MFA_CODE");
    }
}

#[tokio::test]
async fn wrong_codes_are_delayed_per_account_even_with_rate_limits_off() {
    let mut config = mfa_config();
    config.rate_limits.enabled = false;
    let free = config.rate_limits.failed_sign_in_free;
    let app = app_with_config(config).await;
    let email = "guessed@example.com";
    let (access, _) = app.signed_in(email).await;
    let enrolled = app.enrol(&access, email).await;
    let right = app.code(&enrolled.totp);
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 7) % 1_000_000);

    // One wrong answer per fresh challenge: the password buys challenges
    // without limit here, but not guesses.
    for _ in 0..free {
        let token = app.challenged(email).await;
        let (status, body) = app
            .verify(json!({ "mfa_token": token, "code": wrong }))
            .await;
        assert_error(status, &body, 422, "INVALID_MFA_CODE");
    }
    let token = app.challenged(email).await;
    let (status, body) = app
        .verify(json!({ "mfa_token": token, "code": app.code(&enrolled.totp) }))
        .await;
    assert_error(status, &body, 429, "RATE_LIMITED");
    assert!(app.event_names().contains(&"rate_limited"));
    // The delay passes; the owner's right code goes through.
    app.clock.advance(chrono::Duration::seconds(1));
    let (status, body) = app
        .verify(json!({ "mfa_token": token, "code": app.code(&enrolled.totp) }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn recovery_codes_work_once_each_and_regeneration_kills_the_old_set() {
    let app = app_with_config(mfa_config()).await;
    let email = "lost-phone@example.com";
    let (access, _) = app.signed_in(email).await;
    let enrolled = app.enrol(&access, email).await;
    let first = &enrolled.recovery_codes[0];

    // Typed loosely: lower case, with a dash.
    let typed = format!("{}-{}", &first[..8], &first[8..]).to_lowercase();
    let token = app.challenged(email).await;
    let (status, body) = app
        .verify(json!({ "mfa_token": token, "recovery_code": typed }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.factors(&access).await["recovery_codes_left"], 9);
    let notice = app.mail(email, "A recovery code was used").await;
    assert!(notice.text.contains("9 unused codes"), "{}", notice.text);
    assert!(app.event_names().contains(&"recovery_code_used"));

    // Used once: refused the second time.
    let token = app.challenged(email).await;
    let (status, body) = app
        .verify(json!({ "mfa_token": token, "recovery_code": first }))
        .await;
    assert_error(status, &body, 422, "INVALID_MFA_CODE");

    // Exactly one answer per request.
    let (status, body) = app
        .verify(json!({ "mfa_token": token, "recovery_code": first, "code": "123456" }))
        .await;
    assert_error(status, &body, 422, "INVALID_MFA_ANSWER");
    let (status, body) = app.verify(json!({ "mfa_token": token })).await;
    assert_error(status, &body, 422, "INVALID_MFA_ANSWER");

    // A new set (from a session that passed the second factor; the one
    // from before enrolment may not): the old codes die, the new ones work.
    let (status, body) = app
        .call(Method::POST, "/auth/mfa/recovery-codes", &access, None)
        .await;
    assert_error(status, &body, 403, "SECOND_FACTOR_REQUIRED");
    let other = app.challenged(email).await;
    let (status, pair) = app
        .verify(json!({ "mfa_token": other, "recovery_code": enrolled.recovery_codes[2] }))
        .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let access = pair["access_token"].as_str().unwrap().to_owned();
    let (status, body) = app
        .call(Method::POST, "/auth/mfa/recovery-codes", &access, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fresh = body["recovery_codes"][0].as_str().unwrap().to_owned();
    assert_eq!(app.factors(&access).await["recovery_codes_left"], 10);
    let (status, body) = app
        .verify(json!({ "mfa_token": token, "recovery_code": enrolled.recovery_codes[1] }))
        .await;
    assert_error(status, &body, 422, "INVALID_MFA_CODE");
    let (status, body) = app
        .verify(json!({ "mfa_token": token, "recovery_code": fresh }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn wrong_codes_kill_the_challenge_and_slow_the_account_like_sign_in() {
    let app = app_with_config(mfa_config()).await;
    let email = "guess@example.com";
    let (access, _) = app.signed_in(email).await;
    let enrolled = app.enrol(&access, email).await;
    let token = app.challenged(email).await;
    let right = app.code(&enrolled.totp);
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 7) % 1_000_000);
    for _ in 0..5 {
        let (status, body) = app
            .verify(json!({ "mfa_token": token, "code": wrong }))
            .await;
        assert_error(status, &body, 422, "INVALID_MFA_CODE");
    }
    // Five wrong answers: the challenge is dead, even for the right code.
    let (status, body) = app
        .verify(json!({ "mfa_token": token, "code": right }))
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    // A new challenge does not buy new guesses: the right password is held
    // back by the account's delay, the same counter sign-in uses.
    let (status, body) = app
        .post("/auth/login", json!({"email": email, "password": PASSWORD}))
        .await;
    assert_error(status, &body, 429, "RATE_LIMITED");
    app.clock.advance(chrono::Duration::seconds(1));
    let token = app.challenged(email).await;
    let (status, body) = app
        .verify(json!({ "mfa_token": token, "code": app.code(&enrolled.totp) }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The passed second factor cleared the failures.
    for _ in 0..5 {
        let (status, body) = app
            .post(
                "/auth/login",
                json!({"email": email, "password": "wrong-one"}),
            )
            .await;
        assert_error(status, &body, 401, "INVALID_CREDENTIALS");
    }
}

#[tokio::test]
async fn a_challenge_is_bound_to_its_client_its_epoch_and_its_lifetime() {
    let app = app_with_config(mfa_config()).await;
    let email = "bound@example.com";
    let (access, _) = app.signed_in(email).await;
    let enrolled = app.enrol(&access, email).await;
    let login_as = |agent: &'static str| {
        app.client
            .post("/auth/login")
            .header("user-agent", agent)
            .body_json(&json!({"email": email, "password": PASSWORD}))
            .send()
    };
    let verify_as = |agent: &'static str, token: String, code: String| {
        app.client
            .post("/auth/mfa/verify")
            .header("user-agent", agent)
            .body_json(&json!({"mfa_token": token, "code": code}))
            .send()
    };
    let (_, body) = parts(login_as("Phone/1.0").await).await;
    let token = body["mfa"]["mfa_token"].as_str().unwrap().to_owned();
    // Another client cannot answer it (and does not spend it).
    let (status, body) =
        parts(verify_as("Laptop/2.0", token.clone(), app.code(&enrolled.totp)).await).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    let (status, body) = parts(verify_as("Phone/1.0", token, app.code(&enrolled.totp)).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A credential change (here: every session revoked) ends a sign-in
    // half done.
    app.next_step();
    let token = app.challenged(email).await;
    let user = app.stored(email).await.unwrap();
    app.manager.revoke_all_sessions(&user.id).await.unwrap();
    let (status, body) = app
        .verify(json!({ "mfa_token": token, "code": app.code(&enrolled.totp) }))
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");

    // Five minutes, then it is gone.
    let token = app.challenged(email).await;
    app.clock.advance(chrono::Duration::seconds(301));
    let (status, body) = app
        .verify(json!({ "mfa_token": token, "code": app.code(&enrolled.totp) }))
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");
}

#[tokio::test]
async fn every_provider_and_the_token_endpoint_end_in_the_challenge() {
    let app = app_with(mfa_config(), |b| b.provider(TrustEmailProvider)).await;
    let email = "passwordless@example.com";
    let (access, _) = app.passwordless(email).await;
    let enrolled = app.enrol(&access, email).await;

    // A passwordless provider: no session, a challenge.
    let request = portcullis::ProviderRequest::new(json!({ "email": email }));
    let challenge = match app.manager.sign_in("trust-email", request).await {
        Err(Error::MfaRequired(challenge)) => challenge,
        other => panic!("expected the MFA challenge: {other:?}"),
    };
    assert!(!format!("{challenge:?}").contains(&challenge.token));
    let sign_in = app
        .manager
        .verify_mfa(
            &challenge.token,
            MfaAnswer::Totp(app.code(&enrolled.totp).into()),
            portcullis::ClientInfo::default(),
        )
        .await
        .expect("the second factor passes");
    assert_eq!(sign_in.session.provider, "trust-email");

    // The OAuth2 password grant: RFC 6749's shape, with the challenge.
    let app = app_with_config(mfa_config()).await;
    let email = "token@example.com";
    let (access, _) = app.signed_in(email).await;
    let enrolled = app.enrol(&access, email).await;
    let resp = app
        .client
        .post("/auth/token")
        .content_type("application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=password&username={email}&password={}",
            urlencode(PASSWORD)
        ))
        .send()
        .await;
    resp.assert_status(StatusCode::FORBIDDEN);
    resp.assert_header("cache-control", "no-store");
    let body = body(resp).await;
    assert_eq!(body["error"], "mfa_required", "{body}");
    let token = body["mfa"]["mfa_token"].as_str().unwrap();
    let (status, body) = app
        .verify(json!({ "mfa_token": token, "code": app.code(&enrolled.totp) }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn enrolment_needs_keys_a_recent_sign_in_and_one_factor_at_a_time() {
    // No sealing keys: nothing to enrol with.
    let app = app().await;
    let (access, _) = app.signed_in("nokeys@example.com").await;
    let (status, body) = app
        .call(Method::POST, "/auth/mfa/totp/setup", &access, None)
        .await;
    assert_error(status, &body, 503, "MFA_NOT_CONFIGURED");

    let app = app_with_config(mfa_config()).await;
    let email = "recent@example.com";
    let (access, _) = app.signed_in(email).await;
    app.clock.advance(chrono::Duration::minutes(16));
    let (status, body) = app
        .call(Method::POST, "/auth/mfa/totp/setup", &access, None)
        .await;
    assert_error(status, &body, 403, "REAUTHENTICATION_REQUIRED");

    let access = app.login(email).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let enrolled = app.enrol(&access, email).await;
    // Managing it takes a session that passed the second factor: the
    // password-only session that enrolled it may not start another.
    let (status, body) = app
        .call(Method::POST, "/auth/mfa/totp/setup", &access, None)
        .await;
    assert_error(status, &body, 403, "SECOND_FACTOR_REQUIRED");
    let token = app.challenged(email).await;
    let (status, pair) = app
        .verify(json!({ "mfa_token": token, "code": app.code(&enrolled.totp) }))
        .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let access = pair["access_token"].as_str().unwrap().to_owned();
    let (status, body) = app
        .call(Method::POST, "/auth/mfa/totp/setup", &access, None)
        .await;
    assert_error(status, &body, 409, "FACTOR_ALREADY_ENROLLED");
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/mfa/totp/confirm",
            &access,
            Some(json!({"code": "000000"})),
        )
        .await;
    assert_error(status, &body, 409, "FACTOR_ALREADY_ENROLLED");

    // Removing it: sign-in is one step again, and the owner is told.
    let (status, body) = app
        .call(Method::DELETE, "/auth/mfa/totp", &access, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    app.mail(
        email,
        "second factor of your Portcullis account was removed",
    )
    .await;
    assert!(app.event_names().contains(&"factor_removed"));
    assert_eq!(
        app.factors(&access).await,
        json!({
            "totp": false,
            "totp_pending": false,
            "totp_enrolled_at": null,
            "totp_last_used_at": null,
            "recovery_codes_left": 0
        })
    );
    app.login(email).await;
    let (status, body) = app
        .call(Method::DELETE, "/auth/mfa/totp", &access, None)
        .await;
    assert_error(status, &body, 404, "NOT_FOUND");
    let (status, body) = app
        .call(Method::POST, "/auth/mfa/recovery-codes", &access, None)
        .await;
    assert_error(status, &body, 404, "NOT_FOUND");
}

#[tokio::test]
async fn a_before_hook_can_veto_enrolment() {
    let app = app_with(mfa_config(), |b| {
        b.hook(veto_fn(|action: Action| async move {
            match action {
                Action::EnrollFactor { factor, .. } if factor == "totp" => {
                    Err(Veto::new("MFA_MANAGED_ELSEWHERE", "use the company SSO"))
                }
                _ => Ok(()),
            }
        }))
    })
    .await;
    let (access, _) = app.signed_in("vetoed@example.com").await;
    app.mark_verified("vetoed@example.com").await;
    let (status, body) = app
        .call(Method::POST, "/auth/mfa/totp/setup", &access, None)
        .await;
    assert_error(status, &body, 403, "MFA_MANAGED_ELSEWHERE");
    let user = app.stored("vetoed@example.com").await.unwrap();
    assert!(app.store.list_factors(&user.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn secrets_sealed_under_an_old_key_still_open_after_a_rotation() {
    let config = mfa_config();
    let old = config.mfa.sealing_keys[0].clone();
    let app = app_with_config(config).await;
    let email = "rotate@example.com";
    let (access, _) = app.signed_in(email).await;
    let enrolled = app.enrol(&access, email).await;

    // The same store under a new key first and the old one kept.
    let mut rotated = test_config();
    rotated.mfa.sealing_keys = vec![
        SealingKeyConfig::new("k2", Sealer::generate_key()),
        old.clone(),
    ];
    let after = app_on_store(rotated, app.store.clone(), |b| b).await;
    after.next_step();
    let token = after.challenged(email).await;
    let (status, body) = after
        .verify(json!({ "mfa_token": token, "code": after.code(&enrolled.totp) }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Without the old key: TOTP cannot be checked, recovery codes still
    // work (the challenge names only them).
    let mut lost = test_config();
    lost.mfa.sealing_keys = vec![SealingKeyConfig::new("k3", Sealer::generate_key())];
    let lost = app_on_store(lost, app.store.clone(), |b| b).await;
    let (status, body) = lost
        .post("/auth/login", json!({"email": email, "password": PASSWORD}))
        .await;
    assert_error(status, &body, 403, "MFA_REQUIRED");
    assert_eq!(body["mfa"]["methods"], json!(["recovery_code"]));
    let token = body["mfa"]["mfa_token"].as_str().unwrap();
    lost.next_step();
    let (status, body) = lost
        .verify(json!({ "mfa_token": token, "code": lost.code(&enrolled.totp) }))
        .await;
    assert_error(status, &body, 503, "MFA_NOT_CONFIGURED");
    let (status, body) = lost
        .verify(json!({ "mfa_token": token, "recovery_code": enrolled.recovery_codes[0] }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The old key's id kept but its material replaced: the operator's
    // mistake answers 503 like a missing key, never a 500.
    let mut swapped = test_config();
    swapped.mfa.sealing_keys = vec![SealingKeyConfig::new(&old.id, Sealer::generate_key())];
    let swapped = app_on_store(swapped, app.store.clone(), |b| b).await;
    swapped.next_step();
    swapped.next_step();
    let token = swapped.challenged(email).await;
    let (status, body) = swapped
        .verify(json!({ "mfa_token": token, "code": swapped.code(&enrolled.totp) }))
        .await;
    assert_error(status, &body, 503, "MFA_NOT_CONFIGURED");
}

#[tokio::test]
async fn a_superuser_resets_a_users_factors_with_a_recent_sign_in() {
    let app = app_with_config(mfa_config()).await;
    let email = "lost-everything@example.com";
    let (access, _) = app.signed_in(email).await;
    app.enrol(&access, email).await;
    let user = app.stored(email).await.unwrap();
    let path = format!("/users/{}/mfa", user.id.as_str());

    // Not for the user themself, nor anyone else who is not a superuser.
    let (status, body) = app.call(Method::DELETE, &path, &access, None).await;
    assert_error(status, &body, 403, "FORBIDDEN");

    let root = "root@example.com";
    app.manager
        .ensure_superuser(root, &portcullis::Secret::new(PASSWORD))
        .await
        .unwrap();
    let admin = app.login(root).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.clock.advance(chrono::Duration::minutes(16));
    let (status, body) = app.call(Method::DELETE, &path, &admin, None).await;
    assert_error(status, &body, 403, "REAUTHENTICATION_REQUIRED");
    assert!(!app.store.list_factors(&user.id).await.unwrap().is_empty());

    let admin = app.login(root).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = app.call(Method::DELETE, &path, &admin, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(app.store.list_factors(&user.id).await.unwrap().is_empty());
    app.mail(
        email,
        "second factor of your Portcullis account was removed",
    )
    .await;
    assert!(app.event_names().contains(&"factors_reset"));
    // One step again.
    app.login(email).await;
    let (status, body) = app.call(Method::DELETE, &path, &admin, None).await;
    assert_error(status, &body, 404, "NOT_FOUND");
}

/// The claims of an access token, unverified (the test only reads them).
fn claims(access: &str) -> Value {
    use base64::Engine as _;
    let payload = access.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// An app route that needs a second factor.
struct PayoutApi;

#[poem_openapi::OpenApi]
impl PayoutApi {
    /// Pays out (a second factor is required).
    #[oai(path = "/payouts", method = "post")]
    async fn payout(
        &self,
        caller: portcullis::api::SecondFactor,
    ) -> Result<
        poem_openapi::payload::PlainText<String>,
        portcullis::api::ApiErrors<{ portcullis::api::error_set::AUTHED }>,
    > {
        Ok(poem_openapi::payload::PlainText(format!(
            "paid {}",
            caller.user.email
        )))
    }
}

#[tokio::test]
async fn sessions_record_how_they_were_proven_and_routes_can_require_a_second_factor() {
    use poem::EndpointExt as _;
    let app = app_with_config(mfa_config()).await;
    let client = poem::test::TestClient::new(
        portcullis::api::routes(
            &app.manager,
            (
                portcullis_credentials::CredentialsApi::new(&app.manager),
                PayoutApi,
            ),
        )
        .boxed(),
    );
    let payout = |access: String| {
        client
            .post("/payouts")
            .header("authorization", format!("Bearer {access}"))
            .send()
    };
    let email = "stepup@example.com";
    let (access, refresh) = app.signed_in(email).await;
    let first = claims(&access);
    assert_eq!(first["amr"], json!(["pwd"]), "{first}");
    assert!(first["auth_time"].is_i64(), "{first}");
    // A password alone does not reach the route.
    let (status, body) = parts(payout(access.clone()).await).await;
    assert_error(status, &body, 403, "SECOND_FACTOR_REQUIRED");

    let enrolled = app.enrol(&access, email).await;
    let token = app.challenged(email).await;
    let (status, tokens) = app
        .verify(json!({ "mfa_token": token, "code": app.code(&enrolled.totp) }))
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let proven = claims(&access);
    assert_eq!(proven["amr"], json!(["pwd", "otp", "mfa"]), "{proven}");
    let resp = payout(access).await;
    resp.assert_status(StatusCode::OK);
    resp.assert_text(format!("paid {email}")).await;

    // Refreshing keeps both, from the store (the session, not the token).
    app.clock.advance(chrono::Duration::minutes(5));
    let (status, next) = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{next}");
    let refreshed = claims(next["access_token"].as_str().unwrap());
    assert_eq!(refreshed["amr"], proven["amr"]);
    assert_eq!(refreshed["auth_time"], proven["auth_time"]);
    assert!(refreshed["iat"].as_i64() > proven["iat"].as_i64());
    // The session opened before the second factor stays a password one.
    let (status, old) = app.refresh(&refresh).await;
    assert_eq!(status, StatusCode::OK, "{old}");
    assert_eq!(
        claims(old["access_token"].as_str().unwrap())["amr"],
        json!(["pwd"])
    );
}

#[tokio::test]
async fn required_second_factors_are_enrolled_at_sign_in_before_any_token() {
    let mut config = mfa_config();
    config.mfa.required = portcullis::MfaRequirement::Everyone;
    let app = app_with_config(config).await;
    let email = "must-enrol@example.com";
    app.register(email).await;
    let (status, body) = app
        .post("/auth/login", json!({"email": email, "password": PASSWORD}))
        .await;
    assert_error(status, &body, 403, "MFA_SETUP_REQUIRED");
    assert!(body.get("access_token").is_none(), "{body}");
    assert_eq!(body["mfa"]["methods"], json!(["totp_setup"]));
    assert_eq!(body["mfa"]["expires_in"], 900);
    let token = body["mfa"]["mfa_token"].as_str().unwrap().to_owned();
    // A setup challenge answers no MFA verification.
    let (status, body) = app
        .verify(json!({ "mfa_token": token, "code": "000000" }))
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    // Not on an address nobody proved (the challenge stays usable).
    let (status, body) = app
        .post("/auth/mfa/enroll/setup", json!({ "mfa_token": token }))
        .await;
    assert_error(status, &body, 403, "EMAIL_NOT_VERIFIED");
    app.mark_verified(email).await;

    let (status, setup) = app
        .post("/auth/mfa/enroll/setup", json!({ "mfa_token": token }))
        .await;
    assert_eq!(status, StatusCode::OK, "{setup}");
    let totp = Totp::from_base32(setup["secret"].as_str().unwrap(), "Portcullis", email).unwrap();
    let (status, body) = app
        .post(
            "/auth/mfa/enroll/confirm",
            json!({ "mfa_token": token, "code": "000000" }),
        )
        .await;
    assert_error(status, &body, 422, "INVALID_MFA_CODE");
    let (status, body) = app
        .post(
            "/auth/mfa/enroll/confirm",
            json!({ "mfa_token": token, "code": app.code(&totp) }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["recovery_codes"].as_array().unwrap().len(), 10);
    let access = body["tokens"]["access_token"].as_str().unwrap();
    assert_eq!(claims(access)["amr"], json!(["pwd", "otp", "mfa"]));
    let (status, me) = app.me(access).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    // Used once; and from now on the usual challenge.
    let (status, body) = app
        .post("/auth/mfa/enroll/setup", json!({ "mfa_token": token }))
        .await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    app.challenged(email).await;

    // Another client cannot use a setup challenge.
    let other = "other-client@example.com";
    app.register(other).await;
    let (_, body) = app
        .post("/auth/login", json!({"email": other, "password": PASSWORD}))
        .await;
    let token = body["mfa"]["mfa_token"].as_str().unwrap();
    let (status, body) = parts(
        app.client
            .post("/auth/mfa/enroll/setup")
            .header("user-agent", "Elsewhere/1.0")
            .body_json(&json!({ "mfa_token": token }))
            .send()
            .await,
    )
    .await;
    assert_error(status, &body, 410, "TOKEN_GONE");

    // Superusers only: ordinary users sign in in one step.
    let mut config = mfa_config();
    config.mfa.required = portcullis::MfaRequirement::Superusers;
    let app = app_with_config(config).await;
    app.signed_in("ordinary@example.com").await;
    app.manager
        .ensure_superuser("root@example.com", &portcullis::Secret::new(PASSWORD))
        .await
        .unwrap();
    let (status, body) = app
        .post(
            "/auth/login",
            json!({"email": "root@example.com", "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 403, "MFA_SETUP_REQUIRED");

    // Without keys the requirement is a configuration error.
    let mut config = test_config();
    config.mfa.required = portcullis::MfaRequirement::Everyone;
    let err = portcullis::AuthManager::builder(config)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("mfa.required"), "{err}");
}

#[tokio::test]
async fn a_session_without_the_second_factor_cannot_manage_factors() {
    let app = app_with_config(mfa_config()).await;
    let email = "old-token@example.com";
    let (access, _) = app.signed_in(email).await;
    app.enrol(&access, email).await;
    // An old, password-only session (from before enrolment) and the
    // password: a password change answers a fresh session ...
    let (status, pair) = app
        .call(
            Method::POST,
            "/auth/account/change-password",
            &access,
            Some(json!({"current_password": PASSWORD, "new_password": "Another!Long-pass-42"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let fresh = pair["access_token"].as_str().unwrap();
    // ... which still cannot mint recovery codes or turn TOTP off.
    for (method, path) in [
        (Method::POST, "/auth/mfa/recovery-codes"),
        (Method::DELETE, "/auth/mfa/totp"),
    ] {
        let (status, body) = app.call(method, path, fresh, None).await;
        assert_error(status, &body, 403, "SECOND_FACTOR_REQUIRED");
    }
    assert_eq!(app.factors(fresh).await["totp"], true);
}

#[tokio::test]
async fn a_fresh_code_renews_an_old_session_for_flows_that_need_a_recent_sign_in() {
    let app = app_with_config(mfa_config()).await;
    let email = "step-up@example.com";
    let (access, _) = app.signed_in(email).await;
    // Without TOTP there is nothing to step up with.
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/mfa/step-up",
            &access,
            Some(json!({"code": "123456"})),
        )
        .await;
    assert_error(status, &body, 404, "NOT_FOUND");
    let enrolled = app.enrol(&access, email).await;
    let token = app.challenged(email).await;
    let (status, pair) = app
        .verify(json!({"mfa_token": token, "code": app.code(&enrolled.totp)}))
        .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    app.next_step();
    let old = pair["access_token"].as_str().unwrap().to_owned();
    let old_refresh = pair["refresh_token"].as_str().unwrap().to_owned();

    // Twenty minutes on, the session is too old to add a factor.
    app.clock.advance(chrono::Duration::minutes(20));
    let (status, body) = app
        .call(Method::POST, "/auth/mfa/recovery-codes", &old, None)
        .await;
    assert_error(status, &body, 403, "REAUTHENTICATION_REQUIRED");
    // A wrong code renews nothing and counts on the account.
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/mfa/step-up",
            &old,
            Some(json!({"code": "000000"})),
        )
        .await;
    assert_error(status, &body, 422, "INVALID_MFA_CODE");
    assert!(app.event_names().contains(&"mfa_challenge_failed"));
    // A fresh code does: a new session, signed in now.
    let (status, fresh) = app
        .call(
            Method::POST,
            "/auth/mfa/step-up",
            &old,
            Some(json!({"code": app.code(&enrolled.totp)})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    let access = fresh["access_token"].as_str().unwrap();
    assert_eq!(claims(access)["amr"], json!(["pwd", "otp", "mfa"]));
    let (status, body) = app
        .call(Method::POST, "/auth/mfa/recovery-codes", access, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The old session ended with its refresh token.
    let (status, body) = app.me(&old).await;
    assert_error(status, &body, 401, "UNAUTHENTICATED");
    let (status, _) = app.refresh(&old_refresh).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The same code twice is a replay.
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/mfa/step-up",
            access,
            Some(json!({"code": app.code(&enrolled.totp)})),
        )
        .await;
    assert_error(status, &body, 422, "INVALID_MFA_CODE");
}
