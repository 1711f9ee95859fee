//! On nodes sharing a store: the loop that keeps this node's share of the modules running.
//!
//! Every `renew_ms`: say this node is alive and read which nodes are; renew the leases held
//! (a lease found taken over stops its module here at once); then, per configured module,
//! take the lease of each module this node should run (rendezvous placement over the live
//! nodes) once it is free or expired, and hand back each one it should no longer run —
//! stopped first, then released, so the next owner starts at once and never overlaps.

use super::Parts;
use crate::cluster::{Cluster, leases, owner};
use crate::ledger::StoreError;
use crate::sources::fix_start_positions;
use std::sync::Arc;
use tokio::sync::watch;

impl Parts {
    /// Places modules until `stop`; then the shutdown hands everything back.
    pub(super) async fn run_placement(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let Some(cluster) = self.cluster.clone() else {
            return;
        };
        loop {
            match self.place(&cluster, &mut stop).await {
                Ok(()) => {
                    cluster.health.answered();
                    *cluster
                        .last_answer
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = std::time::Instant::now();
                }
                Err(e) => {
                    tracing::warn!(node = cluster.node(), error = %e, "cluster: placement round failed; commits stay fenced by the leases");
                    cluster.health.failed(e.to_string());
                    self.stand_down_if_cut_off(&cluster, &mut stop).await;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(cluster.renew) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// One round; see the module docs.
    async fn place(
        &self,
        cluster: &Cluster,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), StoreError> {
        // Shutdown holds this lock while it waits for this loop: never wait for it then.
        let _changes = tokio::select! {
            changes = self.wiring.lock() => changes,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        if *self.stop_shared.borrow() {
            return Ok(());
        }
        let lease = cluster.lease;
        let live = cluster.sql(move |db| leases::heartbeat(db, lease)).await?;
        for (module, epoch) in cluster.held.all() {
            let name = module.clone();
            let kept = cluster
                .sql(move |db| leases::renew(db, &name, epoch, lease))
                .await?;
            if !kept {
                self.retire(&module).await;
                cluster.held.remove(&module);
                metrics::counter!(crate::telemetry::names::LEASES_LOST).increment(1);
                tracing::warn!(
                    module,
                    epoch,
                    "cluster: lease lost to another node; module stopped here"
                );
            }
        }
        for (module, prepared) in &cluster.catalog {
            let mine = owner(module, &live) == Some(cluster.node());
            match (mine, cluster.held.epoch(module)) {
                (true, None) => {
                    let name = module.clone();
                    let epoch = match cluster
                        .sql(move |db| leases::acquire(db, &name, lease))
                        .await
                    {
                        Ok(Some(epoch)) => epoch,
                        // Still another node's until it hands it back or its lease expires.
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::debug!(module, error = %e, "cluster: lease not taken this round");
                            continue;
                        }
                    };
                    cluster.held.insert(module, epoch);
                    if let Err(reason) = self.ready_to_run(prepared).await {
                        tracing::error!(
                            module,
                            reason,
                            "cluster: cannot start the module here; handing it back"
                        );
                        cluster.held.remove(module);
                        let name = module.clone();
                        cluster
                            .sql(move |db| leases::release(db, &name, epoch))
                            .await?;
                        continue;
                    }
                    self.launch(prepared.clone()).await;
                    metrics::counter!(crate::telemetry::names::LEASES_ACQUIRED).increment(1);
                    tracing::info!(
                        module,
                        epoch,
                        node = cluster.node(),
                        "cluster: lease acquired; module running here"
                    );
                }
                (false, Some(epoch)) => {
                    self.retire(module).await;
                    cluster.held.remove(module);
                    let name = module.clone();
                    cluster
                        .sql(move |db| leases::release(db, &name, epoch))
                        .await?;
                    tracing::info!(
                        module,
                        to = owner(module, &live),
                        "cluster: module handed to another node"
                    );
                }
                _ => {}
            }
        }
        metrics::gauge!(crate::telemetry::names::LEASES_HELD).set(cluster.held.all().len() as f64);
        Ok(())
    }

    /// What a module needs before it runs on this node: its usage read again (another node
    /// may have written since this one counted) and where its subscriptions start.
    async fn ready_to_run(&self, prepared: &crate::supervisor::Prepared) -> Result<(), String> {
        let manifest = &prepared.module.manifest;
        self.ledger
            .refresh_usage(&manifest.name)
            .map_err(|e| e.to_string())?;
        let subscriptions = [(manifest.name.as_str(), manifest.subscriptions.as_slice())];
        fix_start_positions(&subscriptions, self.chains.clients(), &self.ledger)
            .await
            .map_err(|e| e.to_string())
    }

    /// Without an answer from the store for most of a lease, this node can no longer know
    /// it still owns its modules, and another node may take them over: it stops them (they
    /// come back with their leases once the store answers).
    async fn stand_down_if_cut_off(&self, cluster: &Cluster, stop: &mut watch::Receiver<bool>) {
        let silent = cluster
            .last_answer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed();
        if silent + cluster.renew < cluster.lease || cluster.held.all().is_empty() {
            return;
        }
        let _changes = tokio::select! {
            changes = self.wiring.lock() => changes,
            _ = stop.wait_for(|s| *s) => return,
        };
        for (module, _) in cluster.held.all() {
            self.retire(&module).await;
            cluster.held.remove(&module);
        }
        tracing::error!(
            silent_ms = silent.as_millis() as u64,
            "cluster: the shared store has not answered for most of a lease; this node stopped its modules until it does"
        );
    }

    /// At shutdown, after every module stopped: releases the leases and leaves, so the
    /// other nodes take the modules over at once.
    pub(super) async fn leave_cluster(&self) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        for (module, epoch) in cluster.held.all() {
            cluster.held.remove(&module);
            let name = module.clone();
            if let Err(e) = cluster
                .sql(move |db| leases::release(db, &name, epoch))
                .await
            {
                tracing::warn!(module, error = %e, "cluster: could not release the lease; it expires on its own");
            }
        }
        if let Err(e) = cluster.sql(leases::leave).await {
            tracing::warn!(error = %e, "cluster: could not say this node left");
        }
    }
}
