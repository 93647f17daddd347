//! The JPEG marker structure, walked segment by segment (lengths are followed, so an EOI
//! inside an embedded EXIF thumbnail does not end the file). Two uses: refusing a truncated
//! upload (the decoder is lenient and would paint a cut-off scan grey), and stripping
//! metadata without re-encoding when the picture is already upright.

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const APP0_JFIF: u8 = 0xE0;
const APP2: u8 = 0xE2;
const APP14_ADOBE: u8 = 0xEE;
const ICC_ID: &[u8] = b"ICC_PROFILE\0";

/// One marker segment: its marker and its bytes (marker, length, payload, and for SOS the
/// entropy-coded data after it).
struct Segment<'a> {
    marker: u8,
    bytes: &'a [u8],
}

/// The segments between SOI and EOI, or `None` if the file ends before EOI or is not JPEG.
/// Bytes after EOI (motion-photo trailers and the like) are not part of the result.
fn segments(bytes: &[u8]) -> Option<Vec<Segment<'_>>> {
    if bytes.len() < 4 || bytes[0] != 0xFF || bytes[1] != SOI {
        return None;
    }
    let mut out = Vec::new();
    let mut i = 2;
    while i + 1 < bytes.len() {
        if bytes[i] != 0xFF {
            return None;
        }
        let marker = bytes[i + 1];
        match marker {
            // Fill bytes before a marker.
            0xFF => {
                i += 1;
                continue;
            }
            EOI => return Some(out),
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => {
                out.push(Segment {
                    marker,
                    bytes: &bytes[i..i + 2],
                });
                i += 2;
                continue;
            }
            _ => {}
        }
        let len = bytes
            .get(i + 2..i + 4)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))?;
        if len < 2 {
            return None;
        }
        let start = i;
        i += 2 + len;
        if marker == SOS {
            // Entropy-coded data runs to the next marker that is not a stuffed 0xFF00 or a
            // restart marker.
            loop {
                match bytes.get(i..i + 2) {
                    None => return None,
                    Some([0xFF, next]) if *next != 0x00 && !(0xD0..=0xD7).contains(next) => break,
                    Some(_) => i += 1,
                }
            }
        }
        out.push(Segment {
            marker,
            bytes: bytes.get(start..i)?,
        });
    }
    None
}

/// The file reaches its end-of-image marker.
pub fn is_complete(bytes: &[u8]) -> bool {
    segments(bytes).is_some()
}

/// The same picture, bit for bit, without metadata: only JFIF (APP0), the ICC profile
/// (APP2 `ICC_PROFILE`), Adobe's colour transform (APP14) and the image segments are kept.
/// EXIF and XMP (APP1), IPTC (APP13), other APPn, comments and anything after EOI go.
/// `None` when the file is not a complete JPEG.
pub fn strip_metadata(bytes: &[u8]) -> Option<Vec<u8>> {
    let segments = segments(bytes)?;
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&[0xFF, SOI]);
    for segment in segments {
        let keep = match segment.marker {
            APP0_JFIF | APP14_ADOBE => true,
            APP2 => segment.bytes.get(4..4 + ICC_ID.len()) == Some(ICC_ID),
            0xE1..=0xEF | 0xFE => false,
            _ => true,
        };
        if keep {
            out.extend_from_slice(segment.bytes);
        }
    }
    out.extend_from_slice(&[0xFF, EOI]);
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use image_codec::{DynamicImage, ImageFormat, Rgb, RgbImage};

    use super::*;

    pub(crate) fn tiny_jpeg() -> Vec<u8> {
        let mut out = Vec::new();
        let img = RgbImage::from_fn(32, 16, |x, y| {
            Rgb([
                u8::try_from(x * 8).unwrap_or(0),
                u8::try_from(y * 16).unwrap_or(0),
                128,
            ])
        });
        DynamicImage::ImageRgb8(img)
            .write_to(&mut std::io::Cursor::new(&mut out), ImageFormat::Jpeg)
            .expect("encode");
        out
    }

    /// `jpeg` with `segment` (marker + payload) inserted after SOI.
    pub(crate) fn with_segment(jpeg: &[u8], marker: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, marker]);
        out.extend_from_slice(
            &u16::try_from(payload.len() + 2)
                .expect("small")
                .to_be_bytes(),
        );
        out.extend_from_slice(payload);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    #[test]
    fn a_jpeg_cut_anywhere_is_incomplete() {
        let jpeg = tiny_jpeg();
        assert!(is_complete(&jpeg));
        for cut in [3, 20, jpeg.len() / 2, jpeg.len() - 2] {
            assert!(!is_complete(&jpeg[..cut]), "cut at {cut}");
        }
        let mut trailer = jpeg.clone();
        trailer.extend_from_slice(b"motion photo trailer");
        assert!(is_complete(&trailer));
    }

    #[test]
    fn stripping_drops_metadata_and_keeps_the_pixels_and_the_colour_profile() {
        let plain = tiny_jpeg();
        let mut tagged = with_segment(&plain, 0xE1, b"Exif\0\0GPS-secret");
        tagged = with_segment(&tagged, 0xFE, b"camera serial 1234");
        tagged = with_segment(&tagged, APP2, b"ICC_PROFILE\0\x01\x01profile");
        tagged.extend_from_slice(b"trailer with a video");
        let stripped = strip_metadata(&tagged).expect("complete");
        for secret in [&b"GPS-secret"[..], b"serial", b"trailer"] {
            assert!(!stripped.windows(secret.len()).any(|w| w == secret));
        }
        assert!(stripped.windows(ICC_ID.len()).any(|w| w == ICC_ID));
        let before = image_codec::load_from_memory(&plain)
            .expect("decodes")
            .to_rgb8();
        let after = image_codec::load_from_memory(&stripped)
            .expect("decodes")
            .to_rgb8();
        assert_eq!(before, after, "bit-identical pixels");
        assert_eq!(strip_metadata(&tagged[..tagged.len() / 2]), None);
    }
}
