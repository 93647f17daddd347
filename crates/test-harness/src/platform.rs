//! The endpoints every service serves the same way, checked the way a user sees them.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http_client;

/// Polls `/health/ready` until it answers 200 (dependencies can take a moment to connect).
pub async fn wait_ready(base: &str) {
    let client = http_client();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let res = client
            .get(format!("{base}/health/ready"))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body = res.text().await.unwrap_or_default();
        if status == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{base} never became ready; last answer {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every operation of the service's OpenAPI document under `/internal/`, `/admin/` or
/// `/actuator/` answers 401 with the JSON error body to a call without a token (from
/// loopback, which the admin allowlist admits, so the token is what is missing), and lists
/// 401 and 403 among its responses; `/internal/**` operations name the `service` security
/// scheme, admin ones `bearer`. A route added there without its guard fails this.
pub async fn check_guarded_routes(base: &str) {
    let client = http_client();
    let doc: Value = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    let mut checked = 0;
    for (path, item) in &paths {
        let internal = path.starts_with("/internal/");
        let admin = path.starts_with("/admin/") || path.starts_with("/actuator/");
        for (method, op) in item.as_object().into_iter().flatten() {
            let tags: Vec<&str> = op["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if tags.contains(&"internal") || tags.contains(&"admin") {
                assert!(
                    internal || admin,
                    "{method} {path} is tagged {tags:?} outside /internal or /admin"
                );
            }
            if !(internal || admin) {
                continue;
            }
            let scheme = if internal { "service" } else { "bearer" };
            let security = op["security"].to_string();
            assert!(
                security.contains(&format!("\"{scheme}\"")),
                "{method} {path} does not name the `{scheme}` security scheme: {security}"
            );
            for status in ["401", "403"] {
                assert!(
                    op["responses"].get(status).is_some(),
                    "{method} {path} does not document {status}"
                );
            }
            let url = format!("{base}{}", fill_path_params(path));
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let res = client.request(method.clone(), &url).send().await.unwrap();
            assert_eq!(res.status(), 401, "{method} {path} without a token");
            assert_json_error(res, "unauthorized").await;
            checked += 1;
        }
    }
    assert!(
        checked > 0
            || !paths
                .keys()
                .any(|p| p.starts_with("/internal/") || p.starts_with("/admin/"))
    );
}

/// `/a/{id}/b` → `/a/1/b`.
fn fill_path_params(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => in_param = true,
            '}' => {
                in_param = false;
                out.push('1');
            }
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

/// Live, ready, metrics, OpenAPI, Swagger UI, JSON 404 and JSON 405.
pub async fn check_platform_endpoints(base: &str, service: &str) {
    let client = http_client();

    let live = client
        .get(format!("{base}/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);

    wait_ready(base).await;
    let ready: Value = client
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");

    let missing = client
        .get(format!("{base}/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_json_error(missing, "not_found").await;

    let wrong_method = client
        .delete(format!("{base}/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_json_error(wrong_method, "method_not_allowed").await;

    let doc: Value = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "OpenAPI 3.1 expected, got {}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], format!("dailyfeed {service}"));
    assert!(
        doc["paths"]["/health/ready"].is_object(),
        "{}",
        doc["paths"]
    );

    let swagger = client
        .get(format!("{base}/swagger-ui/"))
        .send()
        .await
        .unwrap();
    assert_eq!(swagger.status(), 200);
    assert!(swagger.text().await.unwrap().contains("swagger"));

    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"http_requests_total{method="GET",route="/health/live",status="200"}"#),
        "request counter missing:\n{metrics}"
    );
    assert!(
        metrics.contains("http_request_duration_seconds_bucket"),
        "latency histogram missing:\n{metrics}"
    );
    assert!(
        metrics.contains(r#"route="unmatched",status="404""#),
        "404s must be counted under one bounded label:\n{metrics}"
    );
}

/// `/health/ready` answers 503 and names `dependency` as failing.
pub async fn assert_not_ready_naming(base: &str, dependency: &str) {
    let client = http_client();
    let res = client
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "dependency_unavailable", "{body}");
    let failing: Vec<&str> = body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(failing, vec![dependency], "{body}");
    assert!(body["message"].as_str().unwrap().contains(dependency));
}

/// The answer is the shared JSON error body with `code`.
pub async fn assert_json_error(res: reqwest::Response, code: &str) -> Value {
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "error answers must be JSON, got `{content_type}`"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["fields"].is_array(), "{body}");
    body
}

/// A valid, non-development value for each secret a service refuses to default in
/// production (generated for the tests, used nowhere else).
pub fn production_value(var: &str) -> &'static str {
    match var {
        "JWT_MASTER_KEY" => "q2DsJtYKu6v90ZGRa67S0HRGEuffnJ2opDRWW5AYNMU=",
        "CURSOR_SECRET" => "a-production-cursor-secret-for-tests",
        "QUEUE_ADMISSION_KEY" | "SERVICE_IDENTITY_KEY" => {
            "yXFmalpVJK2fthBc4ibKbZRj3VM2jYSoA247A0RB9nQ"
        }
        "SERVICE_IDENTITY_PEERS" => {
            "timeline=KFRexZPtLSqCfSxtZgSkEgiECm2cuCIw_q-CRvRg_LQ,\
             activity=KFRexZPtLSqCfSxtZgSkEgiECm2cuCIw_q-CRvRg_LQ,\
             search=KFRexZPtLSqCfSxtZgSkEgiECm2cuCIw_q-CRvRg_LQ"
        }
        other => panic!("no production test value for {other}"),
    }
}

/// The platform tests every service runs: endpoints, readiness naming each dependency that
/// is down, a malformed variable stopping startup, and a clean exit on SIGTERM.
///
/// `env` builds a fresh [`crate::TestEnv`] with the service's dependencies; each entry of
/// `dependencies` is `(name in readiness, variable, URL template with {port})`, pointed at a
/// closed port to take that dependency away.
#[macro_export]
macro_rules! platform_tests {
    (
        service: $krate:ident,
        env: $env:expr,
        dependencies: [$(($dep:literal, $var:literal, $template:literal)),* $(,)?]
        $(, production_secrets: [$($secret:literal),* $(,)?])? $(,)?
    ) => {
        #[tokio::test]
        async fn serves_live_ready_metrics_openapi_and_json_errors() {
            let env = ($env)().await;
            let config = $krate::Config::from_env(env.vars()).expect("config");
            let app = $krate::start(config).await.expect("start");
            $crate::platform::check_platform_endpoints(&app.base_url(), $krate::SERVICE.as_str())
                .await;
            app.stop().await;
        }

        #[tokio::test]
        async fn production_refuses_to_start_on_each_development_secret() {
            let listed: Vec<&str> = vec![$($($secret),*)?];
            let mut env = ($env)().await.set("DAILYFEED_ENV", "production");
            let mut refused = Vec::new();
            // Each refusal names one secret; set it for real and try again, until it starts.
            loop {
                match $krate::Config::from_env(env.vars()) {
                    Ok(_) => break,
                    Err(err) => {
                        assert!(
                            err.to_string().contains("DAILYFEED_ENV=production"),
                            "refused for another reason: {err}"
                        );
                        assert!(listed.contains(&err.var.as_str()), "unlisted secret {}", err.var);
                        assert!(!refused.contains(&err.var), "{} refused twice", err.var);
                        env = env.set(&err.var, $crate::platform::production_value(&err.var));
                        refused.push(err.var);
                    }
                }
            }
            refused.sort();
            let mut listed: Vec<String> = listed.into_iter().map(str::to_owned).collect();
            listed.sort();
            assert_eq!(refused, listed, "secrets refused in production");
        }

        #[tokio::test]
        async fn every_internal_and_admin_route_refuses_a_call_without_credentials() {
            let env = ($env)().await;
            let config = $krate::Config::from_env(env.vars()).expect("config");
            let app = $krate::start(config).await.expect("start");
            $crate::platform::check_guarded_routes(&app.base_url()).await;
            app.stop().await;
        }

        #[tokio::test]
        async fn ready_is_503_naming_the_dependency_that_is_down() {
            for (dependency, var, template) in [$(($dep, $var, $template)),*] {
                let port = $crate::closed_port().to_string();
                let env = ($env)()
                    .await
                    .set(var, template.replace("{port}", &port))
                    .set("DATABASE_MIGRATE_ON_START", "false");
                let config = $krate::Config::from_env(env.vars()).expect("config");
                let app = $krate::start(config).await.expect("start while a dependency is down");
                let live = $crate::http_client()
                    .get(format!("{}/health/live", app.base_url()))
                    .send()
                    .await
                    .expect("live");
                assert_eq!(live.status(), 200, "live must not depend on {dependency}");
                $crate::platform::assert_not_ready_naming(&app.base_url(), dependency).await;
                app.stop().await;
            }
        }

        #[tokio::test]
        async fn a_malformed_variable_stops_startup_naming_it() {
            let env = ($env)().await.set("SERVER_PORT", "not-a-port");
            let (code, stderr) = $crate::ServiceProcess::fail_to_start(
                env!(concat!("CARGO_BIN_EXE_", stringify!($krate))),
                env.vars(),
            )
            .await;
            assert_eq!(code, 2, "{stderr}");
            assert!(stderr.contains("SERVER_PORT"), "{stderr}");
        }

        #[tokio::test]
        async fn unknown_arguments_are_refused_with_usage() {
            let env = ($env)().await;
            let (code, stderr) = $crate::ServiceProcess::run_to_exit(
                env!(concat!("CARGO_BIN_EXE_", stringify!($krate))),
                &["frobnicate"],
                env.vars(),
            )
            .await;
            assert_eq!(code, 2, "{stderr}");
            assert!(stderr.contains("usage"), "{stderr}");
        }

        #[tokio::test]
        async fn the_binary_exits_0_within_10s_of_sigterm() {
            let env = ($env)().await;
            let process = $crate::ServiceProcess::start(
                env!(concat!("CARGO_BIN_EXE_", stringify!($krate))),
                env.vars(),
            )
            .await;
            let live = $crate::http_client()
                .get(format!("{}/health/live", process.base_url))
                .send()
                .await
                .expect("live");
            assert_eq!(live.status(), 200);
            let code = process
                .signal_and_wait("TERM", std::time::Duration::from_secs(10))
                .await;
            assert_eq!(code, 0);
        }
    };
}

/// `<binary> migrate` applies the schema to an empty database (twice is fine) and exits 0.
pub async fn check_migrate_subcommand(binary: &str, env: &crate::TestEnv, expect_tables: &[&str]) {
    let env = env.clone().set("DATABASE_MIGRATE_ON_START", "false");
    for _ in 0..2 {
        let (code, stderr) =
            crate::ServiceProcess::run_to_exit(binary, &["migrate"], env.vars()).await;
        assert_eq!(code, 0, "{stderr}");
    }
    let url = env.get("DATABASE_URL").unwrap();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    for table in expect_tables.iter().chain(&["seaql_migrations"]) {
        let exists: (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_name = $1)",
        )
        .bind(*table)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert!(exists.0, "table {table} missing after migrate");
    }
}
