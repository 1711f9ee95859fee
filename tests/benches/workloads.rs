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
//!   each head from a websocket subscription, parses it, prints a line and appends a record
//!   to a file; on the log workloads it then reads the block's logs with `eth_getLogs` by
//!   block hash on a second connection, parses the answer, prints a second line and appends
//!   a second record; nothing else. Its CPU is what the same work costs any consumer in the
//!   same hour, to read nexum's rows against (the machine's speed moves several times
//!   between hours): the floors run first, and nexum's rows of the same workload give
//!   their CPU as a multiple of it too;
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

use alloy_primitives::Address;
use futures::{SinkExt, StreamExt};
use nexum_core::Compiler;
use nexum_tests::anvil::{Anvil, CHAIN_ID, hex_u64};
use nexum_tests::guests;
use nexum_tests::process::Process;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

#[path = "workloads/profiler.rs"]
mod profiler;
use profiler::Profiler;

/// Transactions per second while driving.
const TX_PER_SECOND: u64 = 30;

/// The workload of empty blocks: label, blocks, logs per block.
const EMPTY_BLOCKS: (&str, u64, u64) = ("300 empty blocks", 300, 0);

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
        let workloads = [
            ("3,000 logs (300 tx × 10)", 300, 10),
            ("12,000 logs (60 tx × 200)", 60, 200),
        ];
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
        rows.push((workloads[0], keeper_like));
        let cranelift = Setting {
            compiler: Some(Compiler::Cranelift),
            ..Setting::default()
        };
        rows.push((workloads[0], cranelift));
        for workload in workloads {
            let two_workers = Setting {
                workers: Some(2),
                ..Setting::default()
            };
            rows.push((workload, two_workers));
        }
        // The per-block floor: blocks without transactions, on the same subscriptions.
        rows.push((EMPTY_BLOCKS, Setting::default()));
        let wanted = RowFilter::from_args();
        let profiler = Profiler::from_env();
        let mut ran = 0;
        // The machine's floor for the same workloads, read by a bare process: first, so
        // that nexum's rows can say how many floors they cost in the same run.
        let mut floors = HashMap::new();
        for (workload, txs, logs_per_tx) in [workloads[0], workloads[1], EMPTY_BLOCKS] {
            let label = format!("{workload}{FLOOR_SUFFIX}");
            if wanted.picks(&label) {
                let cpu = floor(&label, txs, logs_per_tx, &profiler).await;
                floors.insert(workload, cpu);
                ran += 1;
            }
        }
        for ((label, txs, logs_per_tx), setting) in rows {
            if wanted.picks(&format!("{label}{}", setting.label())) {
                let floor = floors.get(label).copied();
                drive(label, txs, logs_per_tx, setting, floor, &profiler).await;
                ran += 1;
            }
        }
        if wanted.picks("backfill") {
            backfill(500, 200).await;
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
async fn subscribe_to_heads(
    ws: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut socket = connect(ws).await;
    let subscribe =
        json!({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]});
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text(
            subscribe.to_string().into(),
        ))
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

/// A websocket connection to `ws` that reads 4 KiB at a time, as nexum's connections do:
/// tungstenite zeroes its read buffer (128 KiB by default) before every read.
async fn connect(
    ws: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
    config.read_buffer_size = 4 * 1024;
    tokio_tungstenite::connect_async_with_config(ws, Some(config), false)
        .await
        .expect("connecting to the node's websocket")
        .0
}

/// The number of the head a `newHeads` notification carries, if `message` is one.
fn head_number(message: &tokio_tungstenite::tungstenite::Message) -> Option<u64> {
    head(message).map(|(number, _)| number)
}

