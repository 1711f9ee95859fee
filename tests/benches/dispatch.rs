//! Host-side cost of dispatching one event to a no-op module, against the floor of a bare
//! wasmtime call of the same export with the same payload.
//!
//! `cargo bench -p nexum-tests --bench dispatch`
//!
//! - `nexum/…`: `Supervisor::dispatch` → queue → worker → fuel, deadline, `on-event`, commit,
//!   awaited from a task on the host's runtime, as a source awaits an event (the events are
//!   made outside the timing, as a source makes them anyway; nexum lowers each into the
//!   module from its own values, inside the timing). Back to back: after three hand-overs
//!   on one thread tokio wakes the other worker for each (README, benchmarks). The runtime
//!   has tokio's default workers, one per core; `TOKIO_WORKER_THREADS=1` gives the one
//!   worker `nexum run` starts for one module;
//! - `nexum-from-outside/block`: the same, awaited from a thread outside the runtime (an
//!   embedding service's own thread): each event then also wakes a runtime thread and is
//!   woken back;
//! - `floor/…`: the same component called directly on a plain wasmtime store whose
//!   `local-store` is an in-memory map (no limits, no queue, no fjall), with the event's
//!   WIT value built once, outside the timing;
//! - `floor-metered/…`: the same with the guest's code counting fuel and checking the epoch
//!   as nexum's does: the part of nexum's cost that runs inside the guest;
//! - `floor-queued/…`: the metered floor behind a queue, as any design with a worker task
//!   per module pays it: a task of its own takes each event from a bounded channel, calls,
//!   and answers on a oneshot, awaited from a task on the runtime like `nexum/…`;
//! - `nexum-cranelift/…` and `floor-winch/…`: `nexum/…` and `floor/…` with the other
//!   compiler. nexum compiles with its default (Winch on x86-64), the floor with wasmtime's
//!   (Cranelift), so these rows give each compiler's pair.

use criterion::{Criterion, criterion_group, criterion_main};
use nexum_core::{Address, B256, Block, Bytes, ChainLog, ChainLogs, Compiler, Event};
use nexum_tests::engine::{TestEngine, TestModule, boot, test_config};
use nexum_tests::guests;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use wasmtime::Strategy;

fn block_event() -> Event {
    Event::Block(Block {
        chain_id: 1,
        number: 19_000_000,
        hash: B256::repeat_byte(0xab),
        parent_hash: B256::repeat_byte(0xcd),
        timestamp: 1_700_000_000_000,
    })
}

fn logs_event() -> Event {
    let logs = (0..10)
        .map(|i| ChainLog {
            address: Address::repeat_byte(0x11),
            topics: vec![
                B256::repeat_byte(1),
                B256::repeat_byte(2),
                B256::repeat_byte(3),
            ],
            data: Bytes::from(vec![7u8; 64]),
            block_number: Some(19_000_000),
            block_hash: Some(B256::repeat_byte(0xab)),
            transaction_hash: Some(B256::repeat_byte(i)),
            transaction_index: Some(u64::from(i)),
            log_index: Some(u64::from(i)),
            removed: false,
        })
        .collect();
    Event::ChainLogs(ChainLogs { chain_id: 1, logs })
}

fn noop(name: &str, write: bool) -> TestModule {
    TestModule::new(
        "noop",
        name,
        &["local-store", "logging"],
        &format!("[config]\nwrite = \"{write}\"\n"),
    )
}

