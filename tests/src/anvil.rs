//! A real local chain: Anvil, spawned on a free loopback port, and the test contract.
//!
//! Anvil comes from the project's own set-up (`scripts/test.sh` installs it into `tools/`);
//! a missing Anvil fails the test with the command that installs it — never a silent skip.

use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_rpc_client::{ClientBuilder, RpcClient};
use alloy_sol_types::{SolCall, sol};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

sol! {
    /// The test contract, `tests/contracts/Emitter.sol`.
    contract Emitter {
        event Ping(address indexed sender, uint256 indexed seq, bytes payload);
        event Pong(uint256 indexed seq, string note);
        error TooEarly(uint256 at);
        function count() external view returns (uint256);
        function ping(uint256 seq, bytes calldata payload) external;
        function pong(uint256 seq, string calldata note) external;
        function burst(uint256 n) external;
        function fail(string calldata why) external pure;
        function failCustom(uint256 at) external pure;
    }
}

/// The deployable bytecode of the test contract (rebuilt by `scripts/build-contracts.sh`).
pub const EMITTER_BYTECODE: &str = include_str!("../contracts/Emitter.bin");

/// Anvil's chain id.
pub const CHAIN_ID: u64 = 31337;

/// Where the Anvil binary is: `$NEXUM_ANVIL`, else `tools/bin/anvil` in the workspace.
pub fn anvil_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NEXUM_ANVIL") {
        return PathBuf::from(path);
    }
    let path = crate::guests::workspace_root().join("tools/bin/anvil");
    assert!(
        path.is_file(),
        "Anvil is not installed at {}: run scripts/test.sh (it installs the pinned Anvil into tools/)",
        path.display()
    );
    path
}

/// A running Anvil, killed when dropped.
pub struct Anvil {
    /// None for a node another process started (see [`Anvil::connect`]).
    child: Option<Child>,
    port: u16,
    client: RpcClient,
    args: Vec<String>,
}

impl Anvil {
    /// Anvil that mines a block for every transaction (and on `mine`).
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Anvil with extra command-line arguments (e.g. `["--block-time", "1"]`).
    pub async fn spawn_with(args: &[&str]) -> Self {
        Self::spawn_on(free_port(), args.iter().map(|s| s.to_string()).collect()).await
    }

