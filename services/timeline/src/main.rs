//! The timeline service binary.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_runtime::run_main_with_migrations(
        timeline::SERVICE,
        timeline::Config::from_env,
        timeline::start,
        timeline::migrate,
    )
    .await
}
