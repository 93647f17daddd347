//! The platform endpoints, readiness per dependency, config errors and signals.

test_harness::platform_tests! {
    service: search,
    env: || async { test_harness::TestEnv::new().redis().kafka() },
    dependencies: [
        ("redis", "REDIS_URL", "redis://127.0.0.1:{port}"),
        ("kafka", "KAFKA_BROKERS", "127.0.0.1:{port}"),
    ],
}
