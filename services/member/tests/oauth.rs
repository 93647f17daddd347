//! Google (OpenID Connect) and Kakao (OAuth 2.0) login against real local OAuth servers.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{App, PASSWORD, spawn, unique_email};
use reqwest::Response;
use serde_json::{Value, json};
use test_harness::platform::assert_json_error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn location(res: &Response) -> url::Url {
    url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap()
}

fn set_cookies(res: &Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The `Set-Cookie` line for `name`, if the response sets it.
fn set_cookie(res: &Response, name: &str) -> Option<String> {
    set_cookies(res)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// One browser: its own cookie jar, no redirects followed (the test follows them). The jar is
/// deliberately simple — every cookie goes with every request (the local servers all live on
/// 127.0.0.1, and cookies ignore ports) and a `Max-Age=0` cookie is forgotten.
struct Browser {
    client: reqwest::Client,
    cookies: std::sync::Mutex<BTreeMap<String, String>>,
}

impl Browser {
    fn new() -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap(),
            cookies: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().unwrap().get(name).cloned()
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Response {
        let header = {
            let jar = self.cookies.lock().unwrap();
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let request = if header.is_empty() {
            request
        } else {
            request.header("cookie", header)
        };
        let res = request.send().await.unwrap();
        let mut jar = self.cookies.lock().unwrap();
        for line in set_cookies(&res) {
            let (pair, attributes) = line.split_once(';').unwrap_or((&line, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.to_ascii_lowercase().contains("max-age=0") {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        res
    }

    async fn get(&self, url: impl reqwest::IntoUrl) -> Response {
        self.send(self.client.get(url)).await
    }
}

/// Our redirect, in `browser`.
async fn begin(app: &App, browser: &Browser, provider: &str) -> url::Url {
    let res = browser
        .get(app.url(&format!("/api/v1/auth/oauth/{provider}")))
        .await;
    assert_eq!(res.status(), 302);
    location(&res)
}

/// Starts linking `provider` to the member of `access`, in `browser`; the provider URL.
async fn begin_link(app: &App, browser: &Browser, provider: &str, access: &str) -> url::Url {
    let res = browser
        .send(
            browser
                .client
                .post(app.url(&format!("/api/v1/auth/oauth/{provider}/link")))
                .bearer_auth(access),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    url::Url::parse(body["authorization_url"].as_str().unwrap()).unwrap()
}

/// Plays the user at the provider: `browser` opens the provider URL (logging in as `email`),
/// the provider redirects back. Returns the callback URL (not yet visited).
async fn authorize(app: &App, browser: &Browser, start: url::Url, email: &str) -> url::Url {
    let mut provider_url = start;
    provider_url
        .query_pairs_mut()
        .append_pair("login_hint", email);
    let res = browser.get(provider_url).await;
    assert_eq!(res.status(), 302, "the provider redirects back");
    let mut callback = location(&res);
    // MEMBER_PUBLIC_URL names the default port; this instance listens on a random one.
    let base = url::Url::parse(&app.base).unwrap();
    callback.set_port(base.port()).unwrap();
    callback
}

fn param(url: &url::Url, name: &str) -> String {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .unwrap()
        .1
        .into_owned()
}

/// A whole provider login in `browser`; the callback's answer.
async fn login_in(app: &App, browser: &Browser, provider: &str, email: &str) -> Value {
    let start = begin(app, browser, provider).await;
    let callback = authorize(app, browser, start, email).await;
    let res = browser.get(callback).await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

/// A whole provider login in a fresh browser.
async fn login_with(app: &App, provider: &str, email: &str) -> Value {
    login_in(app, &Browser::new(), provider, email).await
}

/// Links `provider` (as the provider user `email`) to the member of `access`, all in one
/// browser; the callback's response.
async fn link_with(app: &App, provider: &str, access: &str, email: &str) -> Response {
    let browser = Browser::new();
    let url = begin_link(app, &browser, provider, access).await;
    let callback = authorize(app, &browser, url, email).await;
    browser.get(callback).await
}

async fn password_login(app: &App, email: &str) -> Response {
    app.post(
        "/api/v1/auth/login",
        json!({"email": email, "password": PASSWORD}),
    )
    .await
}

async fn email_available(app: &App, email: &str) -> bool {
    let res = app
        .client
        .get(app.url("/api/v1/auth/check-email"))
        .query(&[("email", email)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["available"]
        .as_bool()
        .unwrap()
}

async fn me(app: &App, access: &str) -> Value {
    let res = app.get_as("/api/v1/members/me", access).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn member_row(app: &App, id: i64) -> member::store::members::Model {
    let config = member::Config::from_env(app.env.vars()).unwrap();
    let db = service_runtime::postgres::connect_lazy(&config.database).unwrap();
    member::store::members::by_id(&db, id)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn the_redirect_carries_pkce_state_and_for_google_a_nonce() {
    let app = spawn(&[]).await;
    for (provider, oidc) in [("google", true), ("kakao", false)] {
        let url = begin(&app, &Browser::new(), provider).await;
        let params: std::collections::HashMap<String, String> =
            url.query_pairs().into_owned().collect();
        assert_eq!(params["response_type"], "code");
        assert_eq!(params["code_challenge_method"], "S256");
        assert_eq!(params["code_challenge"].len(), 43);
        assert!(params["state"].len() >= 16);
        assert!(
            params["redirect_uri"].ends_with(&format!("/api/v1/auth/oauth/{provider}/callback"))
        );
        assert_eq!(params.contains_key("nonce"), oidc, "{provider}");
        // Nothing secret rides in the URL: the PKCE verifier and the binding stay ours.
        assert!(!params.contains_key("code_verifier"));
    }
    let res = app.get("/api/v1/auth/oauth/github").await;
    assert_eq!(res.status(), 404);
    assert_json_error(res, "not_found").await;
    app.stop().await;
}

#[tokio::test]
async fn the_flow_cookie_is_http_only_lax_short_lived_and_cleared_at_the_callback() {
    let app = spawn(&[]).await;
    let browser = Browser::new();
    let res = browser.get(app.url("/api/v1/auth/oauth/google")).await;
    assert_eq!(res.status(), 302);
    let cookie = set_cookie(&res, "oauth_flow_google").expect("the redirect sets the cookie");
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/api/v1/auth/oauth",
        "Max-Age=600",
    ] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "REFRESH_COOKIE_SECURE=false here"
    );
    let value = browser.cookie("oauth_flow_google").unwrap();
    assert!(value.len() >= 43, "256 random bits");
    let start = location(&res);
    assert!(
        !start.as_str().contains(&value),
        "the binding is not in the URL"
    );

    let callback = authorize(&app, &browser, start, &unique_email("cookie")).await;
    let res = browser.get(callback).await;
    assert_eq!(res.status(), 200);
    let cleared = set_cookie(&res, "oauth_flow_google").expect("the callback clears it");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert!(browser.cookie("oauth_flow_google").is_none());
    app.stop().await;

    // Secure follows REFRESH_COOKIE_SECURE, on the redirect and on the link answer.
    let app = spawn(&[("REFRESH_COOKIE_SECURE", "true")]).await;
    let res = app.get("/api/v1/auth/oauth/kakao").await;
    assert!(
        set_cookie(&res, "oauth_flow_kakao")
            .unwrap()
            .contains("Secure")
    );
    let (_, access, _) = app.member("secure").await;
    let res = app
        .client
        .post(app.url("/api/v1/auth/oauth/kakao/link"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie = set_cookie(&res, "oauth_flow_kakao").unwrap();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    app.stop().await;
}

#[tokio::test]
async fn google_and_kakao_logins_create_then_reuse_a_member() {
    let app = spawn(&[]).await;
    for provider in ["google", "kakao"] {
        let email = unique_email(provider);
        let first = login_with(&app, provider, &email).await;
        let member_id = first["member_id"].as_i64().unwrap();
        assert!(first.get("account_reclaimed").is_none(), "{first}");
        let access = first["access_token"].as_str().unwrap();
        assert_eq!(
            me(&app, access).await["email"],
            email.as_str(),
            "{provider}: verified email kept"
        );
        let again = login_with(&app, provider, &email).await;
        assert_eq!(
            again["member_id"], member_id,
            "{provider}: same member next time"
        );
        // Our tokens work like a password login's.
        let refreshed = app
            .post(
                "/api/v1/auth/refresh",
                json!({"refresh_token": again["refresh_token"]}),
            )
            .await;
        assert_eq!(refreshed.status(), 200);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_verified_google_identity_never_inherits_an_attackers_password() {
    let app = spawn(&[]).await;
    // The attacker registers the victim's address (nobody verifies it), logs in, and adds a
    // second way in: their own Kakao account, linked from their session.
    let victim_email = unique_email("victim");
    let registered = app.register(&victim_email).await;
    let account = registered["id"].as_i64().unwrap();
    let login = password_login(&app, &victim_email).await;
    assert_eq!(login.status(), 200);
    let attacker: Value = login.json().await.unwrap();
    let attacker_access = attacker["access_token"].as_str().unwrap();
    let attacker_kakao = format!("noemail+{}", unique_email("attacker"));
    let res = link_with(&app, "kakao", attacker_access, &attacker_kakao).await;
    assert_eq!(res.status(), 200);

    // The victim signs in with Google, which verifies the address.
    let victim = login_with(&app, "google", &victim_email).await;
    assert_eq!(victim["member_id"], account, "the address's owner gets it");
    let notice = &victim["account_reclaimed"];
    assert_eq!(notice["password_removed"], true, "{victim}");
    assert_eq!(notice["unlinked"], json!(["kakao"]), "{victim}");
    assert!(
        notice["sessions_revoked"].as_u64().unwrap() >= 1,
        "{victim}"
    );
    let message = notice["message"].as_str().unwrap();
    assert!(
        message.contains("password") && message.contains("signed out"),
        "{message}"
    );

    // Every way in the attacker had is gone: the access token they hold (at once, not
    // when it expires), the password, the session, the linked Kakao.
    let res = app.get_as("/api/v1/members/me", attacker_access).await;
    assert_eq!(res.status(), 401);
    assert_json_error(res, "token_revoked").await;
    let res = password_login(&app, &victim_email).await;
    assert_eq!(res.status(), 401);
    assert_json_error(res, "invalid_credentials").await;
    let res = app
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": attacker["refresh_token"]}),
        )
        .await;
    assert_eq!(res.status(), 401);
    let via_kakao = login_with(&app, "kakao", &attacker_kakao).await;
    assert_ne!(via_kakao["member_id"], account);

    // The victim's account: their verified email, no password, Google linked.
    let row = member_row(&app, account).await;
    assert!(row.email_verified);
    assert!(row.password_hash.is_none());
    let access = victim["access_token"].as_str().unwrap();
    assert_eq!(me(&app, access).await["email"], victim_email.as_str());
    let again = login_with(&app, "google", &victim_email).await;
    assert_eq!(again["member_id"], account);
    assert!(again.get("account_reclaimed").is_none(), "said once");
    app.stop().await;
}

#[tokio::test]
async fn a_verified_kakao_identity_also_takes_over_an_unverified_account() {
    let app = spawn(&[]).await;
    let email = unique_email("kakao-victim");
    let registered = app.register(&email).await;
    let victim = login_with(&app, "kakao", &email).await;
    assert_eq!(victim["member_id"], registered["id"]);
    assert_eq!(victim["account_reclaimed"]["password_removed"], true);
    assert_eq!(victim["account_reclaimed"]["unlinked"], json!([]));
    assert_eq!(password_login(&app, &email).await.status(), 401);
    // The email is verified now: Google links to it like any verified account.
    let google = login_with(&app, "google", &email).await;
    assert_eq!(google["member_id"], registered["id"]);
    assert!(google.get("account_reclaimed").is_none());
    app.stop().await;
}

#[tokio::test]
async fn an_unverified_provider_email_never_claims_an_account() {
    let app = spawn(&[]).await;
    let email = unique_email("claimed");
    let created = app.register(&email).await;
    for provider in ["google", "kakao"] {
        // The provider shares the address but does not vouch for it: a new member, no email.
        let login = login_with(&app, provider, &format!("unverified+{email}")).await;
        assert_ne!(login["member_id"], created["id"], "{provider}");
        assert!(login.get("account_reclaimed").is_none());
        let profile = me(&app, login["access_token"].as_str().unwrap()).await;
        assert!(profile.get("email").is_none() || profile["email"].is_null());
    }
    // The registered account is untouched: password works, nothing linked, still unverified.
    assert_eq!(password_login(&app, &email).await.status(), 200);
    let row = member_row(&app, created["id"].as_i64().unwrap()).await;
    assert!(!row.email_verified);
    assert!(row.password_hash.is_some());
    app.stop().await;
}

#[tokio::test]
async fn a_verified_account_links_without_losing_anything() {
    let app = spawn(&[]).await;
    // A provider-only account (verified by Google): Kakao with the same verified email joins.
    let email = unique_email("oauth-only");
    let google = login_with(&app, "google", &email).await;
    let kakao = login_with(&app, "kakao", &email).await;
    assert_eq!(kakao["member_id"], google["member_id"]);
    assert!(kakao.get("account_reclaimed").is_none(), "{kakao}");
    let access = google["access_token"].as_str().unwrap();
    assert_eq!(
        app.post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": google["refresh_token"]})
        )
        .await
        .status(),
        200,
        "the earlier session lives on"
    );
    assert_eq!(me(&app, access).await["email"], email.as_str());

    // A password member who links Google from their session (the safe way in for a password
    // account): the address is proven by the member who holds the password, which stays.
    let email = unique_email("password");
    let (id, access, refresh) = {
        app.register(&email).await;
        let body: Value = password_login(&app, &email).await.json().await.unwrap();
        (
            body["member_id"].as_i64().unwrap(),
            body["access_token"].as_str().unwrap().to_owned(),
            body["refresh_token"].as_str().unwrap().to_owned(),
        )
    };
    let res = link_with(&app, "google", &access, &email).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["linked"], "google");
    assert!(member_row(&app, id).await.email_verified);
    // Now a verified account: Kakao's verified email links, and nothing is taken away.
    let kakao = login_with(&app, "kakao", &email).await;
    assert_eq!(kakao["member_id"], id);
    assert!(kakao.get("account_reclaimed").is_none(), "{kakao}");
    assert_eq!(password_login(&app, &email).await.status(), 200);
    assert_eq!(
        app.post("/api/v1/auth/refresh", json!({"refresh_token": refresh}))
            .await
            .status(),
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn a_callback_from_another_browser_is_refused() {
    let app = spawn(&[]).await;
    // Login CSRF: the attacker starts a login as themselves and hands the victim the callback.
    let attacker = Browser::new();
    let attacker_email = unique_email("csrf-attacker");
    let start = begin(&app, &attacker, "google").await;
    let callback = authorize(&app, &attacker, start, &attacker_email).await;
    let victim = Browser::new();
    let res = victim.get(callback.clone()).await;
    assert_eq!(res.status(), 400);
    assert!(set_cookie(&res, "refresh_token").is_none());
    assert_json_error(res, "browser_mismatch").await;
    assert!(
        email_available(&app, &attacker_email).await,
        "no member created"
    );
    // The state is single-use even for the wrong browser: now nobody can finish it.
    let res = attacker.get(callback).await;
    assert_eq!(res.status(), 400);
    assert_json_error(res, "invalid_state").await;

    // The victim's browser has a flow of its own going: the attacker's callback is still
    // not theirs, and refusing it leaves the victim's own flow intact.
    let victim_email = unique_email("csrf-victim");
    let victim_start = begin(&app, &victim, "google").await;
    let attacker_start = begin(&app, &attacker, "google").await;
    let forged = authorize(&app, &attacker, attacker_start, &attacker_email).await;
    let res = victim.get(forged).await;
    assert_eq!(res.status(), 400);
    assert_json_error(res, "browser_mismatch").await;
    assert!(email_available(&app, &attacker_email).await);
    let own = authorize(&app, &victim, victim_start, &victim_email).await;
    let res = victim.get(own).await;
    assert_eq!(res.status(), 200);

    // Kakao too, and a cookie-less client.
    let kakao_start = begin(&app, &attacker, "kakao").await;
    let kakao_email = unique_email("csrf-kakao");
    let callback = authorize(&app, &attacker, kakao_start, &kakao_email).await;
    let res = app.client.get(callback).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_json_error(res, "browser_mismatch").await;
    assert!(email_available(&app, &kakao_email).await);
    app.stop().await;
}

#[tokio::test]
async fn a_link_must_be_finished_by_the_browser_that_started_it() {
    let app = spawn(&[]).await;
    // Link CSRF: the attacker starts linking Google to their account and gets the victim's
    // browser (signed in to Google as the victim) to finish it.
    let (attacker_id, attacker_access, _) = app.member("link-attacker").await;
    let attacker = Browser::new();
    let url = begin_link(&app, &attacker, "google", &attacker_access).await;
    let victim = Browser::new();
    let victim_email = unique_email("link-victim");
    let callback = authorize(&app, &victim, url, &victim_email).await;
    let res = victim.get(callback).await;
    assert_eq!(res.status(), 400);
    assert_json_error(res, "browser_mismatch").await;

    // Nothing was linked to the attacker; the victim's Google stays the victim's.
    let res = app
        .client
        .delete(app.url("/api/v1/auth/oauth/google"))
        .bearer_auth(&attacker_access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_json_error(res, "not_found").await;
    let login = login_with(&app, "google", &victim_email).await;
    assert_ne!(login["member_id"], attacker_id);

    // Another member's browser, with its own link flow under way, cannot finish it either.
    let (_, other_access, _) = app.member("link-other").await;
    let other = Browser::new();
    let _ = begin_link(&app, &other, "kakao", &other_access).await;
    let url = begin_link(&app, &attacker, "kakao", &attacker_access).await;
    let callback = authorize(&app, &other, url, &unique_email("link-k")).await;
    let res = other.get(callback).await;
    assert_eq!(res.status(), 400);
    assert_json_error(res, "browser_mismatch").await;
    app.stop().await;
}

#[tokio::test]
async fn a_missing_or_wrong_nonce_is_refused() {
    let app = spawn(&[]).await;
    for nonce in [Some("attacker-chosen-nonce"), None] {
        let browser = Browser::new();
        let start = begin(&app, &browser, "google").await;
        // The browser talks the provider into an ID token for another (or no) nonce.
        let mut tampered = start.clone();
        let pairs: Vec<(String, String)> = start
            .query_pairs()
            .into_owned()
            .filter(|(k, _)| k != "nonce")
            .collect();
        {
            let mut query = tampered.query_pairs_mut();
            query.clear().extend_pairs(pairs);
            if let Some(nonce) = nonce {
                query.append_pair("nonce", nonce);
            }
        }
        let email = unique_email("nonce");
        let callback = authorize(&app, &browser, tampered, &email).await;
        let res = browser.get(callback).await;
        assert_eq!(res.status(), 401, "{nonce:?}");
        let body = assert_json_error(res, "oauth_identity_rejected").await;
        assert!(
            !body["message"].as_str().unwrap().contains("nonce"),
            "internal detail stays in the log: {body}"
        );
        assert!(email_available(&app, &email).await, "no member created");
    }
    app.stop().await;
}

#[tokio::test]
async fn bad_or_replayed_state_and_provider_errors_are_refused() {
    let app = spawn(&[]).await;
    let browser = Browser::new();
    let start = begin(&app, &browser, "google").await;
    let callback = authorize(&app, &browser, start, &unique_email("replay")).await;
    let ok = browser.get(callback.clone()).await;
    assert_eq!(ok.status(), 200);
    // The same callback again (reused code and state): refused.
    let replay = browser.get(callback.clone()).await;
    assert_eq!(replay.status(), 400);
    assert_json_error(replay, "invalid_state").await;

    let mut forged = callback.clone();
    forged
        .query_pairs_mut()
        .clear()
        .append_pair("code", &param(&callback, "code"))
        .append_pair("state", "made-up");
    let res = browser.get(forged).await;
    assert_eq!(res.status(), 400);
    assert_json_error(res, "invalid_state").await;

    let res = browser
        .get(app.url("/api/v1/auth/oauth/google/callback?code=abc"))
        .await;
    assert_eq!(res.status(), 400, "no state");

    // A state started for Kakao cannot finish on Google's callback.
    let kakao_start = begin(&app, &browser, "kakao").await;
    let res = browser
        .get(app.url(&format!(
            "/api/v1/auth/oauth/google/callback?code=abc&state={}",
            param(&kakao_start, "state")
        )))
        .await;
    assert_eq!(res.status(), 400);
    assert_json_error(res, "invalid_state").await;

    // The provider says the user declined; its free text is not echoed.
    let denied_start = begin(&app, &browser, "google").await;
    let res = browser
        .get(app.url(&format!(
            "/api/v1/auth/oauth/google/callback?error=access_denied&error_description=Call+0800&state={}",
            param(&denied_start, "state")
        )))
        .await;
    assert_eq!(res.status(), 400);
    assert!(
        set_cookie(&res, "oauth_flow_google")
            .unwrap()
            .contains("Max-Age=0")
    );
    let body = assert_json_error(res, "oauth_denied").await;
    assert!(body["message"].as_str().unwrap().contains("access_denied"));
    assert!(!body["message"].as_str().unwrap().contains("0800"));

    // A code the provider never issued.
    let start = begin(&app, &browser, "kakao").await;
    let res = browser
        .get(app.url(&format!(
            "/api/v1/auth/oauth/kakao/callback?code=never-issued&state={}",
            param(&start, "state")
        )))
        .await;
    assert!(
        res.status() == 400 || res.status() == 401,
        "{}",
        res.status()
    );
    app.stop().await;
}

/// A relay in front of the real Google server that counts the requests it passes on.
async fn counting_relay(upstream: String) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    test_harness::install_crypto_provider();
    let http = reqwest::Client::new();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (counter, http, upstream) = (Arc::clone(&counter), http.clone(), upstream.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut chunk = [0u8; 2048];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                counter.fetch_add(1, Ordering::SeqCst);
                let res = http.get(format!("{upstream}{path}")).send().await.unwrap();
                let status = res.status().as_u16();
                let body = res.bytes().await.unwrap();
                let answer = format!(
                    "HTTP/1.1 {status} OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.write_all(&body).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (format!("http://{address}"), count)
}

#[tokio::test]
async fn the_provider_jwks_is_fetched_once_for_many_callbacks() {
    let (relay, fetches) = counting_relay(common::oauth_google()).await;
    let app = spawn(&[("GOOGLE_JWKS_URL", &format!("{relay}/jwks"))]).await;
    for _ in 0..3 {
        login_with(&app, "google", &unique_email("jwks")).await;
    }
    let emails: Vec<String> = (0..5).map(|_| unique_email("jwks-burst")).collect();
    let logins = emails.iter().map(|email| login_with(&app, "google", email));
    futures_util::future::join_all(logins).await;
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "8 callbacks, one fetch");
    app.stop().await;
}

#[tokio::test]
async fn an_unreachable_provider_is_a_502_without_internal_detail() {
    // Nothing listens on port 9: the key set cannot be fetched.
    let app = spawn(&[("GOOGLE_JWKS_URL", "http://127.0.0.1:9/jwks")]).await;
    let browser = Browser::new();
    let email = unique_email("down");
    let start = begin(&app, &browser, "google").await;
    let callback = authorize(&app, &browser, start, &email).await;
    let res = browser.get(callback).await;
    assert_eq!(res.status(), 502);
    let body = assert_json_error(res, "oauth_provider_unavailable").await;
    let text = body.to_string();
    assert!(
        !text.contains("127.0.0.1") && !text.contains("jwks") && !text.contains("error sending"),
        "{text}"
    );
    assert!(email_available(&app, &email).await);
    app.stop().await;
}

#[tokio::test]
async fn link_and_unlink_never_remove_the_last_way_in() {
    let app = spawn(&[]).await;
    // A provider-only member (Kakao, no shared email) cannot unlink Kakao.
    let kakao_only = login_with(&app, "kakao", &format!("noemail+{}", unique_email("solo"))).await;
    let access = kakao_only["access_token"].as_str().unwrap().to_owned();
    let res = app
        .client
        .delete(app.url("/api/v1/auth/oauth/kakao"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    assert_json_error(res, "last_login_method").await;

    // Link Google too (the logged-in flow, in one browser), then Kakao may go.
    let res = link_with(&app, "google", &access, &unique_email("second")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["linked"], "google");
    let res = app
        .client
        .delete(app.url("/api/v1/auth/oauth/kakao"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = app
        .client
        .delete(app.url("/api/v1/auth/oauth/kakao"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "not linked any more");

    // A password member can unlink their only provider (linked from their session).
    let email = unique_email("pw");
    app.register(&email).await;
    let body: Value = password_login(&app, &email).await.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    let res = link_with(&app, "kakao", access, &format!("noemail+{email}")).await;
    assert_eq!(res.status(), 200);
    let res = app
        .client
        .delete(app.url("/api/v1/auth/oauth/kakao"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(password_login(&app, &email).await.status(), 200);
    app.stop().await;
}
