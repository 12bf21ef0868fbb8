//! Signing in through the OpenID provider: new and returning users, the
//! authorization request, the landing page.

use poem::http::StatusCode;
use portcullis::TokenHash;
use portcullis_oauth::{providers_from_vars, BINDING_COOKIE, STATE_PURPOSE};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a_new_user_signs_in_then_returns_as_the_same_user() {
    let app = app().await;
    let idp = Idp::new();
    let (sub, email) = idp.verified_user("Ada Lovelace").await;

    let mut browser = Browser::new();
    let first = sign_in(&app, &mut browser, "acme", &sub).await;
    assert_eq!(first.status, StatusCode::OK, "{first:?}");
    assert_eq!(first.body["token_type"], "bearer");
    assert_eq!(first.headers["cache-control"], "no-store");
    let user = me(&app, &first.body).await;
    assert_eq!(user["email"], email);
    assert_eq!(user["email_verified"], true);
    assert_eq!(user["name"], "Ada Lovelace");
    let link = app
        .store
        .as_ref()
        .find_linked_account("acme", &sub)
        .await
        .unwrap()
        .expect("the identity is linked");
    assert_eq!(link.user_id.to_string(), user["id"].as_str().unwrap());
    // The binding cookie is cleared once used.
    assert!(browser.binding().is_none(), "{browser:?}");

    // The provider now reports another email: the account is keyed by
    // (provider, subject), so it is the same user.
    idp.set_user(
        &sub,
        json!({"email": unique("renamed") + "@example.com", "email_verified": true}),
    )
    .await;
    let second = sign_in(&app, &mut Browser::new(), "acme", &sub).await;
    assert_eq!(second.status, StatusCode::OK, "{second:?}");
    assert_eq!(me(&app, &second.body).await["id"], user["id"]);
    assert_ne!(second.body["refresh_token"], first.body["refresh_token"]);

    let names = app.event_names();
    let count = |name: &str| names.iter().filter(|n| **n == name).count();
    assert_eq!(count("user_registered"), 1, "{names:?}");
    assert_eq!(count("account_linked"), 1, "{names:?}");
    assert_eq!(count("login_succeeded"), 2, "{names:?}");
    assert_eq!(count("login_failed"), 0, "{names:?}");
}

