//! Google (OpenID Connect) and Kakao (OAuth 2.0) login against real local OAuth servers.
#![allow(clippy::unwrap_used)]

mod common;

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

/// Plays the browser: our redirect → the provider (logging in as `email`) → back to our
/// callback. Returns the callback URL (not yet visited).
async fn authorize(app: &App, start: url::Url, email: &str) -> url::Url {
    let mut provider_url = start;
    provider_url
        .query_pairs_mut()
        .append_pair("login_hint", email);
    let res = app.client.get(provider_url).send().await.unwrap();
    assert_eq!(res.status(), 302, "the provider redirects back");
    let mut callback = location(&res);
    // MEMBER_PUBLIC_URL names the default port; this instance listens on a random one.
    let base = url::Url::parse(&app.base).unwrap();
    callback.set_port(base.port()).unwrap();
    callback
}

async fn begin(app: &App, provider: &str) -> url::Url {
    let res = app.get(&format!("/api/v1/auth/oauth/{provider}")).await;
    assert_eq!(res.status(), 302);
    location(&res)
}

async fn login_with(app: &App, provider: &str, email: &str) -> Value {
    let start = begin(app, provider).await;
    let callback = authorize(app, start, email).await;
    let res = app.client.get(callback).send().await.unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

/// Links `provider` (as the provider user `email`) to the member of `access`; the
/// callback's response.
async fn link_with(app: &App, provider: &str, access: &str, email: &str) -> Response {
    let res = app
        .client
        .post(app.url(&format!("/api/v1/auth/oauth/{provider}/link")))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let url = url::Url::parse(body["authorization_url"].as_str().unwrap()).unwrap();
    let callback = authorize(app, url, email).await;
    app.client.get(callback).send().await.unwrap()
}

async fn password_login(app: &App, email: &str) -> Response {
    app.post(
        "/api/v1/auth/login",
        json!({"email": email, "password": PASSWORD}),
    )
    .await
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
        let url = begin(&app, provider).await;
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
    }
    let res = app.get("/api/v1/auth/oauth/github").await;
    assert_eq!(res.status(), 404);
    assert_json_error(res, "not_found").await;
    app.stop().await;
}

#[tokio::test]
async fn google_and_kakao_logins_create_then_reuse_a_member() {
    let app = spawn(&[]).await;
    for provider in ["google", "kakao"] {
        let email = unique_email(provider);
        let first = login_with(&app, provider, &email).await;
        let member_id = first["member_id"].as_i64().unwrap();
        let access = first["access_token"].as_str().unwrap();
        let me: Value = app
            .get_as("/api/v1/members/me", access)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            me["email"],
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

    // Every way in the attacker had is gone: the password, the session, the linked Kakao.
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
async fn bad_or_replayed_state_and_provider_errors_are_refused() {
    let app = spawn(&[]).await;
    let start = begin(&app, "google").await;
    let callback = authorize(&app, start, &unique_email("replay")).await;
    let ok = app.client.get(callback.clone()).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    // The same callback again (reused code and state): refused.
    let replay = app.client.get(callback.clone()).send().await.unwrap();
    assert_eq!(replay.status(), 400);
    assert_json_error(replay, "invalid_state").await;

    let mut forged = callback.clone();
    let code = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    forged
        .query_pairs_mut()
        .clear()
        .append_pair("code", &code)
        .append_pair("state", "made-up");
    let res = app.client.get(forged).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_json_error(res, "invalid_state").await;

    let res = app.get("/api/v1/auth/oauth/google/callback?code=abc").await;
    assert_eq!(res.status(), 400, "no state");

    // A state started for Kakao cannot finish on Google's callback.
    let kakao_start = begin(&app, "kakao").await;
    let kakao_state = kakao_start
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let res = app
        .get(&format!(
            "/api/v1/auth/oauth/google/callback?code=abc&state={kakao_state}"
        ))
        .await;
    assert_eq!(res.status(), 400);

    // The provider says the user declined.
    let denied_start = begin(&app, "google").await;
    let state = denied_start
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let res = app
        .get(&format!(
            "/api/v1/auth/oauth/google/callback?error=access_denied&error_description=Call+0800&state={state}"
        ))
        .await;
    assert_eq!(res.status(), 400);
    let body = assert_json_error(res, "oauth_denied").await;
    assert!(body["message"].as_str().unwrap().contains("access_denied"));
    assert!(
        !body["message"].as_str().unwrap().contains("0800"),
        "free text not echoed"
    );

    // A code the provider never issued.
    let start = begin(&app, "kakao").await;
    let state = start
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let res = app
        .get(&format!(
            "/api/v1/auth/oauth/kakao/callback?code=never-issued&state={state}"
        ))
        .await;
    assert!(
        res.status() == 400 || res.status() == 401,
        "{}",
        res.status()
    );
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

    // Link Google too (the logged-in flow), then Kakao may go.
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
    let email = unique_email("down");
    let start = begin(&app, "google").await;
    let callback = authorize(&app, start, &email).await;
    let res = app.client.get(callback).send().await.unwrap();
    assert_eq!(res.status(), 502);
    let body = assert_json_error(res, "oauth_provider_unavailable").await;
    let text = body.to_string();
    assert!(
        !text.contains("127.0.0.1") && !text.contains("jwks") && !text.contains("error sending"),
        "{text}"
    );
    app.stop().await;
}
