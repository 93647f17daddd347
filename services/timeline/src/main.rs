//! The timeline service binary: `serve` (default), `migrate`, `backfill`.

use service_runtime::Command;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_runtime::run_main_with_commands(
        timeline::SERVICE,
        timeline::Config::from_env,
        timeline::start,
        vec![
            Command::new(
                "migrate",
                "apply pending database migrations with DATABASE_URL, then exit",
                timeline::migrate,
            ),
            Command::new(
                "backfill",
                "rebuild the read model from content and member, then exit",
                |config| async move { timeline::backfill(config).await.map(|_| ()) },
            ),
        ],
    )
    .await
}
