//! The member service binary.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_runtime::run_main_with_migrations(
        member::SERVICE,
        member::Config::from_env,
        member::start,
        member::migrate,
    )
    .await
}
