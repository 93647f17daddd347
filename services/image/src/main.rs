//! The image service binary.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_runtime::run_main_with_migrations(
        image::SERVICE,
        image::Config::from_env,
        image::start,
        image::migrate,
    )
    .await
}