fn dispatch(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = Arc::new(runtime.block_on(async {
        boot(
            vec![noop("plain", false), noop("writer", true)],
            test_config(),
        )
        .await
        .unwrap()
    }));
    let cranelift = Arc::new(runtime.block_on(async {
        let mut config = test_config();
        config.compiler = Compiler::Cranelift;
        boot(vec![noop("plain", false)], config).await.unwrap()
    }));
    let mut floor = floor::Floor::new(&guests::wasm("noop"), false, Strategy::Cranelift);
    let mut metered = floor::Floor::new(&guests::wasm("noop"), true, Strategy::Cranelift);
    let mut floor_winch = floor::Floor::new(&guests::wasm("noop"), false, Strategy::Winch);

    let cases = [("block", block_event()), ("logs10", logs_event())];
    let mut group = c.benchmark_group("dispatch");
    group.measurement_time(Duration::from_secs(4));
    for (name, event) in &cases {
        for (module, write) in [("plain", false), ("writer", true)] {
            let label = if write {
                format!("{name}+write")
            } else {
                name.to_string()
            };
            group.bench_function(format!("nexum/{label}"), |b| {
                b.iter_custom(|iters| from_task(&runtime, &engine, module, event, iters))
            });
            if name == &"block" && !write {
                group.bench_function("nexum-from-outside/block", |b| {
                    b.to_async(&runtime).iter(|| async {
                        engine
                            .runtime
                            .dispatch(module, event.clone())
                            .await
                            .unwrap()
                    })
                });
            }
            let wit_event = floor::to_wit(event);
            runtime.block_on(floor.init(write));
            group.bench_function(format!("floor/{label}"), |b| {
                b.iter(|| runtime.block_on(floor.call(&wit_event)))
            });
            if !write {
                runtime.block_on(metered.init(write));
                group.bench_function(format!("floor-metered/{label}"), |b| {
                    b.iter(|| runtime.block_on(metered.call(&wit_event)))
                });
                let mut queued =
                    floor::Floor::new(&guests::wasm("noop"), true, Strategy::Cranelift);
                runtime.block_on(queued.init(write));
                let worker = queued_worker(&runtime, queued, wit_event.clone());
                group.bench_function(format!("floor-queued/{label}"), |b| {
                    b.iter_custom(|iters| through_queue(&runtime, &worker, iters))
                });
                group.bench_function(format!("nexum-cranelift/{label}"), |b| {
                    b.iter_custom(|iters| from_task(&runtime, &cranelift, module, event, iters))
                });
                runtime.block_on(floor_winch.init(write));
                group.bench_function(format!("floor-winch/{label}"), |b| {
                    b.iter(|| runtime.block_on(floor_winch.call(&wit_event)))
                });
            }
        }
    }
    group.finish();
}

/// Dispatches `iters` copies of `event` to `module` one after another from one task on
/// the host's runtime; returns the time the dispatches took. The copies are made in batches
/// in the same task, outside the timing: one task for all of them, as `through_queue` does.
/// (A task per batch of 16 let the runtime's threads go idle between batches, so each
/// batch began on cold caches; the hop itself was never timed.)
fn from_task(
    runtime: &tokio::runtime::Runtime,
    engine: &Arc<TestEngine>,
    module: &'static str,
    event: &Event,
    iters: u64,
) -> Duration {
    const BATCH: u64 = 16;
    let engine = engine.clone();
    let event = event.clone();
    runtime
        .block_on(runtime.spawn(async move {
            let mut took = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let events: Vec<Event> = (0..left.min(BATCH)).map(|_| event.clone()).collect();
                left -= events.len() as u64;
                let started = Instant::now();
                for event in events {
                    engine.runtime.dispatch(module, event).await.unwrap();
                }
                took += started.elapsed();
            }
            took
        }))
        .unwrap()
}

/// A worker task that calls `floor` with `event` for each request it takes from the
/// returned channel, answering each on its oneshot.
fn queued_worker(
    runtime: &tokio::runtime::Runtime,
    mut floor: floor::Floor,
    event: floor::WitEvent,
) -> mpsc::Sender<oneshot::Sender<()>> {
    let (requests, mut taken) = mpsc::channel::<oneshot::Sender<()>>(64);
    runtime.spawn(async move {
        while let Some(reply) = taken.recv().await {
            floor.call(&event).await;
            let _ = reply.send(());
        }
    });
    requests
}