/// The number and hash of the head a `newHeads` notification carries, if `message` is one.
fn head(message: &tokio_tungstenite::tungstenite::Message) -> Option<(u64, String)> {
    let value = serde_json::from_str::<Value>(message.to_text().ok()?).ok()?;
    let head = &value["params"]["result"];
    let (number, hash) = (&head["number"], head["hash"].as_str()?);
    number
        .is_string()
        .then(|| (hex_u64(number), hash.to_string()))
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

/// Runs a workload (see [`send_workload`]) with nexum reading it, and prints one row; with
/// the CPU of the workload's `floor` in the same run, the drive's CPU as a multiple of it.
async fn drive(
    workload: &str,
    txs: u64,
    logs_per_tx: u64,
    setting: Setting,
    floor: Option<Duration>,
    profiler: &Profiler,
) {
    let label = format!("{workload}{}", setting.label());
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let from = anvil.block_number().await + 1;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), &anvil, emitter, from, true, setting);
    let heads = observe_heads(anvil.ws_url()).await;
    let mut nexum = start(&engine, setting.workers, profiler, &label);
    let pid = nexum.id();
    // Warm-up: a few empty blocks, each pushed and handled, so the drive measures the
    // steady state (subscriptions open right after "running"; a connection's first pushes
    // can wait ~40 ms on delayed TCP acknowledgements).
    for block in from..from + WARM_UP_BLOCKS {
        anvil.mine(1).await;
        nexum.wait_for_count(&[&format!("\"b {block}\"")], 1, Duration::from_secs(60));
    }

    let boot_peak_kib = status_field(pid, "VmHWM");
    reset_peak_rss(pid);
    let profiling = profiler.attach(pid, &label);
    let cpu_before = cpu(pid);
    let switches_before = switches(pid);
    let last = send_workload(&anvil, emitter, txs, logs_per_tx).await;
    // The drive phase ends when the module has the last block's logs (or the last block,
    // when blocks carry none).
    let needle = if logs_per_tx == 0 {
        format!("\"b {last}\"")
    } else {
        format!("\"l {last} ")
    };
    nexum.wait_for_count(&[&needle], 1, Duration::from_secs(120));
    let cpu_drive = cpu(pid).since(&cpu_before);
    let switches_drive = switches(pid).since(&switches_before);
    let (drive_peak_kib, threads) = (status_field(pid, "VmHWM"), status_field(pid, "Threads"));
    let (anon_kib, file_kib) = (status_field(pid, "RssAnon"), status_field(pid, "RssFile"));
    let counts = profiling.detach();
    stop(&mut nexum);

    let seen = seen(&nexum.output());
    let heads = heads.lock().unwrap().clone();
    let blocks_lost = (from..=last)
        .filter(|b| !seen.block_at.contains_key(b))
        .count();
    let logs_got: u64 = seen.logs.range(from..=last).map(|(_, n)| n).sum();
    let logs_lost = txs * logs_per_tx - logs_got.min(txs * logs_per_tx);
    let mut blocks = latencies(&seen.block_at, &heads, from + WARM_UP_BLOCKS);
    let mut logs = latencies(&seen.logs_at, &heads, from + WARM_UP_BLOCKS);
    let cpu_total = cpu_drive.total().as_secs_f64();
    // CPU is read in 10 ms ticks: a floor of none says nothing.
    let against_floor = match floor {
        Some(floor) if !floor.is_zero() => {
            format!(" ({:.1}× the floor)", cpu_total / floor.as_secs_f64())
        }
        _ => String::new(),
    };
    println!(
        "| {label} | {blocks_lost} blocks, {logs_lost} logs | {} | {} | {cpu_total:.2} s{against_floor} | {:.0} MiB | {:.0} MiB | {:.0} + {:.0} MiB | {threads} |",
        p50_p99(&mut blocks),
        p50_p99(&mut logs),
        drive_peak_kib as f64 / 1024.0,
        boot_peak_kib.max(drive_peak_kib) as f64 / 1024.0,
        anon_kib as f64 / 1024.0,
        file_kib as f64 / 1024.0,
    );
    // The kernel's share, how often nexum's threads went to sleep (voluntary switches), and
    // how often one was taken off the CPU while it could still run (involuntary: preempted
    // by another process or thread).
    eprintln!(
        "  {label}: CPU user {:.2} s + system {:.2} s; context switches of the threads alive at the end: {} voluntary, {} involuntary",
        cpu_drive.user.as_secs_f64(),
        cpu_drive.system.as_secs_f64(),
        switches_drive.voluntary,
        switches_drive.involuntary,
    );
    if let Some(counts) = counts {
        eprintln!("{}", counts.report());
    }
}

