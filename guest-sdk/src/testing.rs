//! An in-memory host for unit-testing modules natively (`cargo test`, no wasm).
//!
//! [`TestHost`] stands in for nexum on the current thread: the store lives in memory with
//! the same commit-on-`Ok` rule as the real host, and log lines are captured.
//!
//! ```
//! use nexum_guest::testing::TestHost;
//! use nexum_guest::{Config, Fault, Module, Tick, store};
//!
//! struct Counter;
//! impl Module for Counter {
//!     fn init(_: Config) -> Result<Self, Fault> { Ok(Counter) }
//!     fn on_tick(&mut self, _: Tick) -> Result<(), Fault> {
//!         let n = store::get_json::<u64>("n")?.unwrap_or(0);
//!         store::set_json("n", &(n + 1))
//!     }
//! }
//!
//! let host = TestHost::new();
//! let mut counter: Counter = host.init(&[]).unwrap();
//! host.deliver(&mut counter, TestHost::tick(1_000)).unwrap();
//! assert_eq!(host.store_json::<u64>("n"), Some(1));
//! ```

use crate::bindings::nexum::cow::cow_api::CowApiError;
use crate::bindings::nexum::host::chain::{ChainError, RpcRequest};
use crate::bindings::nexum::host::logging::Level;
use crate::store::{Page, StoreWrite};
use crate::{Block, ChainLog, ChainLogs, Config, Event, Fault, Module, Tick};
use nexum_core::host_rules::chain::{self as chain_rules, Refusal};
use nexum_core::host_rules::log_budget::Budget;
use nexum_core::host_rules::store::{StoreLimits, WriteOp, WriteSet, entry_size, scan_start};
use nexum_core::host_rules::{orderbook as orderbook_rules, undeclared_chain};
use nexum_core::{Capability, Limits, ModuleManifest, bounded};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::ops::Bound;
use std::path::Path;
use std::rc::Rc;

thread_local! {
    static CURRENT: RefCell<Option<Rc<RefCell<HostState>>>> = const { RefCell::new(None) };
}

/// Runs `f` against the current thread's test host (installing a fresh one if none).
pub(crate) fn with_host<R>(f: impl FnOnce(&mut HostState) -> R) -> R {
    let state = CURRENT.with(|current| {
        current
            .borrow_mut()
            .get_or_insert_with(|| Rc::new(RefCell::new(HostState::from_crate_manifest())))
            .clone()
    });
    let mut state = state.borrow_mut();
    f(&mut state)
}

/// Answers a module's `chain` calls in tests: `(chain id, method, params JSON)` to a
/// result JSON or an error.
pub type ChainHandler = Box<dyn FnMut(u64, &str, &str) -> Result<String, ChainError>>;

/// Answers a module's `cow-api` calls in tests. `submit` receives the order JSON.
pub trait Orderbook {
    /// `request(chain, method, path, body)`.
    fn request(
        &mut self,
        chain_id: u64,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<String, CowApiError>;
    /// `submit-order(chain, order)`.
    fn submit(&mut self, chain_id: u64, order: &serde_json::Value) -> Result<String, CowApiError>;
}

/// What the module's manifest allows: the same things nexum checks.
struct Rules {
    /// `None` when no manifest was given: every capability is allowed.
    capabilities: Option<BTreeSet<Capability>>,
    chains: BTreeSet<u64>,
    limits: Limits,
}

impl Rules {
    fn of(manifest: Option<&ModuleManifest>) -> Self {
        match manifest {
            Some(manifest) => Rules {
                capabilities: Some(manifest.capabilities.clone()),
                chains: manifest.chains(),
                limits: Limits::default().overridden_by(&manifest.limits),
            },
            None => Rules {
                capabilities: None,
                chains: BTreeSet::new(),
                limits: Limits::default(),
            },
        }
    }

    /// Refuses a capability the manifest does not declare, as nexum would (it refuses to
    /// load a component that imports one).
    fn capability(&self, capability: Capability) -> Result<(), Fault> {
        match &self.capabilities {
            Some(declared) if !declared.contains(&capability) => Err(Fault::Denied(format!(
                "`{capability}` is not in [capabilities] required of module.toml: nexum would refuse to load this module"
            ))),
            _ => Ok(()),
        }
    }

