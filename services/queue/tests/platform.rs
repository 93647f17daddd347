//! The platform endpoints, readiness per dependency, config errors and signals.

test_harness::platform_tests! {
    service: queue,
    env: || async { test_harness::TestEnv::new().redis() },
    dependencies: [
        ("redis", "REDIS_URL", "redis://127.0.0.1:{port}"),
    ],
    production_secrets: ["QUEUE_ADMISSION_KEY"],
}
