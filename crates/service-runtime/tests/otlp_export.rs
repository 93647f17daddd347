//! With `OTEL_EXPORTER_OTLP_ENDPOINT` set, request spans reach the collector as OTLP/HTTP
//! protobuf. The collector here is a plain TCP listener that records what arrives.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use service_runtime::{HttpSettings, ServiceBuilder, ServiceName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// Accepts connections and sends each request head (request line + headers) to `tx`.
async fn capture(listener: tokio::net::TcpListener, tx: mpsc::UnboundedSender<String>) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 1 << 16];
            let mut seen = Vec::new();
            while let Ok(n) = socket.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
                if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&seen[..end]).into_owned();
                    let _ = tx.send(head);
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    break;
                }
            }
        });
    }
}

#[tokio::test]
async fn request_spans_are_exported_over_otlp_http() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = format!("http://{}", listener.local_addr().unwrap());
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(capture(listener, tx));

    service_runtime::tls::install_crypto_provider();
    let guard = telemetry::init(&telemetry::TelemetryConfig {
        service_name: "otlp-test".into(),
        log_filter: "warn".into(),
        trace_filter: "info".into(),
        log_format: telemetry::LogFormat::Json,
        otlp_endpoint: Some(collector),
    })
    .unwrap();
    let env: HashMap<String, String> = [("SERVER_HOST", "127.0.0.1"), ("SERVER_PORT", "0")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let app = ServiceBuilder::new(
        ServiceName::Search,
        HttpSettings::from_env(&env, ServiceName::Search).unwrap(),
    )
    .start(|_| {})
    .await
    .unwrap();
    let res = reqwest::get(format!("{}/health/live", app.base_url()))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.stop().await;
    // Dropping the guard flushes the batch exporter.
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();

    let head = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no OTLP export within 10 s")
        .unwrap();
    assert!(head.starts_with("POST /v1/traces "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/x-protobuf"),
        "{head}"
    );
}
