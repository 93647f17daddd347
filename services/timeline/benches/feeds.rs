//! timeline under load on real Postgres and Redis (the test command's servers, or TEST_*):
//! 10 000 members following 50 each, 1 000 000 posts over 30 days (loaded with SQL), member
//! running for JWKS and author profiles. Closed-loop clients (each sends its next request
//! when the last answers) at BENCH_CLIENTS (default "600,2000") for BENCH_SECONDS (default
//! 15) per scenario, and in the same run a bare actix-web handler (same workers, a JSON body
//! of a page's size) as the ceiling.
//!
//! Then the seed's way of counting users: virtual users that think between requests (k6's
//! `sleep(1)`; here 0.5–1.5 s, uniformly, so they do not march in step) at
//! BENCH_VIRTUAL_USERS (default "600,2000"). GoodsPia's anchor (600 virtual users, 512 req/s,
//! avg 58 ms) was measured that way.
//!
//! `cargo bench -p timeline --bench feeds`
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use contracts::auth::MemberRole;
use member::domain::keys::KeyRing;
use sea_orm::ConnectionTrait;
use test_harness::TestEnv;

const MEMBERS: i64 = 10_000;
const FOLLOWS_EACH: i64 = 50;
const POSTS: i64 = 1_000_000;

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

struct Outcome {
    rps: f64,
    p50: f64,
    p95: f64,
    p99: f64,
    errors: u64,
    hits: u64,
    total: u64,
}

type Pick = Arc<dyn Fn(u64) -> (String, Option<String>) + Send + Sync>;

/// `clients` closed loops for `seconds`, each picking a URL and token from `pick`.
async fn load(clients: u64, seconds: u64, pick: Pick) -> Outcome {
    load_with_think(clients, seconds, pick, None).await
}

/// A pause of `mean` ± 50 %, from a cheap per-client generator (xorshift).
fn think_time(mean: Duration, state: &mut u64) -> Duration {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    let unit = (*state % 10_000) as f64 / 10_000.0;
    mean.mul_f64(0.5 + unit)
}

/// Like [`load`]; with `think`, each client pauses that long (± 50 %) after every answer
/// and starts at a random point of its first pause, as virtual users do.
async fn load_with_think(
    clients: u64,
    seconds: u64,
    pick: Pick,
    think: Option<Duration>,
) -> Outcome {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients as usize)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let counter = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|n| {
            let client = client.clone();
            let pick = pick.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let (mut latencies, mut errors, mut hits) = (Vec::new(), 0_u64, 0_u64);
                let mut rng = 0x9E37_79B9_7F4A_7C15_u64 ^ (n + 1).wrapping_mul(0x2545_F491);
                if let Some(mean) = think {
                    tokio::time::sleep(think_time(mean, &mut rng).mul_f64(0.66)).await;
                }
                while Instant::now() < deadline {
                    let (url, token) = pick(counter.fetch_add(1, Ordering::Relaxed));
                    let mut req = client.get(&url);
                    if let Some(token) = token {
                        req = req.bearer_auth(token);
                    }
                    let started = Instant::now();
                    match req.send().await {
                        Ok(res) if res.status().is_success() => {
                            if res.headers().get("x-cache").is_some_and(|v| v == "hit") {
                                hits += 1;
                            }
                            let _ = res.bytes().await;
                            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                        }
                        _ => errors += 1,
                    }
                    if let Some(mean) = think {
                        tokio::time::sleep(think_time(mean, &mut rng)).await;
                    }
                }
                (latencies, errors, hits)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let (mut errors, mut hits) = (0, 0);
    for t in tasks {
        let (l, e, h) = t.await.unwrap();
        latencies.extend(l);
        errors += e;
        hits += h;
    }
    latencies.sort_by(f64::total_cmp);
    Outcome {
        rps: latencies.len() as f64 / seconds as f64,
        p50: percentile(&latencies, 0.5),
        p95: percentile(&latencies, 0.95),
        p99: percentile(&latencies, 0.99),
        errors,
        hits,
        total: latencies.len() as u64,
    }
}

