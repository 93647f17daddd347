//! content's URL table. The runtime adds `/health/*`, `/metrics`, `/openapi.json` and
//! `/swagger-ui/`.

use actix_web::web;
use auth::{BearerAuth, RequireService};
use service_runtime::ServiceName;
use utoipa::OpenApi;

use crate::api::{comments, internal, likes, posts};

#[derive(OpenApi)]
#[openapi(
    paths(
        posts::create, posts::get, posts::edit, posts::delete, posts::history, posts::by_author,
        comments::create, comments::of_post, comments::replies, comments::edit, comments::delete,
        likes::like_post, likes::unlike_post, likes::like_comment, likes::unlike_comment,
        internal::all_posts,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "posts", description = "Posts with edit history"),
        (name = "comments", description = "Comments and one level of replies"),
        (name = "likes", description = "Likes on posts and comments"),
        (name = "internal", description = "For other services, not routed by the gateway: a service token from an allowed caller"),
    )
)]
struct ApiDoc;

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi().merge_from(events::admin::OutboxAdminDoc::openapi())
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1/posts")
            .route("", web::post().to(posts::create))
            .route("", web::get().to(posts::by_author))
            .route("/{id}", web::get().to(posts::get))
            .route("/{id}", web::patch().to(posts::edit))
            .route("/{id}", web::delete().to(posts::delete))
            .route("/{id}/history", web::get().to(posts::history))
            .route("/{id}/comments", web::post().to(comments::create))
            .route("/{id}/comments", web::get().to(comments::of_post))
            .route("/{id}/like", web::put().to(likes::like_post))
            .route("/{id}/like", web::delete().to(likes::unlike_post)),
    )
    .service(
        web::scope("/api/v1/comments")
            .route("/{id}", web::patch().to(comments::edit))
            .route("/{id}", web::delete().to(comments::delete))
            .route("/{id}/replies", web::get().to(comments::replies))
            .route("/{id}/like", web::put().to(likes::like_comment))
            .route("/{id}/like", web::delete().to(likes::unlike_comment)),
    )
    // Who may call what: docs/security.md, and the chart's AuthorizationPolicy.
    .service(
        web::resource("/internal/posts")
            .wrap(RequireService::allow([
                ServiceName::Search,
                ServiceName::Timeline,
            ]))
            .route(web::get().to(internal::all_posts)),
    );
}