    fn chain(&self, chain_id: u64) -> Result<(), Fault> {
        if self.chains.contains(&chain_id) {
            Ok(())
        } else {
            Err(Fault::Unsupported(undeclared_chain(chain_id)))
        }
    }

    fn size(&self, limit: u64) -> usize {
        usize::try_from(limit).unwrap_or(usize::MAX)
    }
}

/// The state behind a [`TestHost`].
pub(crate) struct HostState {
    rules: Rules,
    /// Whether state-changing orderbook requests are refused, as in an engine's dry run.
    dry_run: bool,
    log_budget: Budget,
    logs_dropped: u64,
    orderbook: Option<Box<dyn Orderbook>>,
    committed: BTreeMap<String, Vec<u8>>,
    used: u64,
    pending: WriteSet,
    logs: Vec<(Level, String)>,
    chain: Option<ChainHandler>,
    chain_calls: Vec<(u64, String, String)>,
}

impl HostState {
    fn new(manifest: Option<&ModuleManifest>) -> Self {
        let rules = Rules::of(manifest);
        Self {
            dry_run: false,
            log_budget: Budget::new(&rules.limits),
            logs_dropped: 0,
            rules,
            orderbook: None,
            committed: BTreeMap::new(),
            used: 0,
            pending: WriteSet::default(),
            logs: Vec::new(),
            chain: None,
            chain_calls: Vec::new(),
        }
    }

    /// A host for the crate under test: its `module.toml` when it has one.
    fn from_crate_manifest() -> Self {
        let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(|dir| Path::new(&dir).join("module.toml"))
            .filter(|path| path.is_file())
            .map(|path| {
                ModuleManifest::load(&path)
                    .unwrap_or_else(|e| panic!("the test host cannot read the manifest: {e}"))
            });
        Self::new(manifest.as_ref())
    }

    fn store_limits(&self) -> StoreLimits {
        StoreLimits::from(&self.rules.limits)
    }

    fn committed_size(&self, key: &str) -> Option<u64> {
        self.committed
            .get(key)
            .map(|value| entry_size(key.len(), value.len()))
    }

    fn store_fault(rule: nexum_core::host_rules::store::StoreRule) -> Fault {
        if rule.is_quota() {
            Fault::Denied(rule.to_string())
        } else {
            Fault::InvalidInput(rule.to_string())
        }
    }

    pub fn store_get(&mut self, key: &str) -> Result<Option<Vec<u8>>, Fault> {
        self.rules.capability(Capability::LocalStore)?;
        self.store_limits()
            .check_key(key)
            .map_err(Self::store_fault)?;
        Ok(match self.pending.get(key) {
            Some(write) => write.map(<[u8]>::to_vec),
            None => self.committed.get(key).cloned(),
        })
    }

    pub fn store_set(&mut self, key: &str, value: &[u8]) -> Result<(), Fault> {
        self.rules.capability(Capability::LocalStore)?;
        let limits = self.store_limits();
        let committed = self.committed_size(key);
        self.pending
            .set(
                &limits,
                self.used,
                key.to_string(),
                value.to_vec(),
                committed,
            )
            .map_err(Self::store_fault)
    }

    pub fn store_delete(&mut self, key: &str) -> Result<(), Fault> {
        self.rules.capability(Capability::LocalStore)?;
        let limits = self.store_limits();
        let committed = self.committed_size(key);
        self.pending
            .delete(&limits, self.used, key.to_string(), committed)
            .map_err(Self::store_fault)
    }

    pub fn store_list_keys(&mut self, prefix: &str) -> Result<Vec<String>, Fault> {
        self.rules.capability(Capability::LocalStore)?;
        let limits = self.store_limits();
        limits.check_prefix(prefix).map_err(Self::store_fault)?;
        let committed: Vec<String> = self
            .committed
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| !self.pending.touches(k))
            .map(|(k, _)| k.clone())
            .take(limits.list_keys + 1)
            .collect();
        self.pending
            .merge_keys(&limits, prefix, committed)
            .map_err(Self::store_fault)
    }

