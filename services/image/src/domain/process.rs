//! From accepted bytes to what we store: the header is read first and the pixel limits
//! checked before any pixel is decoded (a 50 000 × 50 000 PNG is a few hundred bytes that
//! would need 10 GB), then the image is decoded and turned upright by its EXIF orientation.
//! The stored original carries no metadata (GPS position, camera serial): an upright JPEG
//! keeps its compressed bytes with the metadata segments cut out; anything else is
//! re-encoded, and our encoders write pixels and the ICC colour profile, nothing else.
//! Runs on a blocking thread.

use std::io::Cursor;

use image_codec::codecs::jpeg::JpegEncoder;
use image_codec::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image_codec::metadata::Orientation;
use image_codec::{
    DynamicImage, ImageDecoder, ImageEncoder, ImageError, ImageReader, Limits, Rgb, RgbImage,
};

use super::jpeg;
use super::sniff::{Rejection, SourceFormat, sniff};

/// What an upload may be, and what we make of it.
#[derive(Debug, Clone)]
pub struct ProcessingLimits {
    /// Longest accepted side, in pixels.
    pub max_dimension: u32,
    /// Most accepted pixels (width × height).
    pub max_pixels: u64,
    /// The small thumbnail fits in a square of this side.
    pub thumbnail_px: u32,
    /// The medium size fits in a square of this side.
    pub medium_px: u32,
    /// JPEG quality of thumbnails (1-100).
    pub thumbnail_quality: u8,
    /// JPEG quality of a re-encoded lossy original (1-100).
    pub original_quality: u8,
}

/// One stored rendition.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
}

/// An accepted upload, ready to store.
#[derive(Debug, Clone)]
pub struct Processed {
    pub source: SourceFormat,
    /// Full size, upright, without metadata.
    pub original: Encoded,
    pub thumbnail: Encoded,
    pub medium: Encoded,
}

/// Validates and renders `bytes`; every failure is the upload's fault.
pub fn process(bytes: &[u8], limits: &ProcessingLimits) -> Result<Processed, Rejection> {
    let source = sniff(bytes)?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), source.codec());
    // Dimensions are checked below, where the error can name them; the allocation cap (room
    // for the decoded buffer at 16 bits per channel with alpha) backs that check up.
    let mut decoder_limits = Limits::default();
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8).max(1 << 20));
    reader.limits(decoder_limits);
    // Reads the header only.
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| rejection(e, limits, None))?;
    let (width, height) = decoder.dimensions();
    check_pixels(width, height, limits)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let icc = decoder.icc_profile().ok().flatten();
    let mut image = DynamicImage::from_decoder(decoder)
        .map_err(|e| rejection(e, limits, Some((width, height))))?;
    image.apply_orientation(orientation);

    let upright = orientation == Orientation::NoTransforms;
    let original = if source == SourceFormat::Jpeg && upright {
        // Already upright: the same JPEG minus its metadata, no generation loss, no encode.
        let bytes = jpeg::strip_metadata(bytes)
            .ok_or_else(|| Rejection::Corrupt("the JPEG structure is damaged".into()))?;
        Encoded {
            bytes,
            content_type: "image/jpeg",
            width: image.width(),
            height: image.height(),
        }
    } else if source.is_lossy() && !image.color().has_alpha() {
        encode_jpeg(&image, limits.original_quality, icc.as_deref())?
    } else {
        encode_png(&image, icc.as_deref())?
    };
    let medium = fit_within(flatten(image), limits.medium_px);
    let thumbnail = fit_within(medium.clone(), limits.thumbnail_px);
    Ok(Processed {
        source,
        original,
        medium: encode_jpeg(&medium, limits.thumbnail_quality, icc.as_deref())?,
        thumbnail: encode_jpeg(&thumbnail, limits.thumbnail_quality, icc.as_deref())?,
    })
}

fn check_pixels(width: u32, height: u32, limits: &ProcessingLimits) -> Result<(), Rejection> {
    let too_big = width == 0
        || height == 0
        || width > limits.max_dimension
        || height > limits.max_dimension
        || u64::from(width) * u64::from(height) > limits.max_pixels;
    if too_big {
        return Err(Rejection::TooManyPixels {
            width,
            height,
            max_dimension: limits.max_dimension,
            max_pixels: limits.max_pixels,
        });
    }
    Ok(())
}

fn rejection(err: ImageError, limits: &ProcessingLimits, size: Option<(u32, u32)>) -> Rejection {
    match err {
        ImageError::Limits(_) => {
            let (width, height) = size.unwrap_or((0, 0));
            Rejection::TooManyPixels {
                width,
                height,
                max_dimension: limits.max_dimension,
                max_pixels: limits.max_pixels,
            }
        }
        ImageError::Unsupported(e) => Rejection::UnsupportedFormat(e.to_string()),
        other => Rejection::Corrupt(other.to_string()),
    }
}

/// Transparent pixels over white, as 8-bit RGB: what JPEG renditions can hold. Takes the
/// image so an 8-bit RGB one is passed through without a copy.
fn flatten(image: DynamicImage) -> DynamicImage {
    if !image.color().has_alpha() {
        return DynamicImage::ImageRgb8(image.into_rgb8());
    }
    let rgba = image.to_rgba8();
    let flat = RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over_white = |c: u8| {
            let c = u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a));
            // At most 255 * 255 / 255: fits in u8.
            u8::try_from(c / 255).unwrap_or(u8::MAX)
        };
        Rgb([over_white(r), over_white(g), over_white(b)])
    });
    DynamicImage::ImageRgb8(flat)
}

/// Scaled down to fit a `side`-pixel square, aspect kept; never scaled up.
fn fit_within(image: DynamicImage, side: u32) -> DynamicImage {
    if image.width() <= side && image.height() <= side {
        image
    } else {
        image.thumbnail(side, side)
    }
}

