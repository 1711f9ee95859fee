//! nexum against Anvil workloads, as an operator runs it (`nexum run` with one
//! `latency-probe` module on blocks and on the test contract's logs), measured
//! from outside:
//!
//! - **loss**: blocks and logs the module did not receive;
//! - **latency from the node's own push**: a separate heads-only websocket connection
//!   timestamps each block as the node announces it; the module's log line for that block's
//!   event is timestamped by nexum as it arrives (one clock, one machine);
//! - **CPU of the drive phase** (user + system, from the first transaction until the module
//!   has the last block; a line on stderr splits it into user and system time, and counts
//!   the context switches of nexum's threads, voluntary and involuntary), **peak RSS** of the drive phase and of the whole run (boot
//!   compiles the module: a fresh state dir), what was resident at the drive's end split
//!   into anonymous memory (heap, stacks, module memory) and file pages (nexum's own code
//!   and libraries: clean, the kernel can drop them), and **threads** of the nexum process;
//! - the 3,000-log workload again with a module that reads the chain's head three times on
//!   each block (a keeper checking state per block): its logs wait for those reads; once
//!   more compiled with Cranelift instead of the default compiler (Winch on x86-64); and
//!   both drives with two runtime workers (`TOKIO_WORKER_THREADS=2`), where nexum starts
//!   one for its one module;
//! - **300 empty blocks** at the same pace, on the same subscriptions: what a block costs
//!   before any log (the node's push, following the chain, the module's block event, and
//!   the commit that records it delivered);
//! - **the machine's floor** for the 3,000-log, 12,000-log and empty-block workloads: a
//!   bare reader (this binary, run again as a process of its own, one thread) that takes
//!   each head from a websocket subscription, reads its number and hash, prints a line and
//!   appends a record to a file; on the log workloads it then reads the block's logs with
//!   `eth_getLogs` by block hash on a second connection, parses them as nexum does, prints a
//!   second line and appends a second record; nothing else (no cross-check, no sandbox, no
//!   store). Its CPU is what that bare work costs in the same hour, to read nexum's rows
//!   against (the machine's speed moves several times between hours): each floor runs right
//!   before nexum's rows of its workload, which give their CPU as a multiple of it too;
//! - **backfill**: 100,000 logs already on chain, a fresh module from `start_block`, time
//!   until its last log is handled (it commits a count with every event).
//!
//! `scripts/bench.sh` builds what it needs (the production profile with profile-guided
//! optimisation, which `scripts/build-pgo.sh` trains on these workloads: what operators
//! install) and runs it; or, with `nexum` built in the production profile,
//! `cargo bench -p nexum-tests --bench workloads` (`NEXUM_BIN` overrides where the binary
//! is). Words after `--` pick the rows whose label
//! holds each of them, and none of those written `!word` (`-- 3,000 cranelift`;
//! `backfill` is a row too). [`profiler`] says how to profile the drives.

use alloy_primitives::{Address, B256, Bytes, U64};
use futures::{SinkExt, StreamExt};
use nexum_core::Compiler;
use nexum_tests::anvil::{Anvil, CHAIN_ID, hex_u64};
use nexum_tests::guests;
use nexum_tests::process::Process;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio_tungstenite::tungstenite::Message;

#[path = "workloads/profiler.rs"]
mod profiler;
use profiler::Profiler;

/// Transactions per second while driving.
const TX_PER_SECOND: u64 = 30;

/// What a drive sends: `txs` transactions at [`TX_PER_SECOND`], each emitting
/// `logs_per_tx` logs in a block of its own (with none, `txs` empty blocks at that pace).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Workload {
    label: &'static str,
    txs: u64,
    logs_per_tx: u64,
}

impl Workload {
    /// Logs the workload puts on chain.
    fn logs(&self) -> u64 {
        self.txs * self.logs_per_tx
    }

    /// What the reader's last line of a drive that ended at `last` holds: the last block's
    /// logs, or the last block when blocks carry none.
    fn last_line(&self, last: u64) -> String {
        if self.logs_per_tx == 0 {
            format!("\"b {last}\"")
        } else {
            format!("\"l {last} ")
        }
    }
}

const THREE_THOUSAND_LOGS: Workload = Workload {
    label: "3,000 logs (300 tx × 10)",
    txs: 300,
    logs_per_tx: 10,
};

const TWELVE_THOUSAND_LOGS: Workload = Workload {
    label: "12,000 logs (60 tx × 200)",
    txs: 60,
    logs_per_tx: 200,
};

