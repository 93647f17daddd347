//! The queue service binary.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_runtime::run_main(queue::SERVICE, queue::Config::from_env, queue::start).await
}
