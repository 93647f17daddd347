//! search's index against PostgreSQL full-text search on the same generated posts, in one run.
//!
//! - Generates BENCH_POSTS (default 1 000 000) posts, mixed Korean / English / both, words
//!   drawn with a skewed (Zipf-like) distribution, created over the last year; seed fixed.
//! - tantivy: every post through `SearchIndex::apply` (the consumer's path: version check,
//!   both analyzers), committed every 100 000; rate, index size on disk, process RSS.
//! - PostgreSQL: the same rows by COPY into a table with a generated
//!   `to_tsvector('simple', title || ' ' || body)` column, then a GIN index; time and size.
//! - Queries: 1-word, 2-word and phrase sets, BENCH_CLIENTS (default 50) closed-loop clients
//!   for BENCH_SECONDS (default 10) per set and engine — search runs BENCH_SEARCH_WORKERS
//!   (default: 2 × cores, the service's SEARCH_MAX_CONCURRENT) queries at once, PostgreSQL gets a pool of
//!   BENCH_PG_POOL (default 2 × cores) connections; top 20 by relevance × recency with a
//!   highlighted snippet on both sides (tantivy: `search::run`, the API's code; PostgreSQL:
//!   `ts_rank` × the same recency factor, `ts_headline`). Also how many posts each engine
//!   matches per query (recall differs on Korean: 'simple' has no idea of particles).
//!
//! `cargo bench -p search --bench index` (PostgreSQL from TEST_DATABASE_URL, default local)
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use search::index::{Change, PostDoc, SearchIndex};
use search::query::QueryBuilder;
use search::search::Ranking;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, Executor};

const EN: &[&str] = &[
    "the",
    "post",
    "feed",
    "kafka",
    "stream",
    "event",
    "service",
    "cache",
    "redis",
    "query",
    "search",
    "index",
    "timeline",
    "member",
    "follow",
    "like",
    "comment",
    "image",
    "upload",
    "server",
    "client",
    "request",
    "response",
    "error",
    "retry",
    "circuit",
    "breaker",
    "queue",
    "waiting",
    "room",
    "token",
    "login",
    "password",
    "profile",
    "photo",
    "travel",
    "coffee",
    "morning",
    "evening",
    "weekend",
    "music",
    "movie",
    "book",
    "reading",
    "writing",
    "code",
    "rust",
    "java",
    "spring",
    "database",
    "postgres",
    "mongodb",
    "cluster",
    "node",
    "pod",
    "deploy",
    "release",
    "canary",
    "rollout",
    "metric",
    "trace",
    "log",
    "latency",
    "throughput",
    "benchmark",
    "memory",
    "disk",
    "network",
    "packet",
    "protocol",
    "message",
    "producer",
    "consumer",
    "partition",
    "offset",
    "commit",
    "transaction",
    "outbox",
    "relay",
    "topic",
    "schema",
    "migration",
    "version",
    "update",
    "delete",
    "create",
    "read",
    "write",
    "lock",
    "thread",
    "async",
    "future",
    "runtime",
    "worker",
    "pool",
    "connection",
    "socket",
    "http",
    "json",
    "cursor",
    "page",
    "limit",
    "score",
    "rank",
    "popular",
    "recent",
    "friend",
    "family",
    "dinner",
    "lunch",
    "breakfast",
    "recipe",
    "kitchen",
    "garden",
    "flower",
    "tree",
    "river",
    "mountain",
    "ocean",
    "beach",
    "city",
    "street",
    "train",
    "bus",
    "airport",
    "flight",
    "hotel",
    "running",
    "cycling",
    "swimming",
    "football",
    "baseball",
    "game",
    "player",
    "team",
    "coach",
    "school",
    "student",
    "teacher",
    "lesson",
    "exam",
    "homework",
    "project",
    "meeting",
    "office",
    "weather",
    "rain",
    "snow",
    "sunny",
    "cloudy",
    "winter",
    "summer",
    "spring",
    "autumn",
    "happy",
    "tired",
    "busy",
    "quiet",
    "loud",
    "fast",
    "slow",
    "simple",
    "complex",
    "idempotent",
    "duplicate",
    "dedup",
    "window",
    "session",
    "cookie",
    "header",
    "gateway",
    "proxy",
    "route",
];

