//! A private SecantusDB (MongoDB wire protocol) server for tests that stop and restart it —
//! the shared test server must never be disturbed. The launcher comes from `SECANTUS_BIN`
//! (set by the test command), else the dev-stack cache.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::closed_port;

pub struct MongoServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

fn secantus_bin() -> String {
    std::env::var("SECANTUS_BIN").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/dailyfeed/secantus-0.7.0b3/bin/secantusd-py")
    })
}

impl MongoServer {
    /// Starts a server on a free port with an empty data directory.
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("dailyfeed-mongo-{}", crate::unique_suffix()));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let mut server = Self {
            child: None,
            port: closed_port(),
            dir,
        };
        server.spawn().await;
        server
    }

    /// `mongodb://127.0.0.1:{port}/{database}`.
    pub fn uri(&self, database: &str) -> String {
        format!("mongodb://127.0.0.1:{}/{database}", self.port)
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("secantus.log"))
            .unwrap();
        let child = Command::new(secantus_bin())
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--storage-path")
            .arg(self.dir.join("data"))
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start SecantusDB ({e}); set SECANTUS_BIN"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "SecantusDB did not listen within 60 s (log: {})",
                self.dir.join("secantus.log").display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM and wait: the server shuts down cleanly, keeping its data.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status()
                    .await;
            }
            if tokio::time::timeout(Duration::from_secs(15), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }

    /// Starts the server again on the same port and data.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn().await;
    }
}

impl Drop for MongoServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
