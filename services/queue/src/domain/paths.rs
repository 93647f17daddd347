//! Path rules: `[METHOD ]PATTERN`, where a pattern segment `*` matches one path segment and
//! a final `**` matches any number (zero included). Public paths, protected routes and
//! rate-limit rules are all written this way, e.g. `GET /api/v1/auth/oauth/*/callback`.

use std::fmt;

/// One rule of a path list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRule {
    /// `None` matches every method.
    method: Option<String>,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    One,
    Rest,
}

impl PathRule {
    /// Parses `[METHOD ]PATTERN`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let (method, pattern) = match raw.split_once(char::is_whitespace) {
            Some((method, pattern)) => (Some(method.trim()), pattern.trim()),
            None => (None, raw),
        };
        let method = match method {
            Some(m) if !m.is_empty() && m.chars().all(|c| c.is_ascii_alphabetic()) => {
                Some(m.to_ascii_uppercase())
            }
            Some(m) => return Err(format!("`{m}` is not an HTTP method")),
            None => None,
        };
        if !pattern.starts_with('/') {
            return Err(format!("`{pattern}` must start with `/`"));
        }
        let parts: Vec<&str> = pattern
            .trim_start_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            segments.push(match *part {
                "**" if i + 1 == parts.len() => Segment::Rest,
                "**" => return Err(format!("`**` may only end a pattern: `{pattern}`")),
                "*" => Segment::One,
                literal if literal.contains('*') => {
                    return Err(format!("`{literal}`: `*` must be a whole segment"));
                }
                literal => Segment::Literal(literal.to_owned()),
            });
        }
        Ok(Self { method, segments })
    }

    /// Parses a comma-separated list (empty entries are skipped).
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Self::parse)
            .collect()
    }

    /// Methods are case-sensitive (RFC 9110 §9.1); a `GET` rule also covers `HEAD`, which is
    /// a GET without the body.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        if let Some(m) = &self.method
            && m != method
            && !(m == "GET" && method == "HEAD")
        {
            return false;
        }
        let mut parts = path.split('/').filter(|s| !s.is_empty());
        for segment in &self.segments {
            match segment {
                Segment::Rest => return true,
                Segment::One => {
                    if parts.next().is_none() {
                        return false;
                    }
                }
                Segment::Literal(lit) => {
                    if parts.next() != Some(lit.as_str()) {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }
}

impl fmt::Display for PathRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(m) = &self.method {
            write!(f, "{m} ")?;
        }
        if self.segments.is_empty() {
            return f.write_str("/");
        }
        for s in &self.segments {
            match s {
                Segment::Literal(l) => write!(f, "/{l}")?,
                Segment::One => f.write_str("/*")?,
                Segment::Rest => f.write_str("/**")?,
            }
        }
        Ok(())
    }
}

/// Any rule of `rules` matches.
pub fn any_matches(rules: &[PathRule], method: &str, path: &str) -> bool {
    rules.iter().any(|r| r.matches(method, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> PathRule {
        PathRule::parse(s).expect("valid rule")
    }

    #[test]
    fn literal_paths_match_exactly_and_ignore_trailing_slashes() {
        let r = rule("POST /api/v1/auth/login");
        assert!(r.matches("POST", "/api/v1/auth/login"));
        assert!(r.matches("POST", "/api/v1/auth/login/"));
        assert!(!r.matches("post", "/api/v1/auth/login"));
        assert!(!r.matches("GET", "/api/v1/auth/login"));
        assert!(!r.matches("POST", "/api/v1/auth/login/x"));
        assert!(!r.matches("POST", "/api/v1/auth"));
    }

    #[test]
    fn one_star_is_one_segment_and_two_stars_the_rest() {
        let r = rule("GET /api/v1/auth/oauth/*/callback");
        assert!(r.matches("GET", "/api/v1/auth/oauth/google/callback"));
        assert!(!r.matches("GET", "/api/v1/auth/oauth/callback"));
        let r = rule("/api/v1/posts/**");
        assert!(r.matches("DELETE", "/api/v1/posts"));
        assert!(r.matches("GET", "/api/v1/posts/1/comments"));
        assert!(!r.matches("GET", "/api/v1/postsx"));
    }

    #[test]
    fn a_get_rule_covers_head_and_nothing_else() {
        let r = rule("GET /api/v1/posts/**");
        assert!(r.matches("HEAD", "/api/v1/posts/1"));
        assert!(!r.matches("OPTIONS", "/api/v1/posts/1"));
        assert!(!rule("POST /a").matches("HEAD", "/a"));
    }

    #[test]
    fn malformed_rules_are_refused() {
        assert!(PathRule::parse("api/v1").is_err());
        assert!(PathRule::parse("/api/**/x").is_err());
        assert!(PathRule::parse("/api/v*").is_err());
        assert!(PathRule::parse("G3T /api").is_err());
        assert_eq!(PathRule::parse_list(" , ").expect("empty"), vec![]);
    }

    #[test]
    fn rules_print_as_written() {
        assert_eq!(rule("get /a/*/b/**").to_string(), "GET /a/*/b/**");
    }
}