/// Blocks without transactions, on the same subscriptions: what a block costs before any
/// log.
const EMPTY_BLOCKS: Workload = Workload {
    label: "300 empty blocks",
    txs: 300,
    logs_per_tx: 0,
};

/// The workloads of the drives, each with its floor.
const DRIVEN: [Workload; 3] = [THREE_THOUSAND_LOGS, TWELVE_THOUSAND_LOGS, EMPTY_BLOCKS];

/// Logs already on chain when nexum starts, sent as fast as the node takes them.
const BACKFILL: Workload = Workload {
    label: "backfill",
    txs: 500,
    logs_per_tx: 200,
};

/// Empty blocks handled before the drive starts (not counted in latencies).
const WARM_UP_BLOCKS: u64 = 3;

fn main() {
    if let Ok(ws) = std::env::var(BARE_READER) {
        bare_reader(&ws);
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        println!("nexum {} on {}", nexum_bin().display(), machine());
        println!(
            "| workload | loss | block p50 / p99 | log p50 / p99 | CPU (drive) | peak RSS (drive) | peak RSS (with boot) | RSS at end: anon + file | threads |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        let workloads = [THREE_THOUSAND_LOGS, TWELVE_THOUSAND_LOGS];
        let mut rows = Vec::new();
        for cross_check in [true, false] {
            for workload in workloads {
                let setting = Setting {
                    cross_check,
                    ..Setting::default()
                };
                rows.push((workload, setting));
            }
        }
        let keeper_like = Setting {
            block_reads: 3,
            ..Setting::default()
        };
        rows.push((THREE_THOUSAND_LOGS, keeper_like));
        let cranelift = Setting {
            compiler: Some(Compiler::Cranelift),
            ..Setting::default()
        };
        rows.push((THREE_THOUSAND_LOGS, cranelift));
        for workload in workloads {
            let two_workers = Setting {
                workers: Some(2),
                ..Setting::default()
            };
            rows.push((workload, two_workers));
        }
        rows.push((EMPTY_BLOCKS, Setting::default()));
        // Rows run with their workload's floor: a row of another workload would never run.
        assert!(rows.iter().all(|(workload, _)| DRIVEN.contains(workload)));
        let wanted = RowFilter::from_args();
        let profiler = Profiler::from_env();
        let mut ran = 0;
        // Each workload's floor runs right before nexum's rows of it (the machine's speed
        // drifts within a run too), which then give their CPU as a multiple of it.
        for workload in DRIVEN {
            let floor_label = format!("{}{FLOOR_SUFFIX}", workload.label);
            let floor_cpu = if wanted.picks(&floor_label) {
                ran += 1;
                Some(floor(&floor_label, workload, &profiler).await)
            } else {
                None
            };
            let own_rows = rows.iter().filter(|(w, _)| *w == workload);
            for &(_, setting) in own_rows {
                if wanted.picks(&format!("{}{}", workload.label, setting.label())) {
                    drive(workload, setting, floor_cpu, &profiler).await;
                    ran += 1;
                }
            }
        }
        if wanted.picks(BACKFILL.label) {
            backfill(BACKFILL).await;
            ran += 1;
        }
        if ran == 0 {
            eprintln!("no row's label matches {:?}", wanted.0);
        }
    });
}

/// Which rows to run: those whose label holds every word given after `--` and none given
/// as `!word` (all, without words).
struct RowFilter(Vec<String>);

impl RowFilter {
    fn from_args() -> Self {
        // `cargo bench` passes `--bench` to every bench binary; flags are not words.
        let words = std::env::args()
            .skip(1)
            .filter(|arg| !arg.starts_with("--"))
            .map(|word| word.to_lowercase())
            .collect();
        Self(words)
    }

    fn picks(&self, label: &str) -> bool {
        let label = label.to_lowercase();
        self.0.iter().all(|word| match word.strip_prefix('!') {
            Some(unwanted) => !label.contains(unwanted),
            None => label.contains(word.as_str()),
        })
    }
}

/// The binary under test (the production profile unless `NEXUM_BIN` says otherwise).
fn nexum_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("NEXUM_BIN") {
        return PathBuf::from(bin);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| guests::workspace_root().join("target"));
    let bin = target.join("production/nexum");
    assert!(
        bin.is_file(),
        "{} is missing: `cargo build --profile production -p nexum-cli` (scripts/bench.sh does)",
        bin.display()
    );
    bin
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {model}")
}

