//! image on real servers (the test command's, or TEST_* overrides), the service running as
//! its own process (bench profile) so its memory can be read from /proc:
//!
//! 1. `upload`: BENCH_UPLOAD_CLIENTS (default 8) clients POST distinct ~1 MB JPEGs
//!    (1600×1200-ish photos, each made unique by a JPEG comment so none is deduplicated) for
//!    BENCH_SECONDS (default 20): decode, EXIF orientation, 1024 and 256 px JPEG renditions,
//!    three objects to S3 (moto), row + outbox event. Reports uploads/s, p50/p99, the
//!    service's RSS before and at peak during the burst, and `/health/live` latency measured
//!    beside the burst (decoding must not starve the async workers).
//! 2. `thumbnail`: BENCH_GET_CLIENTS (default 64) clients GET thumbnails for BENCH_SECONDS:
//!    revalidation with `If-None-Match` (304, no object-store read) and full 200 answers.
//!
//! `cargo bench -p image@0.1.0 --bench upload`
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Cursor;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use contracts::auth::MemberRole;
use image_codec::{DynamicImage, ImageFormat, Rgb, RgbImage};
use member::domain::keys::KeyRing;
use test_harness::TestEnv;

fn var(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Resident and peak resident memory of `pid`, in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A noisy photo-like JPEG close to `target` bytes.
fn photo(target: usize) -> Vec<u8> {
    let mut width = 1200u32;
    loop {
        let height = width * 3 / 4;
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let img = RgbImage::from_fn(width, height, |x, y| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let noise = (seed % 48) as u32;
            Rgb([
                ((x * 200 / width) + noise) as u8,
                ((y * 200 / height) + noise / 2) as u8,
                (((x + y) % 160) + noise) as u8,
            ])
        });
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg)
            .unwrap();
        if out.len() >= target * 95 / 100 || width > 4000 {
            return out;
        }
        width = width * 11 / 10;
    }
}

/// `jpeg` with a comment segment holding `n` right after SOI: same pixels, new hash.
fn unique(jpeg: &[u8], n: u64) -> Vec<u8> {
    let comment = format!("{n:016}");
    let mut out = Vec::with_capacity(jpeg.len() + 24);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&u16::try_from(comment.len() + 2).unwrap().to_be_bytes());
    out.extend_from_slice(comment.as_bytes());
    out.extend_from_slice(&jpeg[2..]);
    out
}

struct Summary {
    ok: usize,
    failed: usize,
    seconds: f64,
    latencies: Vec<f64>,
}

impl Summary {
    fn row(&self) -> String {
        format!(
            "{:.1} | {:.1} ms | {:.1} ms | {}",
            self.ok as f64 / self.seconds,
            percentile(&self.latencies, 0.50) * 1e3,
            percentile(&self.latencies, 0.99) * 1e3,
            self.failed
        )
    }
}

/// Runs `clients` loops of `request` for `duration`; `request(n)` answers whether it succeeded.
async fn load<F, Fut>(clients: u64, duration: Duration, request: F) -> Summary
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let request = request.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let (mut ok, mut failed, mut latencies) = (0, 0, Vec::new());
                while Instant::now() < deadline {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let sent = Instant::now();
                    if request(n).await {
                        ok += 1;
                        latencies.push(sent.elapsed().as_secs_f64());
                    } else {
                        failed += 1;
                    }
                }
                (ok, failed, latencies)
            })
        })
        .collect();
    let mut summary = Summary {
        ok: 0,
        failed: 0,
        seconds: 0.0,
        latencies: Vec::new(),
    };
    for task in tasks {
        let (ok, failed, latencies) = task.await.unwrap();
        summary.ok += ok;
        summary.failed += failed;
        summary.latencies.extend(latencies);
    }
    summary.seconds = started.elapsed().as_secs_f64();
    summary.latencies.sort_by(f64::total_cmp);
    summary
}

