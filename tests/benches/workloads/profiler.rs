//! Optional profiling of each drive phase, to see where the CPU of nexum (or of a floor's
//! bare reader) goes. A profiled run's table is not comparable with a plain one: perf's
//! unwinding takes CPU of its own, and under callgrind every column but loss is valgrind's
//! too (nexum runs some 10× slower).
//!
//! - `NEXUM_BENCH_PERF=<dir>`: `perf record` samples the program through the drive (the
//!   drive alone, not the boot), one file per row;
//! - `NEXUM_BENCH_CALLGRIND=<dir>`: the program runs under valgrind's callgrind, which counts the
//!   instructions of the drive alone: the same count for the same work however busy the
//!   machine is, so two builds compare on a noisy machine.

use nexum_tests::process::{Process, die_with_parent};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long `callgrind_control` may take to reach valgrind.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);

/// Which profiler the environment asks for, and where its files go.
#[derive(Debug, Clone)]
pub enum Profiler {
    None,
    Perf(PathBuf),
    Callgrind(PathBuf),
}

/// A profiler attached to one drive.
pub enum Attached {
    None,
    Perf { perf: Process, out: PathBuf },
    Callgrind { pid: u32, out: PathBuf },
}

impl Profiler {
    pub fn from_env() -> Self {
        let folder = |var: &str| {
            let dir = PathBuf::from(std::env::var_os(var)?);
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {var}: {e}"));
            Some(dir)
        };
        match (folder("NEXUM_BENCH_CALLGRIND"), folder("NEXUM_BENCH_PERF")) {
            (Some(_), Some(_)) => {
                panic!("set NEXUM_BENCH_CALLGRIND or NEXUM_BENCH_PERF, not both")
            }
            (Some(dir), None) => {
                require(&["valgrind", "--version"]);
                require(&["callgrind_control", "--version"]);
                Self::Callgrind(dir)
            }
            (None, Some(dir)) => {
                require(&["perf", "--version"]);
                Self::Perf(dir)
            }
            (None, None) => Self::None,
        }
    }

    /// The command that starts `program` (nexum, or the bare reader) for the row `label`:
    /// under valgrind for callgrind, with counting off until the drive starts.
    pub fn command(&self, program: &Path, label: &str) -> Command {
        match self {
            Self::Callgrind(dir) => {
                let mut command = Command::new("valgrind");
                command
                    .arg("--tool=callgrind")
                    .arg("--instr-atstart=no")
                    // wasmtime writes the code it compiles: valgrind must see it change.
                    .arg("--smc-check=all-non-file")
                    .arg(format!(
                        "--callgrind-out-file={}",
                        profile_file(dir, label, "out").display()
                    ))
                    .arg(program);
                command
            }
            Self::None | Self::Perf(_) => Command::new(program),
        }
    }

    /// Starts profiling `pid` (the program, or valgrind running it) as the drive starts.
    pub fn attach(&self, pid: u32, label: &str) -> Attached {
        match self {
            Self::None => Attached::None,
            Self::Perf(dir) => {
                let out = profile_file(dir, label, "data");
                let mut command = Command::new("perf");
                command
                    .args(["record", "-e", "cpu-clock", "-F", "2000"])
                    .args(["--call-graph", "dwarf,32768", "-o"])
                    .arg(&out)
                    .args(["-p", &pid.to_string()]);
                // perf attaches within milliseconds; what it misses of a drive of seconds
                // does not change the profile.
                eprintln!("(profiling into {})", out.display());
                Attached::Perf {
                    perf: Process::spawn(command),
                    out,
                }
            }
            Self::Callgrind(dir) => {
                callgrind_control(pid, "on");
                let out = profile_file(dir, label, "out");
                Attached::Callgrind { pid, out }
            }
        }
    }
}

impl Attached {
    /// Stops profiling as the drive ends; callgrind's counts come once the program has ended.
    pub fn detach(self) -> Option<CallgrindCounts> {
        match self {
            Self::None => None,
            Self::Perf { mut perf, out } => {
                // perf ends by raising the SIGINT again: its status says nothing; its file
                // does.
                perf.signal("-INT");
                let written = std::fs::metadata(&out).is_ok_and(|m| m.len() > 0);
                if !written {
                    eprintln!(
                        "perf wrote no profile to {}:\n{}",
                        out.display(),
                        perf.output().join("\n")
                    );
                }
                None
            }
            Self::Callgrind { pid, out } => {
                callgrind_control(pid, "off");
                Some(CallgrindCounts(out))
            }
        }
    }
}

/// Where callgrind writes its counts as the program exits.
pub struct CallgrindCounts(PathBuf);

impl CallgrindCounts {
    /// The drive's instruction count, to print once the program has ended.
    pub fn report(&self) -> String {
        let out = &self.0;
        let counts = std::fs::read_to_string(out).unwrap_or_default();
        // `summary:` comes first and stays 0 when counting starts part-way; `totals:` holds
        // what was counted.
        let total = counts
            .lines()
            .find_map(|line| line.strip_prefix("totals:"))
            .map(str::trim)
            .unwrap_or("missing");
        format!("(instructions of the drive: {total}; {})", out.display())
    }
}

/// Turns callgrind's counting in `pid` on or off, within [`CONTROL_TIMEOUT`].
fn callgrind_control(pid: u32, instrumentation: &str) {
    let mut command = Command::new("callgrind_control");
    command
        .args(["-i", instrumentation, &pid.to_string()])
        .stdout(std::process::Stdio::null());
    die_with_parent(&mut command);
    let mut control = command.spawn().expect("running callgrind_control");
    let deadline = Instant::now() + CONTROL_TIMEOUT;
    let status = loop {
        if let Some(status) = control.try_wait().expect("waiting for callgrind_control") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = control.kill();
            let _ = control.wait();
            panic!(
                "callgrind_control -i {instrumentation} did not reach valgrind within \
                 {CONTROL_TIMEOUT:?} (it needs ptrace: see /proc/sys/kernel/yama/ptrace_scope)"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.success(),
        "callgrind_control -i {instrumentation} failed"
    );
}

/// Panics with a clear message, before any row starts, when `command` cannot run.
fn require(command: &[&str]) {
    let ran = Command::new(command[0])
        .args(&command[1..])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    assert!(
        ran.is_ok_and(|status| status.success()),
        "`{}` does not run, and the profiler asked for needs it",
        command.join(" ")
    );
}

/// The file in `dir` that holds the profile of the row `label`.
fn profile_file(dir: &Path, label: &str, extension: &str) -> PathBuf {
    let name: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    dir.join(format!("{name}.{extension}"))
}