    async fn spawn_on(port: u16, args: Vec<String>) -> Self {
        let mut command = Command::new(anvil_binary());
        crate::process::die_with_parent(&mut command);
        let child = command
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--silent",
            ])
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting anvil");
        let url = format!("http://127.0.0.1:{port}").parse().unwrap();
        let client = ClientBuilder::default().http(url);
        let anvil = Self {
            child: Some(child),
            port,
            client,
            args,
        };
        anvil.wait_ready().await;
        anvil
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self
                .client
                .request_noparams::<Value>("eth_chainId")
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("anvil on port {} did not become ready", self.port);
    }

    /// Stops this Anvil and starts a new one on the same port with the same arguments
    /// (the chain starts over unless the arguments persist state).
    pub async fn restart(mut self) -> Self {
        self.stop();
        let (port, args) = (self.port, std::mem::take(&mut self.args));
        Self::spawn_on(port, args).await
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `ws://127.0.0.1:<port>`.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One JSON-RPC call.
    pub async fn rpc(&self, method: &'static str, params: Value) -> Value {
        self.client
            .request::<Value, Value>(method, params.clone())
            .await
            .unwrap_or_else(|e| panic!("anvil {method} {params}: {e}"))
    }

    /// The latest block number.
    pub async fn block_number(&self) -> u64 {
        hex_u64(&self.rpc("eth_blockNumber", json!([])).await)
    }

    /// Mines `blocks` empty blocks.
    pub async fn mine(&self, blocks: u64) {
        self.rpc("anvil_mine", json!([format!("{blocks:#x}")]))
            .await;
    }

    /// The first dev account (unlocked, funded).
    pub async fn dev_account(&self) -> Address {
        let accounts = self.rpc("eth_accounts", json!([])).await;
        accounts[0].as_str().unwrap().parse().unwrap()
    }

    /// Sends a transaction from the first dev account and waits for its receipt.
    pub async fn send(&self, to: Option<Address>, data: &[u8]) -> Value {
        let from = self.dev_account().await;
        let mut tx =
            json!({ "from": from, "data": Bytes::copy_from_slice(data), "gas": "0x1c9c380" });
        if let Some(to) = to {
            tx["to"] = json!(to);
        }
        let hash = self.rpc("eth_sendTransaction", json!([tx])).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let receipt = self.rpc("eth_getTransactionReceipt", json!([hash])).await;
            if !receipt.is_null() {
                assert_eq!(receipt["status"], "0x1", "transaction failed: {receipt}");
                return receipt;
            }
            assert!(Instant::now() < deadline, "no receipt for {hash}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends calls to `to` from the first dev account so that they land in one block, in
    /// order, and waits for their receipts.
    pub async fn send_in_one_block(&self, to: Address, calls: &[Vec<u8>]) -> Vec<Value> {
        let from = self.dev_account().await;
        let nonce = hex_u64(
            &self
                .rpc("eth_getTransactionCount", json!([from, "latest"]))
                .await,
        );
        self.rpc("evm_setAutomine", json!([false])).await;
        let mut hashes = Vec::new();
        for (i, data) in calls.iter().enumerate() {
            let tx = json!({
                "from": from, "to": to, "data": Bytes::copy_from_slice(data),
                // Well under the block gas limit, so that they fit in one block together.
                "gas": "0xf4240", "nonce": format!("{:#x}", nonce + i as u64),
            });
            hashes.push(self.rpc("eth_sendTransaction", json!([tx])).await);
        }
        self.rpc("evm_mine", json!([])).await;
        self.rpc("evm_setAutomine", json!([true])).await;
        let mut receipts = Vec::new();
        for hash in hashes {
            let receipt = self.rpc("eth_getTransactionReceipt", json!([hash])).await;
            assert_eq!(receipt["status"], "0x1", "transaction failed: {receipt}");
            receipts.push(receipt);
        }
        receipts
    }

    /// The calldata of `emitter.pong(seq, note)`.
    pub fn pong_call(seq: u64, note: &str) -> Vec<u8> {
        Emitter::pongCall {
            seq: U256::from(seq),
            note: note.to_string(),
        }
        .abi_encode()
    }

    /// Deploys the test contract and returns its address.
    pub async fn deploy_emitter(&self) -> Address {
        let code = hex_bytes(EMITTER_BYTECODE.trim());
        let receipt = self.send(None, &code).await;
        receipt["contractAddress"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// `emitter.ping(seq, payload)`.
    pub async fn ping(&self, emitter: Address, seq: u64, payload: &[u8]) -> Value {
        let call = Emitter::pingCall {
            seq: U256::from(seq),
            payload: Bytes::copy_from_slice(payload),
        };
        self.send(Some(emitter), &call.abi_encode()).await
    }

    /// `emitter.pong(seq, note)`.
    pub async fn pong(&self, emitter: Address, seq: u64, note: &str) -> Value {
        let call = Emitter::pongCall {
            seq: U256::from(seq),
            note: note.to_string(),
        };
        self.send(Some(emitter), &call.abi_encode()).await
    }

    /// `emitter.burst(n)`: `n` Pings and a Pong in one transaction.
    pub async fn burst(&self, emitter: Address, n: u64) -> Value {
        let call = Emitter::burstCall { n: U256::from(n) };
        self.send(Some(emitter), &call.abi_encode()).await
    }

    /// `(block, log index)` of each log of `address` over `from..=to`, in chain order.
    pub async fn log_positions(&self, address: Address, from: u64, to: u64) -> Vec<(u64, u64)> {
        self.logs(address, from, to)
            .await
            .iter()
            .map(|l| (hex_u64(&l["blockNumber"]), hex_u64(&l["logIndex"])))
            .collect()
    }

    /// `eth_getLogs` of `address` over `from..=to`.
    pub async fn logs(&self, address: Address, from: u64, to: u64) -> Vec<Value> {
        let logs = self
            .rpc(
                "eth_getLogs",
                json!([{ "address": address, "fromBlock": format!("{from:#x}"), "toBlock": format!("{to:#x}") }]),
            )
            .await;
        logs.as_array().unwrap().clone()
    }

    /// The hash of block `number`.
    pub async fn block_hash(&self, number: u64) -> B256 {
        let block = self
            .rpc(
                "eth_getBlockByNumber",
                json!([format!("{number:#x}"), false]),
            )
            .await;
        block["hash"].as_str().unwrap().parse().unwrap()
    }
}

impl Anvil {
    /// A node another process runs (`nexum dev`'s local chain) at `ws_url`, once it answers;
    /// it is not stopped when this is dropped.
    pub async fn connect(ws_url: &str) -> Self {
        let port: u16 = ws_url
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in {ws_url}"));
        let url = format!("http://127.0.0.1:{port}").parse().unwrap();
        let anvil = Self {
            child: None,
            port,
            client: ClientBuilder::default().http(url),
            args: Vec::new(),
        };
        anvil.wait_ready().await;
        anvil
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port nothing listens on right now, for a server a test starts on it later. Taken
/// below the kernel's ephemeral range: a port the kernel hands out (`bind` to port 0) is
/// also what it picks as the source port of outgoing connections, and one of those (a
/// websocket client of another test, say) took such a port between the check and the
/// server's bind ("Address already in use").
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_low.max(10_001));
    let random = RandomState::new();
    for attempt in 0u64..1_000 {
        let port = low + (random.hash_one(attempt) % u64::from(high - low)) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {low}..{high} after 1,000 tries");
}

/// `"0x1f"` → 31.
pub fn hex_u64(value: &Value) -> u64 {
    let text = value.as_str().expect("a hex quantity");
    u64::from_str_radix(text.trim_start_matches("0x"), 16).expect("a hex quantity")
}

fn hex_bytes(text: &str) -> Vec<u8> {
    hex::decode(text.trim_start_matches("0x")).expect("hex bytecode")
}

impl Anvil {
    /// `anvil_reorg`: replaces the last `depth` blocks; each `(calldata, offset)` becomes a
    /// call to `emitter` from the first dev account in the replacement block at `offset`
    /// (0 = the first replaced block).
    pub async fn reorg(&self, depth: u64, emitter: Address, calls: &[(Vec<u8>, u64)]) {
        let from = self.dev_account().await;
        let pairs: Vec<Value> = calls
            .iter()
            .map(|(data, offset)| {
                json!([{ "from": from, "to": emitter, "data": Bytes::copy_from_slice(data), "gas": "0x1c9c380" }, offset])
            })
            .collect();
        self.rpc("anvil_reorg", json!([depth, pairs])).await;
    }

    /// The calldata of `emitter.ping(seq, payload)`.
    pub fn ping_call(seq: u64, payload: &[u8]) -> Vec<u8> {
        Emitter::pingCall {
            seq: U256::from(seq),
            payload: Bytes::copy_from_slice(payload),
        }
        .abi_encode()
    }
}

sol! {
    /// The ComposableCoW test double, `tests/contracts/MockComposableCoW.sol`.
    #[derive(Debug)]
    contract MockComposableCoW {
        #[derive(PartialEq)]
        struct ConditionalOrderParams {
            address handler;
            bytes32 salt;
            bytes staticInput;
        }
        #[derive(Default)]
        struct OrderData {
            address sellToken;
            address buyToken;
            address receiver;
            uint256 sellAmount;
            uint256 buyAmount;
            uint32 validTo;
            bytes32 appData;
            uint256 feeAmount;
            bytes32 kind;
            bool partiallyFillable;
            bytes32 sellTokenBalance;
            bytes32 buyTokenBalance;
        }
        function hash(ConditionalOrderParams memory params) public pure returns (bytes32);
        function create(ConditionalOrderParams calldata params) external;
        function script(bytes32 paramsHash, uint8 mode, uint256 arg, OrderData calldata order) external;
    }
}

/// The deployable bytecode of the ComposableCoW test double.
pub const MOCK_COMPOSABLE_COW_BYTECODE: &str = include_str!("../contracts/MockComposableCoW.bin");

/// What the ComposableCoW test double answers for a conditional order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PollAnswer {
    /// `PollTryNextBlock("unscripted")`.
    Unscripted = 0,
    /// The scripted order, with an EIP-1271 signature.
    Ready = 1,
    /// `PollTryNextBlock`.
    TryNextBlock = 2,
    /// `PollTryAtBlock(arg)`.
    TryAtBlock = 3,
    /// `PollTryAtEpoch(arg)`.
    TryAtEpoch = 4,
    /// `PollNever`.
    Never = 5,
    /// `OrderNotValid`.
    NotValid = 6,
}

impl Anvil {
    /// Deploys the ComposableCoW test double and returns its address.
    pub async fn deploy_composable_cow(&self) -> Address {
        let code = hex_bytes(MOCK_COMPOSABLE_COW_BYTECODE.trim());
        let receipt = self.send(None, &code).await;
        receipt["contractAddress"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// The first dev account creates the conditional order `params` (emits the event).
    pub async fn create_conditional_order(
        &self,
        composable_cow: Address,
        params: &MockComposableCoW::ConditionalOrderParams,
    ) -> Value {
        let call = MockComposableCoW::createCall {
            params: params.clone(),
        };
        self.send(Some(composable_cow), &call.abi_encode()).await
    }

    /// Scripts what polling `params` answers.
    pub async fn script_poll(
        &self,
        composable_cow: Address,
        params: &MockComposableCoW::ConditionalOrderParams,
        answer: PollAnswer,
        arg: u64,
        order: MockComposableCoW::OrderData,
    ) {
        let params_hash =
            alloy_primitives::keccak256(alloy_sol_types::SolValue::abi_encode(params));
        let call = MockComposableCoW::scriptCall {
            paramsHash: params_hash,
            mode: answer as u8,
            arg: U256::from(arg),
            order,
        };
        self.send(Some(composable_cow), &call.abi_encode()).await;
    }

    /// The timestamp (seconds) of the latest block.
    pub async fn latest_timestamp(&self) -> u64 {
        let block = self
            .rpc("eth_getBlockByNumber", json!(["latest", false]))
            .await;
        hex_u64(&block["timestamp"])
    }

    /// Mines one block with timestamp `seconds`.
    pub async fn mine_at(&self, seconds: u64) {
        self.rpc("evm_setNextBlockTimestamp", json!([seconds]))
            .await;
        self.mine(1).await;
    }
}
