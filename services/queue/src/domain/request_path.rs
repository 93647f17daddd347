//! The one reading of a request path the whole gateway uses. Every decision at the edge
//! (public path? which rate-limit rule? protected? which route?) and the upstream URL are
//! made from the same string, and that string must mean the same thing to every parser
//! behind us — the URL library that builds the upstream request, actix's router in the
//! service, a proxy in between.
//!
//! So the edge accepts only paths that are already canonical and refuses the rest with 400,
//! rather than guessing what a downstream would make of them:
//!
//! - dot segments (`.`, `..`) and segments ending in a dot (`login.`);
//! - empty segments (`//`, and a trailing `/`);
//! - backslashes, `;` (matrix parameters), control characters, raw spaces and non-ASCII;
//! - percent-encodings that can be read two ways: any unreserved character (`%2e`, `%61`),
//!   `/`, `\`, `%` (double encoding: `%252e`), `;`, controls, space and every non-ASCII
//!   byte (overlong UTF-8 such as `%c0%ae`, full-width dots);
//! - a malformed escape (`%`, `%zz`), and paths or segments beyond the limits below.
//!
//! What passes is forwarded byte for byte: the upstream URL is built from it and checked to
//! carry exactly it (see `proxy`).

use std::fmt;

/// Longest path accepted (414 beyond), and most segments.
pub const MAX_PATH_BYTES: usize = 2048;
pub const MAX_SEGMENTS: usize = 32;

/// Why a path was refused; `Display` is the message the client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathRefusal {
    TooLong,
    NotAbsolute,
    TooManySegments,
    EmptySegment,
    DotSegment,
    TrailingDot,
    Character(char),
    NonAscii,
    MalformedEscape,
    AmbiguousEscape(String),
    /// Passed the checks, yet the upstream URL would not carry it unchanged (a bug to fix).
    Unforwardable,
}

impl PathRefusal {
    /// Whether the answer is 414 rather than 400.
    pub fn too_long(&self) -> bool {
        matches!(self, PathRefusal::TooLong)
    }
}

impl fmt::Display for PathRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathRefusal::TooLong => write!(f, "the path is longer than {MAX_PATH_BYTES} bytes"),
            PathRefusal::NotAbsolute => f.write_str("the path must start with `/`"),
            PathRefusal::TooManySegments => {
                write!(f, "the path has more than {MAX_SEGMENTS} segments")
            }
            PathRefusal::EmptySegment => {
                f.write_str("the path has an empty segment (`//` or a trailing `/`)")
            }
            PathRefusal::DotSegment => f.write_str("the path has a `.` or `..` segment"),
            PathRefusal::TrailingDot => f.write_str("a path segment ends with `.`"),
            PathRefusal::Character(c) => write!(f, "the path contains {c:?}"),
            PathRefusal::NonAscii => f.write_str("the path contains non-ASCII characters"),
            PathRefusal::MalformedEscape => {
                f.write_str("the path has a `%` not followed by two hex digits")
            }
            PathRefusal::AmbiguousEscape(escape) => write!(
                f,
                "the path encodes a character that must be written as itself or not at all ({escape})"
            ),
            PathRefusal::Unforwardable => f.write_str("the path cannot be forwarded unchanged"),
        }
    }
}

/// RFC 3986 unreserved: encoding one of these means the same as not encoding it, so a
/// parser may or may not decode it — two readings.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Characters that may appear in a segment as themselves (RFC 3986 `pchar` without `%`, and
/// without `;`, which some servers read as the start of path parameters).
fn is_plain(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'=' | b':' | b'@'
        )
}