const KO: &[&str] = &[
    "카프카",
    "스트림",
    "이벤트",
    "서비스",
    "캐시",
    "검색",
    "색인",
    "타임라인",
    "회원",
    "팔로우",
    "좋아요",
    "댓글",
    "이미지",
    "업로드",
    "서버",
    "클라이언트",
    "요청",
    "응답",
    "오류",
    "재시도",
    "대기열",
    "토큰",
    "로그인",
    "비밀번호",
    "프로필",
    "사진",
    "여행",
    "커피",
    "아침",
    "저녁",
    "주말",
    "음악",
    "영화",
    "책",
    "독서",
    "글쓰기",
    "코드",
    "데이터베이스",
    "클러스터",
    "배포",
    "릴리스",
    "카나리",
    "지표",
    "추적",
    "로그",
    "지연",
    "처리량",
    "메모리",
    "디스크",
    "네트워크",
    "메시지",
    "생산자",
    "소비자",
    "파티션",
    "오프셋",
    "커밋",
    "트랜잭션",
    "중복",
    "제거",
    "버전",
    "수정",
    "삭제",
    "작성",
    "조회",
    "스레드",
    "비동기",
    "연결",
    "소켓",
    "커서",
    "페이지",
    "점수",
    "순위",
    "인기",
    "최신",
    "친구",
    "가족",
    "저녁밥",
    "점심",
    "요리",
    "부엌",
    "정원",
    "꽃",
    "나무",
    "강",
    "산",
    "바다",
    "해변",
    "도시",
    "거리",
    "기차",
    "버스",
    "공항",
    "비행기",
    "호텔",
    "달리기",
    "자전거",
    "수영",
    "축구",
    "야구",
    "게임",
    "선수",
    "학교",
    "학생",
    "선생님",
    "수업",
    "시험",
    "숙제",
    "프로젝트",
    "회의",
    "사무실",
    "날씨",
    "비",
    "눈",
    "겨울",
    "여름",
    "봄",
    "가을",
    "행복",
    "피곤",
    "조용",
    "빠른",
    "느린",
    "간단",
    "복잡",
    "카프리",
    "섬",
    "동굴",
    "개발자",
];

const PARTICLES: &[&str] = &[
    "", "", "", "은", "는", "이", "가", "을", "를", "에", "에서", "의", "로", "와", "과", "도",
    "만",
];

fn var(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Skewed pick: low indices far more often (roughly Zipf).
fn pick<'a>(rng: &mut StdRng, words: &[&'a str]) -> &'a str {
    let u: f64 = rng.random();
    words[((u * u * u) * words.len() as f64) as usize % words.len()]
}

fn word(rng: &mut StdRng, korean: bool) -> String {
    if korean {
        format!(
            "{}{}",
            pick(rng, KO),
            PARTICLES[rng.random_range(0..PARTICLES.len())]
        )
    } else {
        pick(rng, EN).to_owned()
    }
}

struct Generated {
    id: i64,
    title: String,
    body: String,
    created_at: DateTime<Utc>,
}

