//! The runtime's own behaviour, on a real listener: graceful drain, trace continuation,
//! JSON rejections of bad input, and readiness probes that fail or hang.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use async_trait::async_trait;
use service_runtime::{
    HttpSettings, Probe, Readiness, RunningService, ServiceBuilder, ServiceName,
};

fn settings() -> HttpSettings {
    let env: HashMap<String, String> = [
        ("SERVER_HOST", "127.0.0.1"),
        ("SERVER_PORT", "0"),
        ("SERVER_WORKERS", "1"),
        ("SHUTDOWN_TIMEOUT_SECONDS", "5"),
        ("HTTP_MAX_BODY_BYTES", "1024"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    HttpSettings::from_env(&env, ServiceName::Content).unwrap()
}

#[derive(serde::Deserialize)]
struct Body {
    n: u8,
}

#[derive(serde::Deserialize)]
struct Page {
    #[allow(dead_code)]
    limit: u16,
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/slow",
        web::get().to(|| async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            HttpResponse::Ok().body("done")
        }),
    )
    .route(
        "/trace",
        web::get().to(|| async {
            HttpResponse::Ok().body(telemetry::current_trace_id().unwrap_or_default())
        }),
    )
    .route(
        "/echo",
        web::post().to(|body: web::Json<Body>| async move {
            HttpResponse::Ok().json(serde_json::json!({"n": body.n}))
        }),
    )
    .route(
        "/items/{id}",
        web::get().to(|id: web::Path<i64>| async move { HttpResponse::Ok().body(id.to_string()) }),
    )
    .route(
        "/page",
        web::get().to(|_q: web::Query<Page>| async { HttpResponse::Ok().finish() }),
    );
}

async fn start(readiness: Readiness) -> RunningService {
    let telemetry_config = telemetry::TelemetryConfig {
        service_name: "runtime-test".into(),
        log_filter: "warn".into(),
        trace_filter: "info".into(),
        log_format: telemetry::LogFormat::Json,
        otlp_endpoint: None,
    };
    std::mem::forget(telemetry::init(&telemetry_config).unwrap());
    ServiceBuilder::new(ServiceName::Content, settings())
        .readiness(readiness)
        .start(routes)
        .await
        .unwrap()
}

#[tokio::test]
async fn in_flight_requests_finish_during_a_graceful_stop_and_new_ones_are_refused() {
    let app = start(Readiness::default()).await;
    let base = app.base_url();
    let client = reqwest::Client::new();
    let slow = tokio::spawn({
        let client = client.clone();
        let url = format!("{base}/slow");
        async move { client.get(url).send().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopping = Instant::now();
    app.stop().await;
    let res = slow.await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "done");
    assert!(stopping.elapsed() < Duration::from_secs(5));
    let after = reqwest::Client::new()
        .get(format!("{base}/health/live"))
        .send()
        .await;
    assert!(after.is_err(), "the listener must be closed after stop");
}

#[tokio::test]
async fn a_traceparent_header_continues_the_callers_trace() {
    let app = start(Readiness::default()).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let res = reqwest::Client::new()
        .get(format!("{}/trace", app.base_url()))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), trace_id);

    // Without one (or with garbage) a new trace starts.
    let res = reqwest::Client::new()
        .get(format!("{}/trace", app.base_url()))
        .header("traceparent", "garbage")
        .send()
        .await
        .unwrap();
    let fresh = res.text().await.unwrap();
    assert_eq!(fresh.len(), 32);
    assert_ne!(fresh, trace_id);
    app.stop().await;
}

async fn error_of(res: reqwest::Response) -> (u16, serde_json::Value) {
    let status = res.status().as_u16();
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn bad_input_gets_a_4xx_with_the_shared_json_body() {
    let app = start(Readiness::default()).await;
    let base = app.base_url();
    let client = reqwest::Client::new();
    let post = |body: &'static [u8], content_type: &'static str| {
        client
            .post(format!("{base}/echo"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    let (status, body) = error_of(post(b"{\"n\":", "application/json").await.unwrap()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("malformed_json"))
    );

    let (status, body) = error_of(post(b"\xff\xfe", "application/json").await.unwrap()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("malformed_json"))
    );

    let (status, body) = error_of(post(b"{\"n\":300}", "application/json").await.unwrap()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("validation_failed"))
    );

    let (status, body) = error_of(post(b"{\"n\":1}", "text/plain").await.unwrap()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );

    let big = client
        .post(format!("{base}/echo"))
        .header("content-type", "application/json")
        .body(vec![b' '; 4096])
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(big).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    assert!(body["message"].as_str().unwrap().contains("1024"));

    for bad in ["abc", "99999999999999999999999"] {
        let res = client
            .get(format!("{base}/items/{bad}"))
            .send()
            .await
            .unwrap();
        let (status, body) = error_of(res).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("bad_request")),
            "{bad}"
        );
    }

    let res = client
        .get(format!("{base}/page?limit=lots"))
        .send()
        .await
        .unwrap();
    let (status, _) = error_of(res).await;
    assert_eq!(status, 400);

    let ok = post(b"{\"n\":7}", "application/json").await.unwrap();
    assert_eq!(ok.status(), 200);
    app.stop().await;
}

struct Fixed(&'static str, Result<(), &'static str>);

#[async_trait]
impl Probe for Fixed {
    fn name(&self) -> &str {
        self.0
    }
    async fn check(&self) -> Result<(), String> {
        self.1.map_err(str::to_owned)
    }
}

struct Hangs;

#[async_trait]
impl Probe for Hangs {
    fn name(&self) -> &str {
        "hangs"
    }
    async fn check(&self) -> Result<(), String> {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(())
    }
}

#[tokio::test]
async fn readiness_names_failing_and_hanging_dependencies_without_waiting_on_them() {
    let readiness = Readiness::default()
        .timeout(Duration::from_millis(300))
        .with(Fixed("fine", Ok(())))
        .with(Fixed("broken", Err("connection refused")))
        .with(Hangs);
    let app = start(readiness).await;
    let started = Instant::now();
    let res = reqwest::get(format!("{}/health/ready", app.base_url()))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    let (status, body) = error_of(res).await;
    assert_eq!(status, 503);
    assert_eq!(body["code"], "dependency_unavailable");
    let fields = body["fields"].as_array().unwrap();
    assert_eq!(fields.len(), 2, "{body}");
    assert_eq!(fields[0]["field"], "broken");
    assert_eq!(fields[0]["message"], "connection refused");
    assert_eq!(fields[1]["field"], "hangs");
    app.stop().await;
}
