//! member's URL table. The runtime adds `/health/*`, `/metrics`, `/openapi.json` and
//! `/swagger-ui/`. Routes needing a token take an `AuthMember` argument.

use ::auth::{BearerAuth, RequireService};
use actix_web::web;
use service_runtime::ServiceName;
use utoipa::OpenApi;

use crate::api::{auth, follows, internal, jwks, members, oauth};

#[derive(OpenApi)]
#[openapi(
    paths(
        auth::register, auth::check_email, auth::login, auth::refresh, auth::logout, auth::logout_all,
        oauth::start, oauth::link, oauth::callback, oauth::unlink,
        jwks::jwks,
        members::me, members::update_me, members::get,
        follows::follow, follows::unfollow, follows::followers, follows::followings,
        internal::batch, internal::following_ids, internal::all_follows,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Accounts and tokens"),
        (name = "oauth", description = "Google and Kakao login"),
        (name = "members", description = "Profiles"),
        (name = "follows", description = "Follows"),
        (name = "internal", description = "For other services, not routed by the gateway: a service token from an allowed caller"),
    )
)]
struct ApiDoc;

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi().merge_from(events::admin::OutboxAdminDoc::openapi())
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/.well-known/jwks.json", web::get().to(jwks::jwks))
        .service(
            web::scope("/api/v1/auth")
                .route("/register", web::post().to(auth::register))
                .route("/check-email", web::get().to(auth::check_email))
                .route("/login", web::post().to(auth::login))
                .route("/refresh", web::post().to(auth::refresh))
                .route("/logout", web::post().to(auth::logout))
                .route("/logout-all", web::post().to(auth::logout_all))
                .route("/oauth/{provider}", web::get().to(oauth::start))
                .route("/oauth/{provider}", web::delete().to(oauth::unlink))
                .route("/oauth/{provider}/link", web::post().to(oauth::link))
                .route("/oauth/{provider}/callback", web::get().to(oauth::callback)),
        )
        .service(
            web::scope("/api/v1/members")
                .route("/me", web::get().to(members::me))
                .route("/me", web::patch().to(members::update_me))
                .route("/{id}", web::get().to(members::get))
                .route("/{id}/follow", web::post().to(follows::follow))
                .route("/{id}/follow", web::delete().to(follows::unfollow))
                .route("/{id}/followers", web::get().to(follows::followers))
                .route("/{id}/followings", web::get().to(follows::followings)),
        )
        // Who may call what: docs/security.md, and the chart's AuthorizationPolicy.
        .service(
            web::resource("/internal/members/batch")
                .wrap(RequireService::allow([ServiceName::Timeline]))
                .route(web::post().to(internal::batch)),
        )
        .service(
            web::resource("/internal/follows")
                .wrap(RequireService::allow([ServiceName::Timeline]))
                .route(web::get().to(internal::all_follows)),
        )
        .service(
            web::resource("/internal/members/{id}/following-ids")
                .wrap(RequireService::allow([ServiceName::Activity]))
                .route(web::get().to(internal::following_ids)),
        );
}
