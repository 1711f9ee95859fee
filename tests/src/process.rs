//! Child processes (`nexum`, a demo) that die with their test — when it passes, fails or
//! panics — and whose output a test waits on instead of sleeping.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many of its last lines a process shows when its test fails.
const TAIL_ON_FAILURE: usize = 80;

/// A running child whose stdout and stderr lines are collected as they come.
pub struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Arc<Mutex<Vec<String>>>,
    /// Where the next `wait_for` looks from: each wait takes a line at most once.
    next: usize,
}

/// Makes the child of `command` die with the thread that starts it, even when that thread
/// is killed outright (a test binary stopped with SIGKILL, a CI timeout) and no destructor
/// runs: Linux delivers it SIGKILL when its parent goes.
pub fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    #[allow(unsafe_code)]
    // SAFETY: `pre_exec` runs in the forked child before exec; prctl is async-signal-safe
    // and touches no memory of ours.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

impl Process {
    /// Starts `command` with stdout and stderr captured (stdin closed); it dies with the
    /// test, panics and kills included.
    pub fn spawn(mut command: Command) -> Self {
        die_with_parent(&mut command);
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("stdout is piped");
        let err = child.stderr.take().expect("stderr is piped");
        for stream in [
            Box::new(out) as Box<dyn std::io::Read + Send>,
            Box::new(err) as Box<dyn std::io::Read + Send>,
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stream)
                    .lines()
                    .map_while(Result::ok)
                {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Self {
            child,
            lines,
            seen: Arc::default(),
            next: 0,
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Every line printed so far.
    pub fn output(&self) -> Vec<String> {
        self.drain();
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn drain(&self) {
        // Also called from `drop` while a test panics: a poisoned lock must not panic again.
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        while let Ok(line) = self.lines.try_recv() {
            seen.push(line);
        }
    }

    /// Collects the remaining lines of an ended process: the readers stop when its pipes
    /// close (or, if a grandchild holds them open, after a bound).
    fn drain_to_end(&self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.lock().unwrap().push(line),
                Err(_) => break,
            }
        }
    }

    /// The first line printed so far that contains `needle`, if any.
    pub fn find(&self, needle: &str) -> Option<String> {
        self.output().into_iter().find(|l| l.contains(needle))
    }

    /// Takes the next line containing `needle` after the last one taken, if printed yet.
    fn take(&mut self, needle: &str) -> Option<String> {
        self.drain();
        let seen = self.seen.lock().unwrap();
        let at = seen[self.next..].iter().position(|l| l.contains(needle))?;
        let line = seen[self.next + at].clone();
        drop(seen);
        self.next += at + 1;
        Some(line)
    }

    /// Waits up to `timeout` for a line containing `needle` (after the line the previous
    /// wait returned) and returns it; panics with everything printed when none comes (or
    /// the process ends first).
    pub async fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.take(needle) {
                return line;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.drain_to_end();
                if let Some(line) = self.take(needle) {
                    return line;
                }
                panic!(
                    "the process ended ({status}) without printing {needle:?}:\n{}",
                    self.output().join("\n")
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "no line containing {needle:?} within {timeout:?}:\n{}",
                    self.output().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Like [`Process::wait_for`], but gives up at once when a line containing `failure`
    /// comes first (after the line the previous wait returned): a failed build is not
    /// waited out.
    pub async fn wait_for_unless(
        &mut self,
        needle: &str,
        failure: &str,
        timeout: Duration,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            self.drain();
            let failed = self.seen.lock().unwrap()[self.next..]
                .iter()
                .position(|l| l.contains(failure));
            let found = self.seen.lock().unwrap()[self.next..]
                .iter()
                .position(|l| l.contains(needle));
            match (found, failed) {
                (Some(at), failed) if failed.is_none_or(|f| at < f) => {
                    return self.take(needle).expect("the line was just seen");
                }
                (_, Some(_)) => panic!(
                    "{failure:?} before {needle:?}:\n{}",
                    self.output().join("\n")
                ),
                _ => {}
            }
            if Instant::now() >= deadline {
                panic!(
                    "no line containing {needle:?} within {timeout:?}:\n{}",
                    self.output().join("\n")
                );
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.drain_to_end();
                if self.find(failure).is_none()
                    && let Some(line) = self.take(needle)
                {
                    return line;
                }
                panic!(
                    "the process ended ({status}) without printing {needle:?} first:\n{}",
                    self.output().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits up to `timeout` until at least `count` lines printed so far (in any order,
    /// taken or not) contain every one of `needles`; returns those lines.
    pub fn wait_for_count(
        &mut self,
        needles: &[&str],
        count: usize,
        timeout: Duration,
    ) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let matching: Vec<String> = self
                .output()
                .into_iter()
                .filter(|l| needles.iter().all(|n| l.contains(n)))
                .collect();
            if matching.len() >= count {
                return matching;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.drain_to_end();
                panic!(
                    "the process ended ({status}) with {} of {count} lines containing {needles:?}:\n{}",
                    matching.len(),
                    self.output().join("\n")
                );
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                panic!(
                    "{} of {count} lines containing {needles:?} within {timeout:?}:\n{}",
                    matching.len(),
                    self.output().join("\n")
                );
            };
            if let Ok(line) = self
                .lines
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                self.seen.lock().unwrap().push(line);
            }
        }
    }

    /// The blocking form of [`Process::wait_for`], for tests without a runtime.
    pub fn wait_for_blocking(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.take(needle) {
                return line;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.drain_to_end();
                return self.take(needle).unwrap_or_else(|| {
                    panic!(
                        "the process ended ({status}) without printing {needle:?}:\n{}",
                        self.output().join("\n")
                    )
                });
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                panic!(
                    "no line containing {needle:?} within {timeout:?}:\n{}",
                    self.output().join("\n")
                );
            };
            if let Ok(line) = self
                .lines
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                self.seen.lock().unwrap().push(line);
            }
        }
    }

    /// Sends `signal` (such as `-TERM`) and waits up to a minute for the process to end
    /// (past that it is killed and the test fails).
    pub fn signal(&mut self, signal: &str) -> ExitStatus {
        let sent = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(sent.success(), "kill {signal} failed");
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("polling the process") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the process did not end within a minute of {signal}:\n{}",
                    self.output().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        self.drain_to_end();
        status
    }

    /// Sends `signal` without waiting.
    pub fn send(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(sent.success(), "kill {signal} failed");
    }

    /// Waits up to `timeout` for the process to end on its own.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("polling the process") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the process did not end within {timeout:?}:\n{}",
                self.output().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // A failing test shows what its processes said last: on CI that output is the
        // only trace of why a node did what it did.
        if std::thread::panicking() {
            let output = self.output();
            let from = output.len().saturating_sub(TAIL_ON_FAILURE);
            eprintln!(
                "--- last {} lines of process {} ---",
                output.len() - from,
                self.id()
            );
            for line in &output[from..] {
                eprintln!("{line}");
            }
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
