//! What the image service publishes on `image-events-yyyyMMdd` (keyed `member:{owner_id}`,
//! so one member's uploads and deletions stay in order): the payloads of IMAGE_UPLOAD and
//! IMAGE_DELETE. The envelope's `actor_id` is the owner and `subject_id` the image id.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What an image is for. A profile image can be replaced in place (`PUT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImagePurpose {
    Profile,
    Post,
}

impl ImagePurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            ImagePurpose::Profile => "profile",
            ImagePurpose::Post => "post",
        }
    }
}

impl std::str::FromStr for ImagePurpose {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "profile" => Ok(ImagePurpose::Profile),
            "post" => Ok(ImagePurpose::Post),
            other => Err(format!("`{other}` is not one of profile, post")),
        }
    }
}

/// IMAGE_UPLOAD: a new image is stored and served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageUploaded {
    pub image_id: i64,
    pub owner_id: i64,
    pub purpose: ImagePurpose,
    /// The served original's media type (`image/jpeg` or `image/png`).
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    /// The image this one replaced (`PUT` of a profile image), deleted in the same change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// IMAGE_DELETE: the image answers 404 from now on; references to it should be dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageDeleted {
    pub image_id: i64,
    pub owner_id: i64,
    pub purpose: ImagePurpose,
    /// Set when a `PUT` replaced the image: references can move to this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purpose_round_trips_as_snake_case() {
        assert_eq!(
            serde_json::to_value(ImagePurpose::Profile).expect("serialise"),
            "profile"
        );
        assert_eq!("post".parse::<ImagePurpose>(), Ok(ImagePurpose::Post));
        assert!("avatar".parse::<ImagePurpose>().is_err());
    }

    #[test]
    fn deleted_omits_replaced_by_when_absent() {
        let json = serde_json::to_value(ImageDeleted {
            image_id: 1,
            owner_id: 2,
            purpose: ImagePurpose::Post,
            replaced_by: None,
        })
        .expect("serialise");
        assert!(json.get("replaced_by").is_none(), "{json}");
    }
}
