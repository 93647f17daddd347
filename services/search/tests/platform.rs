//! The platform endpoints, readiness per dependency, config errors and signals.

test_harness::platform_tests! {
    service: search,
    env: || async {
        let dir = std::env::temp_dir()
            .join(format!("dailyfeed-search-platform-{}", test_harness::unique_suffix()));
        test_harness::TestEnv::new()
            .redis()
            .kafka()
            .set("SEARCH_INDEX_DIR", dir.to_string_lossy())
            .set("SEARCH_BOOTSTRAP", "false")
            .set("SEARCH_WRITER_MEMORY_MB", "32")
    },
    dependencies: [
        ("redis", "REDIS_URL", "redis://127.0.0.1:{port}"),
        ("kafka", "KAFKA_BROKERS", "127.0.0.1:{port}"),
    ],
    production_secrets: ["CURSOR_SECRET", "SERVICE_IDENTITY_KEY"],
}
