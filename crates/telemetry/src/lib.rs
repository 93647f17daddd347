//! Telemetry for a dailyfeed service: JSON logs through `tracing`, OpenTelemetry spans
//! exported over OTLP/HTTP when an endpoint is configured, W3C `traceparent` propagation for
//! HTTP and Kafka, and the process-wide Prometheus recorder behind `/metrics`.

mod metrics_recorder;
mod propagation;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub use metrics_recorder::prometheus;
pub use propagation::{current_trace_context, current_trace_id, set_parent_from};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (the default; what log shippers expect).
    Json,
    /// Human-readable lines for a terminal.
    Pretty,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(LogFormat::Json),
            "pretty" | "text" => Ok(LogFormat::Pretty),
            other => Err(format!("`{other}` is not a log format (json, pretty)")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// `service.name` on every span and log line.
    pub service_name: String,
    /// An `EnvFilter` directive for log lines, e.g. `info,sqlx=warn`.
    pub log_filter: String,
    /// An `EnvFilter` directive for spans sent to OpenTelemetry (and so for trace ids in
    /// logs and `traceparent` on outgoing calls). Kept apart from `log_filter` so quieting
    /// logs never breaks trace propagation.
    pub trace_filter: String,
    pub log_format: LogFormat,
    /// OTLP/HTTP collector base URL (e.g. `http://otel-collector:4318`); no export when unset.
    pub otlp_endpoint: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter `{0}`: {1}")]
    Filter(String, String),
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
}

/// Flushes and shuts down the span exporter when dropped; keep it alive for the process.
#[must_use = "dropping the guard shuts tracing export down"]
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        // Export whatever is still batched; errors here can only be reported, not handled.
        if let Err(err) = self.provider.shutdown() {
            eprintln!("telemetry: span exporter shutdown failed: {err}");
        }
    }
}

/// Installs the global subscriber (logs + spans) and the W3C propagator.
///
/// Spans always get real trace ids, even without an exporter, so logs carry a `trace_id`
/// and events carry a `traceparent`. If a global subscriber is already installed (tests
/// starting several services in one process), the first one stays.
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let filter = |directive: &String| {
        EnvFilter::try_new(directive)
            .map_err(|e| TelemetryError::Filter(directive.clone(), e.to_string()))
    };

    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if let Some(endpoint) = &config.otlp_endpoint {
        use opentelemetry_otlp::WithExportConfig;
        // The batch processor exports from its own thread, outside any async runtime, so
        // the exporter uses reqwest's blocking client.
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    let tracer = provider.tracer(config.service_name.clone());
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );

    // Every poll of an instrumented future enters and exits its span: with busy/idle timing
    // that is two clock reads, and with context activation a thread-local push/pop, per poll.
    // Neither is used here (propagation reads the span's own context), and at the gateway's
    // rates they were several per cent of its CPU.
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(false)
        .with_context_activation(false)
        // Source location, thread and target are the same for every request span (the HTTP
        // middleware's), so they would be six attributes allocated per request for nothing.
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_filter(filter(&config.trace_filter)?);
    let fmt_layer = match config.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_target(true)
            .with_filter(filter(&config.log_filter)?)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_target(true)
            .with_filter(filter(&config.log_filter)?)
            .boxed(),
    };
    // Install the metrics recorder now, before any library records a metric.
    prometheus();
    // A second init in the same process (tests) keeps the first subscriber; that's fine.
    let _ = tracing_subscriber::registry()
        .with(otel_layer)
        .with(fmt_layer)
        .try_init();
    Ok(TelemetryGuard { provider })
}