/// What a drive changes from nexum's defaults.
#[derive(Debug, Clone, Copy)]
struct Setting {
    /// The chain's `cross_check_logs`.
    cross_check: bool,
    /// How many times the module reads the chain's head on each block (a keeper checking
    /// state per block).
    block_reads: u32,
    /// `[engine] compiler`, when not nexum's default.
    compiler: Option<Compiler>,
    /// Runtime workers (`TOKIO_WORKER_THREADS`), when not nexum's choice (one per module,
    /// at most one per core).
    workers: Option<usize>,
}

impl Default for Setting {
    fn default() -> Self {
        Self {
            cross_check: true,
            block_reads: 0,
            compiler: None,
            workers: None,
        }
    }
}

impl Setting {
    /// What the row's label adds to the workload's.
    fn label(&self) -> String {
        let mut label = String::new();
        if !self.cross_check {
            label += ", `cross_check_logs = false`";
        }
        if self.block_reads > 0 {
            label += &format!(", {} chain reads per block", self.block_reads);
        }
        if let Some(compiler) = self.compiler {
            label += &format!(", `compiler = \"{}\"`", compiler_name(compiler));
        }
        if let Some(workers) = self.workers {
            label += &format!(", `TOKIO_WORKER_THREADS={workers}`");
        }
        label
    }
}

/// How engine.toml spells `compiler`.
fn compiler_name(compiler: Compiler) -> &'static str {
    match compiler {
        Compiler::Cranelift => "cranelift",
        Compiler::Winch => "winch",
    }
}

/// An engine.toml in `dir`: JSON logs (timestamps), a log budget that fits the workload,
/// and the probe on `emitter`'s logs from `from` (and on blocks, with `blocks`), as
/// `setting` says.
fn engine(
    dir: &Path,
    anvil: &Anvil,
    emitter: Address,
    from: u64,
    blocks: bool,
    setting: Setting,
) -> PathBuf {
    let Setting {
        cross_check,
        block_reads,
        compiler,
        workers: _,
    } = setting;
    let compiler = compiler
        .map(|compiler| format!("compiler = \"{}\"\n", compiler_name(compiler)))
        .unwrap_or_default();
    let block_subscription = if blocks {
        format!("[[subscription]]\nkind = \"block\"\nchain_id = {CHAIN_ID}\n\n")
    } else {
        String::new()
    };
    let config = if block_reads > 0 {
        format!("[config]\nblock_reads = \"{block_reads}\"\n\n")
    } else {
        String::new()
    };
    // The probe imports `chain` (its reads), so it asks for it whether it reads or not.
    std::fs::write(
        dir.join("probe.toml"),
        format!(
            "[module]\nname = \"probe\"\nversion = \"1.0.0\"\n\n[capabilities]\nrequired = [\"chain\", \"local-store\", \"logging\"]\nchains = [{CHAIN_ID}]\n\n\
             {config}{block_subscription}[[subscription]]\nkind = \"log\"\nchain_id = {CHAIN_ID}\naddress = \"{emitter}\"\nstart_block = {from}\n"
        ),
    )
    .unwrap();
    let path = dir.join("engine.toml");
    std::fs::write(
        &path,
        format!(
            "[engine]\nstate_dir = \"state\"\nlog_format = \"json\"\n{compiler}\n\
             [limits]\nlog_lines_per_second = 100000\nlog_bytes_per_second = 10000000\n\n\
             [chains.{CHAIN_ID}]\nrpc_url = \"{}\"\ncross_check_logs = {cross_check}\n\n\
             [[modules]]\npath = {:?}\nmanifest = \"probe.toml\"\n",
            anvil.ws_url(),
            guests::wasm("latency-probe")
        ),
    )
    .unwrap();
    path
}

/// `nexum run engine`, once it says it runs.
fn start(engine: &Path, workers: Option<usize>, profiler: &Profiler, label: &str) -> Process {
    let mut command = profiler.command(&nexum_bin(), label);
    command
        .arg("run")
        .arg(engine)
        .env_remove("RUST_LOG")
        .env_remove("TOKIO_WORKER_THREADS");
    if let Some(workers) = workers {
        command.env("TOKIO_WORKER_THREADS", workers.to_string());
    }
    let mut nexum = Process::spawn(command);
    nexum.wait_for_count(&["running; press ctrl-c"], 1, Duration::from_secs(120));
    nexum
}

/// What the probe said: per block, when its `b` and `l` lines were logged, and how many
/// logs each `l` line counted.
#[derive(Default)]
struct Seen {
    block_at: BTreeMap<u64, SystemTime>,
    logs_at: BTreeMap<u64, SystemTime>,
    logs: BTreeMap<u64, u64>,
}

