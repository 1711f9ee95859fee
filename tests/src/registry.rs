//! A real OCI registry (the Debian package `docker-registry`, the CNCF distribution
//! registry) on a free loopback port, its storage in a temporary directory. It dies with
//! the test, panics included; a missing binary fails the test (scripts/test.sh installs it).

use crate::anvil::free_port;
use crate::process::die_with_parent;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = "/usr/bin/docker-registry";

/// A running registry; stopped (and its storage removed) when dropped.
pub struct Registry {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry and returns once it accepts connections.
    pub fn start() -> Self {
        assert!(
            std::path::Path::new(BINARY).is_file(),
            "{BINARY} is missing: install the Debian package docker-registry (scripts/test.sh does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let mut registry = Self {
            child: None,
            port: free_port(),
            dir,
        };
        registry.start_again();
        registry
    }

    /// Starts it again on the same port and storage after [`Registry::stop`].
    pub fn start_again(&mut self) {
        let config = self.dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{}\n",
                self.storage().display(),
                self.port
            ),
        )
        .unwrap();
        let mut command = Command::new(BINARY);
        command
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        die_with_parent(&mut command);
        let mut child = command.spawn().expect("starting docker-registry");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.answers_as_a_registry() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("docker-registry exited at start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    /// Whether `GET /v2/` on the port is answered by a distribution registry.
    fn answers_as_a_registry(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut answer = String::new();
        stream
            .write_all(b"GET /v2/ HTTP/1.0\r\n\r\n")
            .and_then(|()| stream.read_to_string(&mut answer))
            .is_ok()
            && answer
                .to_ascii_lowercase()
                .contains("docker-distribution-api-version")
    }

    /// Stops it (as a registry that went away).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `127.0.0.1:PORT`, as in `oci://127.0.0.1:PORT/repo:tag`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}
