//! The image service binary.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_runtime::run_main(image::SERVICE, image::Config::from_env, image::start).await
}
