//! The search service binary.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_runtime::run_main(search::SERVICE, search::Config::from_env, search::start).await
}
