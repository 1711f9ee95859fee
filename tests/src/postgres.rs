//! A real PostgreSQL server for the tests of nodes sharing a store, and a fresh database
//! per test.
//!
//! `scripts/test.sh` starts one server for the whole run (`nexum-test-postgres`) and passes
//! its address in `NEXUM_TEST_POSTGRES_URL`; a test binary run on its own starts one for
//! itself. The server runs from the system's PostgreSQL (`initdb` and `postgres`, found
//! under `/usr/lib/postgresql/*/bin` or on `PATH`) in a temporary directory, on a loopback
//! port, as an unprivileged user when the tests run as root (PostgreSQL refuses root). A
//! missing PostgreSQL fails the test; it is never skipped.

use crate::anvil::free_port;
use crate::process::die_with_parent;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Where a server started for the whole run can be reached (`postgres://user@host:port`).
pub const URL_VARIABLE: &str = "NEXUM_TEST_POSTGRES_URL";

/// The user nexum's test server runs as when the tests run as root.
const UNPRIVILEGED: (u32, u32) = (65534, 65534);

/// A running server; stopped (killed) with the thread that started it.
pub struct PostgresServer {
    /// `postgres://nexum@127.0.0.1:PORT`, without a database.
    pub url: String,
    child: Child,
    port: u16,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

/// The directory holding `initdb` and `postgres`.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|dir| dir.join("initdb").exists());
    versions.sort();
    if let Some(newest) = versions.pop() {
        return newest;
    }
    let on_path = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    on_path
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| {
            panic!("PostgreSQL is not installed (no initdb): scripts/test.sh installs it (Debian package postgresql)")
        })
}

fn running_as_root() -> bool {
    // SAFETY: getuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    unsafe {
        libc::getuid() == 0
    }
}

