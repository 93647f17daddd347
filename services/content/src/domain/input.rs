//! Limits and validation for what members write.

pub const TITLE_MAX: usize = 200;
pub const BODY_MAX: usize = 10_000;
pub const COMMENT_MAX: usize = 2_000;
pub const IMAGES_MAX: usize = 10;
pub const IMAGE_ID_MAX: usize = 64;
pub const IDEMPOTENCY_KEY_MAX: usize = 255;

fn text(raw: &str, max: usize, what: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    let chars = trimmed.chars().count();
    if chars > max {
        return Err(format!("{what} is {chars} characters; the limit is {max}"));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(format!("{what} must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

pub fn post_body(raw: &str) -> Result<String, String> {
    text(raw, BODY_MAX, "the body")
}

/// An optional title: absent or blank means none.
pub fn title(raw: Option<&str>) -> Result<Option<String>, String> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => text(t, TITLE_MAX, "the title").map(Some),
    }
}

pub fn comment_body(raw: &str) -> Result<String, String> {
    text(raw, COMMENT_MAX, "the comment")
}

/// Image ids from the image service: up to 10, each `[A-Za-z0-9_-]{1,64}`, no repeats.
pub fn image_ids(raw: &[String]) -> Result<Vec<String>, String> {
    if raw.len() > IMAGES_MAX {
        return Err(format!("at most {IMAGES_MAX} images per post"));
    }
    let mut seen = std::collections::HashSet::new();
    for id in raw {
        let valid = !id.is_empty()
            && id.len() <= IMAGE_ID_MAX
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(format!(
                "`{}` is not an image id",
                id.chars().take(70).collect::<String>()
            ));
        }
        if !seen.insert(id) {
            return Err(format!("image `{id}` is listed twice"));
        }
    }
    Ok(raw.to_vec())
}

/// An `Idempotency-Key` header value: 1–255 visible ASCII characters.
pub fn idempotency_key(raw: &str) -> Result<String, String> {
    let valid = !raw.is_empty()
        && raw.len() <= IDEMPOTENCY_KEY_MAX
        && raw.bytes().all(|b| b.is_ascii_graphic());
    if valid {
        Ok(raw.to_owned())
    } else {
        Err(format!(
            "must be 1-{IDEMPOTENCY_KEY_MAX} visible ASCII characters"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_trimmed_counted_in_characters_and_bounded() {
        assert_eq!(post_body("  안녕  "), Ok("안녕".into()));
        assert!(post_body("   ").is_err());
        assert!(post_body(&"가".repeat(BODY_MAX)).is_ok());
        let err = post_body(&"가".repeat(BODY_MAX + 1)).expect_err("over the limit");
        assert!(err.contains("10000"), "{err}");
        assert!(post_body("bell\u{7}").is_err());
        assert!(post_body("line\nbreak").is_ok());
    }

    #[test]
    fn titles_are_optional_and_bounded() {
        assert_eq!(title(None), Ok(None));
        assert_eq!(title(Some("  ")), Ok(None));
        assert!(title(Some(&"t".repeat(TITLE_MAX + 1))).is_err());
    }

    #[test]
    fn image_ids_are_checked() {
        assert!(image_ids(&["img_1".into(), "img-2".into()]).is_ok());
        assert!(image_ids(&["../x".into()]).is_err());
        assert!(image_ids(&["a".into(), "a".into()]).is_err());
        assert!(image_ids(&vec!["a".to_owned(); 11]).is_err());
    }

    #[test]
    fn idempotency_keys_are_visible_ascii() {
        assert!(idempotency_key("5f1c-retry-1").is_ok());
        assert!(idempotency_key("").is_err());
        assert!(idempotency_key("has space").is_err());
        assert!(idempotency_key(&"k".repeat(256)).is_err());
    }
}