#[tokio::test]
async fn authorize_sends_state_pkce_and_nonce_and_binds_the_browser() {
    let app = app().await;
    let mut browser = Browser::new();
    let answer = browser.get(&app, "/auth/oauth/acme/authorize").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{answer:?}");
    assert_eq!(answer.headers["cache-control"], "no-store");
    let url = answer.location();
    assert!(url
        .as_str()
        .starts_with(&format!("{}/oauth2/authorize?", issuer())));
    assert_eq!(param(&url, "response_type").as_deref(), Some("code"));
    assert_eq!(param(&url, "client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(
        param(&url, "redirect_uri").as_deref(),
        Some("https://api.example.com/auth/oauth/acme/callback")
    );
    assert_eq!(
        param(&url, "scope").as_deref(),
        Some("openid email profile")
    );
    assert_eq!(
        param(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let challenge = param(&url, "code_challenge").unwrap();
    assert_eq!(challenge.len(), 43);
    let state = param(&url, "state").unwrap();
    assert_eq!(state.len(), 43, "256-bit state");
    let nonce = param(&url, "nonce").unwrap();
    assert_eq!(nonce.len(), 43, "256-bit nonce");

    let cookie = answer.set_cookie(BINDING_COOKIE).expect("binding cookie");
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
        "Path=/auth/oauth",
        "Max-Age=600",
    ] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    let binding = browser.binding().unwrap().to_owned();
    assert_eq!(binding.len(), 43, "256-bit binding");

    // Server side: stored under the state's hash only, with the verifier,
    // the nonce, the provider and the hash of the binding.
    let now = app.manager.now();
    let store = app.store.as_ref();
    assert!(store
        .find_one_time_token(&TokenHash::from_hex(state.clone()), STATE_PURPOSE, now)
        .await
        .unwrap()
        .is_none());
    let record = store
        .find_one_time_token(&TokenHash::of(&state), STATE_PURPOSE, now)
        .await
        .unwrap()
        .expect("the pending sign-in");
    assert_eq!(record.data["provider"], "acme");
    assert_eq!(record.data["nonce"], nonce.as_str());
    assert_eq!(record.data["browser"], TokenHash::of(&binding).as_str());
    assert_ne!(record.data["browser"], binding.as_str());
    assert_eq!(record.data["pkce_verifier"].as_str().unwrap().len(), 43);
    assert_eq!((record.expires_at - record.created_at).num_seconds(), 600);

    // A second sign-in from the same browser keeps its binding.
    let again = browser.get(&app, "/auth/oauth/acme/authorize").await;
    assert_ne!(param(&again.location(), "state").unwrap(), state);
    assert_eq!(browser.binding().unwrap(), binding);
}

#[tokio::test]
async fn the_browser_lands_on_the_front_end_with_tokens_in_the_fragment() {
    let mut config = config();
    config.redirects.frontend_url = Some("https://app.example.com/signed-in".into());
    config.redirects.allowed = vec!["https://app.example.com/settings".into()];
    let app = app_with(config, vec![acme()]).await;
    let (sub, _) = Idp::new().verified_user("Grace").await;

    // Default landing page.
    let answer = sign_in(&app, &mut Browser::new(), "acme", &sub).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{answer:?}");
    let location = answer.location();
    assert_eq!(
        location.as_str().split('#').next().unwrap(),
        "https://app.example.com/signed-in"
    );
    let fragment: Vec<(String, String)> =
        reqwest::Url::parse(&format!("https://x/?{}", location.fragment().unwrap()))
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
    let access = &fragment
        .iter()
        .find(|(k, _)| k == "access_token")
        .unwrap()
        .1;
    assert_eq!(app.me(access).await.0, StatusCode::OK);
    assert!(fragment.iter().any(|(k, _)| k == "refresh_token"));

    // An allowed redirect_to, kept from authorize to callback.
    let mut browser = Browser::new();
    let authorize = browser
        .get(
            &app,
            "/auth/oauth/acme/authorize?redirect_to=https%3A%2F%2Fapp.example.com%2Fsettings",
        )
        .await
        .location();
    let callback = Idp::new().approve(&authorize, &sub).await;
    let answer = browser.callback(&app, &callback).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{answer:?}");
    assert!(answer
        .location()
        .as_str()
        .starts_with("https://app.example.com/settings#access_token="));

    // Anything else is refused before leaving for the provider.
    for target in [
        "https://evil.example.com/",
        "https://app.example.com/signed-in/x",
    ] {
        let mut browser = Browser::new();
        let answer = browser
            .get(
                &app,
                &format!(
                    "/auth/oauth/acme/authorize?{}",
                    reqwest::Url::parse_with_params("https://x/", [("redirect_to", target)])
                        .unwrap()
                        .query()
                        .unwrap()
                ),
            )
            .await;
        answer.assert_error(422, "REDIRECT_NOT_ALLOWED");
        assert!(browser.binding().is_none());
    }
}

#[tokio::test]
async fn with_cookie_transport_the_session_is_in_cookies() {
    let mut config = config();
    config.transport.cookies = true;
    config.redirects.frontend_url = Some("https://app.example.com/".into());
    let app = app_with(config, vec![acme()]).await;
    let (sub, email) = Idp::new().verified_user("Hedy").await;
    let mut browser = Browser::new();
    let answer = sign_in(&app, &mut browser, "acme", &sub).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{answer:?}");
    assert_eq!(answer.location().as_str(), "https://app.example.com/");
    let access = answer
        .set_cookie("portcullis_access")
        .expect("access cookie");
    assert!(access.contains("HttpOnly"), "{access}");
    assert!(answer.set_cookie("portcullis_refresh").is_some());
    let token = browser.cookies["portcullis_access"].clone();
    let (status, user) = app.me(&token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["email"], email);
}

#[tokio::test]
async fn in_cookie_only_mode_no_token_reaches_the_url_or_the_body() {
    // With a front-end: the landing URL carries no fragment, no token.
    let mut config = config();
    config.transport.cookies = true;
    config.transport.cookie_only = true;
    config.redirects.frontend_url = Some("https://app.example.com/in".into());
    let app = app_with(config.clone(), vec![acme()]).await;
    let (sub, email) = Idp::new().verified_user("Ida").await;
    let mut browser = Browser::new();
    let answer = sign_in(&app, &mut browser, "acme", &sub).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{answer:?}");
    let location = answer.location();
    assert_eq!(location.as_str(), "https://app.example.com/in");
    assert!(location.fragment().is_none() && location.query().is_none());
    let token = browser.cookies["portcullis_access"].clone();
    assert!(browser.cookies.contains_key("portcullis_refresh"));
    assert!(!location.as_str().contains(&token));
    let (status, user) = app.me(&token).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["email"], email);

    // Without one: the JSON answer has the lifetime and no token.
    config.redirects.frontend_url = None;
    let app = app_with(config, vec![acme()]).await;
    let mut browser = Browser::new();
    let answer = sign_in(&app, &mut browser, "acme", &sub).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let mut keys: Vec<&String> = answer.body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["expires_in", "token_type"], "{:?}", answer.body);
    let token = browser.cookies["portcullis_access"].clone();
    assert_eq!(app.me(&token).await.0, StatusCode::OK);
}

