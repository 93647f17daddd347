//! The blacklist's local mirror against the real Redis: it loads what was revoked before it
//! listened, learns new revocations from other processes at once, and stops trusting itself
//! (checks go to Redis) when a revocation was announced but its message never came.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use auth::Blacklist;
use service_runtime::redis::{RedisSettings, pool};
use test_harness::TestEnv;

fn settings() -> RedisSettings {
    let env = TestEnv::new().redis();
    RedisSettings::from_env(env.vars()).unwrap()
}

async fn eventually(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn in_an_hour() -> i64 {
    chrono::Utc::now().timestamp() + 3600
}

#[tokio::test]
async fn the_mirror_loads_old_revocations_and_hears_new_ones() {
    let redis = settings();
    let pool = pool(&redis).unwrap();
    // Another process (member) revokes; this one verifies.
    let issuer = Blacklist::new(pool.clone(), &redis.key_prefix);
    issuer.add("before", in_an_hour()).await.unwrap();

    let mirror = Blacklist::mirrored(pool.clone(), &redis.key_prefix, &redis.url).unwrap();
    eventually("in sync", Duration::from_secs(3), async || mirror.in_sync()).await;
    assert!(mirror.contains("before").await.unwrap(), "loaded at start");
    assert!(!mirror.contains("other").await.unwrap());

    let started = Instant::now();
    issuer.add("after", in_an_hour()).await.unwrap();
    eventually("revocation heard", Duration::from_secs(1), async || {
        mirror.contains("after").await.unwrap()
    })
    .await;
    assert!(mirror.in_sync(), "answered from the local copy");
    println!("revocation reached the mirror in {:?}", started.elapsed());

    // A revocation through the mirrored blacklist itself counts at once, here.
    mirror.add("mine", in_an_hour()).await.unwrap();
    assert!(mirror.contains("mine").await.unwrap());
}

#[tokio::test]
async fn a_lost_revocation_message_makes_the_mirror_resync() {
    let redis = settings();
    let pool = pool(&redis).unwrap();
    let mirror = Blacklist::mirrored(pool.clone(), &redis.key_prefix, &redis.url).unwrap();
    eventually("in sync", Duration::from_secs(3), async || mirror.in_sync()).await;

    // A revocation whose message is lost: the key and the sequence, no PUBLISH.
    let mut conn = pool.get().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg(contracts::redis_keys::access_blacklist(
            &redis.key_prefix,
            "lost",
        ))
        .arg(1)
        .arg("EX")
        .arg(3600)
        .query_async(&mut *conn)
        .await
        .unwrap();
    let _: i64 = redis::cmd("INCR")
        .arg(format!("{}auth:revocations:seq", redis.key_prefix))
        .query_async(&mut *conn)
        .await
        .unwrap();
    // Whatever the mirror's state, the answer is right: from Redis while out of sync, from
    // the reloaded copy after.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left_sync = false;
    while Instant::now() < deadline {
        let synced = mirror.in_sync();
        left_sync |= !synced;
        let revoked = mirror.contains("lost").await.unwrap();
        assert!(revoked || synced, "out of sync and still said not revoked");
        if left_sync && mirror.in_sync() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(left_sync, "the gap in the sequence was noticed");
    eventually("back in sync", Duration::from_secs(5), async || {
        mirror.in_sync()
    })
    .await;
    assert!(
        mirror.contains("lost").await.unwrap(),
        "the reload found it"
    );
}

#[tokio::test]
async fn without_redis_the_mirror_is_never_trusted() {
    let redis = settings();
    let gone = format!("redis://127.0.0.1:{}", test_harness::closed_port());
    let pool = pool(&RedisSettings {
        url: gone.clone(),
        ..redis.clone()
    })
    .unwrap();
    let mirror = Blacklist::mirrored(pool, &redis.key_prefix, &gone).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!mirror.in_sync());
    assert!(
        mirror.contains("anything").await.is_err(),
        "an unknown answer, never a silent no"
    );
}
