//! Deciding what an upload is from its bytes alone: the magic number says the format (never
//! the file name or the client's Content-Type), and a JPEG must carry its whole scan.

use image_codec::ImageFormat;

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
    if accepted == SourceFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(Rejection::Corrupt(
            "the JPEG ends before its end-of-image marker (truncated upload?)".into(),
        ));
    }
    Ok(accepted)
}

/// Walks the JPEG marker structure to its end-of-image marker. The decoder is lenient
/// (a truncated scan decodes with the missing part grey), so without this a cut-off
/// upload would be stored as a broken picture. Bytes after EOI (motion-photo trailers)
/// are allowed; an EOI inside an EXIF thumbnail does not count, as segments are skipped by
/// their length.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    const SOI: u8 = 0xD8;
    const EOI: u8 = 0xD9;
    const SOS: u8 = 0xDA;
    if bytes.len() < 4 || bytes[0] != 0xFF || bytes[1] != SOI {
        return false;
    }
    let mut i = 2;
    while i + 1 < bytes.len() {
        if bytes[i] != 0xFF {
            return false;
        }
        let marker = bytes[i + 1];
        match marker {
            // Fill bytes before a marker.
            0xFF => {
                i += 1;
                continue;
            }
            EOI => return true,
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => {
                i += 2;
                continue;
            }
            _ => {}
        }
        let Some(len) = bytes
            .get(i + 2..i + 4)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
        else {
            return false;
        };
        if len < 2 {
            return false;
        }
        i += 2 + len;
        if marker == SOS {
            // Entropy-coded data runs to the next marker that is not a stuffed 0xFF00 or a
            // restart marker.
            loop {
                match bytes.get(i..i + 2) {
                    None => return false,
                    Some([0xFF, next]) if *next != 0x00 && !(0xD0..=0xD7).contains(next) => break,
                    Some(_) => i += 1,
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_jpeg() -> Vec<u8> {
        let mut out = Vec::new();
        let img = image_codec::RgbImage::from_fn(32, 16, |x, y| {
            image_codec::Rgb([(x * 8) as u8, (y * 16) as u8, 128])
        });
        image_codec::DynamicImage::ImageRgb8(img)
            .write_to(&mut std::io::Cursor::new(&mut out), ImageFormat::Jpeg)
            .expect("encode");
        out
    }

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

    #[test]
    fn a_jpeg_cut_anywhere_is_incomplete() {
        let jpeg = tiny_jpeg();
        assert!(jpeg_is_complete(&jpeg));
        for cut in [3, 20, jpeg.len() / 2, jpeg.len() - 2] {
            assert!(!jpeg_is_complete(&jpeg[..cut]), "cut at {cut}");
        }
        let mut trailer = jpeg.clone();
        trailer.extend_from_slice(b"motion photo trailer");
        assert!(jpeg_is_complete(&trailer));
    }
}