#[tokio::test]
async fn providers_from_the_environment_discover_the_issuer() {
    let issuer = issuer();
    let vars = [
        ("PORTCULLIS_OAUTH_PROVIDERS", "acme, github".to_owned()),
        ("PORTCULLIS_OAUTH_ACME_CLIENT_ID", CLIENT_ID.to_owned()),
        ("PORTCULLIS_OAUTH_ACME_CLIENT_SECRET", "s".to_owned()),
        ("PORTCULLIS_OAUTH_ACME_ISSUER", issuer.clone()),
        ("PORTCULLIS_OAUTH_GITHUB_CLIENT_ID", "gh".to_owned()),
        ("PORTCULLIS_OAUTH_GITHUB_CLIENT_SECRET", "s".to_owned()),
    ];
    let providers = providers_from_vars(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .await
    .unwrap();
    let ids: Vec<&str> = providers.iter().map(|p| p.id()).collect();
    assert_eq!(ids, ["acme", "github"]);
    assert_eq!(providers[0].issuer(), Some(issuer.as_str()));

    // They work as they come.
    let app = app_with(config(), providers).await;
    let (sub, _) = Idp::new().verified_user("Env").await;
    let answer = sign_in(&app, &mut Browser::new(), "acme", &sub).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let (status, body) = crate::common::parts(app.client.get("/auth/providers").send().await).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.to_string().contains("\"oauth\""), "{body}");
}

#[tokio::test]
async fn the_spec_documents_both_routes_and_their_errors() {
    let app = app().await;
    let oauth = portcullis_oauth::OAuthApi::new(&app.manager).unwrap();
    let spec: serde_json::Value =
        serde_json::from_str(&portcullis::api::spec_json(&app.manager, oauth)).unwrap();
    let paths = &spec["paths"];
    let statuses = |path: &str| -> Vec<String> {
        let operation = &paths[path]["get"];
        assert!(operation.is_object(), "{path} is not in the spec");
        assert_eq!(operation["tags"], json!(["Auth"]), "{path}");
        assert_eq!(operation["parameters"][0]["name"], "provider", "{path}");
        let mut codes: Vec<String> = operation["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        codes.sort();
        codes
    };
    assert_eq!(
        statuses("/auth/oauth/{provider}/authorize"),
        ["303", "404", "422", "429", "500", "503"]
    );
    assert_eq!(
        statuses("/auth/oauth/{provider}/callback"),
        ["200", "303", "401", "403", "404", "409", "410", "422", "429", "500", "503"]
    );
    assert_eq!(
        paths["/auth/oauth/{provider}/authorize"]["get"]["operationId"],
        "oauthAuthorize"
    );
    assert_eq!(
        paths["/auth/oauth/{provider}/callback"]["get"]["operationId"],
        "oauthCallback"
    );
}