fn seen(lines: &[String]) -> Seen {
    let mut seen = Seen::default();
    for line in lines {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let (Some(message), Some(at)) = (event["message"].as_str(), event["timestamp"].as_str())
        else {
            continue;
        };
        let Ok(at) = chrono::DateTime::parse_from_rfc3339(at) else {
            continue;
        };
        let at = SystemTime::from(at);
        let words: Vec<&str> = message.split_whitespace().collect();
        match words.as_slice() {
            ["b", block] => {
                if let Ok(block) = block.parse() {
                    seen.block_at.entry(block).or_insert(at);
                }
            }
            ["l", block, count] => {
                if let (Ok(block), Ok(count)) = (block.parse(), count.parse()) {
                    seen.logs_at.entry(block).or_insert(at);
                    seen.logs.insert(block, count);
                }
            }
            _ => {}
        }
    }
    seen
}

/// Timestamps each head the node pushes on a connection of its own.
async fn observe_heads(ws: String) -> Arc<Mutex<BTreeMap<u64, SystemTime>>> {
    let heads: Arc<Mutex<BTreeMap<u64, SystemTime>>> = Arc::default();
    let mut socket = subscribe_to_heads(&ws).await;
    let recorded = heads.clone();
    tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            let at = SystemTime::now();
            if let Some(number) = head_number(&message) {
                recorded.lock().unwrap().insert(number, at);
            }
        }
    });
    heads
}

/// A websocket connection to `ws` with a `newHeads` subscription the node has answered:
/// heads mined before the node has the subscription would never come.
async fn subscribe_to_heads(ws: &str) -> Socket {
    let mut socket = connect(ws).await;
    let subscribe =
        json!({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]});
    socket
        .send(Message::Text(subscribe.to_string().into()))
        .await
        .expect("subscribing to heads");
    while let Some(Ok(message)) = socket.next().await {
        let answer = message
            .to_text()
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(t).ok());
        if answer.is_some_and(|a| a["id"] == 1) {
            break;
        }
    }
    socket
}

/// A websocket connection to the node.
type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A websocket connection to `ws` that reads 4 KiB at a time, as nexum's connections do
/// (`READ_BUFFER` in `nexum-host/src/chain/client.rs`): tungstenite zeroes its read buffer
/// (128 KiB by default) before every read.
async fn connect(ws: &str) -> Socket {
    let mut config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
    config.read_buffer_size = 4 * 1024;
    tokio_tungstenite::connect_async_with_config(ws, Some(config), false)
        .await
        .expect("connecting to the node's websocket")
        .0
}

/// The number of the head a `newHeads` notification carries, if `message` is one.
fn head_number(message: &Message) -> Option<u64> {
    pushed_head(message).map(|head| head.number.to())
}

/// What the benchmark reads of a head.
#[derive(serde::Deserialize)]
struct Head {
    number: U64,
    hash: B256,
}

/// A subscription's push: `{"params": {"result": …}}` and fields the benchmark skips.
#[derive(serde::Deserialize)]
struct Pushed<T> {
    params: PushedItem<T>,
}

#[derive(serde::Deserialize)]
struct PushedItem<T> {
    result: T,
}

/// The head a `newHeads` notification carries, if `message` is one.
fn pushed_head(message: &Message) -> Option<Head> {
    let Message::Text(text) = message else {
        return None;
    };
    let pushed: Pushed<Head> = serde_json::from_str(text).ok()?;
    Some(pushed.params.result)
}

/// CPU time of a process, in user space and in the kernel.
struct Cpu {
    user: Duration,
    system: Duration,
}

