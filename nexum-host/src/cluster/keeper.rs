//! The thread that keeps this node in the cluster: every `renew_ms` it says the node is
//! alive, reads which nodes are, and renews every lease held.
//!
//! It runs apart from placement, which may spend seconds starting or stopping modules
//! (`init`, a call in flight, a takeover waiting on a stalled node's row lock): were the
//! renewals part of that round, a node busy taking modules over would let its own leases
//! and heartbeat lapse, and the other nodes would take its modules away from it. It is a
//! thread, not a task, so async workers blocked in commits cannot hold it up either.
//!
//! A lease found taken over is handed to placement to stop (its commits are already
//! refused by the fence). When the store has not answered a heartbeat for `lease - renew`
//! — the moment another node may soon take the leases over — the node is cut off and
//! placement stops every module: each wait is cut short to end then (at least half a
//! round), and a round after a fast failure comes by then. A wait or a sleep that overran
//! by more than a round means this process was paused, not the store silent: it does not
//! count, and the next round may wait the whole margin.

use super::{Cluster, leases};
use crate::ledger::{StoreError, no_answer, no_answer_within};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak, mpsc};
use std::time::{Duration, Instant};

/// The running keeper: stopped by [`Keeper::stop`], or when its cluster is dropped (which
/// only happens once the runtime is gone: placement holds it until shutdown).
pub(crate) struct Keeper {
    stop: mpsc::Sender<()>,
    /// Disconnected when the thread ends.
    ended: mpsc::Receiver<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Keeper {
    /// Starts renewing `cluster`'s leases, the first round at once.
    pub fn start(cluster: &Arc<Cluster>) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel();
        let (ending, ended) = mpsc::channel::<()>();
        let cluster = Arc::downgrade(cluster);
        let thread = std::thread::Builder::new()
            .name("nexum-lease-keeper".into())
            .spawn(move || {
                let _ending = ending;
                keep(cluster, stopped)
            })?;
        Ok(Self {
            stop,
            ended,
            thread,
        })
    }

    /// Whether its thread still runs (it ends only when stopped, or on a bug).
    pub fn is_running(&self) -> bool {
        !self.thread.is_finished()
    }

    /// Stops it and waits up to `within` for its call in flight, if any (blocking);
    /// `false` if that call is still unanswered (the thread ends once it is).
    pub fn stop(self, within: Duration) -> bool {
        drop(self.stop);
        match self.ended.recv_timeout(within) {
            Err(mpsc::RecvTimeoutError::Timeout) => false,
            _ => {
                let _ = self.thread.join();
                true
            }
        }
    }
}

/// How one round ended.
#[derive(Debug)]
enum Round {
    /// The store answered the heartbeat and every renewal (a refused renewal is retried
    /// next round).
    Answered,
    /// The store did not answer or failed.
    Failed(StoreError),
    /// A wait overran its deadline by more than a round: this process was not running.
    Paused,
    /// The keeper was stopped mid-round.
    Stopped,
}

/// Rounds every `renew`, until stopped or the cluster is gone.
fn keep(cluster: Weak<Cluster>, stopped: mpsc::Receiver<()>) {
    // Whether the next round may wait a whole margin: this process itself was not running
    // for a while, and the silence that piled up meanwhile is not the store's.
    let mut patient = false;
    loop {
        let started = Instant::now();
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        let (lease, renew) = (cluster.lease, cluster.renew);
        let pause = match round(&cluster, &stopped, patient) {
            Round::Answered => {
                patient = false;
                cluster.health.answered();
                renew.saturating_sub(started.elapsed())
            }
            Round::Failed(e) => {
                patient = false;
                tracing::warn!(node = cluster.node(), error = %e, "cluster: heartbeat or lease renewal failed; commits stay fenced by the leases");
                cluster.health.failed(e.to_string());
                if !cluster.in_touch() && !cluster.held.all().is_empty() {
                    cluster.cut_off.store(true, Ordering::SeqCst);
                    cluster.notice.notify_one();
                }
                after_failure(lease, renew, cluster.silence(), started.elapsed())
            }
            // The store may be fine: ask again at once.
            Round::Paused => {
                patient = true;
                Duration::ZERO
            }
            Round::Stopped => return,
        };
        drop(cluster);
        let asleep = Instant::now();
        if !matches!(
            stopped.recv_timeout(pause),
            Err(mpsc::RecvTimeoutError::Timeout)
        ) {
            return;
        }
        patient |= asleep.elapsed() > pause + renew;
    }
}

