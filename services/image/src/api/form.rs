//! The upload form: `multipart/form-data` with a `file` part (the image) and a `purpose`
//! part (`profile` or `post`). The file is read into memory up to `IMAGE_MAX_BYTES` and no
//! further: a larger upload is refused as soon as it crosses the limit (or at once, when its
//! `Content-Length` already says so). The part's own Content-Type and file name are ignored.

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use bytes::{Bytes, BytesMut};
use contracts::error::codes;
use contracts::images::ImagePurpose;
use futures_util::StreamExt;
use service_runtime::HttpError;

use crate::error::{ImageError, Result, invalid};

/// Room for the form's boundaries, part headers and the purpose field.
const FORM_OVERHEAD_BYTES: usize = 16 * 1024;
/// Longest accepted `purpose` value.
const MAX_PURPOSE_BYTES: usize = 32;

pub const FILE_FIELD: &str = "file";
pub const PURPOSE_FIELD: &str = "purpose";

/// A parsed upload form.
#[derive(Debug)]
pub struct UploadForm {
    pub file: Bytes,
    pub purpose: Option<ImagePurpose>,
}

pub async fn read(
    req: &HttpRequest,
    payload: web::Payload,
    max_bytes: usize,
) -> Result<UploadForm> {
    let is_form = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    if !is_form {
        return Err(HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::UNSUPPORTED_MEDIA_TYPE,
            "send the image as multipart/form-data with a `file` part and a `purpose` part",
        )
        .into());
    }
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max_bytes.saturating_add(FORM_OVERHEAD_BYTES)) {
        return Err(ImageError::TooLarge(max_bytes));
    }

    let mut form = Multipart::new(req.headers(), payload);
    let mut file: Option<Bytes> = None;
    let mut purpose: Option<ImagePurpose> = None;
    while let Some(part) = form.next().await {
        let mut part = part.map_err(malformed)?;
        let name = part.name().unwrap_or_default().to_owned();
        let limit = match name.as_str() {
            FILE_FIELD if file.is_some() => {
                return Err(invalid(FILE_FIELD, "send one file per upload"));
            }
            FILE_FIELD => max_bytes,
            PURPOSE_FIELD => MAX_PURPOSE_BYTES,
            other => {
                return Err(invalid(
                    other,
                    format!(
                        "unknown part `{other}`; the form has `{FILE_FIELD}` and `{PURPOSE_FIELD}`"
                    ),
                ));
            }
        };
        let mut buf = BytesMut::new();
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(malformed)?;
            if buf.len() + chunk.len() > limit {
                return Err(if name == FILE_FIELD {
                    ImageError::TooLarge(max_bytes)
                } else {
                    invalid(&name, format!("at most {limit} bytes"))
                });
            }
            buf.extend_from_slice(&chunk);
        }
        if name == FILE_FIELD {
            if buf.is_empty() {
                return Err(invalid(FILE_FIELD, "the file is empty"));
            }
            file = Some(buf.freeze());
        } else {
            let text = std::str::from_utf8(&buf)
                .map_err(|_| invalid(PURPOSE_FIELD, "must be profile or post"))?;
            purpose = Some(
                text.trim()
                    .parse()
                    .map_err(|m: String| invalid(PURPOSE_FIELD, m))?,
            );
        }
    }
    let file = file.ok_or_else(|| invalid(FILE_FIELD, "required: the image as a file part"))?;
    Ok(UploadForm { file, purpose })
}

fn malformed(err: actix_multipart::MultipartError) -> ImageError {
    HttpError::bad_request(format!("the multipart body cannot be read: {err}")).into()
}
