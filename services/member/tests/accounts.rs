//! Accounts and tokens, the way a frontend uses them.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{PASSWORD, refresh_cookie, spawn, unique_email};
use serde_json::{Value, json};
use test_harness::platform::assert_json_error;

#[tokio::test]
async fn register_login_refresh_logout_round_trip() {
    let app = spawn(&[]).await;
    let email = unique_email("round");
    let created = app.register(&format!("  {}  ", email.to_uppercase())).await;
    assert_eq!(created["email"], email, "emails are normalised");
    assert!(created.get("password_hash").is_none());

    let login = app
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status(), 200);
    let cookie = login
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/api/v1/auth",
        "Max-Age=604800",
    ] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let pair: Value = login.json().await.unwrap();
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    let access = pair["access_token"].as_str().unwrap().to_owned();
    let me: Value = app
        .get_as("/api/v1/members/me", &access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], email);

    // Browser-style refresh: the cookie, no body.
    let refreshed = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .header(
            "cookie",
            format!("refresh_token={}", pair["refresh_token"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    let rotated = refresh_cookie(&refreshed).unwrap();
    let pair2: Value = refreshed.json().await.unwrap();
    assert_eq!(pair2["refresh_token"], rotated);
    assert_ne!(pair2["refresh_token"], pair["refresh_token"]);
    let access2 = pair2["access_token"].as_str().unwrap().to_owned();

    // Logout: access token blacklisted, refresh family revoked, cookie cleared.
    let out = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&access2)
        .header("cookie", format!("refresh_token={rotated}"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert!(
        out.headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let denied = app.get_as("/api/v1/members/me", &access2).await;
    assert_eq!(denied.status(), 401);
    assert_eq!(denied.headers()["x-relogin-required"], "true");
    assert_json_error(denied, "token_revoked").await;
    let again = app
        .post("/api/v1/auth/refresh", json!({"refresh_token": rotated}))
        .await;
    assert_eq!(again.status(), 401);
    assert_eq!(again.headers()["x-relogin-required"], "true");
    app.stop().await;
}

#[tokio::test]
async fn bad_registrations_get_field_errors_and_duplicates_409() {
    let app = spawn(&[]).await;
    let res = app
        .post(
            "/api/v1/auth/register",
            json!({"email": "not-an-email", "password": "short", "nickname": "x"}),
        )
        .await;
    assert_eq!(res.status(), 422);
    let body = assert_json_error(res, "validation_failed").await;
    let fields: Vec<&str> = body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "password", "nickname"]);

    let email = unique_email("dup");
    app.register(&email).await;
    let res = app
        .post(
            "/api/v1/auth/register",
            json!({"email": email.to_uppercase(), "password": PASSWORD, "nickname": "again"}),
        )
        .await;
    assert_eq!(res.status(), 409);
    assert_json_error(res, "email_taken").await;

    let res = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_json_error(res, "malformed_json").await;
    let res = app
        .post("/api/v1/auth/register", json!({"email": "a@b.co"}))
        .await;
    assert_eq!(res.status(), 422, "missing fields");

    let check: Value = app
        .get(&format!("/api/v1/auth/check-email?email={email}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(check["available"], false);
    let check: Value = app
        .get("/api/v1/auth/check-email?email=fresh@example.com")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(check["available"], true);
    assert_eq!(
        app.get("/api/v1/auth/check-email?email=nope")
            .await
            .status(),
        422
    );
    app.stop().await;
}

#[tokio::test]
async fn login_does_not_reveal_whether_an_account_exists() {
    let app = spawn(&[("ARGON2_MEMORY_KIB", "19456"), ("ARGON2_ITERATIONS", "2")]).await;
    let email = unique_email("enum");
    app.register(&email).await;
    let mut wrong_password = Duration::ZERO;
    let mut unknown_email = Duration::ZERO;
    let mut bodies = Vec::new();
    for i in 0..6 {
        let started = Instant::now();
        let res = app
            .post(
                "/api/v1/auth/login",
                json!({"email": email, "password": format!("wrong password {i}")}),
            )
            .await;
        wrong_password += started.elapsed();
        assert_eq!(res.status(), 401);
        bodies.push(res.json::<Value>().await.unwrap());
        let started = Instant::now();
        let res = app
            .post(
                "/api/v1/auth/login",
                json!({"email": unique_email("ghost"), "password": "wrong password"}),
            )
            .await;
        unknown_email += started.elapsed();
        assert_eq!(res.status(), 401);
        bodies.push(res.json::<Value>().await.unwrap());
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "identical answers: {bodies:?}"
    );
    let ratio = unknown_email.as_secs_f64() / wrong_password.as_secs_f64();
    assert!(
        (0.6..1.6).contains(&ratio),
        "unknown email {unknown_email:?} vs wrong password {wrong_password:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_eleventh_failure_in_a_minute_is_429_with_retry_after_even_for_the_right_password() {
    let app = spawn(&[("LOGIN_FAILURES_PER_ACCOUNT_CLIENT", "10")]).await;
    let email = unique_email("limited");
    app.register(&email).await;
    for _ in 0..10 {
        let res = app
            .post(
                "/api/v1/auth/login",
                json!({"email": email, "password": "nope nope nope"}),
            )
            .await;
        assert_eq!(res.status(), 401);
    }
    let res = app
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        res.status(),
        429,
        "even the right password is refused from the client that failed"
    );
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    let body = assert_json_error(res, "rate_limited").await;
    assert_eq!(body["fields"], json!([]));
    // The same client may still try other accounts (up to LOGIN_FAILURES_PER_CLIENT).
    let res = app
        .post(
            "/api/v1/auth/login",
            json!({"email": unique_email("other"), "password": "x"}),
        )
        .await;
    assert_eq!(res.status(), 401);
    app.stop().await;
}

async fn refresh(app: &common::App, token: &str) -> reqwest::Response {
    app.post("/api/v1/auth/refresh", json!({"refresh_token": token}))
        .await
}

async fn refreshed(res: reqwest::Response) -> (String, String) {
    assert_eq!(res.status(), 200);
    let pair: Value = res.json().await.unwrap();
    (
        pair["refresh_token"].as_str().unwrap().to_owned(),
        pair["access_token"].as_str().unwrap().to_owned(),
    )
}

async fn assert_relogin(res: reqwest::Response, code: &str) {
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["x-relogin-required"], "true");
    assert_json_error(res, code).await;
}

#[tokio::test]
async fn with_the_grace_window_off_a_second_use_revokes_the_whole_family() {
    let app = spawn(&[("REFRESH_REUSE_GRACE_SECONDS", "0")]).await;
    let (_, _, first) = app.member("reuse").await;
    let (second, _) = refreshed(refresh(&app, &first).await).await;

    // The stolen first token comes back: refused, and the family dies with it.
    assert_relogin(refresh(&app, &first).await, "refresh_reused").await;
    let res = refresh(&app, &second).await;
    assert_eq!(
        res.status(),
        401,
        "the legitimate newer token is revoked too"
    );

    for bad in ["", "garbage", &"x".repeat(1000)] {
        let res = refresh(&app, bad).await;
        assert_eq!(res.status(), 401, "{bad:.10}");
    }
    assert_eq!(
        app.post("/api/v1/auth/refresh", json!({})).await.status(),
        401
    );
    app.stop().await;
}

#[tokio::test]
async fn two_tabs_refreshing_at_once_both_stay_logged_in() {
    let app = spawn(&[]).await;
    let (_, _, token) = app.member("tabs").await;
    // Tab one rotates; tab two, a moment later, still holds the old token.
    let (first_tab, first_access) = refreshed(refresh(&app, &token).await).await;
    let res = refresh(&app, &token).await;
    assert_eq!(refresh_cookie(&res).as_deref(), Some(first_tab.as_str()));
    let (second_tab, second_access) = refreshed(res).await;
    assert_eq!(
        second_tab, first_tab,
        "the same successor, not a second one"
    );
    for access in [&first_access, &second_access] {
        assert_eq!(app.get_as("/api/v1/members/me", access).await.status(), 200);
    }
    // And the login goes on from the shared successor.
    refreshed(refresh(&app, &first_tab).await).await;
    app.stop().await;
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_rotate_it_once() {
    let app = spawn(&[]).await;
    let (_, _, token) = app.member("race").await;
    let attempts = (0..8).map(|_| refresh(&app, &token));
    let mut successors = Vec::new();
    for res in futures_util::future::join_all(attempts).await {
        successors.push(refreshed(res).await.0);
    }
    successors.dedup();
    assert_eq!(successors.len(), 1, "one rotation: {successors:?}");
    refreshed(refresh(&app, &successors[0]).await).await;
    app.stop().await;
}

#[tokio::test]
async fn a_reused_token_after_the_grace_window_revokes_the_family() {
    let app = spawn(&[("REFRESH_REUSE_GRACE_SECONDS", "1")]).await;
    let (_, _, first) = app.member("late").await;
    let (second, _) = refreshed(refresh(&app, &first).await).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_relogin(refresh(&app, &first).await, "refresh_reused").await;
    assert_relogin(refresh(&app, &second).await, "refresh_invalid").await;
    app.stop().await;
}

#[tokio::test]
async fn a_replay_after_the_successor_was_rotated_too_counts_as_reuse() {
    let app = spawn(&[]).await;
    let (_, _, first) = app.member("chain").await;
    let (second, _) = refreshed(refresh(&app, &first).await).await;
    let (third, _) = refreshed(refresh(&app, &second).await).await;
    // Within the first token's window, but its successor has moved on: not a second tab.
    assert_relogin(refresh(&app, &first).await, "refresh_reused").await;
    assert_relogin(refresh(&app, &third).await, "refresh_invalid").await;
    app.stop().await;
}

#[tokio::test]
async fn a_logout_during_the_grace_window_is_not_undone_by_a_late_tab() {
    let app = spawn(&[]).await;
    let (_, _, first) = app.member("logout-grace").await;
    let (second, access) = refreshed(refresh(&app, &first).await).await;
    let out = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&access)
        .header("cookie", format!("refresh_token={second}"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert_relogin(refresh(&app, &first).await, "refresh_invalid").await;
    assert_relogin(refresh(&app, &second).await, "refresh_invalid").await;
    app.stop().await;
}

#[tokio::test]
async fn the_grace_window_does_not_extend_a_familys_lifetime() {
    let app = spawn(&[
        ("REFRESH_FAMILY_MAX_SECONDS", "2"),
        ("REFRESH_REUSE_GRACE_SECONDS", "30"),
    ])
    .await;
    let (_, _, first) = app.member("grace-lifetime").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (second, _) = refreshed(refresh(&app, &first).await).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    // Within the grace window, past the family's end: over.
    assert_relogin(refresh(&app, &first).await, "refresh_invalid").await;
    assert_relogin(refresh(&app, &second).await, "refresh_invalid").await;
    app.stop().await;
}

#[tokio::test]
async fn a_family_cannot_outlive_its_absolute_lifetime() {
    let app = spawn(&[("REFRESH_FAMILY_MAX_SECONDS", "2")]).await;
    let (_, _, token) = app.member("lifetime").await;
    let res = app
        .post("/api/v1/auth/refresh", json!({"refresh_token": token}))
        .await;
    assert_eq!(res.status(), 200);
    let token = res.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let res = app
        .post("/api/v1/auth/refresh", json!({"refresh_token": token}))
        .await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["x-relogin-required"], "true");
    app.stop().await;
}

#[tokio::test]
async fn logout_all_ends_every_session() {
    let app = spawn(&[]).await;
    let email = unique_email("all");
    app.register(&email).await;
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let pair: Value = app
            .post(
                "/api/v1/auth/login",
                json!({"email": email, "password": PASSWORD}),
            )
            .await
            .json()
            .await
            .unwrap();
        sessions.push(pair);
    }
    let res = app
        .client
        .post(app.url("/api/v1/auth/logout-all"))
        .bearer_auth(sessions[0]["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    for session in &sessions {
        let res = app
            .post(
                "/api/v1/auth/refresh",
                json!({"refresh_token": session["refresh_token"]}),
            )
            .await;
        assert_eq!(res.status(), 401);
        // The access tokens of the other devices end now, not when they expire.
        let access = session["access_token"].as_str().unwrap();
        let res = app.get_as("/api/v1/members/me", access).await;
        assert_eq!(res.status(), 401);
        assert_eq!(res.headers()["x-relogin-required"], "true");
        assert_json_error(res, "token_revoked").await;
    }
    // A new login starts at the new epoch and works everywhere again.
    let pair: Value = app
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": PASSWORD}),
        )
        .await
        .json()
        .await
        .unwrap();
    let access = pair["access_token"].as_str().unwrap();
    assert_eq!(app.get_as("/api/v1/members/me", access).await.status(), 200);
    let res = app
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": pair["refresh_token"]}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let refreshed: Value = res.json().await.unwrap();
    let access = refreshed["access_token"].as_str().unwrap();
    assert_eq!(app.get_as("/api/v1/members/me", access).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn an_expired_access_token_asks_for_a_refresh() {
    let app = spawn(&[("ACCESS_TOKEN_TTL_SECONDS", "1")]).await;
    let (_, access, _) = app.member("expiry").await;
    assert_eq!(
        app.get_as("/api/v1/members/me", &access).await.status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let res = app.get_as("/api/v1/members/me", &access).await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["x-token-refresh-needed"], "true");
    assert_json_error(res, "token_expired").await;
    let res = app.get("/api/v1/members/me").await;
    assert_eq!(res.status(), 401);
    assert_json_error(res, "unauthorized").await;
    app.stop().await;
}
