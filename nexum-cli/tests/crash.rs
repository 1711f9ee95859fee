//! No lost events, exactly-once state: the real binary killed with SIGKILL mid-stream, and a
//! module slower than the chain, both against a real Anvil.

use nexum_host::Ledger;
use nexum_host::core::ModuleName;
use nexum_tests::anvil::{Anvil, free_port};
use nexum_tests::engine::live_logs_in;
use nexum_tests::guests;
use nexum_tests::memory::peak_rss_kib;
use nexum_tests::process::Process;
use nexum_tests::telemetry::wait_for_metric;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const NEXUM: &str = env!("CARGO_BIN_EXE_nexum");

/// What `nexum run` prints once every module is booted and every start position committed.
const READY: &str = "running; press ctrl-c to stop";

/// An engine.toml in `dir` running the recorder as `counter` on the emitter's logs, with
/// metrics on `metrics` (to watch how far delivery got).
fn write_engine(
    dir: &Path,
    ws_url: &str,
    emitter: &str,
    start_block: u64,
    module_config: &str,
    metrics: SocketAddr,
) -> std::path::PathBuf {
    std::fs::write(
        dir.join("module.toml"),
        format!(
            "[module]\nname = \"counter\"\nversion = \"0.1.0\"\n\n[capabilities]\nrequired = [\"local-store\", \"logging\"]\n\n\
             [[subscription]]\nkind = \"log\"\nchain_id = 31337\naddress = \"{emitter}\"\nstart_block = {start_block}\n\n[config]\n{module_config}\n"
        ),
    )
    .unwrap();
    let engine = dir.join("engine.toml");
    std::fs::write(
        &engine,
        format!(
            "[engine]\nstate_dir = \"state\"\nlog_level = \"info\"\nmetrics_addr = \"{metrics}\"\n\n\
             [chains.31337]\nrpc_url = \"{ws_url}\"\n\n\
             [[modules]]\npath = {:?}\nmanifest = \"module.toml\"\n",
            guests::wasm("recorder")
        ),
    )
    .unwrap();
    engine
}

/// Starts `nexum run engine`; it is killed when dropped, panics included.
fn start(engine: &Path) -> Process {
    let mut command = Command::new(NEXUM);
    command.arg("run").arg(engine).env_remove("RUST_LOG");
    Process::spawn(command)
}

/// Starts `nexum run engine` and waits until it says it is running.
async fn start_ready(engine: &Path) -> Process {
    let mut nexum = start(engine);
    nexum.wait_for(READY, Duration::from_secs(60)).await;
    nexum
}

fn local_metrics() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// Waits until `counter` has handled every block up to the chain's head.
async fn wait_caught_up(anvil: &Anvil, metrics: SocketAddr, nexum: &Process) {
    let head = anvil.block_number().await;
    let caught_up = wait_for_metric(
        metrics,
        "nexum_chain_delivered_height",
        &[("module", "counter")],
        head as f64,
        Duration::from_secs(120),
    )
    .await;
    assert!(
        caught_up,
        "counter never reached block {head}:\n{}",
        nexum.output().join("\n")
    );
}

/// The node's `(block, log index)` for `emitter` over the whole chain.
async fn chain_logs(anvil: &Anvil, emitter: alloy_primitives::Address) -> BTreeSet<(u64, u64)> {
    let to = anvil.block_number().await;
    anvil
        .log_positions(emitter, 0, to)
        .await
        .into_iter()
        .collect()
}

/// A small xorshift generator: random kill points that a seed reproduces.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Runs nexum until it has handled the chain up to its head, stops it with SIGTERM, and
/// checks the recorder holds exactly the chain's logs, each recorded once.
async fn run_until_complete(
    anvil: &Anvil,
    engine: &Path,
    metrics: SocketAddr,
    state: &Path,
    expected: &BTreeSet<(u64, u64)>,
) {
    let mut nexum = start_ready(engine).await;
    wait_caught_up(anvil, metrics, &nexum).await;
    assert_eq!(nexum.signal("-TERM").code(), Some(0));
    let store = Ledger::open(state).unwrap();
    let live = live_logs_in(&store, "counter");
    let missing: Vec<_> = expected.difference(&live).collect();
    let extra: Vec<_> = live.difference(expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "the module holds {} of {} logs; missing {missing:?}; unexpected {extra:?}",
        live.len(),
        expected.len()
    );
    let journal = journal_entries(&store);
    let unique: BTreeSet<_> = journal.iter().copied().collect();
    assert_eq!(journal.len(), unique.len(), "a log was recorded twice");
    assert_eq!(&unique, expected);
}

