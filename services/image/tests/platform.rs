//! The platform endpoints, readiness per dependency, config errors and signals.

mod common;

test_harness::platform_tests! {
    service: image,
    env: common::image_env,
    dependencies: [
        ("postgres", "DATABASE_URL", "postgres://postgres@127.0.0.1:{port}/x"),
        ("redis", "REDIS_URL", "redis://127.0.0.1:{port}"),
        ("kafka", "KAFKA_BROKERS", "127.0.0.1:{port}"),
        ("object_store", "S3_ENDPOINT", "http://127.0.0.1:{port}"),
    ],
}

#[tokio::test]
async fn migrate_applies_the_schema_and_exits() {
    let env = test_harness::TestEnv::new().postgres().await;
    test_harness::platform::check_migrate_subcommand(
        env!("CARGO_BIN_EXE_image"),
        &env,
        &["event_outbox", "images"],
    )
    .await;
}

#[tokio::test]
async fn starts_with_nothing_but_its_defaults_on_a_local_directory() {
    let dir = std::env::temp_dir().join(format!("dft-images-{}", test_harness::unique_suffix()));
    let env = test_harness::TestEnv::new()
        .postgres()
        .await
        .redis()
        .kafka()
        .set("IMAGE_FS_ROOT", dir.to_string_lossy());
    let app = image::start(image::Config::from_env(env.vars()).expect("config"))
        .await
        .expect("start");
    test_harness::platform::wait_ready(&app.base_url()).await;
    assert!(dir.is_dir(), "the root is created");
    app.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}