fn generate(n: u64) -> Vec<Generated> {
    let mut rng = StdRng::seed_from_u64(42);
    let now = Utc::now().timestamp();
    (1..=n as i64)
        .map(|id| {
            let mix: f64 = rng.random();
            let (ko_share, len) = if mix < 0.4 {
                (1.0, rng.random_range(12..40))
            } else if mix < 0.8 {
                (0.0, rng.random_range(15..45))
            } else {
                (0.5, rng.random_range(12..40))
            };
            let words = |count: usize, rng: &mut StdRng| {
                (0..count)
                    .map(|_| {
                        let k = rng.random::<f64>() < ko_share;
                        word(rng, k)
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let title_len = rng.random_range(2..6);
            let title = words(title_len, &mut rng);
            let body = words(len, &mut rng);
            let created_at = Utc
                .timestamp_opt(now - rng.random_range(0..365 * 86_400), 0)
                .unwrap();
            Generated {
                id,
                title,
                body,
                created_at,
            }
        })
        .collect()
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        dir_size(&p)
                    } else {
                        e.metadata().map(|m| m.len()).unwrap_or(0)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Outcome {
    qps: f64,
    p50: f64,
    p99: f64,
}

fn summarize(mut latencies: Vec<f64>, seconds: f64) -> Outcome {
    latencies.sort_by(|a, b| a.total_cmp(b));
    Outcome {
        qps: latencies.len() as f64 / seconds,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
    }
}

/// The query sets: (name, tantivy query text, PostgreSQL tsquery function and text).
fn query_sets(posts: &[Generated]) -> Vec<(&'static str, Vec<String>)> {
    let mut rng = StdRng::seed_from_u64(7);
    let mid = |rng: &mut StdRng, words: &[&str]| -> String {
        words[rng.random_range(5..words.len().min(60))].to_owned()
    };
    let one: Vec<String> = (0..40)
        .map(|i| {
            if i % 2 == 0 {
                mid(&mut rng, EN)
            } else {
                mid(&mut rng, KO)
            }
        })
        .collect();
    let two: Vec<String> = (0..40)
        .map(|i| {
            if i % 2 == 0 {
                format!("{} {}", mid(&mut rng, EN), mid(&mut rng, EN))
            } else {
                format!("{} {}", mid(&mut rng, KO), mid(&mut rng, KO))
            }
        })
        .collect();
    // Two adjacent words of real posts, so phrases exist.
    let phrase: Vec<String> = (0..40)
        .map(|_| {
            let p = &posts[rng.random_range(0..posts.len())];
            let words: Vec<&str> = p.body.split(' ').collect();
            let at = rng.random_range(0..words.len() - 1);
            format!("{} {}", words[at], words[at + 1])
        })
        .collect();
    vec![("1-word", one), ("2-word", two), ("phrase", phrase)]
}

#[tokio::main]
async fn main() {
    let n = var("BENCH_POSTS", 1_000_000);
    let seconds = var("BENCH_SECONDS", 10);
    let clients = var("BENCH_CLIENTS", 50) as usize;
    let admin = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    // The service runs at most 2 × cores searches at once; PostgreSQL gets the usual pool of
    // 2 × cores connections (more only adds context switches on the same cores).
    let workers = var("BENCH_SEARCH_WORKERS", 2 * cores as u64) as usize;
    let pg_pool = var("BENCH_PG_POOL", 2 * cores as u64) as usize;
    println!("{clients} clients; search runs {workers} at once; PostgreSQL pool {pg_pool}");
    let ranking = Ranking {
        half_life_hours: 72.0,
        weight: 1.0,
    };

    println!("generating {n} posts…");
    let started = Instant::now();
    let posts = generate(n);
    let text_bytes: usize = posts.iter().map(|p| p.title.len() + p.body.len()).sum();
    println!(
        "generated in {:.1} s ({:.0} MiB of text)",
        started.elapsed().as_secs_f64(),
        text_bytes as f64 / 1048576.0
    );

    // ---- tantivy ----
    // BENCH_INDEX_DIR keeps the index afterwards (to start the service on it).
    let keep = std::env::var("BENCH_INDEX_DIR").ok();
    let dir = keep.clone().map_or_else(
        || std::env::temp_dir().join(format!("search-bench-{}", std::process::id())),
        std::path::PathBuf::from,
    );
    let index = SearchIndex::open(&dir, 256 * 1024 * 1024).unwrap();
    let rss_before = rss_mib();
    let started = Instant::now();
    for (i, p) in posts.iter().enumerate() {
        index
            .apply(&Change::Upsert(PostDoc {
                post_id: p.id,
                author_id: p.id % 10_000,
                title: Some(p.title.clone()),
                body: p.body.clone(),
                image_ids: Vec::new(),
                version: 1,
                like_count: 0,
                comment_count: 0,
                created_at: p.created_at,
                updated_at: p.created_at,
            }))
            .unwrap();
        if (i + 1) % 100_000 == 0 {
            index.commit().unwrap();
        }
    }
    index.commit().unwrap();
    let tantivy_secs = started.elapsed().as_secs_f64();
    let tantivy_size = dir_size(&dir);
    let rss_indexed = rss_mib();
    println!(
        "tantivy: indexed {n} in {tantivy_secs:.1} s = {:.0} posts/s; index {:.0} MiB; RSS {rss_before:.0} → {rss_indexed:.0} MiB",
        n as f64 / tantivy_secs,
        tantivy_size as f64 / 1048576.0
    );

    // ---- PostgreSQL ----
    let db_name = format!("dft_bench_search_{}", std::process::id());
    let mut admin_conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    admin_conn
        .execute(sqlx::AssertSqlSafe(format!(
            "drop database if exists {db_name}"
        )))
        .await
        .unwrap();
    admin_conn
        .execute(sqlx::AssertSqlSafe(format!("create database {db_name}")))
        .await
        .unwrap();
    let db_url = match admin.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{db_name}"),
        None => admin.clone(),
    };
    let pool = PgPoolOptions::new()
        .max_connections(pg_pool as u32)
        .connect(&db_url)
        .await
        .unwrap();
    pool.execute(
        "create table posts (id bigint primary key, title text, body text not null,
           created_at timestamptz not null,
           tsv tsvector generated always as (to_tsvector('simple', coalesce(title, '') || ' ' || body)) stored)",
    )
    .await
    .unwrap();
    let started = Instant::now();
    {
        let mut conn = pool.acquire().await.unwrap();
        let mut copy = conn
            .copy_in_raw("copy posts (id, title, body, created_at) from stdin")
            .await
            .unwrap();
        let mut chunk = String::with_capacity(8 << 20);
        for p in &posts {
            chunk.push_str(&format!(
                "{}\t{}\t{}\t{}\n",
                p.id,
                p.title,
                p.body,
                p.created_at.to_rfc3339()
            ));
            if chunk.len() > (4 << 20) {
                copy.send(chunk.as_bytes()).await.unwrap();
                chunk.clear();
            }
        }
        copy.send(chunk.as_bytes()).await.unwrap();
        copy.finish().await.unwrap();
    }
    let load_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    pool.execute("create index posts_tsv on posts using gin (tsv)")
        .await
        .unwrap();
    pool.execute("analyze posts").await.unwrap();
    let gin_secs = started.elapsed().as_secs_f64();
    let (table_size, gin_size): (i64, i64) =
        sqlx::query_as("select pg_total_relation_size('posts'), pg_relation_size('posts_tsv')")
            .fetch_one(&pool)
            .await
            .unwrap();
    println!(
        "postgres: COPY {n} in {load_secs:.1} s (tsvector computed on insert) + GIN in {gin_secs:.1} s = {:.0} posts/s; table+indexes {:.0} MiB (GIN {:.0} MiB)",
        n as f64 / (load_secs + gin_secs),
        table_size as f64 / 1048576.0,
        gin_size as f64 / 1048576.0
    );

    // ---- queries ----
    let sets = query_sets(&posts);
    drop(posts);
    let live = index.live();
    let searcher = live.searcher();
    let fields = live.fields;
    println!();
    println!("| queries | engine | matches/query (mean) | q/s | p50 ms | p99 ms |");
    println!("|---|---|---:|---:|---:|---:|");
    let mut ratios = Vec::new();
    for (name, queries) in &sets {
        // Recall: how many posts each engine matches.
        let mut builder = QueryBuilder::new(fields);
        let tantivy_matches: usize = queries
            .iter()
            .map(|q| {
                let text = if *name == "phrase" {
                    format!("\"{q}\"")
                } else {
                    q.clone()
                };
                let query = builder.build(&text).unwrap();
                searcher
                    .search(&*query, &tantivy::collector::Count)
                    .unwrap()
            })
            .sum();
        let tsquery = if *name == "phrase" {
            "phraseto_tsquery"
        } else {
            "plainto_tsquery"
        };
        let mut pg_matches = 0i64;
        for q in queries {
            let (c,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "select count(*) from posts where tsv @@ {tsquery}('simple', $1)"
            )))
            .bind(q)
            .fetch_one(&pool)
            .await
            .unwrap();
            pg_matches += c;
        }

        // tantivy: `clients` concurrent requests, run as the API runs them: at most
        // `workers` searches at once (SEARCH_MAX_CONCURRENT, default 2 × cores), FIFO.
        let stop = Arc::new(AtomicBool::new(false));
        let permits = Arc::new(tokio::sync::Semaphore::new(workers));
        let started = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|c| {
                let (stop, searcher, queries, permits) = (
                    stop.clone(),
                    searcher.clone(),
                    queries.clone(),
                    permits.clone(),
                );
                let phrase = *name == "phrase";
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut i = c;
                    while !stop.load(Ordering::Relaxed) {
                        let q = &queries[i % queries.len()];
                        let text = if phrase {
                            format!("\"{q}\"")
                        } else {
                            q.clone()
                        };
                        let t = Instant::now();
                        let permit = permits.clone().acquire_owned().await.unwrap();
                        let searcher = searcher.clone();
                        tokio::task::spawn_blocking(move || {
                            let query = QueryBuilder::new(fields).build(&text).unwrap();
                            search::search::run(
                                &searcher,
                                &fields,
                                query,
                                Utc::now(),
                                0,
                                20,
                                ranking,
                            )
                            .unwrap();
                            drop(permit);
                        })
                        .await
                        .unwrap();
                        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                        i += clients;
                    }
                    latencies
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(task.await.unwrap());
        }
        let t = summarize(latencies, started.elapsed().as_secs_f64());
        let rss_query = rss_mib();

        // PostgreSQL: `clients` connections, same shape of answer.
        let sql = format!(
            "select id, ts_headline('simple', coalesce(title, '') || ' ' || body, q) from (
               select id, title, body, q from posts, {tsquery}('simple', $1) q
               where tsv @@ q
               order by ts_rank(tsv, q) * (1 + 0.5 ^ (extract(epoch from (now() - created_at)) / 259200)) desc
               limit 20) hits"
        );
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|c| {
                let (stop, pool, queries, sql) =
                    (stop.clone(), pool.clone(), queries.clone(), sql.clone());
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut i = c;
                    while !stop.load(Ordering::Relaxed) {
                        let q = &queries[i % queries.len()];
                        let t = Instant::now();
                        let _rows: Vec<(i64, String)> =
                            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                                .bind(q)
                                .fetch_all(&pool)
                                .await
                                .unwrap();
                        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                        i += clients;
                    }
                    latencies
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(task.await.unwrap());
        }
        let p = summarize(latencies, started.elapsed().as_secs_f64());
        println!(
            "| {name} | tantivy (search) | {:.0} | {:.0} | {:.2} | {:.2} |",
            tantivy_matches as f64 / queries.len() as f64,
            t.qps,
            t.p50,
            t.p99
        );
        println!(
            "| {name} | PostgreSQL GIN | {:.0} | {:.0} | {:.2} | {:.2} |",
            pg_matches as f64 / queries.len() as f64,
            p.qps,
            p.p50,
            p.p99
        );
        ratios.push((name, t.qps / p.qps, p.p99 / t.p99, rss_query));
    }
    println!();
    for (name, qps, p99, rss) in ratios {
        println!(
            "{name}: tantivy {qps:.1}× PostgreSQL's throughput, p99 {p99:.1}× lower; search process RSS {rss:.0} MiB"
        );
    }

    drop(pool);
    let _ = admin_conn
        .execute(sqlx::AssertSqlSafe(format!(
            "drop database if exists {db_name} with (force)"
        )))
        .await;
    drop(index);
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
