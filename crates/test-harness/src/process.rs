//! A service binary running as a child process, for what only a real process shows:
//! startup failures, signals and exit codes.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct ServiceProcess {
    child: Child,
    pub base_url: String,
}

impl ServiceProcess {
    /// Starts `binary` with exactly `vars` (plus PATH) and waits for its `listening` log line.
    pub async fn start(binary: &str, vars: &HashMap<String, String>) -> Self {
        let mut child = Command::new(binary)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(vars)
            .env("LOG_LEVEL", "info")
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if json["message"] == "listening" {
                    return json["addr"].as_str().unwrap().to_owned();
                }
            }
            panic!("{binary} exited before listening");
        })
        .await
        .expect("service did not start listening within 30 s");
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let port = addr.rsplit(':').next().unwrap();
        Self {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Runs `binary` expecting it to fail at startup; returns (exit code, stderr).
    pub async fn fail_to_start(binary: &str, vars: &HashMap<String, String>) -> (i32, String) {
        Self::run_to_exit(binary, &[], vars).await
    }

    /// Runs `binary args…` to completion; returns (exit code, stderr).
    pub async fn run_to_exit(
        binary: &str,
        args: &[&str],
        vars: &HashMap<String, String>,
    ) -> (i32, String) {
        let output = tokio::time::timeout(
            Duration::from_secs(60),
            Command::new(binary)
                .args(args)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .envs(vars)
                .output(),
        )
        .await
        .expect("a misconfigured service must exit, not hang")
        .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Waits for the process to exit on its own; returns its exit code (-1: killed by a
    /// signal, e.g. an abort).
    pub async fn wait_exit(mut self, within: Duration) -> i32 {
        let exit = tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("process did not exit within {within:?}"))
            .unwrap();
        exit.code().unwrap_or(-1)
    }

    /// Sends `signal` (e.g. "TERM", "INT") and waits for the exit code.
    pub async fn signal_and_wait(mut self, signal: &str, within: Duration) -> i32 {
        let pid = self.child.id().unwrap();
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .await
            .unwrap();
        assert!(status.success(), "kill -{signal} {pid} failed");
        let exit = tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("process did not exit within {within:?} of SIG{signal}"))
            .unwrap();
        exit.code().unwrap_or(-1)
    }
}
