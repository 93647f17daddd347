//! The OpenAPI document: the service's own paths plus the runtime's health and metrics.

use utoipa::OpenApi;
use utoipa::openapi::OpenApi as Document;

use crate::config::ServiceName;

#[derive(OpenApi)]
#[openapi(
    paths(crate::health::live, crate::health::ready, crate::http::metrics),
    components(schemas(contracts::ErrorBody, contracts::FieldError)),
    tags((name = "health", description = "Liveness, readiness and metrics"))
)]
struct RuntimeApi;

/// `service_doc` with the runtime's endpoints merged in and the title set to the service.
pub(crate) fn document(service: ServiceName, mut service_doc: Document) -> Document {
    service_doc.merge(RuntimeApi::openapi());
    service_doc.info.title = format!("dailyfeed {service}");
    service_doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    service_doc
}
