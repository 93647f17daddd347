//! activity on real servers (the test command's, or TEST_* overrides):
//!
//! 1. `steady`: events produced straight to today's `content-events` topic at BENCH_RATE/s
//!    (default 1000) for BENCH_SECONDS (default 30), as the relays would; activity consumes
//!    them into MongoDB. Reports the sustained consume rate and the end-to-end lag
//!    (event time → document written) percentiles, from the stored documents.
//! 2. `backlog`: BENCH_BACKLOG (default 20000) events already on the topic when activity
//!    starts; reports how fast it drains them (the consume ceiling).
//! 3. `reads`: `GET /api/v1/activities/me` by BENCH_CLIENTS (default 32) concurrent
//!    clients for BENCH_READ_SECONDS (default 15), over a member with 1 000 activities
//!    among BENCH_READ_DOCS (default 2 000).
//!
//! `cargo bench -p activity --bench consume [steady|backlog|reads]`
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use contracts::auth::MemberRole;
use contracts::{EventEnvelope, EventType, TopicName};
use futures_util::TryStreamExt;
use member::domain::keys::KeyRing;
use mongodb::bson::{Document, doc};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use service_runtime::RunningService;
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

struct Bench {
    member: RunningService,
    keys: Arc<KeyRing>,
    env: TestEnv,
    config: activity::Config,
}

async fn setup() -> Bench {
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
    let env = TestEnv::new()
        .redis()
        .kafka()
        .mongodb()
        .set("MEMBER_URL", member.base_url())
        .set("SERVER_WORKERS", "2")
        .set("KAFKA_METADATA_REFRESH_MS", "1000")
        .set("KAFKA_STATISTICS_INTERVAL_MS", "0");
    let config = activity::Config::from_env(env.vars()).unwrap();
    let topics =
        events::topics::TopicAdmin::new(&config.events.kafka, config.events.topics.clone())
            .unwrap();
    topics
        .create_ahead(&[TopicName::CONTENT_EVENTS, TopicName::MEMBER_EVENTS])
        .await
        .unwrap();
    Bench {
        member,
        keys,
        env,
        config,
    }
}

impl Bench {
    fn topic(&self) -> String {
        let probe = EventEnvelope::new(EventType::PostCreate, 1, 1, ());
        format!(
            "{}{}",
            self.config.events.kafka.topic_prefix,
            probe.topic(self.config.events.kafka.topic_zone)
        )
    }

    fn producer(&self) -> FutureProducer {
        ClientConfig::new()
            .set("bootstrap.servers", &self.config.events.kafka.brokers)
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            .create()
            .unwrap()
    }

    async fn collection(&self) -> mongodb::Collection<Document> {
        service_runtime::mongodb::connect(&self.config.mongodb, activity::SERVICE)
            .await
            .unwrap()
            .collection(activity::store::COLLECTION)
    }