fn journal_entries(store: &Ledger) -> Vec<(u64, u64)> {
    let name = ModuleName::new("counter").unwrap();
    store
        .list(&name, "e/")
        .unwrap()
        .into_iter()
        .flat_map(|(_, bytes)| {
            let event: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            event["logs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| (l["block"].as_u64().unwrap(), l["index"].as_u64().unwrap()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_three_times_loses_nothing_and_counts_nothing_twice() {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let start_block = anvil.block_number().await + 1;
    let dir = tempfile::tempdir().unwrap();
    let metrics = local_metrics();
    let engine = write_engine(
        dir.path(),
        &anvil.ws_url(),
        &emitter.to_string(),
        start_block,
        "",
        metrics,
    );

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill schedule seed: {seed}");
    let mut rng = Rng(seed);

    // 400 transactions of 12 Pings and a Pong each: 5,200 logs in 400 blocks, emitted
    // while nexum is killed and restarted three times.
    let emitting = {
        let anvil = &anvil;
        async move {
            for _ in 0..400 {
                anvil.burst(emitter, 12).await;
            }
        }
    };
    // The kill points are random on purpose (chaos, not synchronisation).
    let killing = async {
        let mut nexum = start(&engine);
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(300 + rng.below(1200))).await;
            nexum.signal("-KILL");
            nexum = start(&engine);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        nexum.signal("-KILL");
    };
    tokio::join!(emitting, killing);

    let expected = chain_logs(&anvil, emitter).await;
    assert_eq!(expected.len(), 5_200);
    run_until_complete(
        &anvil,
        &engine,
        metrics,
        &dir.path().join("state"),
        &expected,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_module_gets_every_log_and_memory_stays_flat() {
    let anvil = Anvil::spawn().await;
    let emitter = anvil.deploy_emitter().await;
    let start_block = anvil.block_number().await + 1;
    let dir = tempfile::tempdir().unwrap();
    // 40 ms of CPU per event against a chain producing blocks of 13 logs as fast as it can:
    // the module falls hundreds of blocks behind, far out of the in-memory window.
    let metrics = local_metrics();
    let engine = write_engine(
        dir.path(),
        &anvil.ws_url(),
        &emitter.to_string(),
        start_block,
        "burn_ms = 40",
        metrics,
    );
    let mut nexum = start_ready(&engine).await;
    let pid = nexum.id();

    let rounds: u64 = std::env::var("NEXUM_SLOW_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(400);
    let mut samples = Vec::new();
    for round in 0..rounds {
        anvil.burst(emitter, 12).await;
        if round % (rounds / 8) == 0 {
            samples.push(peak_rss_kib(pid));
        }
    }
    // The module is now far behind: it works through the backlog from the chain.
    wait_caught_up(&anvil, metrics, &nexum).await;
    samples.push(peak_rss_kib(pid));
    assert_eq!(nexum.signal("-TERM").code(), Some(0));

    let early = samples[1];
    let late = *samples.last().unwrap();
    eprintln!("nexum peak RSS (KiB) while a slow module lags: {samples:?}");
    assert!(
        late < early + 32 * 1024,
        "peak memory grew from {early} KiB to {late} KiB while the module lagged"
    );
    let expected = chain_logs(&anvil, emitter).await;
    run_until_complete(
        &anvil,
        &engine,
        metrics,
        &dir.path().join("state"),
        &expected,
    )
    .await;
}

/// The TWAP keeper, killed with SIGKILL while parts become ready: every part is posted, and
/// the orderbook accepts each exactly once (a post repeated after a kill is answered
/// `DuplicatedOrder`, which the keeper records as done).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_twap_keeper_survives_sigkill_without_double_posting_or_forgetting() {
    use alloy_primitives::{Address, B256, U256, keccak256};
    use nexum_tests::anvil::MockComposableCoW::{ConditionalOrderParams, OrderData};
    use nexum_tests::anvil::PollAnswer;
    use nexum_tests::orderbook::MockOrderbook;

    let anvil = Anvil::spawn().await;
    let composable_cow = anvil.deploy_composable_cow().await;
    let book = MockOrderbook::start(31337).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("module.toml"),
        format!(
            "[module]\nname = \"twap\"\nversion = \"0.1.0\"\n\n[capabilities]\nrequired = [\"chain\", \"cow-api\", \"local-store\", \"logging\"]\n\n\
             [[subscription]]\nkind = \"log\"\nchain_id = 31337\naddress = \"{composable_cow}\"\n\
             event = \"ConditionalOrderCreated(address,(address,bytes32,bytes))\"\n\n\
             [[subscription]]\nkind = \"block\"\nchain_id = 31337\n\n[config]\ncomposable_cow = \"{composable_cow}\"\n"
        ),
    )
    .unwrap();
    let engine = dir.path().join("engine.toml");
    std::fs::write(
        &engine,
        format!(
            "[engine]\nstate_dir = \"state\"\nlog_level = \"info\"\n\n[chains.31337]\nrpc_url = \"{}\"\norderbook_url = \"{}\"\n\n\
             [[modules]]\npath = {:?}\nmanifest = \"module.toml\"\n",
            anvil.ws_url(),
            book.url(),
            guests::wasm("twap-keeper")
        ),
    )
    .unwrap();

    let params: Vec<ConditionalOrderParams> = (1..=3u8)
        .map(|salt| ConditionalOrderParams {
            handler: Address::repeat_byte(0x7a),
            salt: B256::repeat_byte(salt),
            staticInput: vec![salt].into(),
        })
        .collect();
    // Start positions are committed before nexum says it is running: from then on, nothing
    // the chain does is lost.
    let mut nexum = start_ready(&engine).await;
    for p in &params {
        anvil.create_conditional_order(composable_cow, p).await;
    }
    let base = anvil.latest_timestamp().await + 3_600;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill schedule seed: {seed}");
    let mut rng = Rng(seed);
    let rounds = 12u64;
    let mut kills = 0;
    for round in 0..rounds {
        let valid_tos: Vec<u64> = (0..3).map(|i| base + round * 10 + i).collect();
        for (p, valid_to) in params.iter().zip(&valid_tos) {
            let order = OrderData {
                sellToken: Address::repeat_byte(1),
                buyToken: Address::repeat_byte(2),
                sellAmount: U256::from(1000),
                buyAmount: U256::from(900),
                validTo: *valid_to as u32,
                appData: keccak256("{}"),
                kind: keccak256("sell"),
                sellTokenBalance: keccak256("erc20"),
                buyTokenBalance: keccak256("erc20"),
                ..OrderData::default()
            };
            anvil
                .script_poll(composable_cow, p, PollAnswer::Ready, 0, order)
                .await;
        }
        if matches!(round, 2 | 5 | 8) {
            tokio::time::sleep(Duration::from_millis(rng.below(400))).await;
            nexum.signal("-KILL");
            kills += 1;
            nexum = start(&engine);
        }
        // Wait until this round's three parts are accepted, mining blocks to trigger polls.
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let posted: Vec<u64> = book
                .posts()
                .iter()
                .filter(|p| p.status == 201)
                .filter_map(|p| p.body["validTo"].as_u64())
                .collect();
            if valid_tos.iter().all(|v| posted.contains(v)) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: parts {valid_tos:?} never posted; posted {posted:?}\n{}",
                nexum.output().join("\n")
            );
            anvil.mine(1).await;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    assert_eq!(nexum.signal("-TERM").code(), Some(0));
    assert_eq!(kills, 3);

    let accepted = book.accepted();
    assert_eq!(accepted.len(), 3 * rounds as usize, "every part posted");
    for uid in &accepted {
        assert_eq!(book.accepted_count(uid), 1, "{uid} accepted more than once");
    }
    let duplicates = book.posts().iter().filter(|p| p.status == 400).count();
    eprintln!(
        "posts: {} accepted, {duplicates} answered DuplicatedOrder after a kill",
        accepted.len()
    );
}
