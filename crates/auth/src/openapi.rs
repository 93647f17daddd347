//! The OpenAPI security schemes: `security(("bearer" = []))` on routes taking a member's
//! access token (`/api/**`, `/admin/**`), `security(("service" = []))` on `/internal/**`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// Adds the `bearer` (JWT) and `service` (service token) security schemes:
/// `#[openapi(modifiers(&auth::BearerAuth))]`.
pub struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "service",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format(crate::service_identity::SERVICE_TOKEN_TYPE)
                    .description(Some(
                        "A service token (EdDSA JWT, aud = this service) minted by the calling service",
                    ))
                    .build(),
            ),
        );
    }
}
