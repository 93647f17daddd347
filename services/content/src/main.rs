//! The content service binary.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_runtime::run_main_with_migrations(
        content::SERVICE,
        content::Config::from_env,
        content::start,
        content::migrate,
    )
    .await
}
