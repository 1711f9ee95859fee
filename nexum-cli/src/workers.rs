//! How many threads run the async runtime's tasks.
//!
//! One per core lets modules run side by side. A module's events, though, cross several
//! tasks on their way in (websocket, subscription, follower, driver, the module's worker):
//! with two workers, tokio wakes the other worker to hand each one on, every block. With
//! one module there is nothing to run side by side, so `nexum run` and `nexum dev` start no
//! more workers than the modules they start with (README, Benchmarks, has the figures).

use crate::cli::Command;
use nexum_host::core::EngineConfig;
use std::num::NonZeroUsize;

/// tokio's own override, honoured whatever engine.toml lists.
const OVERRIDE: &str = "TOKIO_WORKER_THREADS";

/// The workers for `command`: `TOKIO_WORKER_THREADS` when set; else for `nexum run` and
/// `nexum dev` one per core, but no more than the modules they start with; `None`
/// (tokio's default, one per core) for other commands, or when the engine.toml does not
/// load (the command then reports why). An override that is not a whole number above 0 is
/// refused here, where tokio would panic.
pub fn for_command(command: &Command) -> Result<Option<NonZeroUsize>, String> {
    if let Some(value) = std::env::var_os(OVERRIDE) {
        return value
            .to_str()
            .and_then(|v| v.trim().parse::<NonZeroUsize>().ok())
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "{OVERRIDE} must be a whole number above 0, not `{}`",
                    value.to_string_lossy()
                )
            });
    }
    let modules = match command {
        Command::Run(args) if args.is_wasm() => 1,
        Command::Run(args) => match EngineConfig::load(&args.target) {
            Ok(config) => config.modules.len(),
            Err(_) => return Ok(None),
        },
        Command::Dev(_) => 1,
        _ => return Ok(None),
    };
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    Ok(NonZeroUsize::new(modules.clamp(1, cores)))
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

    fn workers(command: &Command) -> Option<usize> {
        for_command(command).unwrap().map(|n| n.get())
    }

    #[test]
    fn no_more_workers_than_modules_and_no_more_than_cores() {
        if std::env::var_os(super::OVERRIDE).is_some() {
            eprintln!("skipped: {} is set in this environment", super::OVERRIDE);
            return;
        }
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(workers(&run("m.wasm".into())), Some(1));

        let dir = tempfile::tempdir().unwrap();
        let engine = |modules: usize| {
            let path = dir.path().join(format!("engine-{modules}.toml"));
            let entries: String = (0..modules)
                .map(|i| format!("[[modules]]\npath = \"m{i}.wasm\"\n"))
                .collect();
            std::fs::write(&path, entries).unwrap();
            path
        };
        assert_eq!(workers(&run(engine(0))), Some(1));
        assert_eq!(workers(&run(engine(1))), Some(1));
        assert_eq!(workers(&run(engine(3))), Some(3.min(cores)));
        assert_eq!(workers(&run(engine(64))), Some(cores));
        // What does not load is left to `nexum run` to report.
        assert_eq!(workers(&run(dir.path().join("missing.toml"))), None);
    }
}
