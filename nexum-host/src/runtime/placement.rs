//! On nodes sharing a store: the loop that keeps this node's share of the modules running.
//!
//! Every `renew_ms`, and at once when the lease keeper (`cluster/keeper.rs`) finds a lease
//! taken over or the store gone: stop the modules whose leases were lost (all of them, when
//! cut off); then, per configured module, take the lease of each module this node should
//! run (rendezvous placement over the live nodes of the keeper's last heartbeat) once it is
//! free or expired, and hand back each one it should no longer run — stopped first, then
//! released, so the next owner starts at once and never overlaps.

use super::Parts;
use crate::cluster::{Cluster, leases, owner};
use crate::ledger::{StoreError, no_answer};
use crate::sources::fix_start_positions;
use std::sync::Arc;
use tokio::sync::watch;

/// The longest leaving a cluster at shutdown waits for the store, whatever the lease: part
/// of the margin [`super::Runtime::shutdown_drain`] promises beyond the calls in flight.
const LEAVING_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

impl Parts {
    /// Places modules until `stop`; then the shutdown hands everything back.
    pub(super) async fn run_placement(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let Some(cluster) = self.cluster.clone() else {
            return;
        };
        // The first round places over the keeper's first heartbeat.
        let mut live = cluster.live.subscribe();
        tokio::select! {
            _ = live.wait_for(Option::is_some) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        loop {
            if let Err(e) = self.place(&cluster, &mut stop).await {
                tracing::warn!(node = cluster.node(), error = %e, "cluster: placement round failed; commits stay fenced by the leases");
            }
            self.stand_down_if_cut_off(&cluster, &mut stop).await;
            metrics::gauge!(crate::telemetry::names::LEASES_HELD)
                .set(cluster.held.all().len() as f64);
            tokio::select! {
                _ = tokio::time::sleep(cluster.renew) => {}
                _ = cluster.notice.notified() => {}
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
        // Side by side: a module finishing a long call holds up only its own stopping.
        let lost = cluster
            .take_lost()
            .into_iter()
            .map(|(module, epoch)| async move {
                if cluster.held.epoch(&module) != Some(epoch) {
                    return;
                }
                self.retire(&module).await;
                cluster.held.remove(&module);
                metrics::counter!(crate::telemetry::names::LEASES_LOST).increment(1);
                tracing::warn!(
                    module,
                    epoch,
                    "cluster: lease lost to another node; module stopped here"
                );
            });
        futures::future::join_all(lost).await;
        // Placement over a stale list of nodes could take modules from nodes that are
        // alive: without a recent heartbeat, nothing is taken.
        let live = match cluster.live.borrow().clone() {
            Some(live) if cluster.in_touch() => live,
            _ => return Ok(()),
        };
        let lease = cluster.lease;
        let (mut taken, mut handed_on) = (Vec::new(), Vec::new());
        for (module, prepared) in &cluster.catalog {
            // One cut off meanwhile takes nothing more, and the stand-down comes next.
            if !cluster.in_touch() {
                break;
            }
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
                    taken.push((module, epoch, prepared));
                }
                (false, Some(epoch)) => handed_on.push((module, epoch)),
                _ => {}
            }
        }
        // Each side by side: a module finishing a long call, or a slow `init`, holds up
        // no other module's move.
        let live = &live;
        let hand_backs = handed_on.into_iter().map(|(module, epoch)| async move {
            self.retire(module).await;
            self.give_back(cluster, module, epoch).await?;
            tracing::info!(
                module,
                to = owner(module, live),
                "cluster: module handed to another node"
            );
            Ok(())
        });
        let starts = taken
            .into_iter()
            .map(|(module, epoch, prepared)| async move {
                if let Err(reason) = self.ready_to_run(prepared).await {
                    tracing::error!(
                        module,
                        reason,
                        "cluster: cannot start the module here; handing it back"
                    );
                    return self.give_back(cluster, module, epoch).await;
                }
                self.launch(prepared.clone()).await;
                metrics::counter!(crate::telemetry::names::LEASES_ACQUIRED).increment(1);
                tracing::info!(
                    module,
                    epoch,
                    node = cluster.node(),
                    "cluster: lease acquired; module running here"
                );
                Ok(())
            });
        let (handed_back, started) = futures::future::join(
            futures::future::join_all(hand_backs),
            futures::future::join_all(starts),
        )
        .await;
        let mut failed = handed_back
            .into_iter()
            .chain(started)
            .filter_map(Result::err);
        let first = failed.next();
        for also in failed {
            tracing::warn!(node = cluster.node(), error = %also, "cluster: placement round failed");
        }
        first.map_or(Ok(()), Err)
    }

    /// Forgets `module`'s lease and releases it (on the keeper's connection, after any
    /// renewal already asked for: a late renewal cannot extend it for its next owner).
    async fn give_back(
        &self,
        cluster: &Cluster,
        module: &str,
        epoch: i64,
    ) -> Result<(), StoreError> {
        cluster.held.remove(module);
        let (name, within) = (module.to_string(), cluster.keeper_deadline());
        cluster
            .sql(move |db| leases::release(db, &name, epoch, within))
            .await
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

    /// When the keeper found the store silent for most of a lease (or stopped), this node
    /// can no longer know it still owns its modules, and another node may take them over:
    /// it stops them (they come back with their leases once the store answers).
    async fn stand_down_if_cut_off(&self, cluster: &Cluster, stop: &mut watch::Receiver<bool>) {
        if !cluster.is_cut_off() || cluster.held.all().is_empty() {
            return;
        }
        let _changes = tokio::select! {
            changes = self.wiring.lock() => changes,
            _ = stop.wait_for(|s| *s) => return,
        };
        let silent_ms = cluster.silence().as_millis() as u64;
        // All at once: a module that finishes a long call (or whose commit waits on the
        // silent store) holds up only its own stopping, not the others'.
        let stand_downs = cluster.held.all().into_iter().map(|(module, epoch)| async move {
            self.retire(&module).await;
            cluster.held.remove(&module);
            tracing::error!(
                module,
                epoch,
                silent_ms,
                "cluster: the shared store has not answered for most of a lease; module stopped here until it does"
            );
        });
        futures::future::join_all(stand_downs).await;
    }

    /// At shutdown, after every module stopped: stops renewing, releases the leases and
    /// leaves, so the other nodes take the modules over at once.
    pub(super) async fn leave_cluster(&self) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        // However long a lease is, leaving takes a few seconds at most: a store that does
        // not answer by then leaves the leases to expire on their own.
        let by = std::time::Instant::now() + LEAVING_WITHIN;
        let within = || {
            cluster
                .keeper_deadline()
                .min(by.saturating_duration_since(std::time::Instant::now()))
        };
        if !cluster.stop_keeper(within()).await
            || !cluster.db.keeper_unstuck(std::time::Duration::ZERO)
        {
            tracing::warn!("cluster: the store has not answered; the leases expire on their own");
            return;
        }
        for (module, epoch) in cluster.held.all() {
            cluster.held.remove(&module);
            let (name, within) = (module.clone(), within());
            if let Err(e) = cluster
                .sql(move |db| leases::release(db, &name, epoch, within))
                .await
            {
                tracing::warn!(module, error = %e, "cluster: could not release the lease; it expires on its own");
                if no_answer(&e) {
                    // The rest would wait as long, each: shutdown must not.
                    return;
                }
            }
        }
        let within = within();
        if let Err(e) = cluster.sql(move |db| leases::leave(db, within)).await {
            tracing::warn!(error = %e, "cluster: could not say this node left");
        }
    }
}