/// Sends `iters` requests to `worker` one after another from a task on the runtime, each
/// awaited; returns the time they took.
fn through_queue(
    runtime: &tokio::runtime::Runtime,
    worker: &mpsc::Sender<oneshot::Sender<()>>,
    iters: u64,
) -> Duration {
    let worker = worker.clone();
    runtime
        .block_on(runtime.spawn(async move {
            let started = Instant::now();
            for _ in 0..iters {
                let (reply, answered) = oneshot::channel();
                worker.send(reply).await.unwrap();
                answered.await.unwrap();
            }
            started.elapsed()
        }))
        .unwrap()
}

criterion_group!(benches, dispatch);
criterion_main!(benches);

/// A bare wasmtime embedding of the same world: the floor nexum's dispatch is measured
/// against.
mod floor {
    use std::collections::HashMap;
    use std::path::Path;
    use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
    use wasmtime::{Engine, Store, Strategy};
    use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

    wasmtime::component::bindgen!({
        world: "nexum:cow/cow-module",
        path: ["../wit/host", "../wit/cow"],
        imports: { "nexum:host/chain": async, "nexum:cow/cow-api": async },
        exports: { default: async },
    });

    use nexum::host::types as wit;

    /// The event as the bindings take it.
    pub type WitEvent = wit::Event;

    pub struct State {
        wasi: WasiCtx,
        table: ResourceTable,
        map: HashMap<String, Vec<u8>>,
    }

