//! A member service on real Postgres, Redis, tansu and the local OAuth servers, and a client
//! that behaves like the frontend.
#![allow(dead_code, clippy::unwrap_used)]

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use test_harness::TestEnv;

pub const PASSWORD: &str = "correct horse battery";

pub fn oauth_google() -> String {
    std::env::var("TEST_OAUTH_GOOGLE").unwrap_or_else(|_| "http://127.0.0.1:18180".into())
}

pub fn oauth_kakao() -> String {
    std::env::var("TEST_OAUTH_KAKAO").unwrap_or_else(|_| "http://127.0.0.1:18181".into())
}

pub struct App {
    pub env: TestEnv,
    pub base: String,
    pub client: reqwest::Client,
    pub service: Option<service_runtime::RunningService>,
}

/// The env a member under test runs with (OAuth pointed at the local servers).
pub async fn member_env(overrides: &[(&str, &str)]) -> TestEnv {
    let google = oauth_google();
    let kakao = oauth_kakao();
    let google_port = google.rsplit(':').next().unwrap().to_owned();
    let mut env = TestEnv::new()
        .postgres()
        .await
        .redis()
        .kafka()
        .set("REFRESH_COOKIE_SECURE", "false")
        .set("ARGON2_MEMORY_KIB", "4096")
        .set("ARGON2_ITERATIONS", "1")
        // Generous login limits unless a test is about them.
        .set("LOGIN_FAILURES_PER_ACCOUNT_CLIENT", "1000")
        .set("LOGIN_FAILURES_PER_CLIENT", "1000")
        .set("LOGIN_FAILURES_PER_ACCOUNT", "1000")
        .set("GOOGLE_CLIENT_ID", "dailyfeed-google")
        .set("GOOGLE_CLIENT_SECRET", "s3cret")
        .set("GOOGLE_AUTH_URL", format!("{google}/authorize"))
        .set("GOOGLE_TOKEN_URL", format!("{google}/token"))
        .set("GOOGLE_USERINFO_URL", format!("{google}/userinfo"))
        .set("GOOGLE_JWKS_URL", format!("{google}/jwks"))
        // oauth2-mock-server names itself localhost in the tokens it issues.
        .set("GOOGLE_ISSUER", format!("http://localhost:{google_port}"))
        .set("KAKAO_CLIENT_ID", "dailyfeed-kakao")
        .set("KAKAO_CLIENT_SECRET", "s3cret")
        .set("KAKAO_AUTH_URL", format!("{kakao}/authorize"))
        .set("KAKAO_TOKEN_URL", format!("{kakao}/token"))
        .set("KAKAO_USERINFO_URL", format!("{kakao}/userinfo"));
    for (k, v) in overrides {
        env = env.set(k, *v);
    }
    env
}

pub async fn spawn(overrides: &[(&str, &str)]) -> App {
    spawn_with(member_env(overrides).await).await
}

pub async fn spawn_with(env: TestEnv) -> App {
    test_harness::install_crypto_provider();
    let config = member::Config::from_env(env.vars()).unwrap();
    let service = member::start(config).await.unwrap();
    App {
        base: service.base_url(),
        env,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap(),
        service: Some(service),
    }
}

pub fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@example.com", test_harness::unique_suffix())
}

/// The refresh token from a response's Set-Cookie.
pub fn refresh_cookie(res: &Response) -> Option<String> {
    set_cookie(res, "refresh_token")
}

/// The value a response's Set-Cookie gives cookie `name`.
pub fn set_cookie(res: &Response, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    res.headers().get_all("set-cookie").iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let rest = v.strip_prefix(&prefix)?;
        Some(rest.split(';').next()?.to_owned())
    })
}

/// A login as a client at `client_ip` behind the gateway would send it (the gateway appends
/// the address it saw to `X-Forwarded-For`; run member with `TRUSTED_PROXIES=127.0.0.1`),
/// with `forwarded` standing for whatever the client itself wrote in front, and optional
/// cookies (`name=value; …`).
pub struct Login<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub client_ip: &'a str,
    pub forwarded: Option<&'a str>,
    pub cookie: Option<&'a str>,
}

impl<'a> Login<'a> {
    pub fn new(email: &'a str, password: &'a str, client_ip: &'a str) -> Self {
        Self {
            email,
            password,
            client_ip,
            forwarded: None,
            cookie: None,
        }
    }
}

impl App {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// `POST /api/v1/auth/login` as described by `login`.
    pub async fn login(&self, login: Login<'_>) -> Response {
        let chain = match login.forwarded {
            Some(spoofed) => format!("{spoofed}, {}", login.client_ip),
            None => login.client_ip.to_owned(),
        };
        let mut req = self
            .client
            .post(self.url("/api/v1/auth/login"))
            .header("x-forwarded-for", chain)
            .json(&json!({"email": login.email, "password": login.password}));
        if let Some(cookie) = login.cookie {
            req = req.header("cookie", cookie);
        }
        req.send().await.unwrap()
    }

    /// `POST path` as timeline would send it: with timeline's development service token.
    pub async fn post_internal(&self, path: &str, body: Value) -> Response {
        let token = auth::ServiceIdentity::development(service_runtime::ServiceName::Timeline)
            .token_for("member")
            .unwrap();
        self.client
            .post(self.url(path))
            .bearer_auth(&*token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_as(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn register(&self, email: &str) -> Value {
        let res = self
            .post(
                "/api/v1/auth/register",
                json!({"email": email, "password": PASSWORD, "nickname": "tester"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json().await.unwrap()
    }

    /// Registers and logs in; returns (member id, access token, refresh token).
    pub async fn member(&self, tag: &str) -> (i64, String, String) {
        let email = unique_email(tag);
        self.register(&email).await;
        let res = self
            .post(
                "/api/v1/auth/login",
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        (
            body["member_id"].as_i64().unwrap(),
            body["access_token"].as_str().unwrap().to_owned(),
            body["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn stop(mut self) {
        if let Some(service) = self.service.take() {
            service.stop().await;
        }
    }
}
