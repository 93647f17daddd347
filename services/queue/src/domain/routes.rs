//! The routing table: `/api/v1/**` by path prefix to the service that owns it. The longest
//! prefix wins, and a prefix only matches at a segment boundary (`/api/v1/posts` takes
//! `/api/v1/posts/7` but not `/api/v1/postsx`).

use std::time::Duration;

use serde::Serialize;

/// The seed's table (auth, members → member; posts, comments → content; …).
pub const DEFAULT_ROUTES: &str = "/api/v1/auth=member,/api/v1/members=member,\
/api/v1/posts=content,/api/v1/comments=content,/api/v1/timeline=timeline,\
/api/v1/images=image,/api/v1/search=search,/api/v1/activities=activity";

/// Every routed path lives under this prefix; the gateway's own paths are outside the table.
pub const API_PREFIX: &str = "/api/v1/";

/// One `PREFIX=TARGET` entry as written in `GATEWAY_ROUTES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub prefix: String,
    /// A service name (`member`, `content`, …) or an `http(s)://` base URL.
    pub target: String,
}

impl RouteSpec {
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|entry| {
                let (prefix, target) = entry
                    .split_once('=')
                    .ok_or_else(|| format!("`{entry}`: expected PREFIX=SERVICE or PREFIX=URL"))?;
                let prefix = prefix.trim().trim_end_matches('/').to_owned();
                if !format!("{prefix}/").starts_with(API_PREFIX) || prefix.len() < API_PREFIX.len()
                {
                    return Err(format!(
                        "`{prefix}`: a routed prefix must be under {API_PREFIX}"
                    ));
                }
                if prefix.contains('*') || prefix.contains('?') {
                    return Err(format!("`{prefix}`: a prefix is a plain path"));
                }
                let target = target.trim().to_owned();
                if target.is_empty() {
                    return Err(format!("`{entry}`: empty target"));
                }
                Ok(Self { prefix, target })
            })
            .collect()
    }
}

/// A resolved route.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Route {
    /// `member`, `content`, … or `custom` for a URL target.
    pub id: String,
    pub prefix: String,
    /// Where requests go: base URL; the request path and query are appended unchanged.
    #[schema(value_type = String)]
    #[serde(serialize_with = "as_str")]
    pub uri: url::Url,
    /// Time allowed for the downstream's response head (and between body chunks).
    #[serde(serialize_with = "as_millis", rename = "timeout_ms")]
    #[schema(value_type = u64)]
    pub timeout: Duration,
}

fn as_str<S: serde::Serializer>(u: &url::Url, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(u.as_str())
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Routes sorted longest prefix first.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    pub fn new(mut routes: Vec<Route>) -> Self {
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Self { routes }
    }

    pub fn find(&self, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| {
            path.strip_prefix(r.prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(id: &str, prefix: &str) -> Route {
        Route {
            id: id.into(),
            prefix: prefix.into(),
            uri: url::Url::parse("http://127.0.0.1:1").expect("url"),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_default_table_parses() {
        let specs = RouteSpec::parse_list(DEFAULT_ROUTES).expect("valid");
        assert_eq!(specs.len(), 8);
        assert_eq!(
            specs[0],
            RouteSpec {
                prefix: "/api/v1/auth".into(),
                target: "member".into()
            }
        );
    }

    #[test]
    fn prefixes_match_at_segment_boundaries_longest_first() {
        let table = RouteTable::new(vec![
            route("a", "/api/v1/posts"),
            route("b", "/api/v1/posts/special"),
        ]);
        assert_eq!(
            table.find("/api/v1/posts").map(|r| r.id.as_str()),
            Some("a")
        );
        assert_eq!(
            table
                .find("/api/v1/posts/7/comments")
                .map(|r| r.id.as_str()),
            Some("a")
        );
        assert_eq!(
            table.find("/api/v1/posts/special/1").map(|r| r.id.as_str()),
            Some("b")
        );
        assert!(table.find("/api/v1/postsx").is_none());
        assert!(table.find("/api/v1/queue/lineup").is_none());
    }

    #[test]
    fn prefixes_outside_the_api_are_refused() {
        assert!(RouteSpec::parse_list("/admin=member").is_err());
        assert!(RouteSpec::parse_list("/api/v1=member").is_err());
        assert!(RouteSpec::parse_list("/api/v1/x").is_err());
        assert!(RouteSpec::parse_list("/api/v1/x/*=member").is_err());
    }
}
