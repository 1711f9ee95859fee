//! How many threads run the async runtime's tasks.
//!
//! One per core lets modules run side by side. A module's events, though, cross several
//! tasks on their way in (websocket, subscription, follower, driver, the module's worker):
//! with two workers, tokio wakes the other worker to hand each one on, every block. With
//! one module there is nothing to run side by side, so `nexum run` and `nexum dev` use no
//! more workers than the modules they start with: on the README's 3,000-log workloads one
//! worker measured 15–25 % less CPU.

use crate::cli::Command;
use nexum_host::core::EngineConfig;
use std::num::NonZeroUsize;
use std::path::Path;

/// tokio's own override, honoured as tokio honours it.
const OVERRIDE: &str = "TOKIO_WORKER_THREADS";

/// The workers for `command`: one per core, but no more than the modules it starts with;
/// `None` (tokio's default: one per core, or `TOKIO_WORKER_THREADS`) for other commands,
/// with the override set, or when the engine.toml does not load (the command then reports
/// why).
pub fn for_command(command: &Command) -> Option<NonZeroUsize> {
    if std::env::var_os(OVERRIDE).is_some() {
        return None;
    }
    let modules = match command {
        Command::Run(args) if is_wasm(&args.target) => 1,
        Command::Run(args) => EngineConfig::load(&args.target).ok()?.modules.len(),
        Command::Dev(_) => 1,
        _ => return None,
    };
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    NonZeroUsize::new(modules.clamp(1, cores))
}

fn is_wasm(target: &Path) -> bool {
    target.extension().is_some_and(|e| e == "wasm")
}

#[cfg(test)]
mod tests {
    use super::for_command;
    use crate::cli::{Command, RunArgs};
    use std::path::PathBuf;

    fn run(target: PathBuf) -> Command {
        Command::Run(RunArgs {
            target,
            manifest: None,
            state_dir: None,
            chains: Vec::new(),
        })
    }

    #[test]
    fn no_more_workers_than_modules_and_no_more_than_cores() {
        // The process's environment is shared by the tests: none of them sets the override.
        assert!(std::env::var_os(super::OVERRIDE).is_none());
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(for_command(&run("m.wasm".into())).unwrap().get(), 1);

        let dir = tempfile::tempdir().unwrap();
        let engine = |modules: usize| {
            let path = dir.path().join(format!("engine-{modules}.toml"));
            let entries: String = (0..modules)
                .map(|i| format!("[[modules]]\npath = \"m{i}.wasm\"\n"))
                .collect();
            std::fs::write(&path, entries).unwrap();
            path
        };
        assert_eq!(for_command(&run(engine(0))).unwrap().get(), 1);
        assert_eq!(for_command(&run(engine(1))).unwrap().get(), 1);
        assert_eq!(for_command(&run(engine(3))).unwrap().get(), 3.min(cores));
        assert_eq!(for_command(&run(engine(64))).unwrap().get(), cores);
        // What does not load is left to `nexum run` to report.
        assert!(for_command(&run(dir.path().join("missing.toml"))).is_none());
    }
}
