//! Deciding what an upload is from its bytes alone: the magic number says the format (never
//! the file name or the client's Content-Type), and a JPEG must carry its whole scan.

use image_codec::ImageFormat;

use super::jpeg;

/// The formats we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Jpeg,
    Png,
    Gif,
    WebP,
}

impl SourceFormat {
    pub fn mime(self) -> &'static str {
        match self {
            SourceFormat::Jpeg => "image/jpeg",
            SourceFormat::Png => "image/png",
            SourceFormat::Gif => "image/gif",
            SourceFormat::WebP => "image/webp",
        }
    }

    pub(crate) fn codec(self) -> ImageFormat {
        match self {
            SourceFormat::Jpeg => ImageFormat::Jpeg,
            SourceFormat::Png => ImageFormat::Png,
            SourceFormat::Gif => ImageFormat::Gif,
            SourceFormat::WebP => ImageFormat::WebP,
        }
    }

    /// Lossy sources keep a lossy original; the others keep a lossless one.
    pub fn is_lossy(self) -> bool {
        matches!(self, SourceFormat::Jpeg | SourceFormat::WebP)
    }
}

/// Why an upload is not stored. Each is the client's fault (a 4xx).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the file is not an image we accept (JPEG, PNG, WebP or GIF, decided from its bytes)")]
    NotAnImage,
    #[error("{0} images are not accepted; send JPEG, PNG, WebP or GIF")]
    UnsupportedFormat(String),
    #[error("the image is damaged or incomplete: {0}")]
    Corrupt(String),
    #[error(
        "the image is {width}x{height} pixels; at most {max_dimension} pixels per side and {max_pixels} pixels in total are accepted"
    )]
    TooManyPixels {
        width: u32,
        height: u32,
        max_dimension: u32,
        max_pixels: u64,
    },
}

/// The format of `bytes`, from its magic number.
pub fn sniff(bytes: &[u8]) -> Result<SourceFormat, Rejection> {
    let format = image_codec::guess_format(bytes).map_err(|_| Rejection::NotAnImage)?;
    let accepted = match format {
        ImageFormat::Jpeg => SourceFormat::Jpeg,
        ImageFormat::Png => SourceFormat::Png,
        ImageFormat::Gif => SourceFormat::Gif,
        ImageFormat::WebP => SourceFormat::WebP,
        other => return Err(Rejection::UnsupportedFormat(format!("{other:?}"))),
    };
    if accepted == SourceFormat::Jpeg && !jpeg::is_complete(bytes) {
        return Err(Rejection::Corrupt(
            "the JPEG ends before its end-of-image marker (truncated upload?)".into(),
        ));
    }
    Ok(accepted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::jpeg::tests::tiny_jpeg;

    #[test]
    fn the_bytes_decide_not_the_name() {
        assert_eq!(sniff(&tiny_jpeg()), Ok(SourceFormat::Jpeg));
        assert_eq!(
            sniff(b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
            Err(Rejection::NotAnImage)
        );
        assert_eq!(
            sniff(b"<!DOCTYPE html><html></html>"),
            Err(Rejection::NotAnImage)
        );
        assert_eq!(sniff(b""), Err(Rejection::NotAnImage));
        assert!(matches!(
            sniff(b"BM\0\0\0\0\0\0\0\0\0\0\0\0\0\0"),
            Err(Rejection::UnsupportedFormat(_))
        ));
    }
}
