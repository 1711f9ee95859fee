//! Several nodes, one engine: nodes that share a PostgreSQL store divide its modules so
//! each runs on exactly one node at a time, and take over the modules of a node that
//! stopped renewing its leases.
//!
//! - `leases`: the lease and node rows (acquire with a growing epoch, renew, release);
//! - `keeper`: the thread that says this node is alive and renews its leases, on its own
//!   cadence and database connection, so a slow module start or stop, or commits queued on
//!   the store, do not hold the renewals up;
//! - this file: who should run what ([`owner`]: rendezvous hashing over the live nodes, so
//!   a node coming or going moves only its share), and the state a node keeps.
//!
//! The loop that acts on it lives with the runtime (`runtime/placement.rs`), because it
//! starts and stops modules. Every commit of a module is fenced by its lease in the same
//! transaction (`ledger/postgres.rs`), so a node that was paused or cut off cannot write
//! after another took over, even before it notices.

pub(crate) mod keeper;
pub(crate) mod leases;

use crate::ledger::{HeldLeases, PostgresStorage, StoreError};
use crate::supervisor::Prepared;
use crate::telemetry::StoreHealth;
use nexum_core::ClusterConfig;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, watch};

pub use leases::LeaseRow;

/// The nodes and leases of a cluster, as `nexum cluster status` shows them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClusterStatus {
    /// Every node that ever joined: name, milliseconds since it was last seen, and
    /// whether it left cleanly.
    pub nodes: Vec<(String, i64, bool)>,
    /// Every module's lease.
    pub leases: Vec<LeaseRow>,
}

/// Reads the cluster's nodes and leases from `store`, on one connection and without
/// touching the schema (blocking: call it off async workers).
pub fn status(store: &nexum_core::SharedStore) -> Result<ClusterStatus, StoreError> {
    let db = PostgresStorage::open_reader(store.connection_string())?;
    let nodes = db.with_client(|client| {
        let rows = client.query(
            "SELECT node, (extract(epoch FROM now() - seen_at) * 1000)::bigint,
                    left_at IS NOT NULL
             FROM nexum_nodes ORDER BY node",
            &[],
        )?;
        Ok(rows
            .into_iter()
            .map(|row| (row.get(0), row.get(1), row.get(2)))
            .collect())
    })?;
    Ok(ClusterStatus {
        nodes,
        leases: leases::leases(&db)?,
    })
}

/// The live node that should run `module`: the one with the highest hash of (node,
/// module). Every node computes the same answer from the same list of live nodes.
pub fn owner<'a>(module: &str, nodes: &'a [String]) -> Option<&'a str> {
    nodes
        .iter()
        .max_by_key(|node| {
            let score = alloy_primitives::keccak256(format!("{node}\u{0}{module}"));
            (score, node.as_str())
        })
        .map(String::as_str)
}

/// This node's name when the config gives none: host name and process id.
pub(crate) fn default_node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_string());
    format!("{host}-{}", std::process::id())
}

/// What a node of a cluster keeps: the shared database, the leases it holds, and every
/// configured module ready to start when its lease comes here.
pub(crate) struct Cluster {
    pub db: Arc<PostgresStorage>,
    pub held: Arc<HeldLeases>,
    pub lease: Duration,
    pub renew: Duration,
    pub catalog: BTreeMap<String, Prepared>,
    /// Whether the store answered the lease keeper's last round (`/healthz`).
    pub health: Arc<StoreHealth>,
    /// When the lease keeper's heartbeat last reached the store.
    last_answer: std::sync::Mutex<std::time::Instant>,
    /// The live nodes as the keeper's last heartbeat found them (`None` before the first).
    pub live: watch::Sender<Option<Vec<String>>>,
    /// Leases the keeper found taken over (module → epoch), for placement to stop.
    lost: std::sync::Mutex<BTreeMap<String, i64>>,
    /// Set by the keeper when the store has not answered for most of a lease: this node
    /// can no longer know it owns its modules, and placement stops them.
    cut_off: AtomicBool,
    /// Wakes placement when a lease was lost or the node is cut off.
    pub notice: Notify,
    /// The lease keeper's thread, once started.
    keeper: std::sync::Mutex<Option<keeper::Keeper>>,
}

