//! The loop that keeps this node in the cluster: every `renew_ms` it says the node is
//! alive, reads which nodes are, and renews every lease held.
//!
//! It runs apart from placement, which may spend seconds starting or stopping modules
//! (`init`, a call in flight, the store catching up): were the renewals part of that round,
//! a node busy taking modules over would let its own leases and heartbeat lapse, and the
//! other nodes would take its modules away from it. A lease found taken over is handed
//! to placement to stop; its commits are already refused by the fence.

use super::{Cluster, leases};
use std::sync::Arc;
use tokio::sync::watch;

/// Renews until `stop`.
pub(crate) async fn keep_leases(cluster: Arc<Cluster>, mut stop: watch::Receiver<bool>) {
    let mut rounds = tokio::time::interval(cluster.renew);
    rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = rounds.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match round(&cluster).await {
            Ok(()) => {
                cluster.health.answered();
                *cluster
                    .last_answer
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = std::time::Instant::now();
            }
            Err(e) => {
                tracing::warn!(node = cluster.node(), error = %e, "cluster: heartbeat or lease renewal failed; commits stay fenced by the leases");
                cluster.health.failed(e.to_string());
            }
        }
    }
}

/// One heartbeat and one renewal of each lease held.
async fn round(cluster: &Cluster) -> Result<(), crate::ledger::StoreError> {
    let lease = cluster.lease;
    let live = cluster.sql(move |db| leases::heartbeat(db, lease)).await?;
    cluster.live.send_replace(Some(live));
    let _renewing = cluster.renewing.lock().await;
    for (module, epoch) in cluster.held.all() {
        if cluster.is_lost(&module, epoch) {
            continue;
        }
        let name = module.clone();
        let kept = cluster
            .sql(move |db| leases::renew(db, &name, epoch, lease))
            .await?;
        if !kept {
            cluster.lost(&module, epoch);
        }
    }
    Ok(())
}
