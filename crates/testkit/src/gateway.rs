//! Runs the real `portcullis` binary on a config written to a temporary directory, listening on
//! a free port, and collects its log lines (JSON) for assertions.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

/// A running gateway process; killed when dropped.
#[derive(Debug)]
pub struct GatewayProcess {
    child: Child,
    pub addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    pub config_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl GatewayProcess {
    /// Starts `bin serve --config <yaml> --listen 127.0.0.1:0` and waits until it listens.
    pub async fn start(bin: &str, yaml: &str) -> anyhow::Result<Self> {
        Self::start_with_env(bin, yaml, &[]).await
    }

    pub async fn start_with_env(
        bin: &str,
        yaml: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let config_path = dir.path().join("portcullis.yaml");
        std::fs::write(&config_path, yaml)?;
        let mut child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config_path)
            .envs(env.iter().copied())
            .env_remove("PORTCULLIS_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {bin}"))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        for pipe in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Ok(mut l) = lines.lock() {
                        l.push(line);
                    }
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = lines.lock().ok().and_then(|l| {
                l.iter()
                    .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                    .find(|v| v["message"] == "listening")
                    .and_then(|v| v["addr"].as_str()?.parse::<SocketAddr>().ok())
            });
            if let Some(addr) = found {
                return Ok(Self {
                    child,
                    addr,
                    lines,
                    config_path,
                    _dir: dir,
                });
            }
            if let Some(status) = child.try_wait()? {
                let logs = lines.lock().map(|l| l.join("\n")).unwrap_or_default();
                bail!("the gateway exited ({status}) before listening:\n{logs}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("the gateway did not start listening within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every line the process wrote so far (stdout and stderr).
    pub fn logs(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The log lines that parse as JSON objects.
    pub fn json_logs(&self) -> Vec<Value> {
        self.logs()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until a JSON log line has `message == msg` (at least `count` of them).
    pub async fn wait_for_message(&self, msg: &str, count: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self
                .json_logs()
                .iter()
                .filter(|v| v["message"] == msg)
                .count()
                >= count
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// Waits (up to 5 s) for at least `count` access lines and returns every access line so far.
    pub async fn access_lines(&self, count: usize) -> Vec<Value> {
        self.wait_for_message("request finished", count, Duration::from_secs(5))
            .await;
        self.json_logs()
            .into_iter()
            .filter(|l| l["message"] == "request finished")
            .collect()
    }

    /// Replaces the config file.
    pub fn write_config(&self, yaml: &str) -> anyhow::Result<()> {
        write_atomically(&self.config_path, yaml)
    }

    /// Sends a signal (`TERM`, `INT`, `HUP`, `KILL`) with the system's `kill`.
    pub fn signal(&self, name: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -s {name} failed");
        }
        Ok(())
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