impl Cpu {
    fn since(&self, earlier: &Cpu) -> Cpu {
        Cpu {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }

    fn total(&self) -> Duration {
        self.user + self.system
    }
}

/// User and system CPU of `pid` so far.
fn cpu(pid: u32) -> Cpu {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| -> u64 { fields.get(i).and_then(|f| f.parse().ok()).unwrap_or(0) };
    #[allow(unsafe_code)]
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let time = |ticks: u64| Duration::from_millis(ticks * 1000 / per_second);
    Cpu {
        user: time(ticks(11)),
        system: time(ticks(12)),
    }
}

/// Context switches of each live thread of a process so far (voluntary, involuntary), by
/// thread id (`/proc/<pid>/status` has the main thread's alone).
struct Switches(BTreeMap<String, (u64, u64)>);

/// What the threads of `later` switched since `earlier`, summed; a thread started meanwhile
/// counts from nothing, one that ended meanwhile is not counted.
struct SwitchesSince {
    voluntary: u64,
    involuntary: u64,
}

impl Switches {
    fn since(&self, earlier: &Switches) -> SwitchesSince {
        let mut total = SwitchesSince {
            voluntary: 0,
            involuntary: 0,
        };
        for (thread, (voluntary, involuntary)) in &self.0 {
            let (was_voluntary, was_involuntary) =
                earlier.0.get(thread).copied().unwrap_or_default();
            total.voluntary += voluntary.saturating_sub(was_voluntary);
            total.involuntary += involuntary.saturating_sub(was_involuntary);
        }
        total
    }
}

fn switches(pid: u32) -> Switches {
    let mut threads = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Switches(threads);
    };
    for thread in entries.flatten() {
        let status = std::fs::read_to_string(thread.path().join("status")).unwrap_or_default();
        let mut counts = (0, 0);
        for line in status.lines() {
            let count = |value: &str| value.trim().parse::<u64>().unwrap_or(0);
            if let Some(value) = line.strip_prefix("voluntary_ctxt_switches:") {
                counts.0 = count(value);
            } else if let Some(value) = line.strip_prefix("nonvoluntary_ctxt_switches:") {
                counts.1 = count(value);
            }
        }
        threads.insert(thread.file_name().to_string_lossy().into_owned(), counts);
    }
    Switches(threads)
}

/// Starts `pid`'s peak RSS (`VmHWM`) over from its current RSS, so the next reading is the
/// peak of what came after (boot, with its first compilation, is reported apart).
fn reset_peak_rss(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .expect("resetting the peak RSS (/proc/<pid>/clear_refs)");
}

/// A field of `/proc/<pid>/status` (such as `VmHWM` or `Threads`), as a number.
fn status_field(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The `pct` percentile of `values`, which must not be empty, in milliseconds.
fn percentile(values: &mut [Duration], pct: usize) -> f64 {
    values.sort();
    let at = (values.len() * pct / 100).min(values.len() - 1);
    values[at].as_secs_f64() * 1000.0
}

/// "p50 / p99 ms" of `values`, or a dash without any (no logs on empty blocks).
fn p50_p99(values: &mut [Duration]) -> String {
    if values.is_empty() {
        return "–".into();
    }
    format!(
        "{:.1} / {:.1} ms",
        percentile(values, 50),
        percentile(values, 99)
    )
}

/// Latencies of `events` after the node pushed their block, from block `from` on.
fn latencies(
    events: &BTreeMap<u64, SystemTime>,
    heads: &BTreeMap<u64, SystemTime>,
    from: u64,
) -> Vec<Duration> {
    events
        .range(from..)
        .filter_map(|(block, at)| {
            let pushed = heads.get(block)?;
            Some(at.duration_since(*pushed).unwrap_or_default())
        })
        .collect()
}

/// Runs `workload` with nexum reading it, and prints one row; with the CPU of the
/// workload's floor in the same run, the drive's CPU as a multiple of it.
async fn drive(
    workload: Workload,
    setting: Setting,
    floor_cpu: Option<Duration>,
    profiler: &Profiler,
) {
    let label = format!("{}{}", workload.label, setting.label());
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let from = anvil.block_number().await + 1;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), &anvil, emitter, from, true, setting);
    let heads = observe_heads(anvil.ws_url()).await;
    let mut nexum = start(&engine, setting.workers, profiler, &label);
    let pid = nexum.id();
    warm_up(&anvil, &mut nexum, from).await;

    let boot_peak_kib = status_field(pid, "VmHWM");
    reset_peak_rss(pid);
    let profiling = profiler.attach(pid, &label);
    let cpu_before = cpu(pid);
    let switches_before = switches(pid);
    let last = send_workload(&anvil, emitter, workload).await;
    nexum.wait_for_count(&[&workload.last_line(last)], 1, Duration::from_secs(120));
    let cpu_drive = cpu(pid).since(&cpu_before);
    let switches_drive = switches(pid).since(&switches_before);
    let (drive_peak_kib, threads) = (status_field(pid, "VmHWM"), status_field(pid, "Threads"));
    let (anon_kib, file_kib) = (status_field(pid, "RssAnon"), status_field(pid, "RssFile"));
    let counts = profiling.detach();
    stop(&mut nexum);

    let mut received = Received::of(&nexum.output(), &heads, from, last, workload);
    let cpu_total = cpu_drive.total().as_secs_f64();
    // nexum's CPU is read in 10 ms ticks, the floor's to the nanosecond (see `floor`).
    let against_floor = match floor_cpu {
        Some(floor) if !floor.is_zero() => {
            format!(" ({:.1}× the floor)", cpu_total / floor.as_secs_f64())
        }
        _ => String::new(),
    };
    println!(
        "| {label} | {} | {} | {} | {cpu_total:.2} s{against_floor} | {:.0} MiB | {:.0} MiB | {:.0} + {:.0} MiB | {threads} |",
        received.loss(),
        p50_p99(&mut received.blocks),
        p50_p99(&mut received.logs),
        drive_peak_kib as f64 / 1024.0,
        boot_peak_kib.max(drive_peak_kib) as f64 / 1024.0,
        anon_kib as f64 / 1024.0,
        file_kib as f64 / 1024.0,
    );
    report_cpu(&label, &cpu_drive, &switches_drive);
    if let Some(counts) = counts {
        eprintln!("{}", counts.report());
    }
}

