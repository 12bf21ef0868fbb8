//! The magic link: request, open, single use, expiry, redirects, account
//! rules.

use chrono::Duration;
use poem::http::{Method, StatusCode};
use portcullis::{veto_fn, Action, ProviderRequest, UserPatch, Veto};
use portcullis_magic_link::{EmailCodeProvider, MagicLinkProvider};
use serde_json::json;

use crate::common::*;
use crate::*;

#[tokio::test]
async fn a_new_address_signs_up_verified_without_password_and_can_set_one() {
    let app = ml_app(test_config()).await;
    let body = app.request_link("New.Comer@Example.com").await;
    assert!(body["message"].is_string(), "{body}");
    let token = app.link_token_for("new.comer@example.com").await;
    assert!(
        app.stored("new.comer@example.com").await.is_none(),
        "no user before the link is used"
    );

    let resp = app.click_link(&token).await;
    assert_eq!(resp.0.status(), StatusCode::OK);
    assert_eq!(
        resp.0.headers().get("cache-control").unwrap(),
        "no-store",
        "token answers are not cached"
    );
    let (_, pair) = parts(resp).await;
    let access = access_of(&pair);
    let me = app.whoami(&access).await;
    assert_eq!(me["email"], "new.comer@example.com");
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["has_password"], false);
    let user = app.stored("new.comer@example.com").await.unwrap();
    assert!(user.password_hash.is_none());
    assert!(user.email_verified);

    assert_eq!(
        app.registered_by(),
        [("new.comer@example.com".into(), "magic-link".into())]
    );
    assert_eq!(
        app.logins(),
        [("new.comer@example.com".into(), "magic-link".into())]
    );
    // The proof is the address: no linked account is recorded.
    assert!(app
        .store
        .as_ref()
        .list_linked_accounts(&user.id)
        .await
        .unwrap()
        .is_empty());

    // A first password, then the password works too.
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/account/set-password",
            &access,
            Some(json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["has_password"], true);
    app.login("new.comer@example.com").await;
}

#[tokio::test]
async fn a_returning_user_signs_in_to_the_same_account() {
    let app = ml_app(test_config()).await;
    let first = app.link_for("back@example.com").await;
    let (status, pair) = app.post_link(&first).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let id = app.whoami(&access_of(&pair)).await["id"].clone();

    let second = app.link_for("BACK@example.com").await;
    let (status, pair) = app.post_link(&second).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    assert_eq!(app.whoami(&access_of(&pair)).await["id"], id);
    assert_eq!(app.registered_by().len(), 1, "created once");
    assert_eq!(app.logins().len(), 2);
}

#[tokio::test]
async fn a_verified_password_user_signs_in_with_a_link() {
    let app = ml_app(test_config()).await;
    let registered = app.register("pw@example.com").await;
    app.patch("pw@example.com", UserPatch::new().email_verified(true))
        .await;
    let token = app.link_for("pw@example.com").await;
    let (status, pair) = app.post_link(&token).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let me = app.whoami(&access_of(&pair)).await;
    assert_eq!(me["id"], registered["id"]);
    assert_eq!(me["has_password"], true, "the password stays");
    assert_eq!(
        app.logins(),
        [("pw@example.com".into(), "magic-link".into())]
    );
}

#[tokio::test]
async fn an_unverified_password_account_is_not_taken_over() {
    let app = ml_app(test_config()).await;
    app.register("squat@example.com").await;
    let token = app.link_for("squat@example.com").await;
    let (status, body) = app.post_link(&token).await;
    assert_error(status, &body, 409, "ACCOUNT_EXISTS");
    let user = app.stored("squat@example.com").await.unwrap();
    assert!(!user.email_verified, "nothing changed");
    assert!(user.password_hash.is_some());
    assert!(app.logins().is_empty());
    assert_eq!(
        app.failures(),
        [("magic-link".to_owned(), "ACCOUNT_EXISTS")]
    );
    // The link was used up all the same.
    let (status, body) = app.post_link(&token).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
}

