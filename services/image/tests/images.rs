//! Uploading, serving, replacing and deleting images, as a client sees it.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Part, encode, jpeg, jpeg_with_exif, spawn};
use image_codec::{DynamicImage, ImageFormat, Rgba, RgbaImage};
use reqwest::Method;
use serde_json::Value;

#[tokio::test]
async fn a_jpeg_is_stored_upright_without_exif_thumbnailed_and_served_as_immutable() {
    let stack = spawn(&[]).await;
    let token = stack.token(7).await;
    let upload = jpeg_with_exif(600, 300);
    let body = stack.stored(&token, upload, "post").await;
    let id = body["id"].as_i64().unwrap();
    assert!(id > 0 && id < (1 << 53), "{body}");
    assert_eq!(body["owner_id"], 7);
    assert_eq!(body["purpose"], "post");
    assert_eq!(body["source_type"], "image/jpeg");
    assert_eq!(body["content_type"], "image/jpeg");
    // EXIF orientation 6: the 600x300 sensor image is a 300x600 picture.
    assert_eq!(
        (body["width"].as_i64(), body["height"].as_i64()),
        (Some(300), Some(600))
    );
    assert_eq!(body["url"], format!("/api/v1/images/{id}"));
    assert_eq!(
        body["thumbnail"]["url"],
        format!("/api/v1/images/{id}/thumbnail")
    );
    assert_eq!(
        (
            body["thumbnail"]["width"].as_i64(),
            body["thumbnail"]["height"].as_i64()
        ),
        (Some(128), Some(256))
    );
    assert_eq!(
        (
            body["medium"]["width"].as_i64(),
            body["medium"]["height"].as_i64()
        ),
        (Some(300), Some(600))
    );

    let original = stack.get(&format!("/api/v1/images/{id}")).await;
    assert_eq!(original.status(), 200);
    let headers = original.headers().clone();
    assert_eq!(headers["content-type"], "image/jpeg");
    assert_eq!(
        headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let bytes = original.bytes().await.unwrap();
    assert_eq!(headers["content-length"], bytes.len().to_string().as_str());
    assert!(
        !bytes.windows(4).any(|w| w == b"Exif"),
        "EXIF (and its GPS block) must be gone"
    );
    let decoded = image_codec::load_from_memory(&bytes).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (300, 600));

    let cached = stack
        .client
        .get(stack.url(&format!("/api/v1/images/{id}")))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
    assert_eq!(cached.headers()["etag"].to_str().unwrap(), etag);

    for (path, side) in [("thumbnail", 256), ("thumbnail?size=medium", 600)] {
        let res = stack.get(&format!("/api/v1/images/{id}/{path}")).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["content-type"], "image/jpeg");
        assert_ne!(
            res.headers()["etag"].to_str().unwrap(),
            etag,
            "each rendition has its own tag"
        );
        let thumb = image_codec::load_from_memory(&res.bytes().await.unwrap()).unwrap();
        assert_eq!(thumb.height(), side, "{path}");
    }
    let bad_size = stack
        .get(&format!("/api/v1/images/{id}/thumbnail?size=huge"))
        .await;
    assert_eq!(bad_size.status(), 400);
    test_harness::platform::assert_json_error(bad_size, "bad_request").await;

    let mut objects = stack.stored_objects().await;
    objects.sort();
    assert_eq!(
        objects,
        ["medium", "original", "thumbnail"].map(|r| format!("images/{id}/{r}"))
    );
    stack.stop().await;
}

