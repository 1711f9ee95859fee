//! [`Runtime`]: a supervisor plus the sources that feed it, started and stopped together.

use crate::sources::{CronSource, spawn_chain_sources};
use crate::supervisor::{BootError, HostSupervisor};
use crate::telemetry;
use nexum_core::{BootPlan, ModuleInfo, ShutdownSummary, Supervisor};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The supervisor refused to boot.
    #[error(transparent)]
    Boot(#[from] BootError),
    /// The metrics endpoint could not listen.
    #[error(transparent)]
    Metrics(#[from] crate::telemetry::ServeError),
}

/// A running engine: modules booted, sources delivering.
pub struct Runtime {
    supervisor: Arc<HostSupervisor>,
    stop_sources: watch::Sender<bool>,
    sources: Vec<JoinHandle<()>>,
    metrics_addr: Option<SocketAddr>,
}

impl Runtime {
    /// Boots every module of `plan` and starts the sources their subscriptions need.
    pub async fn start(plan: BootPlan) -> Result<Self, RuntimeError> {
        let delivery = plan.config.delivery;
        let metrics_addr = plan.config.metrics_addr;
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
            sources.push(tokio::spawn(cron.run(supervisor.clone(), stop.clone())));
        }
        let metrics_addr = match metrics_addr {
            Some(addr) => {
                let (bound, task) = telemetry::serve(addr, supervisor.clone(), stop).await?;
                sources.push(task);
                Some(bound)
            }
            None => None,
        };
        Ok(Self {
            supervisor,
            stop_sources,
            sources,
            metrics_addr,
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

    /// Where `/metrics` and `/healthz` are served, when `metrics_addr` is set (the bound
    /// address: port 0 in the config picks a free port).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The runtime's health, as `/healthz` reports it.
    pub fn health(&self) -> telemetry::Health {
        telemetry::Health::of(&self.supervisor)
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