async fn load_data(db: &sea_orm::DatabaseConnection) {
    let started = Instant::now();
    for statement in [
        format!(
            "INSERT INTO timeline_follows (follower_id, followee_id, active, changed_at)
             SELECT f, ((f + k * 97) % {MEMBERS}) + 1, true, now()
               FROM generate_series(1, {MEMBERS}) f, generate_series(1, {FOLLOWS_EACH}) k
             ON CONFLICT DO NOTHING"
        ),
        format!(
            "INSERT INTO timeline_posts (post_id, author_id, title, excerpt, image_ids, version,
                 like_count, likes_at, comment_count, comments_at, created_at, updated_at)
             SELECT i, (i % {MEMBERS}) + 1, 'post ' || i, repeat('lorem ipsum ', 20), '{{}}', 1,
                    (random() * 40)::int, now(), (random() * 15)::int, now(),
                    now() - (i * interval '2592 milliseconds'), now()
               FROM generate_series(1, {POSTS}) i"
        ),
        "VACUUM ANALYZE timeline_posts".to_owned(),
        "ANALYZE timeline_follows".to_owned(),
    ] {
        db.execute_unprepared(&statement).await.unwrap();
    }
    println!(
        "loaded {MEMBERS} members × {FOLLOWS_EACH} follows and {POSTS} posts in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The inboxes, as the consumer would have filled them, for posts since `complete_since`
    // (the migration sets it 7 days back).
    let started = Instant::now();
    // Indexes dropped for the bulk load and built after it (sorting once beats 11 M random
    // b-tree inserts); the schema ends up as the migration made it.
    for statement in [
        "ALTER TABLE timeline_inbox DROP CONSTRAINT timeline_inbox_pkey",
        "DROP INDEX timeline_inbox_author",
        "INSERT INTO timeline_inbox (member_id, created_at, post_id, author_id)
         SELECT f.follower_id, p.created_at, p.post_id, p.author_id
           FROM timeline_follows f JOIN timeline_posts p ON p.author_id = f.followee_id
          WHERE f.active AND p.deleted_at IS NULL
            AND p.created_at >= (SELECT complete_since FROM timeline_inbox_state)",
        "ALTER TABLE timeline_inbox ADD PRIMARY KEY (member_id, created_at, post_id)",
        "CREATE INDEX timeline_inbox_author ON timeline_inbox (member_id, author_id)",
        "VACUUM ANALYZE timeline_inbox",
    ] {
        db.execute_unprepared(statement).await.unwrap();
    }
    let rows = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) AS n FROM timeline_inbox",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    println!(
        "filled {rows} inbox rows (7 days of posts × followers) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The `next_cursor` of a feed's first page as `token` sees it.
async fn next_cursor(url: String, token: &str) -> Option<String> {
    let page: serde_json::Value = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["next_cursor"].as_str().map(str::to_owned)
}

/// The cursor of each of the first `readers` readers' second follow-feed page.
async fn second_page_cursors(
    base: &str,
    tokens: &[String],
    readers: usize,
) -> std::collections::HashMap<usize, String> {
    let mut cursors = std::collections::HashMap::new();
    for (n, token) in tokens.iter().enumerate().take(readers) {
        if let Some(c) = next_cursor(format!("{base}/api/v1/timeline/following"), token).await {
            cursors.insert(n, c);
        }
    }
    cursors
}

fn row(name: &str, o: &Outcome, ceiling: Option<f64>) {
    let ratio = ceiling.map_or(String::from("—"), |c| {
        format!("{:.0} %", 100.0 * o.rps / c)
    });
    let hit = if o.total > 0 {
        format!("{:.0} %", 100.0 * o.hits as f64 / o.total as f64)
    } else {
        "—".into()
    };
    println!(
        "| {name} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {hit} | {ratio} |",
        o.rps, o.p50, o.p95, o.p99, o.errors
    );
}

