//! Each module's own sources — its chain drivers and cron timers — under a stop signal of
//! its own, so one module can be stopped, upgraded or restarted while the others deliver.
//! (Followers and log feeds are shared by all modules and live in `ChainSources`.)

use super::Parts;
use crate::sources::CronSource;
use crate::supervisor::Prepared;
use nexum_core::{ModuleInfo, Supervisor};
use std::collections::BTreeMap;
use std::sync::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The running sources of every module, by module name.
#[derive(Default)]
pub(crate) struct ModuleSources(Mutex<BTreeMap<String, Running>>);

/// One module's sources.
struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    async fn stop(self) {
        self.stop.send_replace(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

impl ModuleSources {
    fn insert(&self, module: String, running: Running) {
        let previous = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(module, running);
        debug_assert!(
            previous.is_none(),
            "a module's sources are stopped before restarting"
        );
    }

    /// Stops one module's sources and waits until none is delivering.
    pub async fn stop(&self, module: &str) {
        let running = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(module);
        if let Some(running) = running {
            running.stop().await;
        }
    }

    /// Stops every module's sources and waits for them.
    pub async fn stop_all(&self) {
        let all = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        for running in all.values() {
            running.stop.send_replace(true);
        }
        for (_, running) in all {
            running.stop().await;
        }
    }
}

impl Parts {
    /// Starts `module`'s chain drivers and cron timers.
    pub(super) fn start_sources(&self, module: &ModuleInfo) {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = self
            .chain_sources
            .spawn_module(&self.supervisor, module, &stopped);
        let cron = CronSource::new(std::slice::from_ref(module));
        if !cron.is_empty() {
            tasks.push(tokio::spawn(cron.run(self.supervisor.clone(), stopped)));
        }
        self.module_sources
            .insert(module.name.clone(), Running { stop, tasks });
    }

    /// Starts a module (`init`) and its sources.
    pub(super) async fn launch(&self, prepared: Prepared) {
        let name = prepared.module.manifest.name.to_string();
        self.supervisor.add(prepared).await;
        if let Some(info) = self.info(&name) {
            self.start_sources(&info);
        }
    }

    /// Replaces a running module: its sources stop, its call in flight commits, the new
    /// version starts (`init`) and its sources resume from the committed cursors.
    pub(super) async fn relaunch(&self, prepared: Prepared) {
        let name = prepared.module.manifest.name.to_string();
        self.module_sources.stop(&name).await;
        self.supervisor.replace(prepared).await;
        if let Some(info) = self.info(&name) {
            self.start_sources(&info);
        }
    }

    /// Stops a module and its sources and takes it out (its store and records stay).
    pub(super) async fn retire(&self, name: &str) {
        self.module_sources.stop(name).await;
        self.supervisor.remove(name).await;
        self.heights.forget(name);
    }

    /// The current description of a loaded module.
    pub(super) fn info(&self, module: &str) -> Option<ModuleInfo> {
        self.supervisor
            .modules()
            .into_iter()
            .find(|m| m.name == module)
    }
}
