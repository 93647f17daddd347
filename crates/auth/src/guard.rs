//! The two route guards: [`RequireService`] on every `/internal/**` route (a service token
//! from an allowed caller) and [`RequireAdmin`] on every `/admin/**` route (an ADMIN
//! member's access token from an allowed address). Refusals are the shared JSON error body;
//! no internal error text reaches the caller.
//!
//! ```ignore
//! cfg.app_data(web::Data::new(peers))          // auth::ServicePeers
//!    .app_data(web::Data::new(admin))          // auth::AdminGuard
//!    .app_data(web::Data::new(verifier))       // auth::Verifier
//!    .service(web::resource("/internal/posts")
//!        .wrap(RequireService::allow([ServiceName::Search, ServiceName::Timeline]))
//!        .route(web::get().to(all_posts)))
//!    .service(web::resource("/admin/search/reindex").wrap(RequireAdmin).route(…));
//! ```

use std::future::{Future, Ready, ready};
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::EitherBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::{HttpMessage, ResponseError, web};
use contracts::auth::MemberRole;
use ipnet::IpNet;
use service_runtime::{ConfigError, EnvSource, HttpError, ServiceName, TrustedProxies};

use crate::extract::bearer_token;
use crate::service_identity::{ServiceAuthError, ServiceCaller, ServicePeers};
use crate::verifier::{AuthError, Authenticated, Verifier};

impl From<ServiceAuthError> for HttpError {
    fn from(err: ServiceAuthError) -> Self {
        let message = err.to_string();
        match err {
            ServiceAuthError::Missing => HttpError::unauthorized("unauthorized", message)
                .with_header("WWW-Authenticate", "Bearer"),
            ServiceAuthError::Expired => HttpError::unauthorized("token_expired", message)
                .with_header("WWW-Authenticate", "Bearer error=\"invalid_token\""),
            ServiceAuthError::WrongAudience | ServiceAuthError::Invalid(_) => {
                HttpError::unauthorized("invalid_token", message)
                    .with_header("WWW-Authenticate", "Bearer error=\"invalid_token\"")
            }
        }
    }
}

/// What a guard decides about a request before the route runs.
pub trait Check: Clone + 'static {
    fn check(&self, req: &ServiceRequest) -> impl Future<Output = Result<(), HttpError>>;
}

/// The middleware of a [`Check`].
pub struct Guarded<S, C> {
    service: Rc<S>,
    check: C,
}

impl<S, B, C> Service<ServiceRequest> for Guarded<S, C>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
    C: Check,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let check = self.check.clone();
        Box::pin(async move {
            match check.check(&req).await {
                Ok(()) => service.call(req).await.map(|r| r.map_into_left_body()),
                Err(refusal) => {
                    let response = refusal.error_response();
                    Ok(req.into_response(response).map_into_right_body())
                }
            }
        })
    }
}

macro_rules! transform {
    ($guard:ty) => {
        impl<S, B> Transform<S, ServiceRequest> for $guard
        where
            S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>
                + 'static,
            B: 'static,
        {
            type Response = ServiceResponse<EitherBody<B>>;
            type Error = actix_web::Error;
            type Transform = Guarded<S, $guard>;
            type InitError = ();
            type Future = Ready<Result<Self::Transform, Self::InitError>>;

            fn new_transform(&self, service: S) -> Self::Future {
                ready(Ok(Guarded {
                    service: Rc::new(service),
                    check: self.clone(),
                }))
            }
        }
    };
}

/// An `/internal/**` route's guard: a valid service token for this service
/// ([`ServicePeers`], registered as `web::Data`) from one of the allowed callers. 401
/// without a token or with a bad one (a member's access token included), 403 for a caller
/// not allowed here. The caller is put in the request's extensions as [`ServiceCaller`].
#[derive(Debug, Clone)]
pub struct RequireService {
    allowed: Arc<[ServiceName]>,
}

impl RequireService {
    pub fn allow(callers: impl IntoIterator<Item = ServiceName>) -> Self {
        Self {
            allowed: callers.into_iter().collect(),
        }
    }

    pub fn allowed(&self) -> &[ServiceName] {
        &self.allowed
    }
}