impl Cluster {
    pub fn new(
        db: Arc<PostgresStorage>,
        held: Arc<HeldLeases>,
        config: &ClusterConfig,
        catalog: Vec<Prepared>,
    ) -> Self {
        Self {
            db,
            held,
            lease: Duration::from_millis(config.lease_ms),
            renew: Duration::from_millis(config.renew_ms),
            catalog: catalog
                .into_iter()
                .map(|p| (p.module.manifest.name.to_string(), p))
                .collect(),
            health: Arc::default(),
            last_answer: std::sync::Mutex::new(std::time::Instant::now()),
            live: watch::Sender::new(None),
            lost: std::sync::Mutex::default(),
            cut_off: AtomicBool::new(false),
            notice: Notify::new(),
            keeper: std::sync::Mutex::new(None),
        }
    }

    /// Starts the lease keeper (see `keeper`).
    pub fn start_keeper(self: &Arc<Self>) -> std::io::Result<()> {
        let started = keeper::Keeper::start(self)?;
        *self.keeper.lock().unwrap_or_else(|p| p.into_inner()) = Some(started);
        Ok(())
    }

    /// Stops the lease keeper and waits up to `within` for its round in flight: `true`
    /// when it has ended (no renewal or heartbeat of this node reaches the store after
    /// this), `false` when its call in flight is still unanswered.
    pub async fn stop_keeper(&self, within: Duration) -> bool {
        let keeper = self.keeper.lock().unwrap_or_else(|p| p.into_inner()).take();
        match keeper {
            Some(keeper) => tokio::task::spawn_blocking(move || keeper.stop(within))
                .await
                .unwrap_or(false),
            None => true,
        }
    }

    /// How long a call on the lease keeper's connection may take before it counts as
    /// unanswered: a renewal any later than this could come too late.
    pub fn keeper_deadline(&self) -> Duration {
        self.lease.saturating_sub(self.renew)
    }

    /// Records that `module`'s lease at `epoch` was taken over and wakes placement.
    pub fn lost(&self, module: &str, epoch: i64) {
        self.lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(module.to_string(), epoch);
        self.notice.notify_one();
    }

    /// Whether `module`'s lease at `epoch` is known lost (the keeper stops renewing it).
    pub fn is_lost(&self, module: &str, epoch: i64) -> bool {
        self.lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(module)
            == Some(&epoch)
    }

    /// The leases found lost since the last call.
    pub fn take_lost(&self) -> BTreeMap<String, i64> {
        std::mem::take(&mut *self.lost.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Notes that the store answered the heartbeat just now (after the live nodes it
    /// returned are published: placement must not see the node in touch with an old list).
    fn answered(&self) {
        *self.last_answer.lock().unwrap_or_else(|p| p.into_inner()) = std::time::Instant::now();
    }

    /// How long since the keeper's heartbeat last reached the store.
    pub fn silence(&self) -> Duration {
        self.last_answer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }

    /// Whether the last heartbeat is recent enough to place modules by, and to hold leases
    /// on: another node takes a lease over once it has not been renewed for a lease.
    pub fn in_touch(&self) -> bool {
        self.silence() + self.renew < self.lease
    }

    /// Whether this node must stop its modules: the keeper found the store gone for most
    /// of a lease (see `cut_off`), or the keeper no longer runs, and no heartbeat since.
    pub fn is_cut_off(&self) -> bool {
        let keeper_gone = self
            .keeper
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|k| !k.is_running());
        (self.cut_off.load(Ordering::SeqCst) || keeper_gone) && !self.in_touch()
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        self.db.node()
    }

    /// Runs blocking database work (placement's) off the async workers, giving up after a
    /// lease (a half-open connection must not hold placement up).
    pub async fn sql<T: Send + 'static>(
        &self,
        work: impl FnOnce(&PostgresStorage) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        let task = tokio::task::spawn_blocking(move || work(&db));
        match tokio::time::timeout(self.lease, task).await {
            Ok(done) => {
                done.unwrap_or_else(|e| Err(StoreError::Backend(format!("database task: {e}"))))
            }
            Err(_) => Err(StoreError::Backend(format!(
                "no answer within {} ms",
                self.lease.as_millis()
            ))),
        }
    }
}

#[cfg(test)]
mod tests;
