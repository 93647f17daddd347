//! The platform endpoints, readiness per dependency, config errors and signals.

test_harness::platform_tests! {
    service: activity,
    env: || async { test_harness::TestEnv::new().redis().kafka().mongodb() },
    dependencies: [
        ("mongodb", "MONGODB_URI", "mongodb://127.0.0.1:{port}/x"),
        ("redis", "REDIS_URL", "redis://127.0.0.1:{port}"),
        ("kafka", "KAFKA_BROKERS", "127.0.0.1:{port}"),
    ],
    production_secrets: ["CURSOR_SECRET", "SERVICE_IDENTITY_KEY"],
}