fn encode_jpeg(
    image: &DynamicImage,
    quality: u8,
    icc: Option<&[u8]>,
) -> Result<Encoded, Rejection> {
    let image = match image {
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => image.clone(),
        other => DynamicImage::ImageRgb8(other.to_rgb8()),
    };
    let mut bytes = Vec::with_capacity(64 * 1024);
    let mut encoder = JpegEncoder::new_with_quality(&mut bytes, quality);
    if let Some(icc) = icc {
        // A profile the encoder cannot embed is dropped, not fatal.
        let _ = encoder.set_icc_profile(icc.to_vec());
    }
    image
        .write_with_encoder(encoder)
        .map_err(|e| Rejection::Corrupt(format!("cannot encode: {e}")))?;
    Ok(Encoded {
        bytes,
        content_type: "image/jpeg",
        width: image.width(),
        height: image.height(),
    })
}

fn encode_png(image: &DynamicImage, icc: Option<&[u8]>) -> Result<Encoded, Rejection> {
    let mut bytes = Vec::with_capacity(256 * 1024);
    let mut encoder =
        PngEncoder::new_with_quality(&mut bytes, CompressionType::Fast, PngFilter::Adaptive);
    if let Some(icc) = icc {
        let _ = encoder.set_icc_profile(icc.to_vec());
    }
    image
        .write_with_encoder(encoder)
        .map_err(|e| Rejection::Corrupt(format!("cannot encode: {e}")))?;
    Ok(Encoded {
        bytes,
        content_type: "image/png",
        width: image.width(),
        height: image.height(),
    })
}

// EXIF orientation, EXIF stripping and the pixel limit are tested through the API
// (`tests/images.rs`), with the same uploads a client sends.
#[cfg(test)]
mod tests {
    use image_codec::{ImageFormat, Rgba, RgbaImage};

    use super::*;

    fn limits() -> ProcessingLimits {
        ProcessingLimits {
            max_dimension: 4000,
            max_pixels: 4_000_000,
            thumbnail_px: 64,
            medium_px: 128,
            thumbnail_quality: 80,
            original_quality: 90,
        }
    }

    fn encode(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut out), format)
            .expect("encode");
        out
    }

    #[test]
    fn thumbnails_fit_their_square_and_never_grow() {
        let big = encode(
            DynamicImage::ImageRgb8(RgbImage::from_pixel(400, 200, Rgb([1, 2, 3]))),
            ImageFormat::Png,
        );
        let done = process(&big, &limits()).expect("accepted");
        assert_eq!(done.original.content_type, "image/png");
        assert_eq!((done.medium.width, done.medium.height), (128, 64));
        assert_eq!((done.thumbnail.width, done.thumbnail.height), (64, 32));
        let small = encode(
            DynamicImage::ImageRgb8(RgbImage::from_pixel(30, 10, Rgb([1, 2, 3]))),
            ImageFormat::Jpeg,
        );
        let done = process(&small, &limits()).expect("accepted");
        assert_eq!((done.thumbnail.width, done.thumbnail.height), (30, 10));
        assert_eq!(done.original.content_type, "image/jpeg");
    }

    #[test]
    fn an_upright_jpeg_keeps_its_pixels_exactly_and_loses_its_metadata() {
        use crate::domain::jpeg::tests::{tiny_jpeg, with_segment};
        let plain = tiny_jpeg();
        let upload = with_segment(&plain, 0xE1, b"Exif\0\0MM\0*\0\0\0\x08\0\0GPS");
        let done = process(&upload, &limits()).expect("accepted");
        assert!(!done.original.bytes.windows(4).any(|w| w == b"Exif"));
        let sent = image_codec::load_from_memory(&plain)
            .expect("decodes")
            .to_rgb8();
        let kept = image_codec::load_from_memory(&done.original.bytes)
            .expect("decodes")
            .to_rgb8();
        assert_eq!(sent, kept, "not re-encoded");
    }

    #[test]
    fn transparency_becomes_white_in_jpeg_renditions() {
        let clear = encode(
            DynamicImage::ImageRgba8(RgbaImage::from_pixel(8, 8, Rgba([0, 0, 0, 0]))),
            ImageFormat::Png,
        );
        let done = process(&clear, &limits()).expect("accepted");
        let thumb = image_codec::load_from_memory(&done.thumbnail.bytes)
            .expect("decodes")
            .to_rgb8();
        assert!(
            thumb.get_pixel(4, 4).0.iter().all(|&c| c > 245),
            "{:?}",
            thumb.get_pixel(4, 4)
        );
    }

    #[test]
    fn an_animated_gif_is_its_first_frame() {
        use image_codec::codecs::gif::GifEncoder;
        use image_codec::{Delay, Frame};
        let frame = |rgba: [u8; 4]| {
            Frame::from_parts(
                RgbaImage::from_pixel(10, 6, Rgba(rgba)),
                0,
                0,
                Delay::from_numer_denom_ms(100, 1),
            )
        };
        let mut gif = Vec::new();
        GifEncoder::new(&mut gif)
            .encode_frames([frame([0, 255, 0, 255]), frame([0, 0, 255, 255])])
            .expect("encode");
        let done = process(&gif, &limits()).expect("accepted");
        assert_eq!(done.source, SourceFormat::Gif);
        assert_eq!((done.original.width, done.original.height), (10, 6));
        let first = image_codec::load_from_memory(&done.original.bytes)
            .expect("decodes")
            .to_rgb8();
        assert_eq!(
            first.get_pixel(5, 3).0,
            [0, 255, 0],
            "the first (green) frame"
        );
    }
}
