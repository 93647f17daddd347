//! The platform endpoints, readiness per dependency, config errors and signals.

test_harness::platform_tests! {
    service: member,
    env: || async { test_harness::TestEnv::new().postgres().await.redis().kafka() },
    dependencies: [
        ("postgres", "DATABASE_URL", "postgres://postgres@127.0.0.1:{port}/x"),
        ("redis", "REDIS_URL", "redis://127.0.0.1:{port}"),
        ("kafka", "KAFKA_BROKERS", "127.0.0.1:{port}"),
    ],
    production_secrets: ["JWT_MASTER_KEY", "CURSOR_SECRET", "SERVICE_IDENTITY_PEERS"],
}

#[tokio::test]
async fn migrate_applies_the_schema_and_exits() {
    let env = test_harness::TestEnv::new().postgres().await;
    test_harness::platform::check_migrate_subcommand(
        env!("CARGO_BIN_EXE_member"),
        &env,
        &["event_outbox"],
    )
    .await;
}

#[tokio::test]
async fn access_tokens_longer_lived_than_verifiers_accept_stop_startup() {
    let long = test_harness::TestEnv::new().set("ACCESS_TOKEN_TTL_SECONDS", "1800");
    let err = member::Config::from_env(long.vars()).expect_err("ttl above the maximum");
    assert_eq!(err.var, "ACCESS_TOKEN_TTL_SECONDS", "{err}");
    let both = long.set("JWT_MAX_LIFETIME_SECONDS", "1800");
    assert!(member::Config::from_env(both.vars()).is_ok());
}