/// What a floor row's label adds to its workload's.
const FLOOR_SUFFIX: &str = ", bare reader (the machine's floor)";

/// Set to a websocket URL, this binary runs as a floor row's bare reader instead.
const BARE_READER: &str = "NEXUM_BENCH_BARE_READER";

/// Set beside [`BARE_READER`] to a contract's address, the bare reader also reads each
/// block's logs of that contract.
const BARE_READER_LOGS: &str = "NEXUM_BENCH_BARE_READER_LOGS";

/// The bare reader: on one thread, subscribes to heads at `ws`; for each, parses it,
/// prints a timestamped `b <number>` line and appends a record the size of nexum's commit
/// of a block to a file: the one read and two writes a block `strace` counts on nexum's
/// runtime thread, without the rest. With [`BARE_READER_LOGS`] it then reads the block's
/// logs of that contract with `eth_getLogs` by block hash on a second connection, as
/// nexum's live path does (without its cross-check), parses the answer, and prints an
/// `l <number> <count>` line and appends a second record, as nexum's module and its
/// commit do.
fn bare_reader(ws: &str) {
    use std::io::Write;
    let emitter = std::env::var(BARE_READER_LOGS).ok();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let mut requests = match emitter {
            Some(_) => Some(connect(ws).await),
            None => None,
        };
        let mut socket = subscribe_to_heads(ws).await;
        // A file without a name: it goes with the reader, which is killed, not stopped.
        let mut journal = tempfile::tempfile().expect("a journal");
        let record = [7u8; 351];
        let mut out = std::io::stdout();
        println!("subscribed");
        let mut id = 1u64;
        while let Some(Ok(message)) = socket.next().await {
            let Some((block, hash)) = head(&message) else {
                continue;
            };
            // Timestamped as nexum's log lines are: the row's latency is measured alike.
            let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            writeln!(out, r#"{{"timestamp":"{at}","message":"b {block}"}}"#).expect("stdout");
            journal.write_all(&record).expect("a journal write");
            let (Some(requests), Some(emitter)) = (requests.as_mut(), emitter.as_deref()) else {
                continue;
            };
            id += 1;
            let read = json!({"jsonrpc": "2.0", "id": id, "method": "eth_getLogs",
                "params": [{"blockHash": hash, "address": emitter}]});
            requests
                .send(tokio_tungstenite::tungstenite::Message::Text(
                    read.to_string().into(),
                ))
                .await
                .expect("asking for a block's logs");
            let logs = loop {
                let answer = requests
                    .next()
                    .await
                    .expect("the node's answer")
                    .expect("a frame");
                let Some(answer) = answer
                    .to_text()
                    .ok()
                    .and_then(|t| serde_json::from_str::<Value>(t).ok())
                else {
                    continue;
                };
                if answer["id"] == id {
                    break answer["result"].as_array().map_or(0, Vec::len);
                }
            };
            let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            writeln!(
                out,
                r#"{{"timestamp":"{at}","message":"l {block} {logs}"}}"#
            )
            .expect("stdout");
            journal.write_all(&record).expect("a journal write");
        }
    });
}

/// Sends `txs` transactions of `logs_per_tx` logs each to `emitter` at [`TX_PER_SECOND`]
/// (with none, mines `txs` empty blocks at that pace); returns the last block.
async fn send_workload(anvil: &Anvil, emitter: Address, txs: u64, logs_per_tx: u64) -> u64 {
    let mut pace = tokio::time::interval(Duration::from_millis(1000 / TX_PER_SECOND));
    let mut last = 0;
    for _ in 0..txs {
        pace.tick().await;
        if logs_per_tx == 0 {
            anvil.mine(1).await;
        } else {
            last = hex_u64(&anvil.burst(emitter, logs_per_tx - 1).await["blockNumber"]);
        }
    }
    if logs_per_tx == 0 {
        last = anvil.block_number().await;
    }
    last
}

