//! Two gateway replicas sharing one Redis namespace: admissions reach SSE clients on the
//! other replica, and the scheduler runs once per tick across both.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Member, Sse, call, gateway, lineup, redis_conn};
use redis::AsyncCommands;
use reqwest::Method;

#[tokio::test]
async fn admission_on_one_instance_reaches_an_sse_client_on_the_other_within_a_second() {
    let member = Member::start().await;
    let env = member
        .gateway_env()
        .set("ALLOWED_IN_MAX_CAPACITY", "1")
        // Position ticks are slow here: only the pub/sub push can deliver in time.
        .set("QUEUE_SSE_POSITION_INTERVAL_MS", "10000")
        .set("QUEUE_ABANDON_AFTER_SECONDS", "60");
    let a = gateway(&env).await;
    let b = gateway(&env).await;
    let (one, two) = (member.token(1).await, member.token(2).await);
    lineup(&a.base_url(), &one).await;
    assert_eq!(lineup(&a.base_url(), &two).await["status"], "WAITING");
    let mut sse = Sse::open(&b.base_url(), &two).await;
    assert_eq!(
        sse.next(Duration::from_secs(1)).await.unwrap().name,
        "position"
    );
    // Let B's subscription settle, then free the slot on A.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let res = call(
        Method::DELETE,
        format!("{}/api/v1/queue/allowed-in-token", a.base_url()),
        Some(&one),
    )
    .await;
    assert_eq!(res.status(), 200);
    let event = sse
        .next_named("admitted", Duration::from_secs(1))
        .await
        .expect("admitted on B within 1 s");
    let latency = started.elapsed();
    assert!(latency < Duration::from_secs(1), "{latency:?}");
    assert!(event.data["admission_token"].as_str().is_some());
    a.stop().await;
    b.stop().await;
    member.stop().await;
}

#[tokio::test]
async fn two_instances_run_one_scheduler_tick_per_interval() {
    let member = Member::start().await;
    let env = member
        .gateway_env()
        .set("QUEUE_SCHEDULER_INTERVAL_MS", "200")
        .set("ALLOWED_IN_MAX_CAPACITY", "1")
        .set("ALLOWED_IN_DURATION_SECONDS", "2");
    let a = gateway(&env).await;
    let b = gateway(&env).await;
    let stats = format!("{}queue:scheduler:stats", member.prefix());
    let mut redis = redis_conn().await;
    let start: i64 = redis.hget(&stats, "runs").await.unwrap_or(0);
    // Meanwhile the scheduler does its job: 1 expires and 2 is admitted, exactly once.
    let (one, two) = (member.token(1).await, member.token(2).await);
    lineup(&a.base_url(), &one).await;
    lineup(&b.base_url(), &two).await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let runs: i64 = redis.hget(&stats, "runs").await.unwrap();
    let ran = runs - start;
    // 3 s / 200 ms = 15 ticks; both replicas running would be ~30.
    assert!((11..=18).contains(&ran), "{ran} runs in 3 s");
    let status = common::status(&b.base_url(), &two).await;
    assert_eq!(status["status"], "ADMITTED", "{status}");
    a.stop().await;
    b.stop().await;
    member.stop().await;
}