/// `program` run as the unprivileged user when this process is root.
fn command_as_server_user(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("setpriv");
        // Changing user clears the parent-death signal set before exec; set it again.
        command
            .arg("--pdeathsig=KILL")
            .arg(format!("--reuid={}", UNPRIVILEGED.0))
            .arg(format!("--regid={}", UNPRIVILEGED.1))
            .arg("--clear-groups")
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

impl PostgresServer {
    /// Initialises a cluster in a temporary directory and starts it on a free loopback
    /// port; returns once it accepts connections. The server dies with the calling thread.
    pub fn start() -> Self {
        use std::os::unix::fs::PermissionsExt;
        let bin = bin_dir();
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
        if running_as_root() {
            std::os::unix::fs::chown(&data, Some(UNPRIVILEGED.0), Some(UNPRIVILEGED.1)).unwrap();
        }
        let initdb = command_as_server_user(&bin.join("initdb"))
            .args([
                "--auth=trust",
                "--username=nexum",
                "--encoding=UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("running initdb (setpriv is part of util-linux)");
        assert!(
            initdb.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let port = free_port();
        let child = spawn_server(&data, port);
        let url = format!("postgres://nexum@127.0.0.1:{port}");
        wait_ready(&url);
        Self {
            url,
            child,
            port,
            data,
            _dir: dir,
        }
    }

    /// Stops the server abruptly, as a crash would.
    pub fn kill(&mut self) {
        // Frozen session processes could not notice their server is gone.
        self.thaw();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server and its session processes where they stand (SIGSTOP) until the
    /// guard is dropped: connections stay open and nothing answers, as with a hung
    /// database or a network that drops everything.
    pub fn freeze(&self) -> Frozen<'_> {
        // The server first, so it starts no session process meanwhile.
        signal(self.child.id(), libc::SIGSTOP);
        for child in children_of(self.child.id()) {
            signal(child, libc::SIGSTOP);
        }
        Frozen(self)
    }

    /// Lets a frozen server go on.
    fn thaw(&self) {
        for child in children_of(self.child.id()) {
            signal(child, libc::SIGCONT);
        }
        signal(self.child.id(), libc::SIGCONT);
    }

    /// Starts a killed server again on the same port and data; returns once it accepts
    /// connections.
    pub fn start_again(&mut self) {
        // A killed postmaster's children linger a moment holding its shared memory, and a
        // new one exits at once while they do: start again until one accepts connections.
        let deadline = Instant::now() + Duration::from_secs(30);
        let admin = format!("{}/postgres", self.url);
        loop {
            self.child = spawn_server(&self.data, self.port);
            loop {
                let admin = admin.clone();
                if on_own_thread(move || postgres::Client::connect(&admin, postgres::NoTls).is_ok())
                {
                    return;
                }
                assert!(Instant::now() < deadline, "postgres did not start again");
                if self.child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// A frozen server ([`PostgresServer::freeze`]); it goes on when this is dropped, a
/// failing test included.
pub struct Frozen<'a>(&'a PostgresServer);

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        self.0.thaw();
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends `number` to process `pid`.
fn signal(pid: u32, number: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("a process id");
    #[allow(unsafe_code)]
    // SAFETY: kill(2) with a process id and a signal number touches no memory.
    unsafe {
        libc::kill(pid, number);
    }
}

/// The processes whose parent is `parent` (a server's session processes are its children,
/// each in a session of its own).
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // `pid (comm) state ppid …`: the command may hold spaces and parentheses.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

/// Starts `postgres` on `data` and `port`; it dies with the calling thread.
fn spawn_server(data: &Path, port: u16) -> Child {
    let mut server = command_as_server_user(&bin_dir().join("postgres"));
    server
        .arg("-D")
        .arg(data)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
        .arg(data)
        .args(["-c", "fsync=off", "-c", "max_connections=200"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    die_with_parent(&mut server);
    server.spawn().expect("starting postgres")
}

/// Waits until the server at `url` accepts connections (20 s at most).
fn wait_ready(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let admin = format!("{url}/postgres");
    loop {
        let admin = admin.clone();
        if on_own_thread(move || postgres::Client::connect(&admin, postgres::NoTls).is_ok()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "postgres at {url} did not become ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs blocking client code on a thread of its own (the `postgres` client must not run
/// inside an async runtime, and tests are async).
fn on_own_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(work)
        .join()
        .expect("database client thread")
}

/// The server of this test run: the one `scripts/test.sh` started, or one this process
/// starts on a thread that lives as long as the process.
pub fn server_url() -> String {
    static STARTED: OnceLock<String> = OnceLock::new();
    if let Ok(url) = std::env::var(URL_VARIABLE) {
        return url;
    }
    STARTED
        .get_or_init(|| {
            let (sender, url) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let server = PostgresServer::start();
                sender.send(server.url.clone()).unwrap();
                // The server lives while this thread does: until the process ends.
                loop {
                    std::thread::park();
                }
            });
            url.recv().expect("the PostgreSQL server started")
        })
        .clone()
}

/// A new, empty database on the test server; its connection string.
pub fn fresh_database() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = server_url();
    let name = format!(
        "nexum_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let admin = format!("{base}/postgres");
    let create = format!("CREATE DATABASE {name}");
    on_own_thread(move || {
        let mut client =
            postgres::Client::connect(&admin, postgres::NoTls).expect("connecting to postgres");
        client
            .batch_execute(&create)
            .expect("creating a test database");
    });
    format!("{base}/{name}")
}

/// Runs `sql` on the database at `url` and returns the first column of each row as text.
pub fn query_texts(url: &str, sql: &str) -> Vec<String> {
    let (url, sql) = (url.to_string(), sql.to_string());
    on_own_thread(move || {
        let mut client =
            postgres::Client::connect(&url, postgres::NoTls).expect("connecting to postgres");
        client
            .simple_query(&sql)
            .expect("running a test query")
            .into_iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
                _ => None,
            })
            .collect()
    })
}

/// Every `(block, log index)` a `recorder` module recorded in the shared store at `url`,
/// in arrival order, repeats included.
pub fn recorded_logs(url: &str, module: &str) -> Vec<(u64, u64)> {
    query_texts(
        url,
        &format!(
            "SELECT convert_from(value, 'UTF8') FROM nexum_entries
             WHERE space = 'module:{module}' AND convert_from(key, 'UTF8') LIKE 'e/%' ORDER BY key"
        ),
    )
    .iter()
    .flat_map(|text| {
        let event: serde_json::Value = serde_json::from_str(text).expect("a recorded event");
        event["logs"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|l| (l["block"].as_u64().unwrap(), l["index"].as_u64().unwrap()))
    })
    .collect()
}

/// The block `module`'s (only) subscription has handled through, in the shared store.
pub fn handled_through(url: &str, module: &str) -> Option<u64> {
    cursors(url, module).first().copied()
}

/// The furthest block any subscription of `module` has handled through, in the shared
/// store (a block subscription records every block it handles).
pub fn furthest_handled(url: &str, module: &str) -> Option<u64> {
    cursors(url, module).into_iter().max()
}

/// The block each subscription of `module` has handled through, in the shared store.
fn cursors(url: &str, module: &str) -> Vec<u64> {
    query_texts(
        url,
        &format!(
            "SELECT convert_from(value, 'UTF8') FROM nexum_entries
             WHERE space = 'engine' AND convert_from(key, 'UTF8') LIKE 'cursor/{module}/%'"
        ),
    )
    .iter()
    .filter_map(|text| serde_json::from_str::<serde_json::Value>(text).ok())
    .filter_map(|cursor| cursor["number"].as_u64())
    .collect()
}

/// The keys of `module` in the shared store at `url` that start with `prefix`.
pub fn module_keys(url: &str, module: &str, prefix: &str) -> Vec<String> {
    query_texts(
        url,
        &format!(
            "SELECT convert_from(key, 'UTF8') FROM nexum_entries
             WHERE space = 'module:{module}' AND convert_from(key, 'UTF8') LIKE '{prefix}%' ORDER BY key"
        ),
    )
}
