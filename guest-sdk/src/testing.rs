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
use crate::bindings::nexum::host::chain::ChainError;
use crate::bindings::nexum::host::logging::Level;
use crate::{Config, Event, Fault, Module, Tick};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

thread_local! {
    static CURRENT: RefCell<Option<Rc<RefCell<HostState>>>> = const { RefCell::new(None) };
}

/// Runs `f` against the current thread's test host (installing a fresh one if none).
pub(crate) fn with_host<R>(f: impl FnOnce(&mut HostState) -> R) -> R {
    let state = CURRENT.with(|current| {
        current
            .borrow_mut()
            .get_or_insert_with(|| Rc::new(RefCell::new(HostState::default())))
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

/// The state behind a [`TestHost`].
#[derive(Default)]
pub(crate) struct HostState {
    orderbook: Option<Box<dyn Orderbook>>,
    committed: BTreeMap<String, Vec<u8>>,
    pending: BTreeMap<String, Option<Vec<u8>>>,
    logs: Vec<(Level, String)>,
    chain: Option<ChainHandler>,
    chain_calls: Vec<(u64, String, String)>,
}

impl HostState {
    pub fn store_get(&mut self, key: &str) -> Result<Option<Vec<u8>>, Fault> {
        check_key(key)?;
        Ok(match self.pending.get(key) {
            Some(write) => write.clone(),
            None => self.committed.get(key).cloned(),
        })
    }

    pub fn store_set(&mut self, key: &str, value: &[u8]) -> Result<(), Fault> {
        check_key(key)?;
        self.pending.insert(key.to_string(), Some(value.to_vec()));
        Ok(())
    }

    pub fn store_delete(&mut self, key: &str) -> Result<(), Fault> {
        check_key(key)?;
        self.pending.insert(key.to_string(), None);
        Ok(())
    }

    pub fn store_list_keys(&mut self, prefix: &str) -> Result<Vec<String>, Fault> {
        let mut view = self.committed.clone();
        self.apply_pending_to(&mut view);
        Ok(view.into_keys().filter(|k| k.starts_with(prefix)).collect())
    }

    pub fn log(&mut self, level: Level, message: &str) {
        self.logs.push((level, message.to_string()));
    }

    fn no_orderbook() -> CowApiError {
        CowApiError::Fault(Fault::Unsupported(
            "no orderbook set: call TestHost::with_orderbook in the test".into(),
        ))
    }

    pub fn cow_request(
        &mut self,
        chain_id: u64,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<String, CowApiError> {
        match self.orderbook.as_mut() {
            Some(orderbook) => orderbook.request(chain_id, method, path, body),
            None => Err(Self::no_orderbook()),
        }
    }

    pub fn cow_submit_order(&mut self, chain_id: u64, order: &[u8]) -> Result<String, CowApiError> {
        let order: serde_json::Value = serde_json::from_slice(order)
            .map_err(|e| CowApiError::Fault(Fault::InvalidInput(format!("not JSON: {e}"))))?;
        match self.orderbook.as_mut() {
            Some(orderbook) => orderbook.submit(chain_id, &order),
            None => Err(Self::no_orderbook()),
        }
    }

    pub fn chain_request(
        &mut self,
        chain_id: u64,
        method: &str,
        params: &str,
    ) -> Result<String, ChainError> {
        self.chain_calls
            .push((chain_id, method.to_string(), params.to_string()));
        match self.chain.as_mut() {
            Some(handler) => handler(chain_id, method, params),
            None => Err(ChainError::Fault(Fault::Unsupported(
                "no chain handler set: call TestHost::on_chain in the test".into(),
            ))),
        }
    }

    fn apply_pending_to(&self, view: &mut BTreeMap<String, Vec<u8>>) {
        for (key, write) in &self.pending {
            match write {
                Some(value) => view.insert(key.clone(), value.clone()),
                None => view.remove(key),
            };
        }
    }

    fn settle(&mut self, ok: bool) {
        let pending = std::mem::take(&mut self.pending);
        if ok {
            for (key, write) in pending {
                match write {
                    Some(value) => self.committed.insert(key, value),
                    None => self.committed.remove(&key),
                };
            }
        }
    }
}

fn check_key(key: &str) -> Result<(), Fault> {
    if key.is_empty() {
        Err(Fault::InvalidInput("keys must not be empty".into()))
    } else {
        Ok(())
    }
}

/// A stand-in for the nexum host on the current thread. Creating one replaces any
/// previous test host of this thread.
pub struct TestHost {
    state: Rc<RefCell<HostState>>,
}

impl Default for TestHost {
    fn default() -> Self {
        Self::new()
    }
}

impl TestHost {
    /// Installs a fresh, empty host for this thread.
    pub fn new() -> Self {
        let state = Rc::new(RefCell::new(HostState::default()));
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
    pub fn seed_store(&self, key: &str, value: &[u8]) {
        self.state
            .borrow_mut()
            .committed
            .insert(key.to_string(), value.to_vec());
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

    /// Every log line so far, oldest first.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.state.borrow().logs.clone()
    }
}
