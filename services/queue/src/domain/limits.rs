//! Per-path rate-limit rules (seed 000: login 10/min per IP, other APIs 100/min), written
//! `[METHOD ]PATTERN=MAX/WINDOW@KEY`, e.g. `POST /api/v1/auth/login=10/60s@ip`. The first
//! rule that matches a request applies; `@member` counts per authenticated member and falls
//! back to the client IP for anonymous requests.

use std::time::Duration;

use crate::domain::paths::PathRule;

/// The seed's limits.
pub const DEFAULT_RULES: &str = "POST /api/v1/auth/login=10/60s@ip, /api/v1/**=100/60s@member";

/// Who a rule counts requests of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKey {
    Ip,
    Member,
}

impl LimitKey {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKey::Ip => "ip",
            LimitKey::Member => "member",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitRule {
    /// Stable across replicas with the same configuration: names the Redis key.
    pub name: String,
    pub path: PathRule,
    pub max: u32,
    pub window: Duration,
    pub key: LimitKey,
}

impl LimitRule {
    pub fn parse(index: usize, raw: &str) -> Result<Self, String> {
        let (path, limit) = raw
            .rsplit_once('=')
            .ok_or_else(|| format!("`{raw}`: expected `[METHOD ]PATTERN=MAX/WINDOW@KEY`"))?;
        let (rate, key) = limit
            .split_once('@')
            .ok_or_else(|| format!("`{raw}`: missing `@ip` or `@member`"))?;
        let key = match key.trim() {
            "ip" => LimitKey::Ip,
            "member" => LimitKey::Member,
            other => return Err(format!("`{other}`: the key must be `ip` or `member`")),
        };
        let (max, window) = rate
            .split_once('/')
            .ok_or_else(|| format!("`{rate}`: expected MAX/WINDOW, e.g. 100/60s"))?;
        let max: u32 = max
            .trim()
            .parse()
            .map_err(|_| format!("`{max}` is not a whole number"))?;
        if max == 0 {
            return Err(format!("`{raw}`: the maximum must be at least 1"));
        }
        let window = parse_window(window.trim())?;
        Ok(Self {
            name: format!("gw{index}"),
            path: PathRule::parse(path)?,
            max,
            window,
            key,
        })
    }

    /// A comma-separated list; an empty list turns rate limiting off.
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .enumerate()
            .map(|(i, r)| Self::parse(i, r))
            .collect()
    }

    /// The rule for a request, with its position in the list: the first that matches.
    pub fn find<'a>(rules: &'a [Self], method: &str, path: &str) -> Option<(usize, &'a Self)> {
        rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.path.matches(method, path))
    }
}

/// `60s`, `1m`, `1h` or bare seconds.
fn parse_window(raw: &str) -> Result<Duration, String> {
    let (digits, unit) = match raw.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => raw.split_at(i),
        None => (raw, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{raw}` is not a window such as 60s or 1m"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("`{raw}`: the window unit must be s, m or h")),
    };
    if secs == 0 {
        return Err(format!("`{raw}`: the window must be at least 1s"));
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_rules_are_the_seeds() {
        let rules = LimitRule::parse_list(DEFAULT_RULES).expect("valid");
        let (_, login) = LimitRule::find(&rules, "POST", "/api/v1/auth/login").expect("login");
        assert_eq!((login.max, login.key), (10, LimitKey::Ip));
        assert_eq!(login.window, Duration::from_secs(60));
        let (index, api) = LimitRule::find(&rules, "GET", "/api/v1/posts/1").expect("api");
        assert_eq!(
            (index, api.max, api.key, api.name.as_str()),
            (1, 100, LimitKey::Member, "gw1")
        );
        assert!(LimitRule::find(&rules, "GET", "/health/live").is_none());
    }

    #[test]
    fn windows_take_units() {
        let r = LimitRule::parse(0, "/a=5/2m@ip").expect("valid");
        assert_eq!(r.window, Duration::from_secs(120));
        assert!(LimitRule::parse(0, "/a=5/0s@ip").is_err());
        assert!(LimitRule::parse(0, "/a=0/1s@ip").is_err());
        assert!(LimitRule::parse(0, "/a=5/1d@ip").is_err());
        assert!(LimitRule::parse(0, "/a=5/1s@everyone").is_err());
        assert!(LimitRule::parse(0, "/a 5/1s@ip").is_err());
    }
}
