//! The platform endpoints, readiness per dependency, config errors and signals.

test_harness::platform_tests! {
    service: timeline,
    env: || async { test_harness::TestEnv::new().postgres().await.redis().kafka() },
    dependencies: [
        ("postgres", "DATABASE_URL", "postgres://postgres@127.0.0.1:{port}/x"),
        ("redis", "REDIS_URL", "redis://127.0.0.1:{port}"),
        ("kafka", "KAFKA_BROKERS", "127.0.0.1:{port}"),
    ],
}