impl Check for RequireService {
    async fn check(&self, req: &ServiceRequest) -> Result<(), HttpError> {
        let token = bearer_token(req.headers())
            .map_err(|_| {
                ServiceAuthError::Invalid("the Authorization header must be `Bearer <token>`")
            })?
            .ok_or(ServiceAuthError::Missing)?;
        let peers = req
            .app_data::<web::Data<ServicePeers>>()
            .ok_or_else(|| HttpError::internal(&"no ServicePeers registered as app data"))?;
        let caller = peers.verify(&token).inspect_err(|e| {
            metrics::counter!("auth_service_token_refused_total").increment(1);
            tracing::debug!(error = %e, "service token refused");
        })?;
        if !self.allowed.contains(&caller.service) {
            tracing::warn!(caller = %caller.service, path = req.path(), "service not allowed on this route");
            return Err(HttpError::forbidden(format!(
                "service `{}` may not call this route",
                caller.service
            )));
        }
        req.extensions_mut().insert(caller);
        Ok(())
    }
}

transform!(RequireService);

/// The caller of an `/internal/**` request, once [`RequireService`] let it through.
pub fn service_caller(req: &actix_web::HttpRequest) -> Option<ServiceCaller> {
    req.extensions().get::<ServiceCaller>().cloned()
}

/// Where admin requests may come from.
#[derive(Debug, Clone)]
pub struct AdminGuard {
    allowed: Vec<IpNet>,
    proxies: TrustedProxies,
}

impl AdminGuard {
    pub const VAR: &'static str = "ADMIN_ALLOWED_CIDRS";
    /// Loopback only: an operator on the pod (`kubectl port-forward`, `kubectl exec`).
    pub const DEFAULT: &'static str = "127.0.0.1, ::1";

    pub fn new(allowed: Vec<IpNet>, proxies: TrustedProxies) -> Self {
        Self { allowed, proxies }
    }

    /// `ADMIN_ALLOWED_CIDRS` (comma-separated addresses/CIDRs, default loopback) and the
    /// client-IP rules (`TRUSTED_PROXIES`, `TRUSTED_PROXY_HOPS`).
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let raw = env
            .get(Self::VAR)
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| Self::DEFAULT.to_owned());
        let allowed = TrustedProxies::parse_networks(&raw)
            .map_err(|e| ConfigError::new(Self::VAR, &raw, e))?;
        Ok(Self::new(allowed, TrustedProxies::from_env(env)?))
    }

    /// Whether `ip` (the client, as [`TrustedProxies`] works it out) may use admin routes.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = service_runtime::client_ip::canonical(ip);
        self.allowed.iter().any(|net| net.contains(&ip))
    }

    fn client_ip(&self, req: &ServiceRequest) -> Option<IpAddr> {
        self.proxies
            .client_ip(req.headers(), req.peer_addr().map(|a| a.ip()))
    }
}

/// An `/admin/**` route's guard: the client address (by [`TrustedProxies`]) inside
/// `ADMIN_ALLOWED_CIDRS` ([`AdminGuard`], registered as `web::Data`), then a member access
/// token ([`Verifier`], registered as `web::Data`) whose role is ADMIN. 403 from outside the
/// allowlist (whatever the token), 401 without a valid token, 403 for a non-admin. The
/// member goes into the request's extensions as [`Authenticated`].
#[derive(Debug, Clone, Copy)]
pub struct RequireAdmin;

impl Check for RequireAdmin {
    async fn check(&self, req: &ServiceRequest) -> Result<(), HttpError> {
        let guard = req
            .app_data::<web::Data<AdminGuard>>()
            .ok_or_else(|| HttpError::internal(&"no AdminGuard registered as app data"))?;
        let ip = guard.client_ip(req);
        if !ip.is_some_and(|ip| guard.allows(ip)) {
            tracing::warn!(client = ?ip, path = req.path(), "admin request from outside ADMIN_ALLOWED_CIDRS");
            return Err(HttpError::forbidden(
                "admin routes are not open to this address",
            ));
        }
        let token = bearer_token(req.headers())?.ok_or(AuthError::Missing)?;
        let verifier = req
            .app_data::<web::Data<Verifier>>()
            .ok_or_else(|| HttpError::internal(&"no Verifier registered as app data"))?;
        let member = verifier.verify(&token).await?;
        if member.role != MemberRole::Admin {
            tracing::warn!(
                member = member.member_id,
                path = req.path(),
                "admin route refused: not an ADMIN"
            );
            return Err(HttpError::forbidden("this route needs the ADMIN role"));
        }
        tracing::info!(member = member.member_id, method = %req.method(), path = req.path(), "admin request");
        req.extensions_mut().insert(member);
        Ok(())
    }
}

transform!(RequireAdmin);

/// The admin of an `/admin/**` request, once [`RequireAdmin`] let it through.
pub fn admin_member(req: &actix_web::HttpRequest) -> Option<Authenticated> {
    req.extensions().get::<Authenticated>().cloned()
}