/// One heartbeat and one renewal of each lease held.
fn round(cluster: &Cluster, stopped: &mpsc::Receiver<()>, patient: bool) -> Round {
    let (lease, renew) = (cluster.lease, cluster.renew);
    // With no lease to protect, a slow store is waited for as long as it takes to hear it.
    let patient = patient || (cluster.held.all().is_empty() && !cluster.in_touch());
    let within = || deadline(lease, renew, cluster.silence(), patient);
    let stop_asked = || !matches!(stopped.try_recv(), Err(mpsc::TryRecvError::Empty));
    if stop_asked() {
        return Round::Stopped;
    }
    // A call given up on is still queued: another would only wait behind it, so it is
    // waited for as this round's first call.
    let asked = within();
    let sent = Instant::now();
    if !cluster.db.keeper_unstuck(asked) {
        return judge(no_answer_within(asked), sent.elapsed(), asked, renew);
    }
    if stop_asked() {
        return Round::Stopped;
    }
    let asked = within();
    let sent = Instant::now();
    let live = match leases::heartbeat(&cluster.db, lease, asked) {
        Ok(live) => live,
        Err(e) => return judge(e, sent.elapsed(), asked, renew),
    };
    cluster.live.send_replace(Some(live));
    cluster.answered();
    cluster.cut_off.store(false, Ordering::SeqCst);
    for (module, epoch) in cluster.held.all() {
        if stop_asked() {
            return Round::Stopped;
        }
        if cluster.is_lost(&module, epoch) {
            continue;
        }
        let asked = within();
        let sent = Instant::now();
        match leases::renew(&cluster.db, &module, epoch, lease, asked) {
            Ok(true) => {}
            Ok(false) => cluster.lost(&module, epoch),
            Err(e) if no_answer(&e) => return judge(e, sent.elapsed(), asked, renew),
            // Refused (a row lock held past the lock timeout): next round tries again.
            Err(e) => {
                tracing::debug!(module, error = %e, "cluster: lease not renewed this round");
            }
        }
    }
    Round::Answered
}

/// How long a call may wait for its answer: until the heartbeat's silence reaches `lease -
/// renew` (then the node is cut off, whatever the answer), but at least half a round; the
/// whole margin when `patient`.
fn deadline(lease: Duration, renew: Duration, silence: Duration, patient: bool) -> Duration {
    let margin = lease.saturating_sub(renew);
    if patient {
        return margin;
    }
    margin.saturating_sub(silence).max(renew / 2)
}

/// How long to wait after a failed round that took `took`: a round later, or sooner if
/// the silence reaches `lease - renew` before then, so the node is cut off on time.
fn after_failure(lease: Duration, renew: Duration, silence: Duration, took: Duration) -> Duration {
    let next = renew.saturating_sub(took);
    let margin = lease.saturating_sub(renew);
    if silence < margin {
        next.min(margin - silence)
    } else {
        next
    }
}

/// What a call that failed after `waited` (asked to wait at most `asked`) says: a wait
/// that overran by more than a round was this process not running, not the store silent.
fn judge(error: StoreError, waited: Duration, asked: Duration, renew: Duration) -> Round {
    if no_answer(&error) && waited > asked + renew {
        Round::Paused
    } else {
        Round::Failed(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_millis(1500);
    const RENEW: Duration = Duration::from_millis(300);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_wait_ends_when_the_silence_reaches_lease_minus_renew_but_lasts_half_a_round() {
        // Just answered: the whole margin.
        assert_eq!(deadline(LEASE, RENEW, ms(0), false), ms(1200));
        // A round later: what is left of it.
        assert_eq!(deadline(LEASE, RENEW, ms(300), false), ms(900));
        assert_eq!(deadline(LEASE, RENEW, ms(1000), false), ms(200));
        // Past it: short probes.
        assert_eq!(deadline(LEASE, RENEW, ms(1100), false), ms(150));
        assert_eq!(deadline(LEASE, RENEW, ms(60_000), false), ms(150));
        // After a pause of this process, or with nothing held: the whole margin.
        assert_eq!(deadline(LEASE, RENEW, ms(60_000), true), ms(1200));
    }

    #[test]
    fn after_a_failure_the_next_round_comes_by_the_time_the_node_must_be_cut_off() {
        assert_eq!(after_failure(LEASE, RENEW, ms(300), ms(10)), ms(290));
        assert_eq!(after_failure(LEASE, RENEW, ms(1000), ms(10)), ms(200));
        // Already past it: a round later, not at once.
        assert_eq!(after_failure(LEASE, RENEW, ms(1200), ms(10)), ms(290));
        assert_eq!(after_failure(LEASE, RENEW, ms(5000), ms(400)), ms(0));
    }

    #[test]
    fn a_wait_that_overran_by_more_than_a_round_was_a_pause_not_a_silent_store() {
        let silent = || no_answer_within(ms(900));
        assert!(matches!(
            judge(silent(), ms(905), ms(900), RENEW),
            Round::Failed(_)
        ));
        assert!(matches!(
            judge(silent(), ms(1200), ms(900), RENEW),
            Round::Failed(_)
        ));
        assert!(matches!(
            judge(silent(), ms(5000), ms(900), RENEW),
            Round::Paused
        ));
        // A refusal is the store's answer, however long it took.
        let refused = StoreError::Backend("database: relation does not exist".into());
        assert!(matches!(
            judge(refused, ms(5000), ms(900), RENEW),
            Round::Failed(_)
        ));
    }
}