    async fn wait_for(&self, count: u64, within: Duration) -> u64 {
        let collection = self.collection().await;
        let deadline = Instant::now() + within;
        loop {
            let stored = collection.count_documents(doc! {}).await.unwrap_or(0);
            if stored >= count || Instant::now() > deadline {
                return stored;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// (occurred_at, recorded_at) of every stored document, in ms.
    async fn times(&self) -> Vec<(i64, i64)> {
        let docs: Vec<Document> = self
            .collection()
            .await
            .find(doc! {})
            .projection(doc! { "occurred_at": 1, "recorded_at": 1 })
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        docs.iter()
            .filter_map(|d| {
                Some((
                    d.get_datetime("occurred_at").ok()?.timestamp_millis(),
                    d.get_datetime("recorded_at").ok()?.timestamp_millis(),
                ))
            })
            .collect()
    }

    async fn token(&self, member_id: i64) -> String {
        self.keys
            .access_token(
                member_id,
                MemberRole::User,
                std::time::Duration::from_secs(900),
            )
            .await
            .unwrap()
    }
}

/// The i-th benchmark event: mostly posts and comments by 500 members, some likes.
fn event(i: u64) -> EventEnvelope {
    let member = (i % 500) as i64 + 1;
    let subject = i as i64 + 1;
    match i % 4 {
        0 | 1 => EventEnvelope::new(
            EventType::PostCreate,
            member,
            subject,
            serde_json::json!({"post_id": subject, "author_id": member,
                "title": "benchmark post", "body": "x".repeat(200)}),
        ),
        2 => EventEnvelope::new(
            EventType::CommentCreate,
            member,
            subject,
            serde_json::json!({"post_id": subject - 1, "post_author_id": member, "body": "a comment"}),
        ),
        _ => EventEnvelope::new(
            EventType::LikePost,
            member,
            subject - 3,
            serde_json::json!({"post_id": subject - 3, "post_author_id": member}),
        ),
    }
}

async fn produce(producer: &FutureProducer, topic: &str, e: &EventEnvelope) {
    let bytes = serde_json::to_vec(e).unwrap();
    let key = format!("post:{}", e.subject_id);
    producer
        .send(
            FutureRecord::to(topic).key(&key).payload(&bytes),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
}

async fn steady() {
    let rate = var("BENCH_RATE", 1000);
    let seconds = var("BENCH_SECONDS", 30);
    let bench = setup().await;
    let service = activity::start(bench.config.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await; // join the group first
    let topic = bench.topic();
    let producer = bench.producer();
    let total = rate * seconds;
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let per_tick = rate / 100;
    let mut sent = 0;
    let mut inflight = Vec::new();
    while sent < total {
        tick.tick().await;
        for _ in 0..per_tick.min(total - sent) {
            let e = event(sent);
            let bytes = serde_json::to_vec(&e).unwrap();
            let key = format!("post:{}", e.subject_id);
            let p = producer.clone();
            let topic = topic.clone();
            inflight.push(tokio::spawn(async move {
                p.send(
                    FutureRecord::to(&topic).key(&key).payload(&bytes),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| e)
                .unwrap();
            }));
            sent += 1;
        }
    }
    for t in inflight {
        t.await.unwrap();
    }
    let produce_elapsed = started.elapsed();
    let stored = bench.wait_for(total, Duration::from_secs(600)).await;
    let elapsed = started.elapsed();
    let times = bench.times().await;
    let mut lags: Vec<f64> = times.iter().map(|(o, r)| (r - o) as f64).collect();
    lags.sort_by(f64::total_cmp);
    let first = times.iter().map(|t| t.1).min().unwrap_or(0);
    let last = times.iter().map(|t| t.1).max().unwrap_or(0);
    println!("## steady: {rate} events/s offered for {seconds} s");
    println!("| metric | value |\n|---|---|");
    println!(
        "| produced | {total} in {:.1} s ({:.0}/s) |",
        produce_elapsed.as_secs_f64(),
        total as f64 / produce_elapsed.as_secs_f64()
    );
    println!(
        "| stored | {stored} in {:.1} s after the first send ({:.0}/s between first and last write) |",
        elapsed.as_secs_f64(),
        stored as f64 * 1000.0 / (last - first).max(1) as f64
    );
    for (name, p) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)] {
        println!("| lag {name} | {:.0} ms |", percentile(&lags, p));
    }
    service.stop().await;
    bench.member.stop().await;
    let _ = bench.env;
}

async fn backlog() {
    let total = var("BENCH_BACKLOG", 20_000);
    let bench = setup().await;
    let topic = bench.topic();
    let producer = bench.producer();
    let writes: Vec<_> = (0..total)
        .map(|i| {
            let p = producer.clone();
            let topic = topic.clone();
            tokio::spawn(async move {
                let e = event(i);
                let bytes = serde_json::to_vec(&e).unwrap();
                let key = format!("post:{}", e.subject_id);
                p.send(
                    FutureRecord::to(&topic).key(&key).payload(&bytes),
                    Duration::from_secs(60),
                )
                .await
                .map_err(|(e, _)| e)
                .unwrap();
            })
        })
        .collect();
    for w in writes {
        w.await.unwrap();
    }
    let started = Instant::now();
    let service = activity::start(bench.config.clone()).await.unwrap();
    let stored = bench.wait_for(total, Duration::from_secs(900)).await;
    let elapsed = started.elapsed();
    let times = bench.times().await;
    let first = times.iter().map(|t| t.1).min().unwrap_or(0);
    let last = times.iter().map(|t| t.1).max().unwrap_or(0);
    println!("## backlog: {total} events waiting when activity starts");
    println!(
        "| stored {stored} in {:.1} s from start | **{:.0} events/s** between first and last write |",
        elapsed.as_secs_f64(),
        stored as f64 * 1000.0 / (last - first).max(1) as f64
    );
    service.stop().await;
    bench.member.stop().await;
}

async fn reads() {
    let clients = var("BENCH_CLIENTS", 32);
    let seconds = var("BENCH_READ_SECONDS", 15);
    let bench = setup().await;
    let service = activity::start(bench.config.clone()).await.unwrap();
    let topic = bench.topic();
    let producer = bench.producer();
    // One reader with half of BENCH_READ_DOCS (default 2 000) activities.
    let docs = var("BENCH_READ_DOCS", 2000);
    let reader = 424_242_i64;
    for i in 0..docs {
        let mut e = event(i);
        if i % 2 == 0 {
            e.actor_id = reader;
        }
        produce(&producer, &topic, &e).await;
    }
    bench.wait_for(docs, Duration::from_secs(1200)).await;
    let token = bench.token(reader).await;
    let url = format!("{}/api/v1/activities/me", service.base_url());
    let client = reqwest::Client::new();
    // Warm up (JWKS fetch, connections).
    for _ in 0..20 {
        client.get(&url).bearer_auth(&token).send().await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let client = client.clone();
            let url = url.clone();
            let token = token.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0_u64;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match client.get(&url).bearer_auth(&token).send().await {
                        Ok(res) if res.status().is_success() => {
                            let _ = res.bytes().await;
                            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                        }
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        latencies.extend(l);
        errors += e;
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "## reads: GET /api/v1/activities/me (20 items of {}) by {clients} clients for {seconds} s",
        docs / 2
    );
    println!("| metric | value |\n|---|---|");
    println!(
        "| requests | {} ({:.0}/s), {errors} errors |",
        latencies.len(),
        latencies.len() as f64 / seconds as f64
    );
    for (name, p) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0)] {
        println!("| latency {name} | {:.1} ms |", percentile(&latencies, p));
    }
    service.stop().await;
    bench.member.stop().await;
}

#[tokio::main]
async fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    if run("steady") {
        steady().await;
    }
    if run("backlog") {
        backlog().await;
    }
    if run("reads") {
        reads().await;
    }
}
