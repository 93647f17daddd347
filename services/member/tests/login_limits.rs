//! Login limits as clients behind the gateway meet them: only failures count, per (account,
//! client), per client and per account, with the client taken from the entries the gateway
//! appended to `X-Forwarded-For`, never from what the client wrote.
#![allow(clippy::unwrap_used)]

mod common;

use common::{App, Login, PASSWORD, set_cookie, spawn, unique_email};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use test_harness::platform::assert_json_error;

const WRONG: &str = "not the password";
const ATTACKER: &str = "203.0.113.9";
const OWNER: &str = "198.51.100.7";

/// Member behind a gateway on loopback, with the given limits.
async fn behind_gateway(limits: &[(&str, &str)]) -> App {
    let mut env = vec![("TRUSTED_PROXIES", "127.0.0.1")];
    env.extend_from_slice(limits);
    spawn(&env).await
}

async fn assert_limited(res: Response) -> Value {
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1, "Retry-After {retry}");
    let body = assert_json_error(res, "rate_limited").await;
    assert!(
        body["message"].is_string() && body["fields"].is_array(),
        "{body}"
    );
    body
}

#[tokio::test]
async fn failed_logins_from_one_client_do_not_lock_out_the_owner_elsewhere() {
    let app = behind_gateway(&[
        ("LOGIN_FAILURES_PER_ACCOUNT_CLIENT", "10"),
        ("LOGIN_FAILURES_PER_CLIENT", "30"),
        ("LOGIN_FAILURES_PER_ACCOUNT", "100"),
    ])
    .await;
    let email = unique_email("victim");
    app.register(&email).await;
    for _ in 0..10 {
        let res = app.login(Login::new(&email, WRONG, ATTACKER)).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // The attacker's client is done with this account for the minute…
    assert_limited(app.login(Login::new(&email, WRONG, ATTACKER)).await).await;
    assert_limited(app.login(Login::new(&email, PASSWORD, ATTACKER)).await).await;
    // …but the owner, elsewhere, logs in, and other people log in to other accounts.
    let res = app.login(Login::new(&email, PASSWORD, OWNER)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let other = unique_email("bystander");
    app.register(&other).await;
    let res = app.login(Login::new(&other, PASSWORD, "192.0.2.44")).await;
    assert_eq!(res.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_spoofed_first_forwarded_for_entry_does_not_change_the_bucket() {
    let app = behind_gateway(&[
        ("LOGIN_FAILURES_PER_ACCOUNT_CLIENT", "3"),
        ("LOGIN_FAILURES_PER_CLIENT", "5"),
    ])
    .await;
    // Five failures on five accounts, each with a different address written by the client
    // in front of the one the gateway appended: all one client.
    for i in 0..5 {
        let email = unique_email("stuffed");
        let spoofed = format!("10.9.8.{i}");
        let mut login = Login::new(&email, WRONG, ATTACKER);
        login.forwarded = Some(&spoofed);
        assert_eq!(app.login(login).await.status(), StatusCode::UNAUTHORIZED);
    }
    let email = unique_email("stuffed");
    let mut login = Login::new(&email, WRONG, ATTACKER);
    login.forwarded = Some("10.9.8.200");
    assert_limited(app.login(login).await).await;
    // Writing the victim's own address in front does not move the attacker into (or the
    // victim out of) anyone else's bucket.
    let mut login = Login::new(&email, WRONG, ATTACKER);
    login.forwarded = Some(OWNER);
    assert_limited(app.login(login).await).await;
    let res = app.login(Login::new(&email, WRONG, OWNER)).await;
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "the owner's client is untouched"
    );
    app.stop().await;
}

#[tokio::test]
async fn without_trusted_proxies_the_forwarded_for_header_is_ignored() {
    let app = spawn(&[("LOGIN_FAILURES_PER_CLIENT", "2")]).await;
    for client in ["1.1.1.1", "2.2.2.2"] {
        let res = app
            .login(Login::new(&unique_email("direct"), WRONG, client))
            .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // Both came from the test's own address: the third is refused whatever it claims.
    let res = app
        .login(Login::new(&unique_email("direct"), WRONG, "3.3.3.3"))
        .await;
    assert_limited(res).await;
    app.stop().await;
}

#[tokio::test]
async fn a_correct_password_clears_its_clients_failures_and_costs_nothing() {
    let app = behind_gateway(&[
        ("LOGIN_FAILURES_PER_ACCOUNT_CLIENT", "3"),
        ("LOGIN_FAILURES_PER_CLIENT", "4"),
    ])
    .await;
    let email = unique_email("typo");
    app.register(&email).await;
    for _ in 0..2 {
        let res = app.login(Login::new(&email, WRONG, OWNER)).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // Successes never count, however many.
    for _ in 0..5 {
        let res = app.login(Login::new(&email, PASSWORD, OWNER)).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    // The success reset this pair (else the second of these typos would be refused); the
    // client's own count, which successes do not reset, refuses the one after (2 + 2 = 4).
    for _ in 0..2 {
        let res = app.login(Login::new(&email, WRONG, OWNER)).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    assert_limited(app.login(Login::new(&email, WRONG, OWNER)).await).await;
    app.stop().await;
}

#[tokio::test]
async fn the_account_ceiling_stops_many_clients_but_not_the_owners_known_browser() {
    let app = behind_gateway(&[
        ("LOGIN_FAILURES_PER_ACCOUNT_CLIENT", "10"),
        ("LOGIN_FAILURES_PER_ACCOUNT", "5"),
    ])
    .await;
    let email = unique_email("targeted");
    app.register(&email).await;
    // The owner logged in from this browser before: it holds a device cookie.
    let res = app.login(Login::new(&email, PASSWORD, OWNER)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let device = set_cookie(&res, "login_device").unwrap();
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("login_device="))
        .unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/api/v1/auth/login"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    // A botnet: five clients, one failure each, fills the account's ceiling.
    for i in 0..5 {
        let res = app
            .login(Login::new(&email, WRONG, &format!("192.0.2.{i}")))
            .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // A sixth client gets no guess — not even with the right password (no oracle).
    assert_limited(app.login(Login::new(&email, WRONG, "192.0.2.100")).await).await;
    assert_limited(app.login(Login::new(&email, PASSWORD, "192.0.2.101")).await).await;
    // The owner's browser still logs in, from wherever it is now, and keeps its device.
    let with_device = format!("login_device={device}");
    let mut login = Login::new(&email, PASSWORD, "192.0.2.200");
    login.cookie = Some(&with_device);
    let res = app.login(login).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        set_cookie(&res, "login_device").as_deref(),
        Some(device.as_str())
    );
    // A device cookie of another account is no pass for this one.
    let other = unique_email("attacker-own");
    app.register(&other).await;
    let res = app.login(Login::new(&other, PASSWORD, ATTACKER)).await;
    let foreign = format!("login_device={}", set_cookie(&res, "login_device").unwrap());
    let mut login = Login::new(&email, WRONG, ATTACKER);
    login.cookie = Some(&foreign);
    assert_limited(app.login(login).await).await;
    let mut login = Login::new(&email, WRONG, ATTACKER);
    login.cookie = Some("login_device=made-up");
    assert_limited(app.login(login).await).await;
    app.stop().await;
}

#[tokio::test]
async fn limits_answer_the_same_whether_or_not_the_account_exists() {
    let app = behind_gateway(&[("LOGIN_FAILURES_PER_ACCOUNT_CLIENT", "3")]).await;
    let real = unique_email("real");
    app.register(&real).await;
    let ghost = unique_email("ghost");
    let mut answers = Vec::new();
    for email in [&real, &ghost] {
        for _ in 0..3 {
            let res = app.login(Login::new(email, WRONG, ATTACKER)).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
            answers.push(res.json::<Value>().await.unwrap());
        }
        let body = assert_limited(app.login(Login::new(email, WRONG, ATTACKER)).await).await;
        answers.push(json!({"code": body["code"], "fields": body["fields"]}));
    }
    assert_eq!(answers[..4], answers[4..], "{answers:?}");
    app.stop().await;
}

#[tokio::test]
async fn an_oversized_email_is_refused_before_any_key_is_built() {
    let app = behind_gateway(&[]).await;
    let huge = format!("{}@example.com", "a".repeat(100_000));
    let res = app.login(Login::new(&huge, WRONG, ATTACKER)).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = assert_json_error(res, "validation_failed").await;
    assert_eq!(body["fields"][0]["field"], "email");
    let res = app
        .login(Login::new(
            &unique_email("long"),
            &"p".repeat(100_000),
            ATTACKER,
        ))
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // The longest email there can be, failing: its keys are as short as any.
    let longest = format!("{}@{}.example.com", "b".repeat(64), "c".repeat(170));
    assert!(longest.len() <= 254);
    let res = app.login(Login::new(&longest, WRONG, ATTACKER)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let prefix = app.env.get("REDIS_KEY_PREFIX").unwrap().to_owned();
    let client = redis::Client::open(app.env.get("REDIS_URL").unwrap()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let limits: Vec<&String> = keys.iter().filter(|k| k.contains("ratelimit:")).collect();
    assert_eq!(limits.len(), 3, "pair, client and account: {keys:?}");
    assert!(
        keys.iter().all(|k| k.len() < prefix.len() + 100),
        "{keys:?}"
    );
    app.stop().await;
}
