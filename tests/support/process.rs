//! The real `pharos` binary as a child process: started on an ephemeral port with its own data
//! directory, stopped with SIGTERM (graceful) or SIGKILL.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running `pharos serve`.
pub struct Pharos {
    child: Child,
    pub addr: SocketAddr,
    /// Everything printed on stdout up to and including the banner.
    pub banner: String,
    /// The admin key printed on first start, if one was.
    pub generated_key: Option<String>,
}

/// How to start the binary.
#[derive(Debug, Clone)]
pub struct Launch {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub admin_token: Option<String>,
    pub env: Vec<(String, String)>,
}

impl Launch {
    /// Defaults for a test: the data dir given, private targets allowed.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
            database_url: None,
            admin_token: None,
            env: Vec::new(),
        }
    }
}

impl Pharos {
    /// Starts the binary and waits (up to 60 s) for its banner.
    pub fn start(launch: &Launch) -> Pharos {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pharos"));
        cmd.arg("serve")
            .env("PHAROS_LISTEN", "127.0.0.1:0")
            .env("PHAROS_DATA_DIR", &launch.data_dir)
            .env("PHAROS_ALLOW_PRIVATE_TARGETS", "true")
            .env("PHAROS_SHUTDOWN_GRACE_SECS", "5")
            .env("RUST_LOG", "warn")
            .env_remove("PHAROS_ADMIN_TOKEN")
            .env_remove("PHAROS_DATABASE_URL")
            .env_remove("PHAROS_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(url) = &launch.database_url {
            cmd.env("PHAROS_DATABASE_URL", url);
        }
        if let Some(token) = &launch.admin_token {
            cmd.env("PHAROS_ADMIN_TOKEN", token);
        }
        for (k, v) in &launch.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn pharos");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut banner = String::new();
        let mut addr = None;
        let mut generated_key = None;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    panic!("pharos did not print its banner in time; got:\n{banner}");
                }
            };
            banner.push_str(&line);
            banner.push('\n');
            if let Some(a) = line.strip_prefix("Listening on http://") {
                addr = Some(a.trim().parse().expect("listen address"));
            }
            let trimmed = line.trim();
            if trimmed.starts_with("phk_") {
                generated_key = Some(trimmed.to_string());
            }
            if line.trim_start().starts_with("Data:") {
                break;
            }
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        Pharos {
            child,
            addr: addr.expect("banner names the address"),
            banner,
            generated_key,
        }
    }

    /// `http://addr` + path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends SIGTERM and waits (up to 60 s) for the process to exit.
    pub fn terminate(mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait(Duration::from_secs(60))
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("pharos did not exit within {limit:?} after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Pharos {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
