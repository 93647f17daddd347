//! A private tansu broker for tests that stop, restart or wipe the broker — the shared test
//! broker must never be disturbed. The binary comes from `TANSU_BIN` (set by the test
//! command), else the dev-stack cache.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::closed_port;

/// tansu's storage engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Durable; what consumers need (the memory engine stalls resumed consumers).
    Sqlite,
    /// In memory; the only engine whose DeleteTopics deletes just the named topics.
    Memory,
}

pub struct TansuBroker {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    engine: Engine,
}

fn tansu_bin() -> String {
    std::env::var("TANSU_BIN").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/dailyfeed/tansu-0.6.0/bin/tansu")
    })
}

impl TansuBroker {
    /// Starts a broker on a free port with an empty data directory.
    pub async fn start(engine: Engine) -> Self {
        let dir = std::env::temp_dir().join(format!("dailyfeed-tansu-{}", crate::unique_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut broker = Self {
            child: None,
            port: closed_port(),
            dir,
            engine,
        };
        broker.spawn().await;
        broker
    }

    /// A broker address nothing answers on yet; call [`Self::restart`] to bring it up.
    pub async fn down(engine: Engine) -> Self {
        let dir = std::env::temp_dir().join(format!("dailyfeed-tansu-{}", crate::unique_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            child: None,
            port: closed_port(),
            dir,
            engine,
        }
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let storage = match self.engine {
            Engine::Sqlite => "sqlite://tansu.db",
            Engine::Memory => "memory://tansu/",
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("tansu.log"))
            .unwrap();
        let child = Command::new(tansu_bin())
            .current_dir(&self.dir)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", storage])
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start tansu ({e}); set TANSU_BIN"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "tansu did not listen within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: the broker vanishes mid-whatever, as in a crash.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// SIGTERM and wait: the broker finishes what it is doing, as in a rolling restart.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status()
                    .await;
            }
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }

    /// Starts the broker again on the same port and data directory.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.spawn().await;
    }
}

impl Drop for TansuBroker {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Ok(log) = std::fs::read_to_string(self.dir.join("tansu.log"))
        {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "--- tansu.log (last 40 lines, newest first) ---\n{}",
                tail.join("\n")
            );
        }
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
