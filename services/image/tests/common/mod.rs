//! image with a real member beside it (JWKS, blacklist) on the test servers, its own bucket
//! on the test S3-API server (moto), and builders for the uploads tests send.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Cursor;
use std::sync::Arc;

use contracts::auth::MemberRole;
use image_codec::{DynamicImage, ImageFormat, Rgb, RgbImage};
use member::domain::keys::KeyRing;
use reqwest::Response;
use sea_orm::ConnectionTrait;
use serde_json::Value;
use service_runtime::RunningService;
use test_harness::TestEnv;

/// The test S3-API server (`scripts/test-all` starts moto and exports it).
pub fn s3_endpoint() -> String {
    std::env::var("TEST_S3_ENDPOINT")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "http://127.0.0.1:19000".to_owned())
}

/// Creates `bucket` on `endpoint` (moto takes unsigned requests).
pub async fn create_bucket(endpoint: &str, bucket: &str) {
    let res = test_harness::http_client()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("no S3 server at {endpoint} ({e}); run scripts/test-all"));
    assert!(res.status().is_success(), "create bucket: {}", res.status());
}

/// `env` pointed at a fresh bucket of its own on the test S3 server.
pub async fn with_bucket(env: TestEnv) -> TestEnv {
    let endpoint = s3_endpoint();
    let bucket = format!("dft-{}", env.suffix());
    create_bucket(&endpoint, &bucket).await;
    // moto takes any keys; signing them exercises the path MinIO and S3 need.
    env.set("IMAGE_STORE", "s3")
        .set("S3_ENDPOINT", endpoint)
        .set("S3_BUCKET", bucket)
        .set("S3_ACCESS_KEY_ID", "test")
        .set("S3_SECRET_ACCESS_KEY", "test")
}

/// The service's own dependencies (no member): Postgres, Redis, Kafka, a bucket.
pub async fn image_env() -> TestEnv {
    with_bucket(TestEnv::new().postgres().await.redis().kafka()).await
}

pub struct Stack {
    pub member: RunningService,
    pub image: RunningService,
    pub env: TestEnv,
    pub base: String,
    pub client: reqwest::Client,
    keys: Arc<KeyRing>,
}

pub async fn spawn(overrides: &[(&str, &str)]) -> Stack {
    test_harness::install_crypto_provider();
    let member_env = TestEnv::new().postgres().await.redis().kafka();
    let member_config = member::Config::from_env(member_env.vars()).unwrap();
    let member_db = service_runtime::postgres::connect_lazy(&member_config.database).unwrap();
    let keys = Arc::new(KeyRing::new(
        member_db,
        &member_config.tokens.master_key,
        member_config.tokens.access_ttl,
        member_config.tokens.rotation,
    ));
    let member = member::start(member_config).await.unwrap();
    let mut env = image_env()
        .await
        // Share member's Redis namespace: the logout blacklist is read across services.
        .set(
            "REDIS_KEY_PREFIX",
            member_env.get("REDIS_KEY_PREFIX").unwrap(),
        )
        .set("MEMBER_URL", member.base_url());
    for (k, v) in overrides {
        env = env.set(k, *v);
    }
    let image = image::start(image::Config::from_env(env.vars()).unwrap())
        .await
        .unwrap();
    Stack {
        base: image.base_url(),
        member,
        image,
        env,
        client: test_harness::http_client(),
        keys,
    }
}

/// One part of a multipart form.
pub struct Part<'a> {
    pub name: &'a str,
    pub filename: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub data: Vec<u8>,
}

impl<'a> Part<'a> {
    pub fn file(filename: &'a str, content_type: &'a str, data: Vec<u8>) -> Self {
        Self {
            name: "file",
            filename: Some(filename),
            content_type: Some(content_type),
            data,
        }
    }

    pub fn text(name: &'a str, value: &str) -> Self {
        Self {
            name,
            filename: None,
            content_type: None,
            data: value.as_bytes().to_vec(),
        }
    }
}

