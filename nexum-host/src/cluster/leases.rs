//! The lease rows in PostgreSQL: who runs which module, at which epoch, until when; and the
//! nodes that are alive. Each function is one call of a statement or two (or one short
//! transaction); the heartbeat, renewals, releases and leaving run on the lease keeper's
//! connection, in the order they are asked for, waiting at most `within` for the answer.

use crate::ledger::{PostgresStorage, StoreError};
use std::time::Duration;

/// Milliseconds of `duration`, as the SQL below takes them.
fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Says this node is alive and returns every node seen within `lease` (this one included),
/// sorted. Refused while another live process claims the same node name: two of them would
/// take each other's leases in turn.
pub(crate) fn heartbeat(
    db: &PostgresStorage,
    lease: Duration,
    within: Duration,
) -> Result<Vec<String>, StoreError> {
    let (node, instance) = (db.node().to_string(), db.instance().to_string());
    // One job, so the whole heartbeat waits at most `within`.
    let answer = db.with_keeper_client(within, {
        let node = node.clone();
        move |client| {
            let claimed = client.query_opt(
                "INSERT INTO nexum_nodes (node, instance, seen_at, left_at)
                 VALUES ($1, $2, now(), NULL)
                 ON CONFLICT (node) DO UPDATE
                     SET instance = EXCLUDED.instance, seen_at = now(), left_at = NULL
                     WHERE nexum_nodes.instance = EXCLUDED.instance
                        OR nexum_nodes.left_at IS NOT NULL
                        OR nexum_nodes.seen_at < now() - $3::bigint * interval '1 millisecond'
                 RETURNING node",
                &[&node, &instance, &millis(lease)],
            )?;
            if claimed.is_none() {
                return Ok(None);
            }
            let rows = client.query(
                "SELECT node FROM nexum_nodes
                 WHERE left_at IS NULL AND seen_at > now() - $1::bigint * interval '1 millisecond'
                 ORDER BY node",
                &[&millis(lease)],
            )?;
            Ok(Some(rows.into_iter().map(|row| row.get(0)).collect()))
        }
    })?;
    answer.ok_or_else(|| {
        StoreError::Backend(format!(
            "another running node is named `{node}`: give each node its own [cluster] node"
        ))
    })
}

/// Takes `module`'s lease if it is free, expired or already this node's: the epoch grows
/// with every acquisition, so an older holder (another node, or an earlier run of this one)
/// is fenced. Returns the new epoch, or `None` when another node holds it.
pub(crate) fn acquire(
    db: &PostgresStorage,
    module: &str,
    lease: Duration,
) -> Result<Option<i64>, StoreError> {
    let (node, module) = (db.node().to_string(), module.to_string());
    db.with_client(move |client| {
        let mut tx = client.transaction()?;
        // A commit of the old owner in flight holds the row: wait for it briefly, not for
        // a stalled node (the server ends its session; the next round tries again).
        tx.batch_execute("SET LOCAL lock_timeout = '500ms'")?;
        let row = tx.query_opt(
            "INSERT INTO nexum_leases (module, owner, epoch, expires_at)
             VALUES ($1, $2, 1, now() + $3::bigint * interval '1 millisecond')
             ON CONFLICT (module) DO UPDATE
                 SET owner = EXCLUDED.owner, epoch = nexum_leases.epoch + 1,
                     expires_at = EXCLUDED.expires_at
                 WHERE nexum_leases.expires_at < now() OR nexum_leases.owner = EXCLUDED.owner
             RETURNING epoch",
            &[&module, &node, &millis(lease)],
        )?;
        tx.commit()?;
        Ok(row.map(|row| row.get(0)))
    })
}

/// Extends `module`'s lease if this node still holds it at `epoch`; `false` when it was
/// taken over. A lease given back since the renewal was asked for is left alone (`true`:
/// nothing was lost), so a late renewal cannot extend a lease just released.
pub(crate) fn renew(
    db: &PostgresStorage,
    module: &str,
    epoch: i64,
    lease: Duration,
    within: Duration,
) -> Result<bool, StoreError> {
    let (node, module) = (db.node().to_string(), module.to_string());
    let held = db.held().clone();
    db.with_keeper_client(within, move |client| {
        if held.epoch(&module) != Some(epoch) {
            return Ok(true);
        }
        let updated = client.execute(
            "UPDATE nexum_leases SET expires_at = now() + $4::bigint * interval '1 millisecond'
             WHERE module = $1 AND owner = $2 AND epoch = $3",
            &[&module, &node, &epoch, &millis(lease)],
        )?;
        Ok(updated == 1)
    })
}

/// Gives `module`'s lease up at once (its module has stopped here and the caller no longer
/// counts it as held), so its next owner need not wait for it to expire.
pub(crate) fn release(
    db: &PostgresStorage,
    module: &str,
    epoch: i64,
    within: Duration,
) -> Result<(), StoreError> {
    let (node, module) = (db.node().to_string(), module.to_string());
    db.with_keeper_client(within, move |client| {
        client.execute(
            "UPDATE nexum_leases SET expires_at = now() - interval '1 millisecond'
             WHERE module = $1 AND owner = $2 AND epoch = $3",
            &[&module, &node, &epoch],
        )?;
        Ok(())
    })
}

/// Marks this node as gone (a clean shutdown), so placement stops counting it at once.
pub(crate) fn leave(db: &PostgresStorage, within: Duration) -> Result<(), StoreError> {
    let (node, instance) = (db.node().to_string(), db.instance().to_string());
    db.with_keeper_client(within, move |client| {
        client.execute(
            "UPDATE nexum_nodes SET left_at = now() WHERE node = $1 AND instance = $2",
            &[&node, &instance],
        )?;
        Ok(())
    })
}

/// One lease as `nexum cluster status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeaseRow {
    /// The module.
    pub module: String,
    /// The node holding it.
    pub owner: String,
    /// Grows with every takeover.
    pub epoch: i64,
    /// Milliseconds until it expires (negative: expired).
    pub expires_in_ms: i64,
}

/// Every lease, by module.
pub(crate) fn leases(db: &PostgresStorage) -> Result<Vec<LeaseRow>, StoreError> {
    db.with_client(|client| {
        let rows = client.query(
            "SELECT module, owner, epoch,
                    (extract(epoch FROM expires_at - now()) * 1000)::bigint
             FROM nexum_leases ORDER BY module",
            &[],
        )?;
        Ok(rows
            .into_iter()
            .map(|row| LeaseRow {
                module: row.get(0),
                owner: row.get(1),
                epoch: row.get(2),
                expires_in_ms: row.get(3),
            })
            .collect())
    })
}
