//! Metric names (Prometheus), in one place. Labels: `module`, `chain`, `method`, `outcome`.

/// Counter: calls into a module that returned `ok` (label `module`).
pub const EVENTS_HANDLED: &str = "nexum_events_handled_total";
/// Counter: calls that returned `err`.
pub const EVENTS_FAILED: &str = "nexum_events_failed_total";
/// Counter: calls that trapped or hit a limit.
pub const EVENTS_TRAPPED: &str = "nexum_events_trapped_total";
/// Counter: instance restarts after traps.
pub const RESTARTS: &str = "nexum_module_restarts_total";
/// Gauge: 1 while the module is quarantined.
pub const QUARANTINED: &str = "nexum_module_quarantined";
/// Histogram: time from queuing an event to its outcome, seconds (a block's log events
/// count the time they wait behind the block's earlier events: the driver queues a
/// block's events together).
pub const DISPATCH_SECONDS: &str = "nexum_dispatch_duration_seconds";
/// Gauge: events waiting in the module's queue.
pub const QUEUE_DEPTH: &str = "nexum_queue_depth";
/// Gauge: bytes of keys and values in the module's store.
pub const STORE_BYTES: &str = "nexum_store_bytes";
/// Gauge: the most the module's store may hold (`limits.store_total_bytes`).
pub const STORE_LIMIT_BYTES: &str = "nexum_store_limit_bytes";
/// Counter: events skipped and recorded as dead letters.
pub const DEAD_LETTERS: &str = "nexum_dead_letters_total";
/// Counter: log lines dropped by the module's rate limit.
pub const LOG_LINES_DROPPED: &str = "nexum_log_lines_dropped_total";
/// Gauge: the newest block the engine knows (label `chain`).
pub const CHAIN_HEAD: &str = "nexum_chain_head";
/// Gauge: the newest block delivered to a module (labels `chain`, `module`).
pub const CHAIN_DELIVERED: &str = "nexum_chain_delivered_height";
/// Counter: times a chain's head stream had to be re-established or its gap refilled.
pub const CHAIN_RECONNECTS: &str = "nexum_chain_reconnects_total";
/// Counter: JSON-RPC requests (labels `chain`, `method`, `outcome` = ok / error / timeout).
pub const RPC_REQUESTS: &str = "nexum_rpc_requests_total";
/// Gauge: leases this node holds (nodes sharing a store).
pub const LEASES_HELD: &str = "nexum_cluster_leases_held";
/// Counter: leases this node acquired (a start, or a takeover).
pub const LEASES_ACQUIRED: &str = "nexum_cluster_leases_acquired_total";
/// Counter: leases this node found taken over by another node.
pub const LEASES_LOST: &str = "nexum_cluster_leases_lost_total";
/// Counter: commits refused because another node holds the module's lease now.
pub const FENCED_COMMITS: &str = "nexum_cluster_fenced_commits_total";