#[tokio::main]
async fn main() {
    test_harness::install_crypto_provider();
    let seconds = var("BENCH_SECONDS", 15);
    let client_counts: Vec<u64> = std::env::var("BENCH_CLIENTS")
        .unwrap_or_else(|_| "600,2000".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let workers = var("BENCH_WORKERS", 2).to_string();

    let member_env = TestEnv::new()
        .postgres()
        .await
        .redis()
        .kafka()
        .set("LOG_LEVEL", "error");
    let member_config = member::Config::from_env(member_env.vars()).unwrap();
    let member_db = service_runtime::postgres::connect_lazy(&member_config.database).unwrap();
    let keys = Arc::new(KeyRing::new(
        member_db.clone(),
        &member_config.tokens.master_key,
        member_config.tokens.access_ttl,
        member_config.tokens.rotation,
    ));
    let member = member::start(member_config).await.unwrap();
    member_db
        .execute_unprepared(&format!(
            "INSERT INTO members (id, nickname) SELECT i, 'member' || i FROM generate_series(1, {MEMBERS}) i"
        ))
        .await
        .unwrap();
    let env = TestEnv::new()
        .postgres()
        .await
        .redis()
        .kafka()
        .set("MEMBER_URL", member.base_url())
        .set("SERVER_WORKERS", workers.clone())
        .set("LOG_LEVEL", "error")
        .set("DATABASE_MAX_CONNECTIONS", "32")
        .set("REDIS_POOL_SIZE", "64");
    let config = timeline::Config::from_env(env.vars()).unwrap();
    let db = service_runtime::postgres::connect_lazy(&config.database).unwrap();
    service_runtime::postgres::migrate::<timeline::Migrator>(&db)
        .await
        .unwrap();
    load_data(&db).await;
    let service = timeline::start(config).await.unwrap();
    let base = service.base_url();

    // Tokens for 1 000 readers (signing is not what we measure).
    let mut tokens = Vec::new();
    for id in 1..=1000_i64 {
        tokens.push(
            keys.access_token(id, MemberRole::User, Duration::from_secs(900))
                .await
                .unwrap(),
        );
    }
    let tokens = Arc::new(tokens);

    // The ceiling: a bare handler, same worker count, a JSON body of a page's size.
    let ceiling_body = Arc::new("x".repeat(9000));
    let ceiling_server = HttpServer::new(move || {
        let body = ceiling_body.clone();
        App::new().route(
            "/",
            web::get().to(move || {
                let body = body.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(format!("{{\"items\":\"{body}\"}}"))
                }
            }),
        )
    })
    .workers(workers.parse().unwrap())
    .bind(("127.0.0.1", 0))
    .unwrap();
    let ceiling_url = format!("http://{}/", ceiling_server.addrs()[0]);
    let ceiling_handle = ceiling_server.run();
    let ceiling_stop = ceiling_handle.handle();
    tokio::spawn(ceiling_handle);

    println!(
        "\n| scenario | req/s | p50 ms | p95 ms | p99 ms | errors | cache hits | of ceiling |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for &clients in &client_counts {
        let url = ceiling_url.clone();
        let ceiling = load(clients, seconds, Arc::new(move |_| (url.clone(), None))).await;
        row(
            &format!("bare actix handler, {clients} clients"),
            &ceiling,
            None,
        );

        // Follow feed, cached: 1 000 readers, first pages warm in Redis.
        let (b, t) = (base.clone(), tokens.clone());
        let warm = Arc::new(move |i: u64| {
            let n = (i % 1000) as usize;
            (format!("{b}/api/v1/timeline/following"), Some(t[n].clone()))
        });
        let _ = load(50, 3, warm.clone()).await;
        let cached = load(clients, seconds, warm).await;
        row(
            &format!("following, cached, {clients} clients"),
            &cached,
            Some(ceiling.rps),
        );

        // Follow feed, uncached: second pages are never cached (same query shape as a miss).
        let (b, t) = (base.clone(), tokens.clone());
        let cursors = Arc::new(second_page_cursors(&b, &t, 200).await);
        let second_pages: Pick = Arc::new(move |i: u64| {
            let n = (i % 200) as usize;
            let c = cursors.get(&n).cloned().unwrap_or_default();
            (
                format!("{b}/api/v1/timeline/following?cursor={c}"),
                Some(t[n].clone()),
            )
        });
        // Author profiles warm (the page itself is never cached).
        let _ = load(50, 3, second_pages.clone()).await;
        let uncached = load(clients, seconds, second_pages).await;
        row(
            &format!("following, uncached, {clients} clients"),
            &uncached,
            Some(ceiling.rps),
        );

        let (b, t) = (base.clone(), tokens.clone());
        let popular = load(
            clients,
            seconds,
            Arc::new(move |i: u64| {
                (
                    format!("{b}/api/v1/timeline/popular"),
                    Some(t[(i % 1000) as usize].clone()),
                )
            }),
        )
        .await;
        row(
            &format!("popular 24h, cached, {clients} clients"),
            &popular,
            Some(ceiling.rps),
        );
    }
    // Virtual users with think time (the seed's anchor's way): uncached follow feed (cursor
    // pages of 1 000 readers) and cached first pages.
    let virtual_users: Vec<u64> = std::env::var("BENCH_VIRTUAL_USERS")
        .unwrap_or_else(|_| "600,2000".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let think = Duration::from_millis(var("BENCH_THINK_MS", 1000));
    let cursors = Arc::new(second_page_cursors(&base, &tokens, 1000).await);
    for &users in &virtual_users {
        // Warm what an uncached page still reads from caches (author profiles), as the
        // cached scenario does: the page itself is never cached.
        let (b, t, c) = (base.clone(), tokens.clone(), cursors.clone());
        let _ = load(
            50,
            3,
            Arc::new(move |i: u64| {
                let n = (i % 1000) as usize;
                let cursor = c.get(&n).cloned().unwrap_or_default();
                (
                    format!("{b}/api/v1/timeline/following?cursor={cursor}"),
                    Some(t[n].clone()),
                )
            }),
        )
        .await;
        let (b, t, c) = (base.clone(), tokens.clone(), cursors.clone());
        let uncached = load_with_think(
            users,
            seconds.max(10),
            Arc::new(move |i: u64| {
                let n = (i % 1000) as usize;
                let cursor = c.get(&n).cloned().unwrap_or_default();
                (
                    format!("{b}/api/v1/timeline/following?cursor={cursor}"),
                    Some(t[n].clone()),
                )
            }),
            Some(think),
        )
        .await;
        row(
            &format!(
                "following, uncached, {users} virtual users ({} ms think)",
                think.as_millis()
            ),
            &uncached,
            None,
        );
        let (b, t) = (base.clone(), tokens.clone());
        let cached = load_with_think(
            users,
            seconds.max(10),
            Arc::new(move |i: u64| {
                let n = (i % 1000) as usize;
                (format!("{b}/api/v1/timeline/following"), Some(t[n].clone()))
            }),
            Some(think),
        )
        .await;
        row(
            &format!(
                "following, cached, {users} virtual users ({} ms think)",
                think.as_millis()
            ),
            &cached,
            None,
        );
    }

    // Popular uncached: the ranking query itself (a cursor page is never cached).
    let (b, t) = (base.clone(), tokens.clone());
    let cursor = next_cursor(format!("{b}/api/v1/timeline/popular"), &t[0])
        .await
        .unwrap_or_default();
    let popular_uncached = load(
        8,
        seconds,
        Arc::new(move |i: u64| {
            (
                format!("{b}/api/v1/timeline/popular?cursor={cursor}"),
                Some(t[(i % 1000) as usize].clone()),
            )
        }),
    )
    .await;
    row(
        "popular 24h, uncached (ranking query), 8 clients",
        &popular_uncached,
        None,
    );
    ceiling_stop.stop(true).await;
    service.stop().await;
    member.stop().await;
}