/// Warm-up: a few empty blocks from `from`, each pushed and handled by `reader`, so the
/// drive measures the steady state (subscriptions open right after the reader says it is
/// ready; a connection's first pushes can wait ~40 ms on delayed TCP acknowledgements).
async fn warm_up(anvil: &Anvil, reader: &mut Process, from: u64) {
    for block in from..from + WARM_UP_BLOCKS {
        anvil.mine(1).await;
        reader.wait_for_count(&[&format!("\"b {block}\"")], 1, Duration::from_secs(60));
    }
}

/// What a reader's lines say of a drive over `from..=last`: what it lost, and how long
/// each block's and each block's logs' line came after the node pushed the block (the
/// warm-up left out).
struct Received {
    blocks_lost: usize,
    logs_lost: u64,
    blocks: Vec<Duration>,
    logs: Vec<Duration>,
}

impl Received {
    fn of(
        lines: &[String],
        heads: &Mutex<BTreeMap<u64, SystemTime>>,
        from: u64,
        last: u64,
        workload: Workload,
    ) -> Self {
        let seen = seen(lines);
        let heads = heads.lock().unwrap().clone();
        let got: u64 = seen.logs.range(from..=last).map(|(_, n)| n).sum();
        Self {
            blocks_lost: (from..=last)
                .filter(|b| !seen.block_at.contains_key(b))
                .count(),
            logs_lost: workload.logs() - got.min(workload.logs()),
            blocks: latencies(&seen.block_at, &heads, from + WARM_UP_BLOCKS),
            logs: latencies(&seen.logs_at, &heads, from + WARM_UP_BLOCKS),
        }
    }

    fn loss(&self) -> String {
        format!("{} blocks, {} logs", self.blocks_lost, self.logs_lost)
    }
}

/// The line under a row: the kernel's share of the drive's CPU (in 10 ms ticks: a floor's
/// row, read to the nanosecond, need not be their sum), how often the reader's threads
/// went to sleep (voluntary switches), and how often one was taken off the CPU while it
/// could still run (involuntary: preempted by another process or thread).
fn report_cpu(label: &str, cpu: &Cpu, switches: &SwitchesSince) {
    eprintln!(
        "  {label}: CPU user {:.2} s + system {:.2} s; context switches of the threads alive at the end: {} voluntary, {} involuntary",
        cpu.user.as_secs_f64(),
        cpu.system.as_secs_f64(),
        switches.voluntary,
        switches.involuntary,
    );
}

/// What a floor row's label adds to its workload's.
const FLOOR_SUFFIX: &str = ", bare reader (the machine's floor)";

/// Set to a websocket URL, this binary runs as a floor row's bare reader instead.
const BARE_READER: &str = "NEXUM_BENCH_BARE_READER";

/// Set beside [`BARE_READER`] to a contract's address, the bare reader also reads each
/// block's logs of that contract.
const BARE_READER_LOGS: &str = "NEXUM_BENCH_BARE_READER_LOGS";

