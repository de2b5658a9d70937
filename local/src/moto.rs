//! Starting (or reusing) `moto_server`, the local AWS that serves DynamoDB, KMS and SQS on one port.
//!
//! `make run` reuses a moto already listening on 127.0.0.1:4566; tests start their own on a free port
//! (or share the one `make test` starts, named by `HUB_TEST_AWS_ENDPOINT`). A moto this module started
//! is killed when its handle drops, and the kernel kills it if this process dies first.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// How long a fresh moto may take to answer (Python imports are slow on 2 cores).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error("moto_server was not found: run `pip install -r requirements-dev.txt` (or `make run`, which does)")]
    NotInstalled,
    #[error("could not start moto_server: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("moto_server did not answer on {endpoint} within {seconds} s (see its log at {log})")]
    NotReady {
        endpoint: String,
        seconds: u64,
        log: String,
    },
    #[error("no free local port: {0}")]
    NoPort(#[source] std::io::Error),
}

/// A running moto: its endpoint, and the child process when this handle started it.
pub struct Moto {
    endpoint: String,
    child: Option<Child>,
}

impl Moto {
    /// Reuses a moto answering on `127.0.0.1:port`, or starts one there.
    pub async fn reuse_or_start(port: u16, log_dir: &std::path::Path) -> Result<Moto, MotoError> {
        let endpoint = format!("http://127.0.0.1:{port}");
        if is_ready(&endpoint).await {
            return Ok(Moto {
                endpoint,
                child: None,
            });
        }
        Self::start_on(port, log_dir).await
    }

    /// Starts a private moto on a free port (tests).
    pub async fn start_on_free_port(log_dir: &std::path::Path) -> Result<Moto, MotoError> {
        let port = free_port().map_err(MotoError::NoPort)?;
        Self::start_on(port, log_dir).await
    }

    /// Connects to a moto somebody else runs (no process is owned).
    pub fn external(endpoint: impl Into<String>) -> Moto {
        Moto {
            endpoint: endpoint.into(),
            child: None,
        }
    }

    async fn start_on(port: u16, log_dir: &std::path::Path) -> Result<Moto, MotoError> {
        let binary = find_moto_server().ok_or(MotoError::NotInstalled)?;
        std::fs::create_dir_all(log_dir).map_err(MotoError::Spawn)?;
        let log_path = log_dir.join(format!("moto-{port}.log"));
        let log = std::fs::File::create(&log_path).map_err(MotoError::Spawn)?;
        let log_err = log.try_clone().map_err(MotoError::Spawn)?;
        let mut command = Command::new(&binary);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true);
        die_with_parent(&mut command);
        let child = command.spawn().map_err(MotoError::Spawn)?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let moto = Moto {
            endpoint: endpoint.clone(),
            child: Some(child),
        };
        let started = Instant::now();
        while started.elapsed() < STARTUP_TIMEOUT {
            if is_ready(&endpoint).await {
                return Ok(moto);
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        Err(MotoError::NotReady {
            endpoint,
            seconds: STARTUP_TIMEOUT.as_secs(),
            log: log_path.display().to_string(),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether this handle owns the moto process (and stops it on drop / [`Moto::stop`]).
    pub fn owns_process(&self) -> bool {
        self.child.is_some()
    }

    pub async fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

/// Whether moto answers its management API at `endpoint`.
pub async fn is_ready(endpoint: &str) -> bool {
    let Some(address) = endpoint.strip_prefix("http://") else {
        return false;
    };
    let Ok(Ok(mut stream)) = tokio::time::timeout(
        Duration::from_secs(1),
        tokio::net::TcpStream::connect(address),
    )
    .await
    else {
        return false;
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request =
        format!("GET /moto-api/ HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut head)).await,
        Ok(Ok(_)) if head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200")
    )
}

/// The real `moto_server` executable: the pyenv shim is a wrapper whose pid is not the server's.
fn find_moto_server() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("MOTO_SERVER_BIN") {
        return Some(PathBuf::from(path));
    }
    let via_pyenv = std::process::Command::new("pyenv")
        .args(["which", "moto_server"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| PathBuf::from(s.trim()));
    if let Some(path) = via_pyenv.filter(|p| p.is_file()) {
        return Some(path);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("moto_server"))
            .find(|candidate| candidate.is_file())
    })
}

pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal.
    unsafe {
        command.pre_exec(|| {
            if libc_prctl_pdeathsig() != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

#[cfg(target_os = "linux")]
fn libc_prctl_pdeathsig() -> i32 {
    const PR_SET_PDEATHSIG: i32 = 1;
    const SIGKILL: u64 = 9;
    extern "C" {
        fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
    }
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and no pointers.
    unsafe { prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) }
}
