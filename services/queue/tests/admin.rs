//! The gateway's operator endpoints: the route listing and the waiting room's read-out, for
//! an ADMIN from ADMIN_ALLOWED_CIDRS only.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Member, call, gateway, lineup};
use reqwest::Method;
use serde_json::Value;

const ADMIN_PATHS: [&str; 3] = [
    "/admin/gateway/routes",
    "/actuator/gateway/routes",
    "/admin/queue/room",
];

async fn put_capacity(base: &str, token: &str, capacity: Value) -> reqwest::Response {
    common::client()
        .put(format!("{base}/admin/queue/room/capacity"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "capacity": capacity }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn admin_endpoints_refuse_anonymous_callers_and_user_tokens() {
    let member = Member::start().await;
    let gw = gateway(&member.gateway_env()).await;
    let user = member.token(7).await;
    for path in ADMIN_PATHS {
        let url = format!("{}{path}", gw.base_url());
        let res = call(Method::GET, url.clone(), None).await;
        assert_eq!(res.status(), 401, "{path}");
        let res = call(Method::GET, url, Some(&user)).await;
        assert_eq!(res.status(), 403, "{path} as a USER");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "forbidden");
    }
    gw.stop().await;
    member.stop().await;
}

#[tokio::test]
async fn admin_endpoints_refuse_an_admin_from_outside_the_allowlist() {
    let member = Member::start().await;
    let mut config = queue::Config::from_env(member.gateway_env().vars()).unwrap();
    config.admin = auth::AdminGuard::new(
        service_runtime::TrustedProxies::parse_networks("10.0.0.0/8").unwrap(),
        service_runtime::TrustedProxies::none(),
    );
    let gw = queue::start(config).await.unwrap();
    let admin = member.admin_token(1).await;
    for path in ADMIN_PATHS {
        let res = call(
            Method::GET,
            format!("{}{path}", gw.base_url()),
            Some(&admin),
        )
        .await;
        assert_eq!(res.status(), 403, "{path}");
    }
    gw.stop().await;
    member.stop().await;
}

#[tokio::test]
async fn the_room_read_out_shows_capacity_admitted_and_waiting() {
    let member = Member::start().await;
    let gw = gateway(&member.gateway_env().set("ALLOWED_IN_MAX_CAPACITY", "1")).await;
    let base = gw.base_url();
    lineup(&base, &member.token(1).await).await;
    lineup(&base, &member.token(2).await).await;
    let admin = member.admin_token(99).await;
    let res = call(
        Method::GET,
        format!("{base}/admin/queue/room"),
        Some(&admin),
    )
    .await;
    assert_eq!(res.status(), 200);
    let room: Value = res.json().await.unwrap();
    assert_eq!(room["capacity"], 1, "{room}");
    assert_eq!(room["admitted"], 1, "{room}");
    assert_eq!(room["waiting"], 1, "{room}");
    gw.stop().await;
    member.stop().await;
}

#[tokio::test]
async fn an_admin_changes_the_capacity_of_every_replica_at_once() {
    let member = Member::start().await;
    let env = member.gateway_env().set("ALLOWED_IN_MAX_CAPACITY", "1");
    let (a, b) = (gateway(&env).await, gateway(&env).await);
    for id in 1..=3 {
        lineup(&a.base_url(), &member.token(id).await).await;
    }
    let user = member.token(1).await;
    assert_eq!(
        put_capacity(&a.base_url(), &user, 3.into()).await.status(),
        403
    );
    let admin = member.admin_token(99).await;
    let res = put_capacity(&a.base_url(), &admin, 0.into()).await;
    assert_eq!(res.status(), 422);
    // Raised on replica a: the two waiting members are admitted in the same step...
    let res = put_capacity(&a.base_url(), &admin, 3.into()).await;
    assert_eq!(res.status(), 200);
    let changed: Value = res.json().await.unwrap();
    assert_eq!(changed, serde_json::json!({"capacity": 3, "admitted": 2}));
    // ...and replica b, configured with 1, follows it.
    let room: Value = call(
        Method::GET,
        format!("{}/admin/queue/room", b.base_url()),
        Some(&admin),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(room["capacity"], 3, "{room}");
    assert_eq!(room["configured_capacity"], 1, "{room}");
    assert_eq!(room["capacity_overridden"], true, "{room}");
    assert_eq!(
        (room["admitted"].as_u64(), room["waiting"].as_u64()),
        (Some(3), Some(0))
    );
    let fourth = lineup(&b.base_url(), &member.token(4).await).await;
    assert_eq!(fourth["status"], "WAITING", "{fourth}");
    // Back to the configured capacity: nobody is evicted, nobody more admitted.
    let res = put_capacity(&b.base_url(), &admin, Value::Null).await;
    let changed: Value = res.json().await.unwrap();
    assert_eq!(changed, serde_json::json!({"capacity": 1, "admitted": 0}));
    a.stop().await;
    b.stop().await;
    member.stop().await;
}