/// The bare reader: on one thread, subscribes to heads at `ws`; for each, reads its number
/// and hash, prints a timestamped `b <number>` line and appends a record the size of
/// nexum's commit of a block to a file: the one read and two writes a block `strace`
/// counts on nexum's runtime thread, without the rest. With [`BARE_READER_LOGS`] it then
/// reads the block's logs of that contract with `eth_getLogs` by block hash on a second
/// connection, as nexum's live path does (without its cross-check), parses them as nexum
/// does, and prints an `l <number> <count>` line and appends a second record, as nexum's
/// module and its commit do.
fn bare_reader(ws: &str) {
    use std::io::Write;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        // Reads go on a connection of their own, as nexum keeps requests apart from pushes.
        let mut reads = match std::env::var(BARE_READER_LOGS) {
            Ok(emitter) => Some((connect(ws).await, emitter)),
            Err(_) => None,
        };
        let mut heads = subscribe_to_heads(ws).await;
        println!("subscribed");
        // A file without a name: nothing is left behind however the reader ends.
        let mut journal = tempfile::tempfile().expect("a journal");
        let mut out = std::io::stdout();
        // Timestamped as nexum's log lines are: the row's latency is measured alike.
        let mut line_and_record = |message: String| {
            let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            writeln!(out, r#"{{"timestamp":"{at}","message":"{message}"}}"#).expect("stdout");
            journal.write_all(&[7u8; 351]).expect("a journal write");
        };
        let mut id = 0;
        while let Some(Ok(message)) = heads.next().await {
            let Some(head) = pushed_head(&message) else {
                continue;
            };
            let number = head.number.to::<u64>();
            line_and_record(format!("b {number}"));
            let Some((requests, emitter)) = reads.as_mut() else {
                continue;
            };
            id += 1;
            let logs = block_logs(requests, id, head.hash, emitter).await;
            line_and_record(format!("l {number} {}", logs.len()));
        }
    });
}

/// A node's log, read as nexum reads one (`nexum-host/src/chain/wire.rs`); the bare reader
/// counts them and reads no further.
#[allow(dead_code)]
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeLog {
    address: Address,
    topics: Vec<B256>,
    data: Bytes,
    #[serde(deserialize_with = "Option::deserialize")]
    block_number: Option<U64>,
    block_hash: Option<B256>,
    transaction_hash: Option<B256>,
    #[serde(deserialize_with = "Option::deserialize")]
    transaction_index: Option<U64>,
    #[serde(deserialize_with = "Option::deserialize")]
    log_index: Option<U64>,
    #[serde(default)]
    removed: bool,
}

/// A JSON-RPC answer.
#[derive(serde::Deserialize)]
struct Answer<T> {
    id: u64,
    result: T,
}

/// Asks for the logs of `emitter` in the block `hash` as request `id`, and waits for the
/// answer; an answer that is not a list of logs (a node's error) ends the reader.
async fn block_logs(requests: &mut Socket, id: u64, hash: B256, emitter: &str) -> Vec<NodeLog> {
    let read = json!({"jsonrpc": "2.0", "id": id, "method": "eth_getLogs",
        "params": [{"blockHash": hash, "address": emitter}]});
    requests
        .send(Message::Text(read.to_string().into()))
        .await
        .expect("asking for a block's logs");
    loop {
        let frame = requests.next().await.expect("the node's answer");
        let Message::Text(text) = frame.expect("a frame") else {
            continue;
        };
        match serde_json::from_str::<Answer<Vec<NodeLog>>>(&text) {
            Ok(answer) if answer.id == id => return answer.result,
            Ok(_) => {}
            Err(e) => panic!("the node's answer to eth_getLogs: {e}: {}", text.as_str()),
        }
    }
}

/// Sends `workload` to `emitter`; returns its last block.
async fn send_workload(anvil: &Anvil, emitter: Address, workload: Workload) -> u64 {
    let mut pace = tokio::time::interval(Duration::from_millis(1000 / TX_PER_SECOND));
    let mut last = 0;
    for _ in 0..workload.txs {
        pace.tick().await;
        if workload.logs_per_tx == 0 {
            anvil.mine(1).await;
        } else {
            last = send_transaction(anvil, emitter, workload).await;
        }
    }
    if workload.logs_per_tx == 0 {
        last = anvil.block_number().await;
    }
    last
}

/// Sends one of `workload`'s transactions (`logs_per_tx` logs) to `emitter`; returns its
/// block.
async fn send_transaction(anvil: &Anvil, emitter: Address, workload: Workload) -> u64 {
    let receipt = anvil.burst(emitter, workload.logs_per_tx - 1).await;
    hex_u64(&receipt["blockNumber"])
}