    pub fn store_page(
        &mut self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page, Fault> {
        self.rules.capability(Capability::LocalStore)?;
        let limits = self.store_limits();
        limits.check_prefix(prefix).map_err(Self::store_fault)?;
        if let Some(after) = after {
            limits.check_cursor(after).map_err(Self::store_fault)?;
        }
        let committed = self
            .committed
            .range((scan_start(prefix, after), Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, value)| Ok::<_, Infallible>((key.clone(), value.clone())));
        let page = match self.pending.page(prefix, after, limit, committed) {
            Ok(page) => page,
            Err(never) => match never {},
        };
        Ok(Page {
            entries: page.entries,
            next: page.next,
        })
    }

    pub fn store_count(&mut self, prefix: &str) -> Result<u64, Fault> {
        self.rules.capability(Capability::LocalStore)?;
        self.store_limits()
            .check_prefix(prefix)
            .map_err(Self::store_fault)?;
        let committed = self
            .committed
            .range(prefix.to_string()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .count() as u64;
        let count = self.pending.count(prefix, committed, |key| {
            Ok::<_, Infallible>(self.committed.contains_key(key))
        });
        Ok(match count {
            Ok(count) => count,
            Err(never) => match never {},
        })
    }

    pub fn store_value_len(&mut self, key: &str) -> Result<Option<u64>, Fault> {
        self.rules.capability(Capability::LocalStore)?;
        self.store_limits()
            .check_key(key)
            .map_err(Self::store_fault)?;
        Ok(match self.pending.get(key) {
            Some(write) => write.map(|value| value.len() as u64),
            None => self.committed.get(key).map(|value| value.len() as u64),
        })
    }

    pub fn store_apply(&mut self, writes: &[StoreWrite]) -> Result<(), Fault> {
        self.rules.capability(Capability::LocalStore)?;
        let limits = self.store_limits();
        let ops: Vec<WriteOp> = writes
            .iter()
            .map(|write| match write {
                StoreWrite::Set(key, value) => WriteOp::Set(key.clone(), value.clone()),
                StoreWrite::Delete(key) => WriteOp::Delete(key.clone()),
            })
            .collect();
        limits.check_writes(&ops).map_err(Self::store_fault)?;
        let ops = ops
            .into_iter()
            .map(|op| {
                let committed = self.committed_size(op.key());
                (op, committed)
            })
            .collect();
        self.pending
            .apply(&limits, self.used, ops)
            .map_err(Self::store_fault)
    }

    pub fn log(&mut self, level: Level, message: &str) {
        if let Err(Fault::Denied(why)) = self.rules.capability(Capability::Logging) {
            panic!("this module logs, but {why}");
        }
        let max = self.rules.size(self.rules.limits.log_line_bytes);
        if self.log_budget.take(message.len().min(max)) {
            self.logs.push((level, bounded::module_text(message, max)));
        } else {
            self.logs_dropped += 1;
        }
    }

    fn no_orderbook() -> CowApiError {
        CowApiError::Fault(Fault::Unsupported(
            "no orderbook set: call TestHost::with_orderbook in the test".into(),
        ))
    }

    fn cow_allowed(&self, chain_id: u64) -> Result<(), CowApiError> {
        self.rules
            .capability(Capability::CowApi)
            .and_then(|()| self.rules.chain(chain_id))
            .map_err(CowApiError::Fault)
    }

    fn cow_size(&self, what: &str, len: usize) -> Result<(), CowApiError> {
        let max = self.rules.size(self.rules.limits.request_bytes);
        if len > max {
            return Err(CowApiError::Fault(Fault::InvalidInput(format!(
                "the {what} is {len} bytes; the limit is {max}"
            ))));
        }
        Ok(())
    }

    pub fn cow_request(
        &mut self,
        chain_id: u64,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<String, CowApiError> {
        self.cow_allowed(chain_id)?;
        let parsed =
            orderbook_rules::method(method).map_err(|m| CowApiError::Fault(Fault::Denied(m)))?;
        self.cow_size("path", path.len())?;
        orderbook_rules::relative(path).map_err(|m| CowApiError::Fault(Fault::Denied(m)))?;
        if let Some(body) = body {
            self.cow_size("body", body.len())?;
            serde_json::from_str::<serde_json::Value>(body).map_err(|e| {
                CowApiError::Fault(Fault::InvalidInput(format!("the body is not JSON: {e}")))
            })?;
        }
        if self.dry_run && parsed.changes_state() {
            return Err(CowApiError::Fault(Fault::Denied(
                orderbook_rules::dry_run_refusal(parsed),
            )));
        }
        match self.orderbook.as_mut() {
            Some(orderbook) => orderbook.request(chain_id, method, path, body),
            None => Err(Self::no_orderbook()),
        }
    }

    pub fn cow_submit_order(&mut self, chain_id: u64, order: &[u8]) -> Result<String, CowApiError> {
        self.cow_allowed(chain_id)?;
        self.cow_size("order", order.len())?;
        orderbook_rules::parse_order(order)
            .map_err(|m| CowApiError::Fault(Fault::InvalidInput(m)))?;
        let order: serde_json::Value = serde_json::from_slice(order)
            .map_err(|e| CowApiError::Fault(Fault::InvalidInput(format!("not JSON: {e}"))))?;
        match self.orderbook.as_mut() {
            Some(orderbook) => orderbook.submit(chain_id, &order),
            None => Err(Self::no_orderbook()),
        }
    }

    fn chain_allowed(&self, chain_id: u64) -> Result<(), ChainError> {
        self.rules
            .capability(Capability::Chain)
            .and_then(|()| self.rules.chain(chain_id))
            .map_err(ChainError::Fault)
    }

    /// One checked call, answered by the test's handler.
    fn chain_call(
        &mut self,
        chain_id: u64,
        method: &str,
        params: &str,
    ) -> Result<String, ChainError> {
        let max = self.rules.size(self.rules.limits.request_bytes);
        let params = chain_rules::check_call(method, params, max).map_err(|refusal| {
            ChainError::Fault(match refusal {
                Refusal::Denied(m) => Fault::Denied(m),
                Refusal::InvalidInput(m) => Fault::InvalidInput(m),
            })
        })?;
        self.chain_calls
            .push((chain_id, method.to_string(), params.clone()));
        let answer = match self.chain.as_mut() {
            Some(handler) => handler(chain_id, method, &params)?,
            None => {
                return Err(ChainError::Fault(Fault::Unsupported(
                    "no chain handler set: call TestHost::on_chain in the test".into(),
                )));
            }
        };
        let max = self.rules.size(self.rules.limits.answer_bytes);
        if answer.len() > max {
            return Err(ChainError::Fault(Fault::Unavailable(format!(
                "the node's answer is {} bytes; this module may receive {max} (limits.answer_bytes)",
                answer.len()
            ))));
        }
        Ok(answer)
    }

    pub fn chain_request(
        &mut self,
        chain_id: u64,
        method: &str,
        params: &str,
    ) -> Result<String, ChainError> {
        self.chain_allowed(chain_id)?;
        self.chain_call(chain_id, method, params)
    }

    pub fn chain_request_batch(
        &mut self,
        chain_id: u64,
        requests: &[RpcRequest],
    ) -> Result<Vec<Result<String, ChainError>>, ChainError> {
        self.chain_allowed(chain_id)?;
        let shapes: Vec<(&str, &str)> = requests
            .iter()
            .map(|r| (r.method.as_str(), r.params.as_str()))
            .collect();
        chain_rules::check_batch(
            &shapes,
            self.rules.size(self.rules.limits.rpc_batch_max),
            self.rules.size(self.rules.limits.request_bytes),
        )
        .map_err(|m| ChainError::Fault(Fault::InvalidInput(m)))?;
        Ok(requests
            .iter()
            .map(|r| self.chain_call(chain_id, &r.method, &r.params))
            .collect())
    }

    fn settle(&mut self, ok: bool) {
        let pending = std::mem::take(&mut self.pending);
        if ok {
            self.used = self.used.saturating_add_signed(pending.delta());
            for (key, write) in pending.into_writes() {
                match write {
                    Some(value) => self.committed.insert(key, value),
                    None => self.committed.remove(&key),
                };
            }
        }
    }
}

/// A stand-in for the nexum host on the current thread. Creating one replaces any
/// previous test host of this thread.
///
/// It is as strict as nexum: the same store limits and quota, the same JSON-RPC method
/// allow-list and params checks, the same orderbook path rules, and only the chains and
/// capabilities the module's manifest declares. [`TestHost::new`] reads the `module.toml`
/// of the crate under test (or, without one, allows every capability and no chain);
/// [`TestHost::with_manifest`] takes a manifest's text.
pub struct TestHost {
    state: Rc<RefCell<HostState>>,
}

impl Default for TestHost {
    fn default() -> Self {
        Self::new()
    }
}

impl TestHost {
    /// Installs a fresh, empty host for this thread, under the `module.toml` of the crate
    /// under test when it has one.
    ///
    /// # Panics
    ///
    /// When that `module.toml` exists but is not a valid manifest.
    pub fn new() -> Self {
        Self::install(HostState::from_crate_manifest())
    }

    /// Installs a fresh, empty host for this thread, under the manifest `text`.
    ///
    /// # Panics
    ///
    /// When `text` is not a valid manifest (the message names the field and the reason).
    pub fn with_manifest(text: &str) -> Self {
        let manifest = ModuleManifest::parse(Path::new("module.toml"), text)
            .unwrap_or_else(|e| panic!("the test host cannot read the manifest: {e}"));
        Self::install(HostState::new(Some(&manifest)))
    }

    fn install(state: HostState) -> Self {
        let state = Rc::new(RefCell::new(state));
        CURRENT.with(|current| *current.borrow_mut() = Some(state.clone()));
        Self { state }
    }

    /// Runs `M::init` with `config`, committing its writes if it succeeds.
    pub fn init<M: Module>(&self, config: &[(&str, &str)]) -> Result<M, Fault> {
        let config = Config::new(
            config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        let result = M::init(config);
        self.state.borrow_mut().settle(result.is_ok());
        result
    }

    /// Delivers `event` the way nexum does: writes commit on `Ok`, are dropped on `Err`.
    pub fn deliver<M: Module>(&self, module: &mut M, event: Event) -> Result<(), Fault> {
        let result = module.on_event(event);
        self.state.borrow_mut().settle(result.is_ok());
        result
    }

    /// A tick event fired at `fired_at` (ms since the epoch).
    pub fn tick(fired_at: u64) -> Event {
        Event::Tick(Tick {
            fired_at,
            schedule: "* * * * * *".into(),
        })
    }

    /// A block event: block `number` of `chain_id`, with made-up hashes that chain (each
    /// block's parent hash is the previous number's hash; block 0's is zero) and a
    /// timestamp of 12 s a block.
    pub fn block(chain_id: u64, number: u64) -> Event {
        let hash = |n: u64| {
            let mut word = vec![0u8; 32];
            word[0] = 0xb1;
            word[24..].copy_from_slice(&n.to_be_bytes());
            word
        };
        Event::Block(Block {
            chain_id,
            number,
            hash: hash(number),
            parent_hash: number.checked_sub(1).map_or_else(|| vec![0; 32], hash),
            timestamp: number.saturating_mul(12_000),
        })
    }

    /// The log `event` emitted by `address`, as nexum delivers it: topics and data encoded
    /// from the `sol!` event, in block 1 at log index 0. Change the rest with struct update
    /// syntax: `ChainLog { removed: true, ..TestHost::log(address, &ping) }`.
    pub fn log<E: alloy_sol_types::SolEvent>(
        address: alloy_primitives::Address,
        event: &E,
    ) -> ChainLog {
        let data = event.encode_log_data();
        ChainLog {
            address: address.to_vec(),
            topics: data.topics().iter().map(|t| t.to_vec()).collect(),
            data: data.data.to_vec(),
            block_number: Some(1),
            block_hash: Some(vec![1; 32]),
            transaction_hash: Some(vec![2; 32]),
            transaction_index: Some(0),
            log_index: Some(0),
            removed: false,
        }
    }

    /// A delivery of `logs` on `chain_id`, as given (nexum delivers one block's logs in
    /// log-index order; set `log_index` and `block_number` where a test relies on them).
    pub fn chain_logs(chain_id: u64, logs: Vec<ChainLog>) -> Event {
        Event::ChainLogs(ChainLogs { chain_id, logs })
    }

    /// The committed value of `key`.
    pub fn store_value(&self, key: &str) -> Option<Vec<u8>> {
        self.state.borrow().committed.get(key).cloned()
    }

    /// The committed value of `key`, decoded from JSON.
    pub fn store_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.store_value(key).map(|bytes| {
            serde_json::from_slice(&bytes).expect("stored value is not valid JSON for this type")
        })
    }

    /// Committed keys, sorted.
    pub fn store_keys(&self) -> Vec<String> {
        self.state.borrow().committed.keys().cloned().collect()
    }

    /// Sets a committed value directly, as if an earlier run had stored it.
    ///
    /// # Panics
    ///
    /// When the key or value breaks the module's store limits (nexum would never have
    /// stored it).
    pub fn seed_store(&self, key: &str, value: &[u8]) {
        let mut state = self.state.borrow_mut();
        let limits = state.store_limits();
        if let Err(rule) = limits.check_key(key) {
            panic!("cannot seed {key:?}: {rule}");
        }
        assert!(
            value.len() as u64 <= limits.value_bytes,
            "cannot seed {key:?}: the value is {} bytes; the limit is {}",
            value.len(),
            limits.value_bytes
        );
        let before = state.committed_size(key).unwrap_or(0);
        state.used = state.used - before + entry_size(key.len(), value.len());
        state.committed.insert(key.to_string(), value.to_vec());
    }

    /// Answers the module's `chain` calls with `handler`.
    pub fn on_chain(
        &self,
        handler: impl FnMut(u64, &str, &str) -> Result<String, ChainError> + 'static,
    ) {
        self.state.borrow_mut().chain = Some(Box::new(handler));
    }

    /// Answers the module's `cow-api` calls with `orderbook`.
    pub fn with_orderbook(&self, orderbook: impl Orderbook + 'static) {
        self.state.borrow_mut().orderbook = Some(Box::new(orderbook));
    }

    /// Every `chain` call so far: `(chain id, method, params JSON)`.
    pub fn chain_calls(&self) -> Vec<(u64, String, String)> {
        self.state.borrow().chain_calls.clone()
    }

    /// Refuses state-changing orderbook requests (POST, PUT, DELETE) the way an engine in
    /// dry run does; `submit-order`'s answer comes from the test's orderbook as before.
    pub fn dry_run(&self) {
        self.state.borrow_mut().dry_run = true;
    }

    /// Log lines dropped by the module's log budget (lines and bytes per second).
    pub fn logs_dropped(&self) -> u64 {
        self.state.borrow().logs_dropped
    }

    /// Every log line so far, oldest first.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.state.borrow().logs.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store;

    const MANIFEST: &str = "[module]\nname = \"t\"\nversion = \"0\"\n\
        [capabilities]\nrequired = [\"local-store\"]\n\
        [limits]\nstore_key_bytes = 8\nstore_value_bytes = 4\nstore_total_bytes = 16\nlist_keys_max = 2\n";

    struct Writes;
    impl Module for Writes {
        fn init(_: Config) -> Result<Self, Fault> {
            Ok(Writes)
        }
    }

    #[test]
    fn the_store_obeys_the_manifests_limits_like_nexum() {
        let host = TestHost::with_manifest(MANIFEST);
        let _module: Writes = host.init(&[]).unwrap();
        assert!(matches!(store::set("", b"v"), Err(Fault::InvalidInput(_))));
        assert!(
            matches!(store::set("too-long-key", b"v"), Err(Fault::InvalidInput(m)) if m.contains("limit is 8"))
        );
        assert!(
            matches!(store::set("k", b"12345"), Err(Fault::InvalidInput(m)) if m.contains("limit is 4"))
        );
        store::set("k1", b"1234").unwrap();
        store::set("k2", b"1234").unwrap();
        assert!(matches!(store::set("k3", b"1234"), Err(Fault::Denied(m)) if m.contains("quota")));
        host.state.borrow_mut().settle(true);
        store::set("k3", b"").unwrap();
        assert!(
            matches!(store::list_keys("k"), Err(Fault::InvalidInput(m)) if m.contains("more than 2"))
        );
        // Deleting what was never stored is free.
        store::delete("never").unwrap();
        assert_eq!(store::list_keys("n").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn the_sdk_s_store_caps_are_the_host_s() {
        use nexum_core::host_rules::store as host;
        assert_eq!(store::PAGE_MAX_ENTRIES, host::PAGE_MAX_ENTRIES);
        assert_eq!(store::BATCH_MAX_WRITES, host::BATCH_MAX_WRITES);
    }

    #[test]
    fn paging_counting_and_batches_follow_the_runtime_s_rules() {
        let host = TestHost::with_manifest(
            "[module]\nname = \"t\"\nversion = \"0\"\n[capabilities]\nrequired = [\"local-store\"]\n\
             [limits]\nstore_total_bytes = 40000\n",
        );
        let _module: Writes = host.init(&[]).unwrap();
        let mut batch = store::Batch::new();
        for i in 0..2500 {
            batch.set(&format!("k/{i:04}"), b"v");
        }
        batch.apply().unwrap();
        assert!(batch.is_empty());
        host.state.borrow_mut().settle(true);

        // The walk crosses pages and sees this handler's own writes and deletes.
        store::delete("k/0001").unwrap();
        store::set("k/0001x", b"new").unwrap();
        let keys: Vec<String> = store::entries("k/").map(|e| e.unwrap().0).collect();
        assert_eq!(keys.len(), 2500);
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert!(keys.contains(&"k/0001x".to_string()) && !keys.contains(&"k/0001".to_string()));
        let first = store::page("k/", None, 5000).unwrap();
        assert_eq!(first.entries.len(), store::PAGE_MAX_ENTRIES as usize);
        assert_eq!(store::count("k/").unwrap(), 2500);
        assert_eq!(store::value_len("k/0001x").unwrap(), Some(3));
        assert!(!store::contains("k/0001").unwrap());

        // A batch over the quota is refused whole (2500 × 7 bytes are in use).
        let mut over = store::Batch::new();
        for i in 0..5000 {
            over.set(&format!("o/{i:04}"), b"v");
        }
        assert!(matches!(over.apply(), Err(Fault::Denied(m)) if m.contains("quota")));
        assert_eq!(over.len(), 5000, "a refused batch is kept");
        assert_eq!(store::count("o/").unwrap(), 0);
    }

    #[test]
    fn logs_keep_the_runtime_s_budget_and_orders_its_validation() {
        let host = TestHost::with_manifest(
            "[module]\nname = \"t\"\nversion = \"0\"\n[capabilities]\nrequired = [\"logging\", \"cow-api\"]\nchains = [1]\n[limits]\nlog_lines_per_second = 5\n",
        );
        for i in 0..20 {
            crate::info!("line {i}");
        }
        assert_eq!(host.logs().len(), 5);
        assert_eq!(host.logs_dropped(), 15);

        let refused = crate::host::cow_submit_order(1, br#"{"sellToken":"0x12"}"#).unwrap_err();
        assert!(
            matches!(&refused, CowApiError::Fault(Fault::InvalidInput(m)) if m.contains("not a valid OrderCreation")),
            "{refused:?}"
        );
        host.dry_run();
        let posted = crate::host::cow_request(1, "POST", "api/v1/orders", Some("{}")).unwrap_err();
        assert!(
            matches!(&posted, CowApiError::Fault(Fault::Denied(m)) if m.starts_with("dry run: POST")),
            "{posted:?}"
        );
    }
}
