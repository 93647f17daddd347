//! Load tool for `scripts/bench/queue` (not part of the service).
//!
//! - `queue_load tokens FROM TO OUT`: access tokens for members FROM..=TO, signed with the
//!   bench member's real active key (member's `KeyRing` on member's database, `DATABASE_URL`
//!   and `JWT_MASTER_KEY` as member reads them), one per line.
//! - `queue_load sse GATEWAY ADMITTED_TOKENS WAITER_TOKENS GATEWAY_PID HOLD_SECS`: lines up
//!   every admitted member, then every waiter, opens one SSE stream per waiter (one process,
//!   one connection each), holds them for HOLD_SECS, samples the gateway's RSS and CPU, then
//!   frees one slot at a time (`DELETE /allowed-in-token` by an admitted member) and times
//!   how long until the admitted event reaches the head waiter's stream. Prints Markdown.
//!   Streams go to `STREAM_URL` when set (the lean listener, `QUEUE_STREAM_PORT`), else to
//!   GATEWAY.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use contracts::auth::MemberRole;
use futures_util::StreamExt;
use service_runtime::ProcessEnv;
use tokio::sync::{Semaphore, mpsc};

#[tokio::main]
async fn main() {
    test_harness::install_crypto_provider();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["tokens", from, to, out] => tokens(from.parse().unwrap(), to.parse().unwrap(), out).await,
        ["sse", gateway, admitted, waiters, pid, hold] => {
            sse(
                gateway,
                admitted,
                waiters,
                pid.parse().unwrap(),
                hold.parse().unwrap(),
            )
            .await
        }
        _ => {
            eprintln!(
                "usage: queue_load tokens FROM TO OUT | sse GATEWAY ADMITTED WAITERS PID HOLD_SECS"
            );
            std::process::exit(2);
        }
    }
}

async fn tokens(from: i64, to: i64, out: &str) {
    let config = member::Config::from_env(&ProcessEnv).unwrap();
    let db = service_runtime::postgres::connect_lazy(&config.database).unwrap();
    let keys = member::domain::keys::KeyRing::new(
        db,
        &config.tokens.master_key,
        config.tokens.access_ttl,
        config.tokens.rotation,
    );
    let mut lines = String::new();
    for id in from..=to {
        let token = keys
            .access_token(id, MemberRole::User, std::time::Duration::from_secs(900))
            .await
            .unwrap();
        lines.push_str(&token);
        lines.push('\n');
    }
    std::fs::write(out, lines).unwrap();
}

fn read_tokens(path: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// RSS in KiB and CPU time (user + system) in clock ticks of a process.
fn sample(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let cpu = fields
        .get(11)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    (rss, cpu)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

async fn lineup_all(client: &reqwest::Client, gateway: &str, tokens: &[String]) {
    let gate = Arc::new(Semaphore::new(64));
    let mut tasks = Vec::with_capacity(tokens.len());
    for token in tokens {
        let (client, url, token, gate) = (
            client.clone(),
            format!("{gateway}/api/v1/queue/lineup"),
            token.clone(),
            gate.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let res = client.post(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(res.status(), 200, "lineup");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Counts events on one stream; reports `admitted` to the driver with the arrival time.
async fn waiter(
    client: reqwest::Client,
    url: String,
    token: String,
    connected: mpsc::UnboundedSender<bool>,
    admitted: mpsc::UnboundedSender<Instant>,
    events: Arc<std::sync::atomic::AtomicU64>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let res = match client.get(url).bearer_auth(token).send().await {
        Ok(res) if res.status().is_success() => res,
        Ok(res) => {
            eprintln!("stream refused: {}", res.status());
            let _ = connected.send(false);
            return;
        }
        Err(err) => {
            eprintln!("stream failed: {err}");
            let _ = connected.send(false);
            return;
        }
    };
    drop(permit);
    let _ = connected.send(true);
    let mut body = res.bytes_stream();
    let mut buf = String::new();
    while let Some(Ok(chunk)) = body.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            if block.contains("event: ") {
                events.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            if block.contains("event: admitted") {
                let _ = admitted.send(Instant::now());
                return;
            }
        }
    }
}

async fn sse(gateway: &str, admitted_path: &str, waiters_path: &str, pid: u32, hold: u64) {
    let admitted_tokens = read_tokens(admitted_path);
    let waiter_tokens = read_tokens(waiters_path);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let streams = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let (rss_idle, _) = sample(pid);
    lineup_all(&client, gateway, &admitted_tokens).await;
    lineup_all(&client, gateway, &waiter_tokens).await;

    let (connected_tx, mut connected_rx) = mpsc::unbounded_channel();
    let (admitted_tx, mut admitted_rx) = mpsc::unbounded_channel();
    let events = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stream_base = std::env::var("STREAM_URL").unwrap_or_else(|_| gateway.to_owned());
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(256));
    for token in &waiter_tokens {
        // At most 256 connects in flight; a permit is released once its stream is up.
        let permit = gate.clone().acquire_owned().await.unwrap();
        tokio::spawn(waiter(
            streams.clone(),
            format!("{stream_base}/api/v1/queue/stream"),
            token.clone(),
            connected_tx.clone(),
            admitted_tx.clone(),
            events.clone(),
            permit,
        ));
    }
    let mut connected = 0usize;
    for _ in 0..waiter_tokens.len() {
        if connected_rx.recv().await == Some(true) {
            connected += 1;
        }
    }
    let connect_time = started.elapsed();
    let (_, cpu_before) = sample(pid);
    tokio::time::sleep(Duration::from_secs(hold)).await;
    let (rss_held, cpu_after) = sample(pid);
    let events_during_hold = events.load(std::sync::atomic::Ordering::Relaxed);

    let mut latencies = Vec::new();
    for token in admitted_tokens.iter().take(100) {
        let t0 = Instant::now();
        let res = client
            .delete(format!("{gateway}/api/v1/queue/allowed-in-token"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        match tokio::time::timeout(Duration::from_secs(5), admitted_rx.recv()).await {
            Ok(Some(at)) => latencies.push(at.saturating_duration_since(t0)),
            _ => eprintln!("an admission event did not arrive within 5 s"),
        }
    }
    latencies.sort_unstable();
    let ticks = 100.0; // USER_HZ
    let cpu_secs = (cpu_after.saturating_sub(cpu_before)) as f64 / ticks;
    let polling = connected as u64 * hold / 5;
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| SSE waiters connected (one gateway process) | {connected} in {:.1} s |",
        connect_time.as_secs_f64()
    );
    println!(
        "| gateway RSS: idle → {connected} streams held {hold} s | {:.1} MiB → {:.1} MiB |",
        rss_idle as f64 / 1024.0,
        rss_held as f64 / 1024.0
    );
    println!("| gateway CPU while holding them {hold} s | {cpu_secs:.2} s |");
    println!("| events pushed during the hold (position + heartbeat) | {events_during_hold} |");
    println!(
        "| admission event delivery, {} admissions (DELETE sent → event parsed by the waiter) | p50 {} / p99 {} / max {} |",
        latencies.len(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default())
    );
    println!(
        "| HTTP requests for {connected} waiters over {hold} s: SSE vs polling every 5 s | {connected} vs {polling} ({:.1} % fewer) |",
        100.0 * (1.0 - connected as f64 / polling.max(1) as f64)
    );
}
