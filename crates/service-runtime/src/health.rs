//! Liveness and readiness. Live answers while the process runs; ready asks every dependency
//! the service uses (concurrently, each with a deadline) and answers 503 naming the ones that
//! failed — and 503 while the service is shutting down, so load balancers drain it first.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use async_trait::async_trait;
use contracts::ErrorBody;
use contracts::error::codes;
use serde::Serialize;
use utoipa::ToSchema;

/// A check that one dependency answers.
#[async_trait]
pub trait Probe: Send + Sync + 'static {
    /// The dependency's name in readiness answers (`postgres`, `redis`, `kafka`, `mongodb`…).
    fn name(&self) -> &str;
    /// `Ok` when the dependency answered; `Err` says what went wrong.
    async fn check(&self) -> Result<(), String>;
}

/// The probes of one service, and whether it is shutting down.
#[derive(Clone)]
pub struct Readiness {
    probes: Arc<Vec<Arc<dyn Probe>>>,
    timeout: Duration,
    shutting_down: Arc<AtomicBool>,
}

impl Default for Readiness {
    fn default() -> Self {
        Self {
            probes: Arc::new(Vec::new()),
            timeout: Duration::from_secs(2),
            shutting_down: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// One dependency's state in a readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckResult {
    pub name: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The 200 answer of `/health/ready`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyBody {
    pub status: &'static str,
    pub checks: Vec<CheckResult>,
}

impl Readiness {
    /// Adds a probe. Builder style: `Readiness::default().with(a).with(b)`.
    pub fn with(mut self, probe: impl Probe) -> Self {
        let mut probes = Vec::clone(&self.probes);
        probes.push(Arc::new(probe));
        self.probes = Arc::new(probes);
        self
    }

    /// How long each probe may take before it counts as failed (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub(crate) fn mark_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Runs every probe concurrently.
    pub async fn check_all(&self) -> Vec<CheckResult> {
        let checks = self.probes.iter().map(|probe| async move {
            let outcome = tokio::time::timeout(self.timeout, probe.check()).await;
            let error = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some(format!("no answer within {:?}", self.timeout)),
            };
            CheckResult {
                name: probe.name().to_owned(),
                ok: error.is_none(),
                error,
            }
        });
        futures_util::future::join_all(checks).await
    }
}

/// Answers 200 while the process runs.
#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, description = "the process is running")))]
pub(crate) async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "live"}))
}

/// Answers 200 when every dependency answers, 503 naming the ones that do not.
#[utoipa::path(get, path = "/health/ready", tag = "health", responses(
    (status = 200, description = "every dependency answers", body = ReadyBody),
    (status = 503, description = "a dependency is down or the service is stopping", body = ErrorBody)))]
pub(crate) async fn ready(readiness: web::Data<Readiness>) -> HttpResponse {
    if readiness.shutting_down.load(Ordering::SeqCst) {
        let body = ErrorBody::new("shutting_down", "the service is shutting down");
        return HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE).json(body);
    }
    let checks = readiness.check_all().await;
    let failed: Vec<&CheckResult> = checks.iter().filter(|c| !c.ok).collect();
    if failed.is_empty() {
        return HttpResponse::Ok().json(ReadyBody {
            status: "ready",
            checks,
        });
    }
    let names: Vec<&str> = failed.iter().map(|c| c.name.as_str()).collect();
    let mut body = ErrorBody::new(
        codes::DEPENDENCY_UNAVAILABLE,
        format!("not ready: {} unavailable", names.join(", ")),
    );
    for check in failed {
        body = body.with_field(check.name.clone(), check.error.clone().unwrap_or_default());
    }
    HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE).json(body)
}