/// A floor row: the workload read by [`bare_reader`]; its CPU over the drive (returned),
/// beside the observer connection nexum's rows have too.
async fn floor(label: &str, txs: u64, logs_per_tx: u64, profiler: &Profiler) -> Duration {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let heads = observe_heads(anvil.ws_url()).await;
    let mut command = profiler.command(
        &std::env::current_exe().expect("this benchmark's path"),
        label,
    );
    command.env(BARE_READER, anvil.ws_url());
    if logs_per_tx > 0 {
        command.env(BARE_READER_LOGS, emitter.to_string());
    }
    let mut reader = Process::spawn(command);
    reader.wait_for_count(&["subscribed"], 1, Duration::from_secs(60));
    let pid = reader.id();
    let from = anvil.block_number().await + 1;
    for block in from..from + WARM_UP_BLOCKS {
        anvil.mine(1).await;
        reader.wait_for_count(&[&format!("\"b {block}\"")], 1, Duration::from_secs(60));
    }
    reset_peak_rss(pid);
    let profiling = profiler.attach(pid, label);
    let cpu_before = cpu(pid);
    let switches_before = switches(pid);
    let last = send_workload(&anvil, emitter, txs, logs_per_tx).await;
    let needle = if logs_per_tx == 0 {
        format!("\"b {last}\"")
    } else {
        format!("\"l {last} ")
    };
    reader.wait_for_count(&[&needle], 1, Duration::from_secs(120));
    let cpu_drive = cpu(pid).since(&cpu_before);
    let switches_drive = switches(pid).since(&switches_before);
    let (peak_kib, threads) = (status_field(pid, "VmHWM"), status_field(pid, "Threads"));
    let counts = profiling.detach();
    // Ended, not killed: under callgrind its counts are written as it exits.
    reader.signal("-TERM");
    let seen = seen(&reader.output());
    let heads = heads.lock().unwrap().clone();
    let blocks_lost = (from..=last)
        .filter(|b| !seen.block_at.contains_key(b))
        .count();
    let logs_got: u64 = seen.logs.range(from..=last).map(|(_, n)| n).sum();
    let logs_lost = txs * logs_per_tx - logs_got.min(txs * logs_per_tx);
    let mut blocks = latencies(&seen.block_at, &heads, from + WARM_UP_BLOCKS);
    let mut logs = latencies(&seen.logs_at, &heads, from + WARM_UP_BLOCKS);
    println!(
        "| {label} | {blocks_lost} blocks, {logs_lost} logs | {} | {} | {:.2} s | {:.0} MiB | – | – | {threads} |",
        p50_p99(&mut blocks),
        p50_p99(&mut logs),
        cpu_drive.total().as_secs_f64(),
        peak_kib as f64 / 1024.0,
    );
    eprintln!(
        "  {label}: CPU user {:.2} s + system {:.2} s; context switches: {} voluntary, {} involuntary",
        cpu_drive.user.as_secs_f64(),
        cpu_drive.system.as_secs_f64(),
        switches_drive.voluntary,
        switches_drive.involuntary,
    );
    if let Some(counts) = counts {
        eprintln!("{}", counts.report());
    }
    cpu_drive.total()
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
async fn backfill(txs: u64, logs_per_tx: u64) {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let from = anvil.block_number().await + 1;
    let mut last = 0;
    for _ in 0..txs {
        last = hex_u64(&anvil.burst(emitter, logs_per_tx - 1).await["blockNumber"]);
    }
    let total = txs * logs_per_tx;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), &anvil, emitter, from, false, Setting::default());
    let started = Instant::now();
    let mut nexum = start(&engine, None, &Profiler::None, "backfill");
    let needle = format!("\"l {last} ");
    nexum.wait_for_count(&[&needle], 1, Duration::from_secs(600));
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
