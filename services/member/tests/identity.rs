//! Who may call member's `/internal/**` routes (a service token for member from an allowed
//! caller) and its `/admin/**` routes (an ADMIN's access token from ADMIN_ALLOWED_CIDRS).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use auth::ServiceIdentity;
use auth::service_identity::{encode_key, public_key};
use common::{App, spawn};
use contracts::auth::MemberRole;
use member::domain::keys::KeyRing;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use service_runtime::ServiceName;
use test_harness::platform::assert_json_error;

fn token(caller: ServiceName, audience: &str) -> String {
    ServiceIdentity::development(caller)
        .token_for(audience)
        .unwrap()
        .to_string()
}

async fn call(app: &App, method: Method, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = app.client.request(method.clone(), app.url(path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if method == Method::POST && path.starts_with("/internal/") {
        req = req.json(&json!({"ids": [1]}));
    }
    req.send().await.unwrap()
}

const BATCH: &str = "/internal/members/batch";

/// An access token signed by this member's active key.
async fn access_token(app: &App, member_id: i64, role: MemberRole) -> String {
    let config = member::Config::from_env(app.env.vars()).unwrap();
    let keys = KeyRing::new(
        service_runtime::postgres::connect_lazy(&config.database).unwrap(),
        &config.tokens.master_key,
        config.tokens.access_ttl,
        config.tokens.rotation,
    );
    keys.access_token(member_id, role, Duration::from_secs(600))
        .await
        .unwrap()
}

#[tokio::test]
async fn an_internal_route_refuses_a_call_without_a_service_token() {
    let app = spawn(&[]).await;
    let res = call(&app, Method::POST, BATCH, None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_json_error(res, "unauthorized").await;
    app.stop().await;
}

#[tokio::test]
async fn an_internal_route_refuses_a_members_access_token_and_a_member_route_a_service_token() {
    let app = spawn(&[]).await;
    let (_, access, _) = app.member("not-a-service").await;
    let res = call(&app, Method::POST, BATCH, Some(&access)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body = assert_json_error(res, "invalid_token").await;
    assert_eq!(body["message"], "not a service token");
    // And the other way round: timeline's token is no member's.
    let service = token(ServiceName::Timeline, "member");
    let res = app.get_as("/api/v1/members/me", &service).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_json_error(res, "invalid_token").await;
    app.stop().await;
}

#[tokio::test]
async fn an_internal_route_refuses_a_token_minted_for_another_service() {
    let app = spawn(&[]).await;
    let for_content = token(ServiceName::Timeline, "content");
    let res = call(&app, Method::POST, BATCH, Some(&for_content)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body = assert_json_error(res, "invalid_token").await;
    assert_eq!(body["message"], "the service token is not for this service");
    app.stop().await;
}

#[tokio::test]
async fn an_internal_route_refuses_an_expired_service_token() {
    let app = spawn(&[]).await;
    let now = chrono::Utc::now().timestamp();
    let expired = ServiceIdentity::development(ServiceName::Timeline)
        .mint_at("member", now - 120, now - 60)
        .unwrap();
    let res = call(&app, Method::POST, BATCH, Some(&expired)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_json_error(res, "token_expired").await;
    app.stop().await;
}

#[tokio::test]
async fn an_internal_route_refuses_a_caller_it_does_not_allow_and_answers_one_it_does() {
    let app = spawn(&[]).await;
    let (id, _, _) = app.member("allowed").await;
    // Search may call no member route; activity only following-ids.
    for caller in [ServiceName::Search, ServiceName::Activity] {
        let res = call(&app, Method::POST, BATCH, Some(&token(caller, "member"))).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{caller}");
        let body = assert_json_error(res, "forbidden").await;
        assert!(
            body["message"].as_str().unwrap().contains(caller.as_str()),
            "{body}"
        );
    }
    let following = format!("/internal/members/{id}/following-ids");
    let timeline = token(ServiceName::Timeline, "member");
    let res = call(&app, Method::GET, &following, Some(&timeline)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let activity = token(ServiceName::Activity, "member");
    let res = call(&app, Method::GET, &following, Some(&activity)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = call(&app, Method::GET, "/internal/follows", Some(&timeline)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .client
        .post(app.url(BATCH))
        .bearer_auth(&timeline)
        .json(&json!({"ids": [id]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["members"][0]["id"], id);
    app.stop().await;
}

#[tokio::test]
async fn configured_peers_replace_the_development_keys() {
    let timeline = ServiceIdentity::new(ServiceName::Timeline, [9; 32], Duration::from_secs(60));
    let peers = format!("timeline={}", encode_key(&public_key(&[9; 32])));
    let app = spawn(&[("SERVICE_IDENTITY_PEERS", &peers)]).await;
    let configured = timeline.token_for("member").unwrap();
    let res = call(&app, Method::GET, "/internal/follows", Some(&configured)).await;
    assert_eq!(res.status(), StatusCode::OK);
    // The development key no longer opens anything.
    let dev = token(ServiceName::Timeline, "member");
    let res = call(&app, Method::GET, "/internal/follows", Some(&dev)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

const OUTBOX: &str = "/admin/events/outbox";

#[tokio::test]
async fn admin_routes_refuse_a_user_token() {
    let app = spawn(&[]).await;
    let (_, access, _) = app.member("user").await;
    let res = app.get_as(OUTBOX, &access).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body = assert_json_error(res, "forbidden").await;
    assert_eq!(body["message"], "this route needs the ADMIN role");
    // Nor does a service token open them.
    let res = app
        .get_as(OUTBOX, &token(ServiceName::Timeline, "member"))
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn admin_routes_accept_an_admin_from_the_allowlist() {
    let app = spawn(&[]).await;
    let admin = access_token(&app, 1, MemberRole::Admin).await;
    let res = app.get_as(OUTBOX, &admin).await;
    assert_eq!(res.status(), StatusCode::OK);
    let stats: Value = res.json().await.unwrap();
    assert!(stats.is_object(), "{stats}");
    let res = app
        .client
        .post(app.url("/admin/events/outbox/redrive"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The old path is gone.
    let res = app.get_as("/internal/events/outbox", &admin).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn admin_routes_refuse_an_admin_from_outside_the_allowlist() {
    let app = spawn(&[("ADMIN_ALLOWED_CIDRS", "10.0.0.0/8")]).await;
    let admin = access_token(&app, 1, MemberRole::Admin).await;
    let res = app.get_as(OUTBOX, &admin).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body = assert_json_error(res, "forbidden").await;
    assert_eq!(body["message"], "admin routes are not open to this address");
    // A client cannot talk its way in with X-Forwarded-For when no proxy is trusted.
    let res = app
        .client
        .get(app.url(OUTBOX))
        .bearer_auth(&admin)
        .header("X-Forwarded-For", "10.1.2.3")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_what_the_allowlist_judges() {
    let app = spawn(&[
        ("ADMIN_ALLOWED_CIDRS", "203.0.113.0/24"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let admin = access_token(&app, 1, MemberRole::Admin).await;
    for (client, status) in [
        ("203.0.113.9", StatusCode::OK),
        ("198.51.100.1", StatusCode::FORBIDDEN),
    ] {
        let res = app
            .client
            .get(app.url(OUTBOX))
            .bearer_auth(&admin)
            .header("X-Forwarded-For", client)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{client}");
    }
    app.stop().await;
}
