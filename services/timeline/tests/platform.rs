//! The platform endpoints, readiness per dependency, config errors and signals.

test_harness::platform_tests! {
    service: timeline,
    env: || async { test_harness::TestEnv::new().postgres().await.redis().kafka() },
    dependencies: [
        ("postgres", "DATABASE_URL", "postgres://postgres@127.0.0.1:{port}/x"),
        ("redis", "REDIS_URL", "redis://127.0.0.1:{port}"),
        ("kafka", "KAFKA_BROKERS", "127.0.0.1:{port}"),
    ],
    production_secrets: ["CURSOR_SECRET", "SERVICE_IDENTITY_KEY"],
}

#[tokio::test]
async fn migrate_applies_the_schema_and_exits() {
    let env = test_harness::TestEnv::new().postgres().await;
    test_harness::platform::check_migrate_subcommand(
        env!("CARGO_BIN_EXE_timeline"),
        &env,
        &["timeline_posts", "timeline_follows"],
    )
    .await;
}
