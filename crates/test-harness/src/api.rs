//! Calling the services' HTTP APIs from tests.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The password test members register with.
pub const PASSWORD: &str = "correct horse battery staple";

/// `method url` with an optional bearer token and JSON body: the status and the JSON body
/// (`Null` when there is none).
pub async fn call(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = client.request(method, url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Registers a member through member's API at `member_base` and logs in: its id and access
/// token.
pub async fn register_and_login(
    client: &reqwest::Client,
    member_base: &str,
    nickname: &str,
) -> (i64, String) {
    let email = format!("{nickname}-{}@example.com", crate::unique_suffix());
    let (status, body) = call(
        client,
        Method::POST,
        &format!("{member_base}/api/v1/auth/register"),
        None,
        Some(json!({"email": email, "password": PASSWORD, "nickname": nickname})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = call(
        client,
        Method::POST,
        &format!("{member_base}/api/v1/auth/login"),
        None,
        Some(json!({"email": email, "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        body["member_id"].as_i64().unwrap(),
        body["access_token"].as_str().unwrap().to_owned(),
    )
}