    impl WasiView for State {
        fn ctx(&mut self) -> WasiCtxView<'_> {
            WasiCtxView {
                ctx: &mut self.wasi,
                table: &mut self.table,
            }
        }
    }

    impl wit::Host for State {}

    impl nexum::host::local_store::Host for State {
        fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, wit::Fault> {
            Ok(self.map.get(&key).cloned())
        }
        fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), wit::Fault> {
            self.map.insert(key, value);
            Ok(())
        }
        fn delete(&mut self, key: String) -> Result<(), wit::Fault> {
            self.map.remove(&key);
            Ok(())
        }
        fn list_keys(&mut self, _prefix: String) -> Result<Vec<String>, wit::Fault> {
            Ok(Vec::new())
        }
        fn list_entries(
            &mut self,
            _prefix: String,
            _after: Option<String>,
            _limit: u32,
        ) -> Result<nexum::host::local_store::EntryPage, wit::Fault> {
            Ok(nexum::host::local_store::EntryPage {
                entries: Vec::new(),
                next: None,
            })
        }
        fn count(&mut self, _prefix: String) -> Result<u64, wit::Fault> {
            Ok(self.map.len() as u64)
        }
        fn contains(&mut self, key: String) -> Result<bool, wit::Fault> {
            Ok(self.map.contains_key(&key))
        }
        fn value_len(&mut self, key: String) -> Result<Option<u64>, wit::Fault> {
            Ok(self.map.get(&key).map(|v| v.len() as u64))
        }
        fn apply(
            &mut self,
            _writes: Vec<nexum::host::local_store::WriteOp>,
        ) -> Result<(), wit::Fault> {
            Ok(())
        }
    }

    impl nexum::host::logging::Host for State {
        fn log(&mut self, _level: nexum::host::logging::Level, _message: String) {}
    }

    impl nexum::host::chain::Host for State {
        async fn request(
            &mut self,
            _: u64,
            _: String,
            _: String,
        ) -> Result<String, nexum::host::chain::ChainError> {
            unreachable!("the noop fixture does not call the chain")
        }
        async fn request_batch(
            &mut self,
            _: u64,
            _: Vec<nexum::host::chain::RpcRequest>,
        ) -> Result<
            Vec<Result<String, nexum::host::chain::ChainError>>,
            nexum::host::chain::ChainError,
        > {
            unreachable!("the noop fixture does not call the chain")
        }
    }

    impl nexum::cow::cow_api::Host for State {
        async fn request(
            &mut self,
            _: u64,
            _: String,
            _: String,
            _: Option<String>,
        ) -> Result<String, nexum::cow::cow_api::CowApiError> {
            unreachable!("the noop fixture does not call the orderbook")
        }
        async fn submit_order(
            &mut self,
            _: u64,
            _: Vec<u8>,
        ) -> Result<String, nexum::cow::cow_api::CowApiError> {
            unreachable!("the noop fixture does not call the orderbook")
        }
    }

    pub struct Floor {
        store: Store<State>,
        pre: CowModulePre<State>,
        instance: Option<CowModule>,
        metered: bool,
    }

    impl Floor {
        /// A bare embedding compiled by `compiler`; `metered`: the guest's code counts fuel
        /// and checks the epoch, as nexum's does (the rest of nexum's limits stay off).
        pub fn new(wasm: &Path, metered: bool, compiler: Strategy) -> Self {
            // Wasmtime's defaults, but the classic call path nexum uses (no concurrent
            // scheduler around each call).
            let mut config = wasmtime::Config::new();
            config
                .strategy(compiler)
                .concurrency_support(false)
                .consume_fuel(metered)
                .epoch_interruption(metered);
            let engine = Engine::new(&config).unwrap();
            let component = Component::from_file(&engine, wasm).unwrap();
            let mut linker = Linker::new(&engine);
            wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
            CowModule::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s).unwrap();
            let pre = CowModulePre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
            let store = Store::new(
                &engine,
                State {
                    wasi: WasiCtx::builder().build(),
                    table: ResourceTable::new(),
                    map: HashMap::new(),
                },
            );
            Self {
                store,
                pre,
                instance: None,
                metered,
            }
        }

        /// Fuel and epoch deadline for one call, as nexum arms each call.
        fn refill(&mut self) {
            if self.metered {
                self.store.set_fuel(u64::MAX / 2).unwrap();
                self.store.set_epoch_deadline(u64::MAX / 2);
            }
        }

        /// A fresh instance, initialised to write (or not) on each event.
        pub async fn init(&mut self, write: bool) {
            self.refill();
            let instance = self.pre.instantiate_async(&mut self.store).await.unwrap();
            let config = vec![("write".to_string(), write.to_string())];
            instance
                .call_init(&mut self.store, &config)
                .await
                .unwrap()
                .unwrap();
            self.instance = Some(instance);
        }

        pub async fn call(&mut self, event: &wit::Event) {
            self.refill();
            let instance = self.instance.as_ref().unwrap();
            instance
                .call_on_event(&mut self.store, event)
                .await
                .unwrap()
                .unwrap();
        }
    }

    pub fn to_wit(event: &nexum_core::Event) -> wit::Event {
        use nexum_core::Event as CoreEvent;
        match event {
            CoreEvent::Block(b) => wit::Event::Block(wit::Block {
                chain_id: b.chain_id,
                number: b.number,
                hash: b.hash.to_vec(),
                parent_hash: b.parent_hash.to_vec(),
                timestamp: b.timestamp,
            }),
            CoreEvent::ChainLogs(l) => wit::Event::ChainLogs(wit::ChainLogs {
                chain_id: l.chain_id,
                logs: l
                    .logs
                    .iter()
                    .map(|log| wit::ChainLog {
                        address: log.address.to_vec(),
                        topics: log.topics.iter().map(|t| t.to_vec()).collect(),
                        data: log.data.to_vec(),
                        block_number: log.block_number,
                        block_hash: log.block_hash.map(|h| h.to_vec()),
                        transaction_hash: log.transaction_hash.map(|h| h.to_vec()),
                        transaction_index: log.transaction_index,
                        log_index: log.log_index,
                        removed: log.removed,
                    })
                    .collect(),
            }),
            CoreEvent::Tick(t) => wit::Event::Tick(wit::Tick {
                fired_at: t.fired_at,
                schedule: t.schedule.clone(),
            }),
        }
    }
}
