//! Write nexum keeper modules in Rust.
//!
//! A module is a plain Rust type implementing [`Module`]: `init` builds it from the
//! manifest's `[config]`, and `on_block`, `on_logs` and `on_tick` handle the events it
//! subscribed to. [`export_module!`] turns it into a WebAssembly component when built with
//! `cargo build --target wasm32-wasip2`.
//!
//! ```
//! use nexum_guest::{Config, Fault, Module, Tick, export_module, info, store};
//!
//! struct Heartbeat;
//!
//! impl Module for Heartbeat {
//!     fn init(_config: Config) -> Result<Self, Fault> {
//!         Ok(Heartbeat)
//!     }
//!
//!     fn on_tick(&mut self, tick: Tick) -> Result<(), Fault> {
//!         let beats = store::get_json::<u64>("beats")?.unwrap_or(0) + 1;
//!         store::set_json("beats", &beats)?;
//!         info!("beat {beats} at {}", tick.fired_at);
//!         Ok(())
//!     }
//! }
//!
//! export_module!(Heartbeat);
//! ```
//!
//! - [`store`]: the module's private key-value store (bytes or serde JSON values);
//! - [`chain`]: read-only JSON-RPC with `alloy` types: `eth_call` (raw or `sol!` calls,
//!   reverts decoded), `block_number`, `get_logs`, batches, and `log.decode::<Event>()`;
//! - `cow` (the `cow` feature): the CoW Protocol orderbook: typed order submission, typed rejections and the
//!   retry decision after each answer;
//! - [`log`] and the [`info!`]-style macros: log lines tagged with the module's name;
//! - [`Config`]: typed access to `[config]`;
//! - [`testing`] (native builds only): an in-memory host so module logic can be unit-tested
//!   with `cargo test`, no wasm involved.
//!
//! All writes of one handler call commit together when it returns `Ok`, and are discarded
//! when it returns `Err` or panics.

// Every dependency earns its place (test targets also see dev-dependencies).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod chain;
mod config;
#[cfg(feature = "cow")]
pub mod cow;
mod host;
pub mod log;
pub mod store;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

/// The WIT bindings (`nexum:cow/cow-module`), for what the helpers do not cover.
#[allow(missing_docs, clippy::all, unsafe_op_in_unsafe_fn)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "nexum:cow/cow-module",
        path: ["../wit/host", "../wit/cow"],
        generate_all,
        pub_export_macro: true,
        default_bindings_module: "nexum_guest::bindings",
        export_macro_name: "export_world",
        additional_derives: [PartialEq],
    });
}

pub use bindings::nexum::host::types::{Block, ChainLog, ChainLogs, Event, Fault, RateLimit, Tick};
pub use config::Config;

/// `alloy-primitives`, re-exported so modules use the same version as the SDK.
pub use alloy_primitives as primitives;
/// `alloy-sol-types`, re-exported so modules use the same version as the SDK. Declare
/// contracts with this crate's [`sol!`].
pub use alloy_sol_types as sol_types;

/// Declares Solidity events, functions and errors (written as Solidity, not JSON ABI files)
/// as Rust types, as `alloy`'s `sol!` does, with nothing to add to `Cargo.toml` beyond this
/// SDK.
///
/// An `interface` also gets an enum of its events, so a log is routed to its handler by
/// type with [`chain::LogExt::decode_any`]:
///
/// ```
/// nexum_guest::sol! {
///     interface Emitter {
///         event Ping(address indexed sender, uint256 indexed seq, bytes payload);
///         event Pong(uint256 indexed seq, string note);
///         function count() external view returns (uint256);
///     }
/// }
/// # let _ = Emitter::countCall {};
/// ```
#[macro_export]
macro_rules! sol {
    ($($item:tt)*) => {
        $crate::sol_types::sol! {
            #![sol(alloy_sol_types = $crate::sol_types)]
            $($item)*
        }
    };
}

/// A keeper module. Implement `init` and the handlers for the events you subscribe to;
/// the others do nothing.
///
/// The value returned by `init` lives as long as the module's instance. The host starts a
/// fresh instance (calling `init` again) after a trap, so keep anything that must survive
/// in [`store`].
pub trait Module: Sized {
    /// Builds the module from its manifest's `[config]`.
    fn init(config: Config) -> Result<Self, Fault>;

    /// A new block on a chain the module follows.
    fn on_block(&mut self, block: Block) -> Result<(), Fault> {
        let _ = block;
        Ok(())
    }

    /// The matching logs of one block, in log-index order.
    fn on_logs(&mut self, logs: ChainLogs) -> Result<(), Fault> {
        let _ = logs;
        Ok(())
    }

    /// A cron tick.
    fn on_tick(&mut self, tick: Tick) -> Result<(), Fault> {
        let _ = tick;
        Ok(())
    }

    /// Routes an event to the handler for its kind.
    fn on_event(&mut self, event: Event) -> Result<(), Fault> {
        match event {
            Event::Block(block) => self.on_block(block),
            Event::ChainLogs(logs) => self.on_logs(logs),
            Event::Tick(tick) => self.on_tick(tick),
        }
    }
}

/// Exports a [`Module`] type as the component's `init` and `on-event`.
#[macro_export]
macro_rules! export_module {
    ($module:ty) => {
        const _: () = {
            ::std::thread_local! {
                static INSTANCE: ::std::cell::RefCell<::std::option::Option<$module>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }

            struct Export;

            impl $crate::bindings::Guest for Export {
                fn init(
                    config: $crate::bindings::Config,
                ) -> ::std::result::Result<(), $crate::Fault> {
                    let module = <$module as $crate::Module>::init($crate::Config::new(config))?;
                    INSTANCE.with(|slot| *slot.borrow_mut() = ::std::option::Option::Some(module));
                    ::std::result::Result::Ok(())
                }

                fn on_event(event: $crate::Event) -> ::std::result::Result<(), $crate::Fault> {
                    INSTANCE.with(|slot| match slot.borrow_mut().as_mut() {
                        ::std::option::Option::Some(module) => {
                            $crate::Module::on_event(module, event)
                        }
                        ::std::option::Option::None => ::std::result::Result::Err(
                            $crate::Fault::Internal("on-event called before init".into()),
                        ),
                    })
                }
            }

    $crate::bindings::export_world!(Export with_types_in $crate::bindings);
        };
    };
}
