//! W3C trace-context propagation between spans and text carriers (HTTP headers, Kafka
//! record headers, the event envelope).

use contracts::TraceContext;
use contracts::headers::{TRACEPARENT, TRACESTATE};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct Pair<'a> {
    traceparent: &'a str,
    tracestate: Option<&'a str>,
}

impl Extractor for Pair<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => Some(self.traceparent),
            TRACESTATE => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, TRACESTATE]
    }
}

#[derive(Default)]
struct Captured {
    traceparent: Option<String>,
    tracestate: Option<String>,
}

impl Injector for Captured {
    fn set(&mut self, key: &str, value: String) {
        match key {
            TRACEPARENT => self.traceparent = Some(value),
            TRACESTATE if !value.is_empty() => self.tracestate = Some(value),
            _ => {}
        }
    }
}

/// Makes `span` a child of the remote context in `traceparent`/`tracestate`. An invalid
/// `traceparent` is ignored: the span starts a new trace.
pub fn set_parent_from(span: &tracing::Span, traceparent: &str, tracestate: Option<&str>) {
    let carrier = Pair {
        traceparent,
        tracestate,
    };
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
    if cx.span().span_context().is_valid() {
        // Only fails if the span was already started with another parent.
        let _ = span.set_parent(cx);
    }
}

/// The current span's context as W3C headers, to carry across a process boundary.
pub fn current_trace_context() -> Option<TraceContext> {
    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut captured = Captured::default();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut captured));
    captured.traceparent.map(|traceparent| TraceContext {
        traceparent,
        tracestate: captured.tracestate,
    })
}

/// The current span's trace id in hex, for log correlation.
pub fn current_trace_id() -> Option<String> {
    let cx = tracing::Span::current().context();
    let span_context = cx.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}
