//! Against the real Redis.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ratelimit::{Decision, Limit, RateLimiter, Reservation};
use service_runtime::redis::{RedisSettings, pool};
use test_harness::TestEnv;

fn limiter() -> RateLimiter {
    let env = TestEnv::new().redis();
    let settings = RedisSettings::from_env(env.vars()).unwrap();
    RateLimiter::new(pool(&settings).unwrap(), &settings.key_prefix)
}

#[tokio::test]
async fn the_eleventh_hit_in_a_window_is_limited_with_a_retry_after() {
    let limiter = limiter();
    let limit = Limit::per_minute("login:ip", 10);
    for i in 0..10 {
        assert_eq!(
            limiter.hit(&limit, "1.2.3.4").await.unwrap(),
            Decision::Allowed { remaining: 9 - i }
        );
    }
    match limiter.hit(&limit, "1.2.3.4").await.unwrap() {
        Decision::Limited { retry_after } => {
            assert!(
                retry_after > Duration::from_secs(55) && retry_after <= Duration::from_secs(60)
            );
        }
        other => panic!("expected a limit, got {other:?}"),
    }
    // Other subjects have their own windows.
    assert!(matches!(
        limiter.hit(&limit, "5.6.7.8").await.unwrap(),
        Decision::Allowed { .. }
    ));
}

#[tokio::test]
async fn concurrent_hits_never_exceed_the_limit() {
    let limiter = limiter();
    let limit = Limit::per_minute("burst", 25);
    let hits = (0..200).map(|_| {
        let limiter = limiter.clone();
        let limit = limit.clone();
        tokio::spawn(async move { limiter.hit(&limit, "m1").await.unwrap() })
    });
    let mut allowed = 0;
    for hit in hits {
        if matches!(hit.await.unwrap(), Decision::Allowed { .. }) {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 25);
}

#[tokio::test]
async fn the_window_slides() {
    let limiter = limiter();
    let limit = Limit {
        scope: "short".into(),
        max: 2,
        window: Duration::from_millis(300),
    };
    assert!(matches!(
        limiter.hit(&limit, "s").await.unwrap(),
        Decision::Allowed { .. }
    ));
    assert!(matches!(
        limiter.hit(&limit, "s").await.unwrap(),
        Decision::Allowed { .. }
    ));
    assert!(matches!(
        limiter.hit(&limit, "s").await.unwrap(),
        Decision::Limited { .. }
    ));
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(matches!(
        limiter.hit(&limit, "s").await.unwrap(),
        Decision::Allowed { .. }
    ));
}

#[tokio::test]
async fn a_reservation_counts_in_every_limit_or_in_none() {
    let limiter = limiter();
    let narrow = Limit::per_minute("pair", 2);
    let wide = Limit::per_minute("client", 3);
    for _ in 0..2 {
        assert!(matches!(
            limiter
                .reserve(&[(&narrow, "a"), (&wide, "c")])
                .await
                .unwrap(),
            Reservation::Admitted(_)
        ));
    }
    // "a" is full: refused, and the wide limit is not charged for the refusal.
    match limiter
        .reserve(&[(&narrow, "a"), (&wide, "c")])
        .await
        .unwrap()
    {
        Reservation::Limited { retry_after } => {
            assert!(
                retry_after > Duration::from_secs(55) && retry_after <= Duration::from_secs(60)
            );
        }
        other => panic!("expected a limit, got {other:?}"),
    }
    assert!(matches!(
        limiter
            .reserve(&[(&narrow, "b"), (&wide, "c")])
            .await
            .unwrap(),
        Reservation::Admitted(_)
    ));
    assert!(matches!(
        limiter.reserve(&[(&wide, "c")]).await.unwrap(),
        Reservation::Limited { .. }
    ));
}

#[tokio::test]
async fn a_released_reservation_no_longer_counts() {
    let limiter = limiter();
    let limit = Limit::per_minute("failures", 2);
    for _ in 0..5 {
        let Reservation::Admitted(reserved) = limiter.reserve(&[(&limit, "s")]).await.unwrap()
        else {
            panic!("released hits must not fill the limit");
        };
        limiter.release(&reserved).await.unwrap();
    }
    for _ in 0..2 {
        assert!(matches!(
            limiter.reserve(&[(&limit, "s")]).await.unwrap(),
            Reservation::Admitted(_)
        ));
    }
    assert!(matches!(
        limiter.reserve(&[(&limit, "s")]).await.unwrap(),
        Reservation::Limited { .. }
    ));
    limiter.reset(&limit, "s").await.unwrap();
    assert!(matches!(
        limiter.reserve(&[(&limit, "s")]).await.unwrap(),
        Reservation::Admitted(_)
    ));
}

#[tokio::test]
async fn concurrent_reservations_never_exceed_the_limit() {
    let limiter = limiter();
    let limit = Limit::per_minute("burst-reserve", 10);
    let tries = (0..100).map(|_| {
        let limiter = limiter.clone();
        let limit = limit.clone();
        tokio::spawn(async move { limiter.reserve(&[(&limit, "m")]).await.unwrap() })
    });
    let mut admitted = 0;
    for attempt in tries {
        if matches!(attempt.await.unwrap(), Reservation::Admitted(_)) {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 10);
}