#[tokio::main]
async fn main() {
    let seconds = Duration::from_secs(var("BENCH_SECONDS", 20));
    let upload_clients = var("BENCH_UPLOAD_CLIENTS", 8);
    let get_clients = var("BENCH_GET_CLIENTS", 64);
    test_harness::install_crypto_provider();

    let member_env = TestEnv::new().postgres().await.redis().kafka();
    let member_config = member::Config::from_env(member_env.vars()).unwrap();
    let keys = Arc::new(KeyRing::new(
        service_runtime::postgres::connect_lazy(&member_config.database).unwrap(),
        &member_config.tokens.master_key,
        member_config.tokens.access_ttl,
        member_config.tokens.rotation,
    ));
    let member = member::start(member_config).await.unwrap();

    // Its own database, key prefix, topic prefix and bucket on the test S3 server.
    let env = common::image_env().await;
    let client = test_harness::http_client();
    let port = test_harness::closed_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_image"))
        .envs(env.vars())
        .env("SERVER_PORT", port.to_string())
        .env("SERVER_WORKERS", var("BENCH_SERVER_WORKERS", 2).to_string())
        .env("IMAGE_UPLOADS_PER_MINUTE", "1000000")
        .env(
            "REDIS_KEY_PREFIX",
            member_env.get("REDIS_KEY_PREFIX").unwrap(),
        )
        .env("MEMBER_URL", member.base_url())
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    test_harness::eventually("image to listen", 30, || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
    })
    .await;
    test_harness::platform::wait_ready(&base).await;

    let token = keys
        .access_token(1, MemberRole::User, Duration::from_secs(900))
        .await
        .unwrap();
    let jpeg = Arc::new(photo(1 << 20));
    let decoded = image_codec::load_from_memory(&jpeg).unwrap();
    println!(
        "upload: {} bytes, {}x{} JPEG; {upload_clients} clients for {seconds:?}",
        jpeg.len(),
        decoded.width(),
        decoded.height()
    );
    let (idle_rss, _) = memory_mib(pid);

    // /health/live beside the burst, and the service's memory every 100 ms.
    let burst_over = Arc::new(AtomicBool::new(false));
    let side = {
        let burst_over = burst_over.clone();
        let base = base.clone();
        tokio::spawn(async move {
            let client = test_harness::http_client();
            let (mut live, mut peak_rss) = (Vec::new(), 0f64);
            while !burst_over.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let res = client.get(format!("{base}/health/live")).send().await;
                if res.is_ok_and(|r| r.status() == 200) {
                    live.push(sent.elapsed().as_secs_f64());
                }
                peak_rss = peak_rss.max(memory_mib(pid).0);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            live.sort_by(f64::total_cmp);
            (live, peak_rss)
        })
    };
    let ids = Arc::new(std::sync::Mutex::new(Vec::new()));
    let uploads = {
        let (client, base, token, jpeg, ids) = (
            client.clone(),
            base.clone(),
            token.clone(),
            jpeg.clone(),
            ids.clone(),
        );
        load(upload_clients, seconds, move |n| {
            let (client, base, token, jpeg, ids) = (
                client.clone(),
                base.clone(),
                token.clone(),
                jpeg.clone(),
                ids.clone(),
            );
            async move {
                let (content_type, body) = common::multipart(&[
                    common::Part::text("purpose", "post"),
                    common::Part::file("p.jpg", "image/jpeg", unique(&jpeg, n)),
                ]);
                let Ok(res) = client
                    .post(format!("{base}/api/v1/images"))
                    .bearer_auth(&token)
                    .header("content-type", content_type)
                    .body(body)
                    .send()
                    .await
                else {
                    return false;
                };
                if res.status() != 201 {
                    return false;
                }
                let body: serde_json::Value = res.json().await.unwrap_or_default();
                if let Some(id) = body["id"].as_i64() {
                    ids.lock().unwrap().push(id);
                }
                true
            }
        })
        .await
    };
    burst_over.store(true, Ordering::Relaxed);
    let (live, peak_rss) = side.await.unwrap();
    let (after_rss, hwm) = memory_mib(pid);

    // The thumbnails a feed shows, with the ETags a browser cache would hold for them.
    let mut tagged = Vec::new();
    let uploaded: Vec<i64> = ids.lock().unwrap().clone();
    for id in uploaded.into_iter().take(200) {
        let res = client
            .get(format!("{base}/api/v1/images/{id}/thumbnail"))
            .send()
            .await
            .unwrap();
        tagged.push((id, res.headers()["etag"].to_str().unwrap().to_owned()));
    }
    let tagged = Arc::new(tagged);
    let revalidate = {
        let (client, base, tagged) = (client.clone(), base.clone(), tagged.clone());
        load(get_clients, seconds, move |n| {
            let (client, base, tagged) = (client.clone(), base.clone(), tagged.clone());
            async move {
                let (id, tag) = &tagged[(n as usize) % tagged.len()];
                client
                    .get(format!("{base}/api/v1/images/{id}/thumbnail"))
                    .header("if-none-match", tag)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 304)
            }
        })
        .await
    };
    let full = {
        let (client, base, tagged) = (client.clone(), base.clone(), tagged.clone());
        load(get_clients, seconds, move |n| {
            let (client, base, tagged) = (client.clone(), base.clone(), tagged.clone());
            async move {
                let (id, _) = &tagged[(n as usize) % tagged.len()];
                match client
                    .get(format!("{base}/api/v1/images/{id}/thumbnail"))
                    .send()
                    .await
                {
                    Ok(res) if res.status() == 200 => res.bytes().await.is_ok(),
                    _ => false,
                }
            }
        })
        .await
    };

    println!();
    println!("| scenario | clients | requests/s | p50 | p99 | failed |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| POST /api/v1/images, ~1 MB JPEG (validate, decode, strip metadata, 1024 + 256 px JPEGs, 3 S3 puts, row + outbox) | {upload_clients} | {} |",
        uploads.row()
    );
    println!(
        "| GET /api/v1/images/{{id}}/thumbnail + If-None-Match → 304 | {get_clients} | {} |",
        revalidate.row()
    );
    println!(
        "| GET /api/v1/images/{{id}}/thumbnail → 200 (bytes from S3) | {get_clients} | {} |",
        full.row()
    );
    println!();
    println!(
        "service RSS: idle {idle_rss:.0} MiB, peak during the upload burst {peak_rss:.0} MiB (VmHWM {hwm:.0} MiB), after {after_rss:.0} MiB"
    );
    println!(
        "/health/live during the burst: {} samples, p50 {:.1} ms, p99 {:.1} ms",
        live.len(),
        percentile(&live, 0.5) * 1e3,
        percentile(&live, 0.99) * 1e3
    );
    let _ = child.start_kill();
    let _ = child.wait().await;
    member.stop().await;
}
