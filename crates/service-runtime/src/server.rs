//! Building, running and stopping a service: the actix server with the runtime's routes, the
//! service's background tasks, and the shutdown sequence (not ready → stop accepting → drain
//! in-flight requests → stop tasks → exit).

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::time::Duration;

use actix_web::middleware::{ErrorHandlers, from_fn};
use actix_web::{App, HttpServer, web};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use utoipa::openapi::OpenApi as Document;
use utoipa_swagger_ui::SwaggerUi;

use crate::config::{
    ConfigError, EnvSource, HttpSettings, ProcessEnv, ServiceName, telemetry_from_env,
};
use crate::error::{json_config, path_config, query_config};
use crate::health::{self, Readiness};
use crate::{http, openapi};

/// Everything needed to start one service.
pub struct ServiceBuilder {
    service: ServiceName,
    http: HttpSettings,
    readiness: Readiness,
    document: Document,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl ServiceBuilder {
    pub fn new(service: ServiceName, http: HttpSettings) -> Self {
        crate::tls::install_crypto_provider();
        Self {
            service,
            http,
            readiness: Readiness::default(),
            document: Document::default(),
            shutdown: CancellationToken::new(),
            tasks: Vec::new(),
        }
    }

    pub fn readiness(mut self, readiness: Readiness) -> Self {
        self.readiness = readiness;
        self
    }

    /// The service's own OpenAPI document (the runtime adds its endpoints).
    pub fn openapi(mut self, document: Document) -> Self {
        self.document = document;
        self
    }

    /// A token cancelled when the service shuts down; background tasks watch it.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Runs `task` in the background until shutdown; it must return soon after the token
    /// from [`Self::shutdown_token`] is cancelled.
    pub fn spawn<F>(mut self, task: F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.push(tokio::spawn(task));
        self
    }

    /// Binds the listener and starts serving. `routes` registers the service's routes (and
    /// its `app_data`) on every worker.
    pub async fn start<F>(self, routes: F) -> std::io::Result<RunningService>
    where
        F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
    {
        // Install the metrics recorder before anything records (no-op if already installed).
        telemetry::prometheus();
        let listener = TcpListener::bind((self.http.host, self.http.port))?;
        let addr = listener.local_addr()?;
        let document = openapi::document(self.service, self.document);
        let readiness = self.readiness.clone();
        let max_body = self.http.max_body_bytes;

        let server = HttpServer::new(move || {
            App::new()
                .app_data(json_config(max_body))
                .app_data(query_config())
                .app_data(path_config())
                .app_data(web::Data::new(readiness.clone()))
                .wrap(ErrorHandlers::new().default_handler(http::normalize_error))
                .wrap(from_fn(http::observe))
                .route("/health/live", web::get().to(health::live))
                .route("/health/ready", web::get().to(health::ready))
                .route("/metrics", web::get().to(http::metrics))
                .service(
                    SwaggerUi::new("/swagger-ui/{_:.*}").url("/openapi.json", document.clone()),
                )
                .configure(routes.clone())
                .default_service(web::to(http::no_route))
        })
        .workers(self.http.workers)
        .shutdown_timeout(self.http.shutdown_timeout.as_secs())
        .disable_signals()
        .listen(listener)?
        .run();

        let handle = server.handle();
        let join = tokio::spawn(server);
        tracing::info!(service = %self.service, addr = %addr, "listening");
        Ok(RunningService {
            service: self.service,
            addr,
            handle,
            join,
            readiness: self.readiness,
            shutdown: self.shutdown,
            tasks: self.tasks,
            drain: self.http.shutdown_timeout,
        })
    }
}

/// A started service. Dropping it does not stop it; call [`RunningService::stop`].
pub struct RunningService {
    service: ServiceName,
    addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
    join: JoinHandle<std::io::Result<()>>,
    readiness: Readiness,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    drain: Duration,
}

impl RunningService {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:{port}` — where tests and local peers reach it.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    /// Graceful stop: readiness turns 503, the listener closes, in-flight requests get up to
    /// the drain timeout, then background tasks are cancelled and awaited.
    pub async fn stop(self) {
        tracing::info!(service = %self.service, "shutting down");
        self.readiness.mark_shutting_down();
        self.handle.stop(true).await;
        match self.join.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(error = %err, "server ended with an error"),
            Err(err) => tracing::error!(error = %err, "server task failed"),
        }
        self.shutdown.cancel();
        let tasks = futures_util::future::join_all(self.tasks);
        // Tasks get a short grace of their own after the HTTP drain (flush, commit offsets).
        let grace = Duration::from_secs(2).min(self.drain + Duration::from_millis(500));
        if tokio::time::timeout(grace, tasks).await.is_err() {
            tracing::warn!("background tasks did not stop within {grace:?}; abandoning them");
        }
        tracing::info!(service = %self.service, "stopped");
    }

    /// Serves until SIGTERM or SIGINT (or the server fails), then stops gracefully.
    pub async fn run_until_signal(mut self) -> std::io::Result<()> {
        tokio::select! {
            signal = shutdown_signal() => {
                tracing::info!(signal, "signal received");
                self.stop().await;
                Ok(())
            }
            ended = &mut self.join => {
                self.shutdown.cancel();
                match ended {
                    Ok(result) => result,
                    Err(err) => Err(std::io::Error::other(err)),
                }
            }
        }
    }
}

async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

/// The whole `main` of a service binary without a database schema: see
/// [`run_main_with_migrations`].
pub async fn run_main<C, L, S, Fut>(service: ServiceName, load: L, start: S) -> ExitCode
where
    L: FnOnce(&dyn EnvSource) -> Result<C, ConfigError>,
    S: FnOnce(C) -> Fut,
    Fut: Future<Output = anyhow::Result<RunningService>>,
{
    let no_migrations = |_: C| async { anyhow::bail!("this service has no database migrations") };
    run_main_with_migrations(service, load, start, no_migrations).await
}

/// A one-shot subcommand of a service binary (`migrate`, `backfill`, …): runs with the
/// loaded configuration and exits 0 on success, 1 on failure.
pub struct Command<C> {
    pub name: &'static str,
    pub help: &'static str,
    #[allow(clippy::type_complexity)]
    pub run: Box<dyn FnOnce(C) -> futures_util::future::BoxFuture<'static, anyhow::Result<()>>>,
}

impl<C> Command<C> {
    pub fn new<F, Fut>(name: &'static str, help: &'static str, run: F) -> Self
    where
        F: FnOnce(C) -> Fut + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        Self {
            name,
            help,
            run: Box::new(move |config| Box::pin(run(config))),
        }
    }
}

/// The whole `main` of a service binary: telemetry, config from the environment, then
/// `serve` (the default: start and serve until a signal) or `migrate` (apply migrations and
/// exit). Exit codes: 0 after a graceful stop or a successful migration, 2 for bad
/// configuration or usage, 1 for anything else.
pub async fn run_main_with_migrations<C, L, S, Fut, M, MFut>(
    service: ServiceName,
    load: L,
    start: S,
    migrate: M,
) -> ExitCode
where
    L: FnOnce(&dyn EnvSource) -> Result<C, ConfigError>,
    S: FnOnce(C) -> Fut,
    Fut: Future<Output = anyhow::Result<RunningService>>,
    M: FnOnce(C) -> MFut + 'static,
    MFut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let migrate = Command::new(
        "migrate",
        "apply pending database migrations with DATABASE_URL, then exit",
        migrate,
    );
    run_main_with_commands(service, load, start, vec![migrate]).await
}

/// [`run_main_with_migrations`] with any set of one-shot subcommands besides `serve`.
pub async fn run_main_with_commands<C, L, S, Fut>(
    service: ServiceName,
    load: L,
    start: S,
    commands: Vec<Command<C>>,
) -> ExitCode
where
    L: FnOnce(&dyn EnvSource) -> Result<C, ConfigError>,
    S: FnOnce(C) -> Fut,
    Fut: Future<Output = anyhow::Result<RunningService>>,
{
    crate::tls::install_crypto_provider();
    let mut usage = format!(
        "usage: <service> [serve | {}]\n  serve    run the HTTP service (the default)",
        commands
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(" | ")
    );
    for c in &commands {
        usage.push_str(&format!("\n  {:<8} {}", c.name, c.help));
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut commands = commands;
    let command = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["serve"] => None,
        ["-h" | "--help" | "help"] => {
            println!("{usage}");
            return ExitCode::SUCCESS;
        }
        [name] if commands.iter().any(|c| c.name == *name) => {
            let index = commands.iter().position(|c| c.name == *name).unwrap_or(0);
            Some(commands.swap_remove(index))
        }
        _ => {
            eprintln!("{service}: unexpected arguments {args:?}\n{usage}");
            return ExitCode::from(2);
        }
    };
    let telemetry_config = match telemetry_from_env(&ProcessEnv, service) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{service}: {err}");
            return ExitCode::from(2);
        }
    };
    let _guard = match telemetry::init(&telemetry_config) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("{service}: {err}");
            return ExitCode::from(2);
        }
    };
    let config = match load(&ProcessEnv) {
        Ok(config) => config,
        Err(err) => {
            tracing::error!(var = %err.var, error = %err, "invalid configuration");
            eprintln!("{service}: {err}");
            return ExitCode::from(2);
        }
    };
    if let Some(command) = command {
        let name = command.name;
        return match (command.run)(config).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                tracing::error!(error = format!("{err:#}"), command = name, "command failed");
                eprintln!("{service}: {name} failed: {err:#}");
                ExitCode::FAILURE
            }
        };
    }
    let running = match start(config).await {
        Ok(running) => running,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "failed to start");
            eprintln!("{service}: failed to start: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    let code = match running.run_until_signal().await {
        Ok(()) => 0,
        Err(err) => {
            tracing::error!(error = %err, "server failed");
            1
        }
    };
    // The server has stopped and background tasks had their grace. Exit now rather than
    // let the runtime's teardown wait on what was abandoned (a Kafka client closing against
    // a broker that is already gone blocks for as long as librdkafka likes).
    drop(_guard);
    std::process::exit(code)
}
