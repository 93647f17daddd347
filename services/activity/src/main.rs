//! The activity service binary.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_runtime::run_main(
        activity::SERVICE,
        activity::Config::from_env,
        activity::start,
    )
    .await
}