/// A `multipart/form-data` body and its Content-Type.
pub fn multipart(parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let boundary = format!("----dailyfeed{}", test_harness::unique_suffix());
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", part.name);
        if let Some(filename) = part.filename {
            disposition.push_str(&format!("; filename=\"{filename}\""));
        }
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(b"\r\n");
        if let Some(content_type) = part.content_type {
            body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&part.data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl Stack {
    /// A valid access token for `member_id`, signed by member's active key.
    pub async fn token(&self, member_id: i64) -> String {
        self.keys
            .access_token(
                member_id,
                MemberRole::User,
                std::time::Duration::from_secs(600),
            )
            .await
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a multipart form with `method` to `path`.
    pub async fn send_form(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        parts: &[Part<'_>],
    ) -> Response {
        let (content_type, body) = multipart(parts);
        let mut req = self
            .client
            .request(method, self.url(path))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.unwrap()
    }

    /// `POST /api/v1/images` with a file and a purpose.
    pub async fn upload(&self, token: &str, data: Vec<u8>, purpose: &str) -> Response {
        self.send_form(
            reqwest::Method::POST,
            "/api/v1/images",
            Some(token),
            &[
                Part::file("upload.bin", "application/octet-stream", data),
                Part::text("purpose", purpose),
            ],
        )
        .await
    }

    /// Uploads and expects 201; returns the answer body.
    pub async fn stored(&self, token: &str, data: Vec<u8>, purpose: &str) -> Value {
        let res = self.upload(token, data, purpose).await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        body
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Keys of every object in this test's bucket.
    pub async fn stored_objects(&self) -> Vec<String> {
        let endpoint = self.env.get("S3_ENDPOINT").unwrap();
        let bucket = self.env.get("S3_BUCKET").unwrap();
        let listing = self
            .client
            .get(format!("{endpoint}/{bucket}?list-type=2"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        listing
            .split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split("</Key>").next())
            .map(str::to_owned)
            .collect()
    }

    /// Rows in the images table.
    pub async fn image_rows(&self) -> i64 {
        let db = sea_orm::Database::connect(self.env.get("DATABASE_URL").unwrap())
            .await
            .unwrap();
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT count(*) AS n FROM images",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get("", "n").unwrap()
    }

    pub fn topic(&self) -> String {
        format!(
            "{}image-events-{}",
            self.env.get("KAFKA_TOPIC_PREFIX").unwrap(),
            chrono::Utc::now().format("%Y%m%d")
        )
    }

    pub fn brokers(&self) -> String {
        self.env.get("KAFKA_BROKERS").unwrap().to_owned()
    }

    pub async fn stop(self) {
        self.image.stop().await;
        self.member.stop().await;
    }
}

/// A photo-like JPEG (a gradient with some texture) of the given size.
pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(width, height, |x, y| {
        let n = (x.wrapping_mul(7) ^ y.wrapping_mul(13)) % 32;
        Rgb([
            u8::try_from((x * 255 / width.max(1)) % 256).unwrap(),
            u8::try_from((y * 255 / height.max(1)) % 256).unwrap(),
            u8::try_from(100 + n).unwrap(),
        ])
    });
    encode(DynamicImage::ImageRgb8(img), ImageFormat::Jpeg)
}

pub fn encode(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    image.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

/// `jpeg` with an EXIF block: orientation 6 (turn 90° clockwise to view) and a GPS latitude.
pub fn jpeg_with_exif(width: u32, height: u32) -> Vec<u8> {
    let plain = jpeg(width, height);
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]);
    tiff.extend_from_slice(&[0x25, 0x88, 4, 0, 1, 0, 0, 0, 38, 0, 0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes());
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&[0x01, 0x00, 2, 0, 2, 0, 0, 0, b'N', 0, 0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend_from_slice(&tiff);
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&u16::try_from(exif.len() + 2).unwrap().to_be_bytes());
    out.extend_from_slice(&exif);
    out.extend_from_slice(&plain[2..]);
    out
}

/// A PNG whose header claims `width` × `height` (signature, IHDR, empty IDAT, IEND).
pub fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(&b"IHDR"[..], &ihdr[..]), (b"IDAT", &[]), (b"IEND", &[])] {
        png.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        let mut crc_input = kind.to_vec();
        crc_input.extend_from_slice(data);
        png.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    }
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
