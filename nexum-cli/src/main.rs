//! `nexum`: runs keeper modules against EVM chains.
//!
//! This binary only parses arguments, loads configuration, wires the runtime from
//! `nexum-host`, handles signals and prints. Everything else lives in the libraries.

// Every dependency earns its place (test targets also see dev-dependencies).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod admin_client;
mod allocator;
mod backup;
mod check;
mod cli;
mod cluster;
mod content;
mod dev;
mod inspect;
mod logging;
mod new;
mod operate;
mod resident;
mod run;
mod signals;
mod store;
mod summary;
mod workers;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    allocator::limit_arenas();
    let command = cli::Cli::parse().into_command();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    match workers::for_command(&command) {
        Ok(Some(workers)) => {
            builder.worker_threads(workers.get());
        }
        Ok(None) => {}
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            cli::Command::Run(run_args) => run::run(run_args).await,
            cli::Command::Check { engine } => check::check(&engine),
            cli::Command::Inspect { wasm } => inspect::inspect(&wasm),
            cli::Command::Hash { wasm } => inspect::hash(&wasm),
            cli::Command::New(new_args) => new::new(new_args),
            cli::Command::Dev(dev_args) => dev::dev(dev_args).await,
            cli::Command::Store {
                engine,
                module,
                state_dir,
                action,
            } => match store::StoreTarget::from_args(engine, module, state_dir) {
                Ok((state, module)) => store::store(&state, &module, action).await,
                Err(e) => Err(e),
            },
            cli::Command::DeadLetters {
                engine,
                state_dir,
                module,
            } => match store::StoreTarget::either(engine, state_dir) {
                Ok(state) => store::dead_letters(&state, module.as_deref()).await,
                Err(e) => Err(e),
            },
            cli::Command::Status { engine } => operate::status(&engine).await,
            cli::Command::Cluster {
                action: cli::ClusterAction::Status { engine },
            } => cluster::status(&engine).await,
            cli::Command::Reload { engine } => operate::reload(&engine).await,
            cli::Command::Replay { engine, module } => operate::replay(&engine, &module).await,
            cli::Command::Restart { engine, module } => operate::restart(&engine, &module).await,
            cli::Command::Fetch { engine, prune } => content::fetch(&engine, prune).await,
            cli::Command::Push { wasm, reference } => content::push(&wasm, &reference).await,
            cli::Command::Backup { engine, dest } => backup::backup(&engine, &dest).await,
            cli::Command::Restore { engine, backup } => backup::restore(&engine, &backup).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
