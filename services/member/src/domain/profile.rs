//! Input that becomes a member's data, parsed into types whose constructors validate.

use service_runtime::HttpError;

pub const EMAIL_MAX: usize = 254;
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;
pub const NICKNAME_MIN: usize = 2;
pub const NICKNAME_MAX: usize = 30;
pub const BIO_MAX: usize = 500;
pub const IMAGE_ID_MAX: usize = 64;

/// Collects field errors so a client sees every problem at once.
#[derive(Default)]
pub struct FieldErrors(Vec<(&'static str, String)>);

impl FieldErrors {
    pub fn check<T>(&mut self, field: &'static str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(message) => {
                self.0.push((field, message));
                None
            }
        }
    }

    /// 422 with every field error, or `Ok` if there were none.
    pub fn finish(self) -> Result<(), HttpError> {
        if self.0.is_empty() {
            return Ok(());
        }
        let mut err = HttpError::validation("some fields are invalid");
        for (field, message) in self.0 {
            err = err.with_field(field, message);
        }
        Err(err)
    }
}

/// A normalised email: trimmed, lower-case, `local@domain.tld`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err("is required".into());
        }
        if email.len() > EMAIL_MAX {
            return Err(format!("must be at most {EMAIL_MAX} characters"));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err("must be an email address".into());
        };
        let valid = !local.is_empty()
            && local.len() <= 64
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && domain.contains('.')
            && !domain.contains("..")
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && !domain.contains('@')
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        if !valid {
            return Err("must be an email address".into());
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }
}

/// A password that meets the policy (length, in characters; NIST 800-63B: no composition rules).
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str, email: Option<&Email>) -> Result<Self, String> {
        let chars = raw.chars().count();
        if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&chars) {
            return Err(format!(
                "must be between {PASSWORD_MIN} and {PASSWORD_MAX} characters"
            ));
        }
        if raw.trim().is_empty() {
            return Err("must not be only whitespace".into());
        }
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        if email.is_some_and(|e| {
            raw.to_lowercase() == e.as_str() || raw.to_lowercase() == e.local_part()
        }) {
            return Err("must not be your email address".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A display name: trimmed, 2–30 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nickname(String);

impl Nickname {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let nickname = raw.trim();
        let chars = nickname.chars().count();
        if !(NICKNAME_MIN..=NICKNAME_MAX).contains(&chars) {
            return Err(format!(
                "must be between {NICKNAME_MIN} and {NICKNAME_MAX} characters"
            ));
        }
        if nickname.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(nickname.to_owned()))
    }

    /// A usable nickname from anything (provider names, email local parts).
    pub fn coerce(raw: &str) -> Self {
        let cleaned: String = raw
            .chars()
            .filter(|c| !c.is_control())
            .take(NICKNAME_MAX)
            .collect();
        Self::parse(&cleaned).unwrap_or_else(|_| {
            Self(format!(
                "member-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ))
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub fn bio(raw: &str) -> Result<String, String> {
    if raw.chars().count() > BIO_MAX {
        return Err(format!("must be at most {BIO_MAX} characters"));
    }
    Ok(raw.trim().to_owned())
}

pub fn image_id(raw: &str) -> Result<String, String> {
    let valid = !raw.is_empty()
        && raw.len() <= IMAGE_ID_MAX
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(raw.to_owned())
    } else {
        Err(format!(
            "must be an image id (1-{IMAGE_ID_MAX} of [A-Za-z0-9_-])"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").map(|e| e.0),
            Ok("ann@example.com".into())
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "ann@.example.com",
            "ann@example..com",
            "ann@@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn passwords_follow_the_length_policy_in_characters() {
        assert!(Password::parse("short", None).is_err());
        assert!(
            Password::parse("비밀번호비밀번호", None).is_ok(),
            "8 Hangul characters"
        );
        assert!(Password::parse(&"x".repeat(129), None).is_err());
        assert!(Password::parse("        ", None).is_err());
        let email = Email::parse("someone@example.com").ok();
        assert!(Password::parse("someone@example.com", email.as_ref()).is_err());
        assert!(Password::parse("correct horse battery", email.as_ref()).is_ok());
    }

    #[test]
    fn nicknames_are_trimmed_and_bounded() {
        assert_eq!(
            Nickname::parse("  데일리  ").map(|n| n.0),
            Ok("데일리".into())
        );
        assert!(Nickname::parse("a").is_err());
        assert!(Nickname::parse(&"n".repeat(31)).is_err());
        assert!(Nickname::parse("bad\u{0007}name").is_err());
        assert!(Nickname::coerce("x").as_str().starts_with("member-"));
    }
}