#[tokio::test]
async fn png_webp_and_gif_are_accepted_by_their_bytes_whatever_the_name() {
    let stack = spawn(&[]).await;
    let token = stack.token(8).await;
    let clear = DynamicImage::ImageRgba8(RgbaImage::from_fn(40, 30, |x, _| {
        Rgba([255, 0, 0, u8::try_from(x * 6).unwrap()])
    }));
    let cases = [
        (
            encode(clear.clone(), ImageFormat::Png),
            "image/png",
            "image/png",
        ),
        (
            encode(clear.clone(), ImageFormat::WebP),
            "image/webp",
            "image/png",
        ),
        (encode(clear, ImageFormat::Gif), "image/gif", "image/png"),
        (jpeg(64, 48), "image/jpeg", "image/jpeg"),
    ];
    for (bytes, source, served) in cases {
        // The name and the part's Content-Type lie; the bytes decide.
        let res = stack
            .send_form(
                Method::POST,
                "/api/v1/images",
                Some(&token),
                &[
                    Part::file("holiday.txt", "text/plain", bytes),
                    Part::text("purpose", "post"),
                ],
            )
            .await;
        assert_eq!(res.status(), 201, "{source}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["source_type"], source);
        assert_eq!(body["content_type"], served, "{source}");
        let id = body["id"].as_i64().unwrap();
        let res = stack.get(&format!("/api/v1/images/{id}")).await;
        assert_eq!(res.headers()["content-type"], served);
    }
    stack.stop().await;
}

#[tokio::test]
async fn the_same_bytes_from_the_same_owner_answer_the_first_image() {
    let stack = spawn(&[]).await;
    let alice = stack.token(1).await;
    let bob = stack.token(2).await;
    let photo = jpeg(120, 80);
    let first = stack.stored(&alice, photo.clone(), "post").await;
    let again = stack.upload(&alice, photo.clone(), "post").await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    let as_profile = stack.stored(&alice, photo.clone(), "profile").await;
    assert_ne!(as_profile["id"], first["id"], "dedup is per purpose");
    let bobs = stack.stored(&bob, photo, "post").await;
    assert_ne!(bobs["id"], first["id"], "dedup is per owner");
    assert_eq!(stack.image_rows().await, 3);
    assert_eq!(stack.stored_objects().await.len(), 9);
    stack.stop().await;
}

/// Sends `parts` and expects `status` with `code`; nothing may have been stored.
async fn refused(
    stack: &common::Stack,
    token: &str,
    parts: &[Part<'_>],
    status: u16,
    code: &str,
) -> Value {
    let res = stack
        .send_form(Method::POST, "/api/v1/images", Some(token), parts)
        .await;
    assert_eq!(res.status(), status, "expected {code}");
    let body = test_harness::platform::assert_json_error(res, code).await;
    assert!(
        stack.stored_objects().await.is_empty(),
        "nothing stored for {code}"
    );
    assert_eq!(stack.image_rows().await, 0, "no row for {code}");
    body
}

#[tokio::test]
async fn a_file_that_is_not_an_image_is_415() {
    let stack = spawn(&[]).await;
    let token = stack.token(3).await;
    let body = refused(
        &stack,
        &token,
        &[
            Part::file(
                "notes.jpg",
                "image/jpeg",
                b"just some text, not a picture".to_vec(),
            ),
            Part::text("purpose", "post"),
        ],
        415,
        "unsupported_media_type",
    )
    .await;
    assert_eq!(body["fields"][0]["field"], "file");
    stack.stop().await;
}

#[tokio::test]
async fn svg_and_html_renamed_png_are_415() {
    let stack = spawn(&[]).await;
    let token = stack.token(3).await;
    for markup in [
        &br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="10" height="10"/></svg>"#[..],
        b"<!DOCTYPE html><html><script>alert(1)</script></html>",
    ] {
        refused(
            &stack,
            &token,
            &[Part::file("avatar.png", "image/png", markup.to_vec()), Part::text("purpose", "profile")],
            415,
            "unsupported_media_type",
        )
        .await;
    }
    stack.stop().await;
}

#[tokio::test]
async fn a_truncated_jpeg_is_422() {
    let stack = spawn(&[]).await;
    let token = stack.token(3).await;
    let whole = jpeg(400, 300);
    let cut = whole[..whole.len() * 2 / 3].to_vec();
    let body = refused(
        &stack,
        &token,
        &[
            Part::file("cut.jpg", "image/jpeg", cut),
            Part::text("purpose", "post"),
        ],
        422,
        "invalid_image",
    )
    .await;
    assert!(
        body["message"].as_str().unwrap().contains("truncated"),
        "{body}"
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_png_claiming_50000_by_50000_pixels_is_refused_before_decoding() {
    let stack = spawn(&[]).await;
    let token = stack.token(3).await;
    let bomb = common::png_header_only(50_000, 50_000);
    assert!(bomb.len() < 100);
    let started = std::time::Instant::now();
    let body = refused(
        &stack,
        &token,
        &[
            Part::file("bomb.png", "image/png", bomb),
            Part::text("purpose", "post"),
        ],
        422,
        "image_too_large",
    )
    .await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(
        body["message"].as_str().unwrap().contains("50000x50000"),
        "{body}"
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_30_mb_upload_is_413() {
    let stack = spawn(&[]).await;
    let token = stack.token(3).await;
    let mut huge = jpeg(64, 64);
    huge.resize(30 << 20, 0);
    let body = refused(
        &stack,
        &token,
        &[
            Part::file("huge.jpg", "image/jpeg", huge),
            Part::text("purpose", "post"),
        ],
        413,
        "payload_too_large",
    )
    .await;
    assert!(
        body["message"].as_str().unwrap().contains("10485760"),
        "{body}"
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_file_crossing_the_limit_is_refused_while_it_streams() {
    // Content-Length is within the form's slack, so the limit is found while reading.
    let stack = spawn(&[("IMAGE_MAX_BYTES", "4096")]).await;
    let token = stack.token(3).await;
    let mut big = jpeg(64, 64);
    big.resize(9000, 0);
    let body = refused(
        &stack,
        &token,
        &[
            Part::text("purpose", "post"),
            Part::file("big.jpg", "image/jpeg", big),
        ],
        413,
        "payload_too_large",
    )
    .await;
    assert_eq!(body["fields"][0]["field"], "file", "{body}");
    stack.stop().await;
}

#[tokio::test]
async fn a_wrong_or_missing_form_part_is_422_naming_it() {
    let stack = spawn(&[]).await;
    let token = stack.token(3).await;
    let wrong = refused(
        &stack,
        &token,
        &[
            Part {
                name: "image",
                filename: Some("a.jpg"),
                content_type: Some("image/jpeg"),
                data: jpeg(8, 8),
            },
            Part::text("purpose", "post"),
        ],
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(wrong["fields"][0]["field"], "image", "{wrong}");
    let no_file = refused(
        &stack,
        &token,
        &[Part::text("purpose", "post")],
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(no_file["fields"][0]["field"], "file", "{no_file}");
    let no_purpose = refused(
        &stack,
        &token,
        &[Part::file("a.jpg", "image/jpeg", jpeg(8, 8))],
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(no_purpose["fields"][0]["field"], "purpose", "{no_purpose}");
    let bad_purpose = refused(
        &stack,
        &token,
        &[
            Part::file("a.jpg", "image/jpeg", jpeg(8, 8)),
            Part::text("purpose", "banner"),
        ],
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(
        bad_purpose["fields"][0]["field"], "purpose",
        "{bad_purpose}"
    );

    let json = stack
        .client
        .post(stack.url("/api/v1/images"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"file": "aGVsbG8="}))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 415);
    test_harness::platform::assert_json_error(json, "unsupported_media_type").await;

    let anonymous = stack
        .send_form(
            Method::POST,
            "/api/v1/images",
            None,
            &[
                Part::file("a.jpg", "image/jpeg", jpeg(8, 8)),
                Part::text("purpose", "post"),
            ],
        )
        .await;
    assert_eq!(anonymous.status(), 401);
    assert!(stack.stored_objects().await.is_empty());
    stack.stop().await;
}

#[tokio::test]
async fn only_the_owner_deletes_and_a_deleted_image_is_gone() {
    let stack = spawn(&[]).await;
    let owner = stack.token(10).await;
    let other = stack.token(11).await;
    let id = stack.stored(&owner, jpeg(50, 50), "post").await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/images/{id}");

    let res = stack.delete(&path, &other).await;
    assert_eq!(res.status(), 403);
    test_harness::platform::assert_json_error(res, "forbidden").await;
    assert_eq!(stack.get(&path).await.status(), 200);

    assert_eq!(stack.delete(&path, &owner).await.status(), 204);
    for gone in [path.clone(), format!("{path}/thumbnail")] {
        let res = stack.get(&gone).await;
        assert_eq!(res.status(), 404);
        test_harness::platform::assert_json_error(res, "not_found").await;
    }
    assert!(stack.stored_objects().await.is_empty());
    assert_eq!(stack.delete(&path, &owner).await.status(), 404);
    stack.stop().await;
}

#[tokio::test]
async fn unknown_ids_are_404_and_malformed_ids_400() {
    let stack = spawn(&[]).await;
    let token = stack.token(12).await;
    for path in [
        "/api/v1/images/123456789",
        "/api/v1/images/123456789/thumbnail",
        "/api/v1/images/-5",
    ] {
        let res = stack.get(path).await;
        assert_eq!(res.status(), 404, "{path}");
        test_harness::platform::assert_json_error(res, "not_found").await;
    }
    let res = stack.delete("/api/v1/images/123456789", &token).await;
    assert_eq!(res.status(), 404);
    let res = stack.get("/api/v1/images/not-a-number").await;
    assert_eq!(res.status(), 400);
    test_harness::platform::assert_json_error(res, "bad_request").await;
    stack.stop().await;
}

#[tokio::test]
async fn a_profile_image_is_replaced_under_a_new_id() {
    let stack = spawn(&[]).await;
    let owner = stack.token(20).await;
    let other = stack.token(21).await;
    let old = stack.stored(&owner, jpeg(90, 90), "profile").await["id"]
        .as_i64()
        .unwrap();
    let replace = |token: String, id: i64, data: Vec<u8>| {
        let stack = &stack;
        async move {
            stack
                .send_form(
                    Method::PUT,
                    &format!("/api/v1/images/{id}"),
                    Some(&token),
                    &[Part::file("me.jpg", "image/jpeg", data)],
                )
                .await
        }
    };
    let res = replace(other.clone(), old, jpeg(91, 91)).await;
    assert_eq!(res.status(), 403);
    test_harness::platform::assert_json_error(res, "forbidden").await;

    let res = replace(owner.clone(), old, jpeg(92, 92)).await;
    assert_eq!(res.status(), 201);
    let new: Value = res.json().await.unwrap();
    let new_id = new["id"].as_i64().unwrap();
    assert_ne!(new_id, old);
    assert_eq!(new["purpose"], "profile");
    assert_eq!(new["width"], 92);
    assert_eq!(
        stack.get(&format!("/api/v1/images/{old}")).await.status(),
        404
    );
    assert_eq!(
        stack
            .get(&format!("/api/v1/images/{new_id}"))
            .await
            .status(),
        200
    );
    assert_eq!(
        stack.stored_objects().await.len(),
        3,
        "the old objects are gone"
    );

    let post = stack.stored(&owner, jpeg(93, 93), "post").await["id"]
        .as_i64()
        .unwrap();
    let res = replace(owner.clone(), post, jpeg(94, 94)).await;
    assert_eq!(res.status(), 409);
    test_harness::platform::assert_json_error(res, "conflict").await;
    let res = replace(owner.clone(), 987_654_321, jpeg(95, 95)).await;
    assert_eq!(res.status(), 404);
    stack.stop().await;
}

#[tokio::test]
async fn uploads_and_deletions_are_published_through_the_outbox() {
    let stack = spawn(&[]).await;
    let token = stack.token(30).await;
    let profile = stack.stored(&token, jpeg(70, 40), "profile").await["id"]
        .as_i64()
        .unwrap();
    let res = stack
        .send_form(
            Method::PUT,
            &format!("/api/v1/images/{profile}"),
            Some(&token),
            &[Part::file("me.jpg", "image/jpeg", jpeg(71, 40))],
        )
        .await;
    assert_eq!(res.status(), 201);
    let replacement = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    assert_eq!(
        stack
            .delete(&format!("/api/v1/images/{replacement}"), &token)
            .await
            .status(),
        204
    );

    let records =
        test_harness::kafka::wait_for_records(&stack.brokers(), &stack.topic(), 4, |_| true).await;
    let events: Vec<Value> = records.iter().map(|r| r.json().unwrap()).collect();
    let summary: Vec<(String, i64)> = events
        .iter()
        .map(|e| {
            (
                e["event_type"].as_str().unwrap().to_owned(),
                e["subject_id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("IMAGE_UPLOAD".to_owned(), profile),
            ("IMAGE_UPLOAD".to_owned(), replacement),
            ("IMAGE_DELETE".to_owned(), profile),
            ("IMAGE_DELETE".to_owned(), replacement),
        ],
        "{events:#?}"
    );
    assert!(
        records
            .iter()
            .all(|r| r.key.as_deref() == Some("member:30"))
    );
    assert_eq!(events[0]["actor_id"], 30);
    assert_eq!(events[0]["payload"]["purpose"], "profile");
    assert_eq!(events[0]["payload"]["content_type"], "image/jpeg");
    assert_eq!(events[1]["payload"]["replaces"], profile);
    assert_eq!(events[2]["payload"]["replaced_by"], replacement);
    assert!(events[3]["payload"].get("replaced_by").is_none());
    stack.stop().await;
}

#[tokio::test]
async fn uploads_beyond_the_per_member_rate_get_429_with_retry_after() {
    let stack = spawn(&[("IMAGE_UPLOADS_PER_MINUTE", "2")]).await;
    let token = stack.token(40).await;
    stack.stored(&token, jpeg(10, 10), "post").await;
    stack.stored(&token, jpeg(11, 10), "post").await;
    let res = stack.upload(&token, jpeg(12, 10), "post").await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    test_harness::platform::assert_json_error(res, "rate_limited").await;
    let someone_else = stack.token(41).await;
    stack.stored(&someone_else, jpeg(12, 10), "post").await;
    stack.stop().await;
}

#[tokio::test]
async fn the_local_directory_store_serves_the_same_api() {
    let dir = std::env::temp_dir().join(format!("dft-images-{}", test_harness::unique_suffix()));
    let root = dir.to_string_lossy().into_owned();
    let stack = spawn(&[("IMAGE_STORE", "fs"), ("IMAGE_FS_ROOT", &root)]).await;
    let token = stack.token(50).await;
    let id = stack.stored(&token, jpeg(300, 200), "post").await["id"]
        .as_i64()
        .unwrap();
    assert!(dir.join(format!("images/{id}/original")).is_file());
    let res = stack.get(&format!("/api/v1/images/{id}/thumbnail")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        image_codec::load_from_memory(&res.bytes().await.unwrap())
            .unwrap()
            .width(),
        256
    );
    assert_eq!(
        stack
            .delete(&format!("/api/v1/images/{id}"), &token)
            .await
            .status(),
        204
    );
    assert!(!dir.join(format!("images/{id}/original")).exists());
    stack.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}