#[tokio::test]
async fn a_link_works_once() {
    let app = ml_app(test_config()).await;
    let token = app.link_for("once@example.com").await;
    let (status, body) = app.post_link(&token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.post_link(&token).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    let (status, body) = parts(app.click_link(&token).await).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    assert_eq!(
        app.failures(),
        [
            ("magic-link".to_owned(), "TOKEN_GONE"),
            ("magic-link".to_owned(), "TOKEN_GONE")
        ]
    );
}

#[tokio::test]
async fn a_link_expires_after_fifteen_minutes() {
    let app = ml_app(test_config()).await;
    let early = app.link_for("early@example.com").await;
    let late = app.link_for("late@example.com").await;
    let mail = app.mail("late@example.com", "sign-in link").await;
    assert!(mail.text.contains("15 minutes"), "{}", mail.text);

    app.clock
        .advance(Duration::minutes(15) - Duration::seconds(1));
    let (status, body) = app.post_link(&early).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.clock.advance(Duration::seconds(2));
    let (status, body) = parts(app.click_link(&late).await).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    assert!(app.stored("late@example.com").await.is_none());
}

#[tokio::test]
async fn the_lifetime_is_configurable() {
    let app = ml_app_with(
        test_config(),
        MagicLinkProvider::new().ttl(std::time::Duration::from_secs(120)),
        EmailCodeProvider::new(),
        |b| b,
    )
    .await;
    let token = app.link_for("short@example.com").await;
    let mail = app.mail("short@example.com", "sign-in link").await;
    assert!(mail.text.contains("2 minutes"), "{}", mail.text);
    app.clock.advance(Duration::seconds(121));
    let (status, body) = app.post_link(&token).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
}

#[tokio::test]
async fn unknown_and_malformed_tokens() {
    let app = ml_app(test_config()).await;
    let (status, body) = parts(app.click_link("not-a-real-token").await).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    let (status, body) = app.post_link(&"A".repeat(43)).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    let (status, body) = app.post_link("").await;
    assert_error(status, &body, 410, "TOKEN_GONE");

    let (status, body) = parts(app.client.get("/auth/magic-link/verify").send().await).await;
    assert_error(status, &body, 422, "VALIDATION_ERROR");
    for bad in [
        json!({}),
        json!({ "token": 5 }),
        json!({ "token": "x", "extra": true }),
    ] {
        let (status, body) = app.post("/auth/magic-link/verify", bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
}

#[tokio::test]
async fn a_new_link_replaces_the_previous_one() {
    let app = ml_app(test_config()).await;
    let old = app.link_for("twice@example.com").await;
    let new = app.link_for("twice@example.com").await;
    assert_ne!(old, new);
    let (status, body) = app.post_link(&old).await;
    assert_error(status, &body, 410, "TOKEN_GONE");
    let (status, body) = app.post_link(&new).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn the_link_lands_on_an_allowed_redirect_with_cookies() {
    let mut config = cookie_config();
    config
        .redirects
        .allowed
        .push("https://app.example.com/welcome".into());
    let app = ml_app(config).await;
    let (status, body) = app
        .post(
            "/auth/magic-link",
            json!({ "email": "land@example.com", "redirect_to": "https://app.example.com/welcome" }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let token = app.link_token_for("land@example.com").await;

    // The browser follows the link from the mail and the person presses
    // the page's button.
    let resp = app.click_link(&token).await;
    assert_eq!(resp.0.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        resp.0.headers().get("location").unwrap(),
        "https://app.example.com/welcome"
    );
    assert_eq!(resp.0.headers().get("cache-control").unwrap(), "no-store");
    let cookies = cookies_of(&resp);
    let access = cookie_value(&cookies, "portcullis_access").expect("access cookie");
    assert!(cookie_value(&cookies, "portcullis_refresh").is_some());
    assert!(
        cookies.iter().all(|c| c.contains("HttpOnly")),
        "{cookies:?}"
    );

    let (status, me) = parts(
        app.client
            .get("/auth/me")
            .header("cookie", format!("portcullis_access={access}"))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["email"], "land@example.com");
}

#[tokio::test]
async fn without_cookies_the_redirect_carries_the_tokens_in_the_fragment() {
    let mut config = test_config();
    config
        .redirects
        .allowed
        .push("https://app.example.com/done".into());
    let app = ml_app(config).await;
    let (status, _) = app
        .post(
            "/auth/magic-link",
            json!({ "email": "frag@example.com", "redirect_to": "https://app.example.com/done" }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let token = app.link_token_for("frag@example.com").await;
    let resp = app.click_link(&token).await;
    assert_eq!(resp.0.status(), StatusCode::SEE_OTHER);
    assert!(cookies_of(&resp).is_empty());
    let location = resp
        .0
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let fragment = location
        .strip_prefix("https://app.example.com/done#access_token=")
        .unwrap_or_else(|| panic!("{location}"));
    let access = fragment.split('&').next().unwrap();
    assert_eq!(app.whoami(access).await["email"], "frag@example.com");
}

#[tokio::test]
async fn the_front_end_url_is_the_default_landing() {
    let mut config = test_config();
    config.redirects.frontend_url = Some("https://app.example.com/".into());
    let app = ml_app(config).await;
    let token = app.link_for("front@example.com").await;
    let resp = app.click_link(&token).await;
    assert_eq!(resp.0.status(), StatusCode::SEE_OTHER);
    let location = resp.0.headers().get("location").unwrap().to_str().unwrap();
    assert!(
        location.starts_with("https://app.example.com/#access_token="),
        "{location}"
    );
}

#[tokio::test]
async fn a_redirect_off_the_allow_list_is_refused_at_request() {
    let mut config = test_config();
    config.redirects.frontend_url = Some("https://app.example.com/".into());
    config
        .redirects
        .allowed
        .push("https://app.example.com/welcome".into());
    let app = ml_app(config).await;
    for target in [
        "https://evil.example.net/",
        "https://app.example.com/welcome.evil.net",
        "https://app.example.com/welcome/../../x",
        "//evil.example.net",
        "",
    ] {
        let (status, body) = app
            .post(
                "/auth/magic-link",
                json!({ "email": "open@example.com", "redirect_to": target }),
            )
            .await;
        assert_error(status, &body, 422, "REDIRECT_NOT_ALLOWED");
        assert_eq!(body["field"], "redirect_to", "{body}");
    }
    assert_eq!(app.mail_count("open@example.com").await, 0);
}

#[tokio::test]
async fn post_verify_with_cookies_refuses_cross_site_requests() {
    let app = ml_app(cookie_config()).await;
    let token = app.link_for("csrf@example.com").await;
    for origin in [None, Some("https://evil.example.net")] {
        let mut req = app
            .client
            .post("/auth/magic-link/verify")
            .body_json(&json!({ "token": token }));
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        let (status, body) = parts(req.send().await).await;
        assert_error(status, &body, 403, "CSRF_REJECTED");
    }
    // Refused before the token was touched: from the app it still works.
    let resp = app
        .client
        .post("/auth/magic-link/verify")
        .header("origin", APP_ORIGIN)
        .body_json(&json!({ "token": token }))
        .send()
        .await;
    assert_eq!(resp.0.status(), StatusCode::OK);
    let cookies = cookies_of(&resp);
    assert!(cookie_value(&cookies, "portcullis_access").is_some());
    let (_, pair) = parts(resp).await;
    assert!(pair["access_token"].is_string(), "{pair}");
}

#[tokio::test]
async fn with_sign_up_disabled_only_existing_users_get_links() {
    let mut config = test_config();
    config.accounts.allow_provider_sign_up = false;
    let app = ml_app(config).await;
    app.register("member@example.com").await;
    app.patch("member@example.com", UserPatch::new().email_verified(true))
        .await;

    let unknown = app.request_link("stranger@example.com").await;
    let known = app.request_link("member@example.com").await;
    assert_eq!(unknown, known, "the same answer");
    assert_eq!(app.mail_count("stranger@example.com").await, 0);
    let token = app.link_token_for("member@example.com").await;
    let (status, body) = app.post_link(&token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(app.stored("stranger@example.com").await.is_none());
}

#[tokio::test]
async fn sign_up_disabled_after_the_link_was_mailed_is_refused() {
    // The manager decides at sign-in: a link mailed while sign-up was open
    // to an address that still has no user cannot create one once it is
    // closed. Simulated with the Rust API on a manager that refuses.
    let mut config = test_config();
    config.accounts.allow_provider_sign_up = false;
    let app = ml_app(config).await;
    let token = portcullis::OpaqueToken::generate();
    let record = portcullis::OneTimeToken::new(
        token.hash(),
        "magic_link",
        app.manager.now(),
        Duration::minutes(15),
    )
    .for_email("late-comer@example.com");
    assert!(app
        .manager
        .provider_cx()
        .store_token(&record, true)
        .await
        .unwrap());
    let (status, body) = app.post_link(token.expose()).await;
    assert_error(status, &body, 403, "SIGN_UP_DISABLED");
    assert!(app.stored("late-comer@example.com").await.is_none());
}

#[tokio::test]
async fn an_inactive_user_gets_no_link_and_cannot_use_one() {
    let app = ml_app(test_config()).await;
    let token = app.link_for("sleeper@example.com").await;
    let (status, _) = app.post_link(&token).await;
    assert_eq!(status, StatusCode::OK);
    let pending = app.link_for("sleeper@example.com").await;
    app.patch("sleeper@example.com", UserPatch::new().is_active(false))
        .await;

    let (status, body) = app.post_link(&pending).await;
    assert_error(status, &body, 403, "USER_INACTIVE");

    let before = app.mail_count("sleeper@example.com").await;
    app.request_link("sleeper@example.com").await;
    assert_eq!(app.mail_count("sleeper@example.com").await, before);
}

#[tokio::test]
async fn the_answer_is_the_same_for_every_address() {
    let app = ml_app(test_config()).await;
    app.register("known@example.com").await;
    app.register("gone@example.com").await;
    app.patch("gone@example.com", UserPatch::new().is_active(false))
        .await;
    let known = app
        .post("/auth/magic-link", json!({ "email": "known@example.com" }))
        .await;
    let unknown = app
        .post("/auth/magic-link", json!({ "email": "nobody@example.com" }))
        .await;
    let gone = app
        .post("/auth/magic-link", json!({ "email": "gone@example.com" }))
        .await;
    assert_eq!(known.0, StatusCode::ACCEPTED);
    assert_eq!(known, unknown);
    assert_eq!(known, gone);
    assert_eq!(
        app.mail_count("known@example.com").await,
        2,
        "verify + link"
    );
    assert_eq!(app.mail_count("nobody@example.com").await, 1);
    assert_eq!(app.mail_count("gone@example.com").await, 1, "verify only");
}

#[tokio::test]
async fn request_validation() {
    let app = ml_app(test_config()).await;
    let (status, body) = app
        .post("/auth/magic-link", json!({ "email": "not-an-email" }))
        .await;
    assert_error(status, &body, 422, "INVALID_EMAIL");
    assert_eq!(body["field"], "email");
    for bad in [
        json!({}),
        json!({ "email": 5 }),
        json!({ "email": "a@example.com", "redirect_to": 5 }),
        json!({ "email": "a@example.com", "password": "x" }),
    ] {
        let (status, body) = app.post("/auth/magic-link", bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body["code"].is_string(), "{body}");
    }
    assert!(app.outbox.sent().is_empty());
}

#[tokio::test]
async fn hooks_and_policies_of_the_manager_apply() {
    let app = ml_app_with(
        test_config(),
        MagicLinkProvider::new(),
        EmailCodeProvider::new(),
        |b| {
            b.hook(veto_fn(|action: Action| async move {
                match action {
                    Action::Register {
                        email, provider, ..
                    } if provider == "magic-link" && email.ends_with("@blocked.test") => {
                        Err(Veto::new("DOMAIN_BLOCKED", "not this domain"))
                    }
                    _ => Ok(()),
                }
            }))
        },
    )
    .await;
    let token = app.link_for("someone@blocked.test").await;
    let (status, body) = app.post_link(&token).await;
    assert_error(status, &body, 403, "DOMAIN_BLOCKED");
    assert!(app.stored("someone@blocked.test").await.is_none());
}

/// A before-hook is asked before a sign-in proof is mailed, for known and
/// unknown addresses alike, with the provider that mails it; its veto is
/// the answer, and nothing is mailed or stored.
#[tokio::test]
async fn a_before_hook_vetoes_mailing_a_sign_in_proof() {
    let asked = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let seen = asked.clone();
    let app = ml_app_with(
        test_config(),
        MagicLinkProvider::new(),
        EmailCodeProvider::new(),
        move |b| {
            b.hook(veto_fn(move |action: Action| {
                let seen = seen.clone();
                async move {
                    match action {
                        Action::RequestSignInMail { provider, email } => {
                            seen.lock().push((provider, email.clone()));
                            if email.ends_with("@blocked.test") {
                                Err(Veto::new("DOMAIN_BLOCKED", "not this domain"))
                            } else {
                                Ok(())
                            }
                        }
                        _ => Ok(()),
                    }
                }
            }))
        },
    )
    .await;
    app.register("Known@Blocked.test").await;
    app.manager.wait_for_deliveries().await;
    let mails_before = app.outbox.sent().len();
    for (path, provider) in [
        ("/auth/magic-link", "magic-link"),
        ("/auth/email-code", "email-code"),
    ] {
        for email in ["known@blocked.test", "nobody@blocked.test"] {
            let (status, body) = app.post(path, json!({ "email": email })).await;
            assert_error(status, &body, 403, "DOMAIN_BLOCKED");
            assert!(
                asked
                    .lock()
                    .contains(&(provider.to_owned(), email.to_owned())),
                "{provider} asked for {email}: {:?}",
                asked.lock()
            );
        }
    }
    app.manager.wait_for_deliveries().await;
    assert_eq!(app.outbox.sent().len(), mails_before, "nothing mailed");
    assert!(app.stored("nobody@blocked.test").await.is_none());
    // The veto is per request: an allowed address still gets its link and code.
    let token = app.link_for("fine@example.com").await;
    let (status, body) = app.post_link(&token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.code_for("fine@example.com").await;
    assert!(asked
        .lock()
        .contains(&("email-code".to_owned(), "fine@example.com".to_owned())));
}

#[tokio::test]
async fn without_an_email_sender_requests_are_refused() {
    let mut config = test_config();
    config.public_url = None;
    let app = ml_app(config).await;
    let (status, body) = app
        .post("/auth/magic-link", json!({ "email": "x@example.com" }))
        .await;
    assert_error(status, &body, 503, "EMAIL_NOT_CONFIGURED");
}

#[tokio::test]
async fn the_rust_api_works_without_http() {
    let app = ml_app(test_config()).await;
    let provider = MagicLinkProvider::new();
    let client = portcullis::ClientInfo::default();
    provider
        .request_link(&app.manager, "rust@example.com", None, &client)
        .await
        .unwrap();
    let token = app.link_token_for("rust@example.com").await;
    let sign_in = app
        .manager
        .sign_in(
            "magic-link",
            ProviderRequest::new(json!({ "token": token })),
        )
        .await
        .unwrap();
    assert_eq!(sign_in.user.email, "rust@example.com");
    assert!(sign_in.user.email_verified);
    let err = provider
        .request_link(
            &app.manager,
            "rust@example.com",
            Some("https://x.test/"),
            &client,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "REDIRECT_NOT_ALLOWED");
}

#[tokio::test]
async fn unlinking_counts_email_sign_in_only_for_a_verified_email() {
    // Unverified provider emails may create users here (off by default).
    let mut config = test_config();
    config.accounts.allow_unverified_provider_sign_up = true;
    let app = ml_app_with(
        config,
        MagicLinkProvider::new(),
        EmailCodeProvider::new(),
        |b| b.provider(FakeOAuthProvider),
    )
    .await;
    let sign_in = |sub: &str, email: &str, verified: bool| {
        let body = json!({"sub": sub, "email": email, "verified": verified});
        let manager = app.manager.clone();
        async move {
            manager
                .sign_in("fake-oauth", ProviderRequest::new(body))
                .await
                .unwrap()
        }
    };

    // A provider-only user with an unverified email: the magic link and the
    // email code refuse that account, so the provider is its only way in.
    let unverified = sign_in("gh-1", "unverified@example.com", false).await;
    assert!(!unverified.user.email_verified);
    assert!(!unverified.user.has_password());
    let access = unverified.tokens.access_token.clone();
    let (status, body) = app
        .call(
            Method::DELETE,
            "/auth/account/linked/fake-oauth",
            &access,
            None,
        )
        .await;
    assert_error(status, &body, 409, "LAST_SIGN_IN_METHOD");
    let token = app.link_for("unverified@example.com").await;
    let (status, body) = app.post_link(&token).await;
    assert_error(status, &body, 409, "ACCOUNT_EXISTS");

    // With a verified email, a mailed link still signs the user in.
    let verified = sign_in("gh-2", "verified@example.com", true).await;
    let access = verified.tokens.access_token.clone();
    let (status, body) = app
        .call(
            Method::DELETE,
            "/auth/account/linked/fake-oauth",
            &access,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let token = app.link_for("verified@example.com").await;
    let (status, pair) = app.post_link(&token).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    assert_eq!(
        app.whoami(&access_of(&pair)).await["id"],
        verified.user.id.as_str()
    );
}

/// Victim lock-out by mail budget: five requests for someone else's
/// address used to make that address's magic link, email code and
/// forgot-password answer 429 for an hour. Over the per-recipient budget
/// every one of them answers the same 202 and sends nothing new; the link
/// already mailed still signs the owner in.
#[tokio::test]
async fn requests_for_someone_elses_address_never_lock_the_owner_out() {
    let app = ml_app(test_config()).await;
    let before = app.mail_count("owner@example.com").await;
    for _ in 0..5 {
        app.request_link("Owner@Example.com").await;
        app.manager.wait_for_deliveries().await;
    }
    let live = app.link_token_for("owner@example.com").await;
    assert_eq!(app.mail_count("owner@example.com").await, before + 5);
    for (path, body) in [
        ("/auth/magic-link", json!({ "email": "owner@example.com" })),
        ("/auth/email-code", json!({ "email": "owner@example.com" })),
        (
            "/auth/forgot-password",
            json!({ "email": "owner@example.com" }),
        ),
        (
            "/auth/verify-email/resend",
            json!({ "email": "owner@example.com" }),
        ),
    ] {
        let (status, answer) = app.post(path, body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{path}: {answer}");
    }
    assert_eq!(
        app.mail_count("owner@example.com").await,
        before + 5,
        "nothing new is sent"
    );
    // The newest link mailed before the budget ran out still works.
    let (status, body) = app.post_link(&live).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string(), "{body}");
}

/// The `magic_link_requested` and `email_code_requested` events so far, as
/// JSON.
fn requests_of(app: &TestApp) -> Vec<serde_json::Value> {
    app.events
        .lock()
        .iter()
        .filter(|e| e.name().ends_with("_requested"))
        .map(|e| serde_json::to_value(e).unwrap())
        .collect()
}

#[tokio::test]
async fn link_and_code_requests_emit_events_when_they_mail() {
    let app = ml_app(test_config()).await;
    let known = app.register("known@example.com").await;
    let verification = requests_of(&app).len();
    app.request_link("Known@example.com").await;
    app.request_code("new@example.com").await;
    app.manager.wait_for_deliveries().await;
    // Both mails go out in background jobs: their events may come in
    // either order.
    let mut seen = requests_of(&app)[verification..].to_vec();
    seen.sort_by_key(|e| std::cmp::Reverse(e["event"].as_str().unwrap_or_default().to_owned()));
    assert_eq!(
        seen,
        [
            json!({"event": "magic_link_requested", "provider": "magic-link",
                   "user_id": known["id"], "email": "known@example.com"}),
            json!({"event": "email_code_requested", "provider": "email-code",
                   "user_id": null, "email": "new@example.com"}),
        ]
    );
    assert!(app.event_names().contains(&"magic_link_requested"));

    // Nothing mailed, no event: an unknown address with sign-up off.
    let mut config = test_config();
    config.accounts.allow_provider_sign_up = false;
    let app = ml_app(config).await;
    app.request_link("stranger@example.com").await;
    app.request_code("stranger@example.com").await;
    app.manager.wait_for_deliveries().await;
    assert_eq!(app.mail_count("stranger@example.com").await, 0);
    assert_eq!(requests_of(&app), Vec::<serde_json::Value>::new());
}
