//! [`Runtime`]: a supervisor plus the sources that feed it, started and stopped together.

use crate::sources::{CronSource, spawn_chain_sources};
use crate::supervisor::{BootError, HostSupervisor};
use nexum_core::{BootPlan, ModuleInfo, ShutdownSummary, Supervisor};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The supervisor refused to boot.
    #[error(transparent)]
    Boot(#[from] BootError),
}

/// A running engine: modules booted, sources delivering.
pub struct Runtime {
    supervisor: Arc<HostSupervisor>,
    stop_sources: watch::Sender<bool>,
    sources: Vec<JoinHandle<()>>,
}

impl Runtime {
    /// Boots every module of `plan` and starts the sources their subscriptions need.
    pub async fn start(plan: BootPlan) -> Result<Self, RuntimeError> {
        let delivery = plan.config.delivery;
        let supervisor = Arc::new(HostSupervisor::boot(plan).await?);
        let (stop_sources, stop) = watch::channel(false);
        let mut sources = spawn_chain_sources(
            &supervisor,
            supervisor.chains(),
            supervisor.state(),
            delivery,
            &stop,
        );
        let cron = CronSource::new(&supervisor.modules());
        if !cron.is_empty() {
            sources.push(tokio::spawn(cron.run(supervisor.clone(), stop)));
        }
        Ok(Self {
            supervisor,
            stop_sources,
            sources,
        })
    }

    /// The supervisor, to dispatch events of one's own or read module state.
    pub fn supervisor(&self) -> &Arc<HostSupervisor> {
        &self.supervisor
    }

    /// The counters of `chain` (subscriptions, requests), if it is configured.
    pub fn chain_status(&self, chain: nexum_core::ChainId) -> Option<crate::chain::ChainStatus> {
        self.supervisor.chains().status(chain)
    }

    /// The loaded modules and their current status.
    pub fn modules(&self) -> Vec<ModuleInfo> {
        self.supervisor.modules()
    }

    /// Stops intake (sources first), lets in-flight calls finish, flushes the store.
    pub async fn shutdown(self) -> ShutdownSummary {
        self.stop_sources.send_replace(true);
        for source in self.sources {
            let _ = source.await;
        }
        self.supervisor.shutdown().await
    }
}
