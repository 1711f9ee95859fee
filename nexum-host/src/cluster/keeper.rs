//! The thread that keeps this node in the cluster: every `renew_ms` it says the node is
//! alive, reads which nodes are, and renews every lease held.
//!
//! It runs apart from placement, which may spend seconds starting or stopping modules
//! (`init`, a call in flight, a takeover waiting on a stalled node's row lock): were the
//! renewals part of that round, a node busy taking modules over would let its own leases
//! and heartbeat lapse, and the other nodes would take its modules away from it. It is a
//! thread, not a task, so async workers blocked in commits cannot hold it up either. A
//! lease found taken over is handed to placement to stop (its commits are already refused
//! by the fence); a store silent for most of a lease makes placement stop every module.

use super::{Cluster, leases};
use crate::ledger::{StoreError, no_answer};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak, mpsc};
use std::time::Instant;

/// The running keeper: stopped by [`Keeper::stop`], or when its cluster is dropped.
pub(crate) struct Keeper {
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Keeper {
    /// Starts renewing `cluster`'s leases, the first round at once.
    pub fn start(cluster: &Arc<Cluster>) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel();
        let cluster = Arc::downgrade(cluster);
        let thread = std::thread::Builder::new()
            .name("nexum-lease-keeper".into())
            .spawn(move || keep(cluster, stopped))?;
        Ok(Self { stop, thread })
    }

    /// Stops it and waits for its round in flight (blocking).
    pub fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

/// Rounds every `renew`, until stopped or the cluster is gone.
fn keep(cluster: Weak<Cluster>, stopped: mpsc::Receiver<()>) {
    let mut failed_in_a_row = 0u32;
    loop {
        let started = Instant::now();
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        match round(&cluster) {
            Ok(()) => {
                failed_in_a_row = 0;
                cluster.health.answered();
                cluster.cut_off.store(false, Ordering::SeqCst);
            }
            Err(e) => {
                failed_in_a_row += 1;
                tracing::warn!(node = cluster.node(), error = %e, "cluster: heartbeat or lease renewal failed; commits stay fenced by the leases");
                cluster.health.failed(e.to_string());
                // Two failed rounds, not one: a round in flight when the process was
                // paused times out the moment it wakes, though the store is fine.
                if failed_in_a_row >= 2 && !cluster.in_touch() && !cluster.held.all().is_empty() {
                    cluster.cut_off.store(true, Ordering::SeqCst);
                    cluster.notice.notify_one();
                }
            }
        }
        let pause = cluster.renew.saturating_sub(started.elapsed());
        drop(cluster);
        if !matches!(
            stopped.recv_timeout(pause),
            Err(mpsc::RecvTimeoutError::Timeout)
        ) {
            return;
        }
    }
}

/// One heartbeat and one renewal of each lease held. A renewal the store refuses (a row
/// lock held too long) is tried again next round; one it does not answer ends the round.
fn round(cluster: &Cluster) -> Result<(), StoreError> {
    let (lease, within) = (cluster.lease, cluster.keeper_deadline());
    let live = leases::heartbeat(&cluster.db, lease, within)?;
    cluster.answered();
    cluster.live.send_replace(Some(live));
    let mut refused = None;
    for (module, epoch) in cluster.held.all() {
        if cluster.is_lost(&module, epoch) {
            continue;
        }
        match leases::renew(&cluster.db, &module, epoch, lease, within) {
            Ok(true) => {}
            Ok(false) => cluster.lost(&module, epoch),
            Err(e) if no_answer(&e) => return Err(e),
            Err(e) => {
                tracing::debug!(module, error = %e, "cluster: lease not renewed this round");
                refused = Some(e);
            }
        }
    }
    refused.map_or(Ok(()), Err)
}