/// A floor row: `workload` read by [`bare_reader`], beside the observer connection
/// nexum's rows have too. Returns the reader's CPU over the drive, read to the nanosecond
/// from the scheduler (its one thread lives throughout), where `/proc/<pid>/stat` counts
/// 10 ms ticks: a floor of a few ticks would make nexum's multiple of it a guess.
async fn floor(label: &str, workload: Workload, profiler: &Profiler) -> Duration {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let heads = observe_heads(anvil.ws_url()).await;
    let mut command = profiler.command(
        &std::env::current_exe().expect("this benchmark's path"),
        label,
    );
    command.env(BARE_READER, anvil.ws_url());
    if workload.logs_per_tx > 0 {
        command.env(BARE_READER_LOGS, emitter.to_string());
    }
    let mut reader = Process::spawn(command);
    reader.wait_for_count(&["subscribed"], 1, Duration::from_secs(60));
    let pid = reader.id();
    let from = anvil.block_number().await + 1;
    warm_up(&anvil, &mut reader, from).await;
    reset_peak_rss(pid);
    let profiling = profiler.attach(pid, label);
    let cpu_before = cpu(pid);
    let on_cpu_before = on_cpu(pid);
    let switches_before = switches(pid);
    let last = send_workload(&anvil, emitter, workload).await;
    reader.wait_for_count(&[&workload.last_line(last)], 1, Duration::from_secs(120));
    let cpu_drive = cpu(pid).since(&cpu_before);
    let on_cpu_drive = on_cpu(pid).saturating_sub(on_cpu_before);
    let switches_drive = switches(pid).since(&switches_before);
    let (peak_kib, threads) = (status_field(pid, "VmHWM"), status_field(pid, "Threads"));
    // Its CPU sums the threads alive now: it must have had only the one.
    assert_eq!(threads, 1, "the bare reader runs on one thread");
    // A kernel that keeps no scheduler statistics reads 0: no floor to compare with.
    assert!(
        !on_cpu_drive.is_zero(),
        "no CPU time read for the bare reader"
    );
    let counts = profiling.detach();
    // Ended, not killed: under callgrind its counts are written as it exits. Ended by
    // this signal and nothing else: a reader that failed after its last line says so.
    let status = reader.signal("-TERM");
    assert_eq!(
        status.signal(),
        Some(libc::SIGTERM),
        "the bare reader ended with {status}:\n{}",
        reader.output().join("\n")
    );
    let mut received = Received::of(&reader.output(), &heads, from, last, workload);
    println!(
        "| {label} | {} | {} | {} | {:.3} s | {:.0} MiB | – | – | {threads} |",
        received.loss(),
        p50_p99(&mut received.blocks),
        p50_p99(&mut received.logs),
        on_cpu_drive.as_secs_f64(),
        peak_kib as f64 / 1024.0,
    );
    report_cpu(label, &cpu_drive, &switches_drive);
    if let Some(counts) = counts {
        eprintln!("{}", counts.report());
    }
    on_cpu_drive
}

/// Time the threads of `pid` alive now have run on a CPU, to the nanosecond
/// (`/proc/<pid>/task/*/schedstat`; a thread that ended is not counted).
fn on_cpu(pid: u32) -> Duration {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the process's threads");
    let nanos = tasks
        .map(|task| {
            let path = task
                .expect("a thread of the process")
                .path()
                .join("schedstat");
            let stat = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            stat.split_whitespace()
                .next()
                .and_then(|nanos| nanos.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no time on a CPU in {}: {stat:?}", path.display()))
        })
        .sum();
    Duration::from_nanos(nanos)
}

/// Stops nexum as an operator does, and checks that it exited cleanly: a run that ends
/// otherwise wrote no profile for `scripts/build-pgo.sh` (nor flushed its store).
fn stop(nexum: &mut Process) {
    let status = nexum.signal("-TERM");
    assert!(
        status.success(),
        "nexum exited with {status} after SIGTERM:\n{}",
        nexum.output().join("\n")
    );
}

/// Puts `txs × logs_per_tx` logs on chain, then times a fresh module through all of them.
async fn backfill(workload: Workload) {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let from = anvil.block_number().await + 1;
    let mut last = 0;
    for _ in 0..workload.txs {
        last = send_transaction(&anvil, emitter, workload).await;
    }
    let (total, txs) = (workload.logs(), workload.txs);
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), &anvil, emitter, from, false, Setting::default());
    let started = Instant::now();
    let mut nexum = start(&engine, None, &Profiler::None, "backfill");
    nexum.wait_for_count(&[&workload.last_line(last)], 1, Duration::from_secs(600));
    let elapsed = started.elapsed();
    let pid = nexum.id();
    let peak_kib = status_field(pid, "VmHWM");
    stop(&mut nexum);
    let got: u64 = seen(&nexum.output()).logs.values().sum();
    println!(
        "\nbackfill: {total} logs in {txs} blocks already on chain, a fresh module from start_block: \
         {got} handled in {:.2} s from `nexum run` ({:.0} logs/s end to end), peak RSS {:.0} MiB",
        elapsed.as_secs_f64(),
        got as f64 / elapsed.as_secs_f64(),
        peak_kib as f64 / 1024.0
    );
}
