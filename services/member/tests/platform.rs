//! The platform endpoints, readiness per dependency, config errors and signals.

test_harness::platform_tests! {
    service: member,
    env: || async { test_harness::TestEnv::new().postgres().await.redis().kafka() },
    dependencies: [
        ("postgres", "DATABASE_URL", "postgres://postgres@127.0.0.1:{port}/x"),
        ("redis", "REDIS_URL", "redis://127.0.0.1:{port}"),
        ("kafka", "KAFKA_BROKERS", "127.0.0.1:{port}"),
    ],
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
async fn production_refuses_development_secrets_and_tokens_no_verifier_would_accept() {
    let env = test_harness::TestEnv::new().set("DAILYFEED_ENV", "production");
    let err = member::Config::from_env(env.vars()).expect_err("dev master key");
    assert_eq!(err.var, "JWT_MASTER_KEY", "{err}");
    let env = env.set(
        "JWT_MASTER_KEY",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    );
    let err = member::Config::from_env(env.vars()).expect_err("dev cursor secret");
    assert_eq!(err.var, "CURSOR_SECRET", "{err}");
    // In development the same defaults only warn.
    let dev = test_harness::TestEnv::new();
    assert!(member::Config::from_env(dev.vars()).is_ok());
    // Access tokens longer-lived than verifiers accept would lock everyone out.
    let long = test_harness::TestEnv::new().set("ACCESS_TOKEN_TTL_SECONDS", "1800");
    let err = member::Config::from_env(long.vars()).expect_err("ttl above the maximum");
    assert_eq!(err.var, "ACCESS_TOKEN_TTL_SECONDS", "{err}");
    let both = long.set("JWT_MAX_LIFETIME_SECONDS", "1800");
    assert!(member::Config::from_env(both.vars()).is_ok());
}