/// Escapes that stand for a delimiter as data (`%3A`, `%40`, `%3F`, …): one reading only.
fn escape_allowed(decoded: u8) -> bool {
    decoded.is_ascii_graphic()
        && !is_unreserved(decoded)
        && !matches!(decoded, b'/' | b'\\' | b'%' | b';')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Checks that `path` (the request target's path, without the query) is canonical.
pub fn check(path: &str) -> Result<(), PathRefusal> {
    let bytes = path.as_bytes();
    if bytes.len() > MAX_PATH_BYTES {
        return Err(PathRefusal::TooLong);
    }
    if bytes.first() != Some(&b'/') {
        return Err(PathRefusal::NotAbsolute);
    }
    if path == "/" {
        return Ok(());
    }
    let mut segments = 0;
    for segment in path[1..].split('/') {
        segments += 1;
        if segments > MAX_SEGMENTS {
            return Err(PathRefusal::TooManySegments);
        }
        check_segment(segment)?;
    }
    Ok(())
}

fn check_segment(segment: &str) -> Result<(), PathRefusal> {
    match segment {
        "" => return Err(PathRefusal::EmptySegment),
        "." | ".." => return Err(PathRefusal::DotSegment),
        _ if segment.ends_with('.') => return Err(PathRefusal::TrailingDot),
        _ => {}
    }
    let bytes = segment.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(PathRefusal::MalformedEscape);
            };
            let decoded = hi << 4 | lo;
            if !escape_allowed(decoded) {
                return Err(PathRefusal::AmbiguousEscape(segment[i..i + 3].to_owned()));
            }
            i += 3;
            continue;
        }
        if !b.is_ascii() {
            return Err(PathRefusal::NonAscii);
        }
        if !is_plain(b) {
            return Err(PathRefusal::Character(char::from(b)));
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn canonical_api_paths_pass() {
        for path in [
            "/",
            "/api/v1/posts",
            "/api/v1/posts/7/comments",
            "/api/v1/auth/oauth/google/callback",
            "/api/v1/members/me",
            "/api/v1/images/5707423480594472/thumbnail",
            "/api/v1/x/a:b@c!$&'()*+,=",
            "/api/v1/x/%3A%40%3F%23%5B%5D",
            "/api/v1/x/v1.2",
            "/api/v1/x/.hidden",
        ] {
            assert_eq!(check(path), Ok(()), "{path}");
        }
    }

    /// Every spelling a parser behind us could read as another path.
    #[test]
    fn every_spelling_that_can_be_read_two_ways_is_refused() {
        let refused = [
            // dot segments, raw and percent-encoded in every case and depth
            "/api/v1/posts/../../../internal/posts",
            "/api/v1/posts/./1",
            "/api/v1/auth/./login",
            "/api/v1/posts/..",
            "/api/v1/posts/%2e%2e/%2e%2e/internal",
            "/api/v1/posts/%2E%2E/internal",
            "/api/v1/posts/.%2e/internal",
            "/api/v1/posts/%2e./internal",
            "/api/v1/posts/%2e/1",
            "/api/v1/posts/%252e%252e/internal",
            "/api/v1/posts/%25252e%25252e/internal",
            // slashes and backslashes, raw and encoded
            "/api/v1/posts/..%2finternal",
            "/api/v1/posts/..%2Finternal",
            "/api/v1/posts/%2f%2finternal",
            "/api/v1/posts/..\\..\\internal",
            "/api/v1/auth/oauth/..\\..\\..\\internal/follows",
            "/api/v1/posts/..%5c..%5cinternal",
            "/api/v1/posts/%5C",
            "/api/v1/posts/%255c",
            // empty segments and trailing slashes
            "/api/v1//posts",
            "//api/v1/posts",
            "/api/v1/posts/",
            "/api/v1/auth/login/",
            // matrix parameters
            "/api/v1/auth/login;x=1",
            "/api/v1/posts/..;/internal",
            "/api/v1/posts/%3b/x",
            // trailing dots
            "/api/v1/auth/login.",
            "/api/v1/posts/1...",
            // encoded unreserved characters (a parser may decode them, or not)
            "/api/v1/%61uth/login",
            "/%61pi/v1/internal",
            "/api/v1/auth/log%69n",
            "/api/v1/posts/%7e",
            // overlong UTF-8 dots, full-width dots, other non-ASCII
            "/api/v1/posts/%c0%ae%c0%ae/internal",
            "/api/v1/posts/%e0%80%ae",
            "/api/v1/posts/%ef%bc%8e%ef%bc%8e/internal",
            "/api/v1/posts/\u{ff0e}\u{ff0e}/internal",
            "/api/v1/posts/caf\u{e9}",
            // controls, NUL, spaces, malformed escapes
            "/api/v1/posts/%00",
            "/api/v1/posts/%0a",
            "/api/v1/posts/%20",
            "/api/v1/posts/a b",
            "/api/v1/posts/\t",
            "/api/v1/posts/%",
            "/api/v1/posts/%2",
            "/api/v1/posts/%zz",
            // characters outside pchar
            "/api/v1/posts/<script>",
            "/api/v1/posts/\"",
            "/api/v1/posts/{id}",
            "/api/v1/posts/a|b",
            "/api/v1/posts/`",
            "/api/v1/posts/^",
            // not a path
            "api/v1/posts",
            "",
        ];
        for path in refused {
            assert!(check(path).is_err(), "accepted {path:?}");
        }
    }

    #[test]
    fn oversized_paths_are_414_and_deep_ones_400() {
        let long = format!("/api/v1/{}", "a".repeat(MAX_PATH_BYTES));
        assert!(check(&long).unwrap_err().too_long());
        let deep = "/a".repeat(MAX_SEGMENTS + 1);
        assert_eq!(check(&deep), Err(PathRefusal::TooManySegments));
        assert_eq!(check(&"/a".repeat(MAX_SEGMENTS)), Ok(()));
    }

    #[test]
    fn refusals_say_what_is_wrong_without_echoing_the_whole_path() {
        let message = check("/api/v1/posts/%2e%2e/x").unwrap_err().to_string();
        assert!(message.contains("%2e"), "{message}");
        assert!(!message.contains("/api/v1/posts"), "{message}");
    }
}
