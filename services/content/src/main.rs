//! The content service binary.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_runtime::run_main(content::SERVICE, content::Config::from_env, content::start).await
}
