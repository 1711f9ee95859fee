//! The shared storage: PostgreSQL, so several nodes can run one engine's modules.
//!
//! Every key of every space is a row of `nexum_entries` (space, key as bytes, value); a
//! batch is one statement, atomic on its own and one round trip (a transaction of several
//! for a batch of more than 16 MiB). Keys are `bytea` so prefix scans are byte ranges an
//! index serves (`key >= prefix AND key < successor(prefix)`), whatever the keys hold.
//!
//! **Fencing**: a batch that belongs to a module carries it ([`Batch::fence`]). The commit
//! reads the module's lease row `FOR SHARE` in the same statement and writes nothing unless
//! this node holds it at the epoch it acquired; a takeover updates that row, so it waits for
//! a commit in flight, and a commit that waited for a takeover, or came after one, fails
//! ([`StoreError::Fenced`]). The same statement applies a module's commit only in its turn
//! in the module's chain of commits ([`commit_chain`](super::commit_chain)), so a commit
//! whose answer was lost is never made twice.
//!
//! The `postgres` client blocks, and must not run on the async runtime's threads: a small
//! pool of threads of its own, each with a connection, serves requests from the ledger; one
//! more connection keeps this node's heartbeat and lease renewals apart from that traffic.
//! A caller on an async worker that waits for its answer more than a moment does so with
//! the worker's other tasks moved to another thread ([`off_the_runtime`]).
//! A node creates and migrates the schema at open, under an advisory lock, and versions it
//! in `nexum_schema`. A reader (`nexum cluster status`, `status`, `store`) never does: it
//! must not change the schema under running nodes, so it reads only a schema it knows.

use super::backup::BackupError;
use super::commit_chain::{self, Chain, CommitChains};
use super::keys;
use super::read_deadline;
use super::storage::{Batch, EntryVisitor, Space, Storage, StoreError, Write};
use postgres::types::Type;
use postgres::{Client, NoTls};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Connections (and threads) serving one engine's commits and reads.
const CONNECTIONS: usize = 4;

/// The schema version this nexum writes; a newer one in the database is refused.
const SCHEMA_VERSION: i32 = 1;

/// Serialises schema changes between nodes starting together.
const SCHEMA_LOCK: i64 = 0x6e65_7875_6d00_0001;

/// Each step brings the schema from the version before it to its own.
const MIGRATIONS: &[&str] = &[
    // 1: entries of every space, leases with fencing epochs, live nodes.
    "CREATE TABLE nexum_entries (
         space text NOT NULL,
         key bytea NOT NULL,
         value bytea NOT NULL,
         PRIMARY KEY (space, key)
     );
     CREATE TABLE nexum_leases (
         module text PRIMARY KEY,
         owner text NOT NULL,
         epoch bigint NOT NULL,
         expires_at timestamptz NOT NULL
     );
     CREATE TABLE nexum_nodes (
         node text PRIMARY KEY,
         instance text NOT NULL,
         seen_at timestamptz NOT NULL,
         left_at timestamptz
     );",
];

/// A session stuck inside a transaction (its node paused or cut off in the middle of one) is ended by
/// the server after this long, so the row locks it holds cannot stop a takeover.
const IDLE_IN_TRANSACTION: &str = "2s";

/// The lease keeper's connection waits this long at most for a row lock (a commit in
/// flight, another node's takeover), so one busy lease row cannot hold up the others.
const KEEPER_SETTINGS: &str = "SET lock_timeout = '250ms'";

/// No statement of nexum's takes longer than this; one that does is cancelled.
const STATEMENT_TIMEOUT: &str = "30s";

/// Opens one connection with nexum's session settings: bounded connecting, keepalive
/// probes and a 10 s bound on unacknowledged data (a half-open connection is noticed within
/// seconds and opened again for the next job), bounded statements and transactions.
fn connect(url: &str) -> Result<Client, StoreError> {
    connect_with(url, "")
}

/// [`connect`], then `settings` (more `SET`s) for this connection's session.
fn connect_with(url: &str, settings: &str) -> Result<Client, StoreError> {
    let mut config: postgres::Config = url
        .parse()
        .map_err(|e: postgres::Error| StoreError::Backend(format!("connection string: {e}")))?;
    config
        .connect_timeout(Duration::from_secs(5))
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(10))
        .keepalives_interval(Duration::from_secs(5))
        .keepalives_retries(3)
        .tcp_user_timeout(Duration::from_secs(10));
    let mut client = config.connect(NoTls).map_err(backend)?;
    client
        .batch_execute(&format!(
            "SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION}';
             SET statement_timeout = '{STATEMENT_TIMEOUT}';
             {settings}"
        ))
        .map_err(backend)?;
    Ok(client)
}

/// A request for one of the pool's connections.
type Job = Box<dyn FnOnce(&mut Client) + Send>;

/// What this node holds: module → the epoch it acquired its lease at.
#[derive(Default)]
pub(crate) struct HeldLeases(Mutex<HashMap<String, i64>>);

impl HeldLeases {
    pub fn insert(&self, module: &str, epoch: i64) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(module.to_string(), epoch);
    }

    pub fn remove(&self, module: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(module);
    }

    /// Every lease held: module and epoch.
    pub fn all(&self) -> Vec<(String, i64)> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(m, e)| (m.clone(), *e))
            .collect()
    }

    pub fn epoch(&self, module: &str) -> Option<i64> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(module)
            .copied()
    }
}

/// Connections, each served by a thread of its own, taking jobs from one queue.
struct Pool {
    jobs: Mutex<mpsc::Sender<Job>>,
    /// Jobs whose answer was given up on and that have not finished: while there is one,
    /// the connection is stuck, and queueing more behind it only lengthens the line.
    abandoned: Arc<(Mutex<usize>, Condvar)>,
}

/// What becomes of work whose answer was given up on before its turn came.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Late {
    /// It runs all the same: a lease handed back late still frees the lease sooner than
    /// its expiry.
    Runs,
    /// It is dropped: a read nobody waits for any more.
    Dropped,
}

/// Where a job with a deadline stands: waited for, done, or given up on by its caller.
const WAITED: u8 = 0;
const DONE: u8 = 1;
const GIVEN_UP: u8 = 2;

impl Pool {
    /// Serves `clients` (connected to `url` with `settings`) on threads named `name-0`,
    /// `name-1`, ….
    fn start(
        url: &str,
        settings: &'static str,
        clients: Vec<Client>,
        name: &str,
    ) -> Result<Self, StoreError> {
        let (jobs, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for (i, mut client) in clients.into_iter().enumerate() {
            let receiver = receiver.clone();
            let url = url.to_string();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    loop {
                        let job = receiver.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok(job) = job else { return };
                        // A connection the server closed is opened again for the next job.
                        if client.is_closed()
                            && let Ok(fresh) = connect_with(&url, settings)
                        {
                            client = fresh;
                        }
                        job(&mut client);
                    }
                })
                .map_err(|e| StoreError::Backend(format!("starting a database thread: {e}")))?;
        }
        Ok(Self {
            jobs: Mutex::new(jobs),
            abandoned: Arc::default(),
        })
    }

    /// Waits up to `within` until no answer given up on is still to come; `false` if one
    /// still is.
    fn wait_unstuck(&self, within: Duration) -> bool {
        let (count, changed) = &*self.abandoned;
        let count = count.lock().unwrap_or_else(|p| p.into_inner());
        let (count, _) = changed
            .wait_timeout_while(count, within, |n| *n > 0)
            .unwrap_or_else(|p| p.into_inner());
        *count == 0
    }

    /// Runs `work` on one of the connections and waits for it, at most `within` when
    /// given (work under way then runs on, only its answer is not awaited; work given up on
    /// before its turn comes runs or is dropped as `late` says).
    fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Client) -> Result<T, StoreError> + Send + 'static,
        within: Option<Duration>,
        late: Late,
    ) -> Result<T, StoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        // Only a wait with a deadline can be given up on. The state moves under the
        // count's lock, so giving up and finishing cannot cross.
        let state = within.map(|_| Arc::new(AtomicU8::new(WAITED)));
        let job: Job = {
            let finish = state.clone().map(|state| Finish {
                state,
                abandoned: self.abandoned.clone(),
            });
            Box::new(move |client| {
                // Marks the job done when it ends, whether it answers, panics or is
                // dropped unrun.
                let finish = finish;
                if late == Late::Dropped
                    && finish
                        .as_ref()
                        .is_some_and(|f| f.state.load(Ordering::SeqCst) == GIVEN_UP)
                {
                    return;
                }
                let _ = reply.send(work(client));
            })
        };
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|_| StoreError::Backend("the database threads stopped".into()))?;
        let stopped = || StoreError::Backend("a database thread stopped".into());
        let (Some(within), Some(state)) = (within, state) else {
            return wait_for_answer(&answer, None).map_err(|_| stopped())?;
        };
        match wait_for_answer(&answer, Some(within)) {
            Ok(done) => done,
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(stopped()),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let mut count = self.abandoned.0.lock().unwrap_or_else(|p| p.into_inner());
                if state.load(Ordering::SeqCst) == WAITED {
                    state.store(GIVEN_UP, Ordering::SeqCst);
                    *count += 1;
                    return Err(no_answer_within(within));
                }
                drop(count);
                // It finished just as the wait ended: its answer is there.
                answer.recv().map_err(|_| stopped())?
            }
        }
    }
}

/// How long a wait for the database holds its thread before handing the thread's other
/// work away (most answers come sooner: handing work away costs a thread switch).
const QUICK_ANSWER: Duration = Duration::from_millis(1);

/// Waits for `answer`, at most `within` when given: [`QUICK_ANSWER`] in place, then
/// [`off_the_runtime`].
fn wait_for_answer<T>(
    answer: &mpsc::Receiver<T>,
    within: Option<Duration>,
) -> Result<T, mpsc::RecvTimeoutError> {
    let quick = within.map_or(QUICK_ANSWER, |within| within.min(QUICK_ANSWER));
    match answer.recv_timeout(quick) {
        Err(mpsc::RecvTimeoutError::Timeout) => {}
        done => return done,
    }
    let rest = match within {
        Some(within) if within <= quick => return Err(mpsc::RecvTimeoutError::Timeout),
        Some(within) => Some(within - quick),
        None => None,
    };
    off_the_runtime(|| match rest {
        Some(rest) => answer.recv_timeout(rest),
        None => answer
            .recv()
            .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
    })
}

/// Runs `wait` (for the database's answer) so that it holds up no async work: called on a
/// worker of a multi-threaded tokio runtime (a module's store read or commit, inside its
/// call), the worker's other tasks move to another thread meanwhile. A silent database
/// must not stall the runtime: stopping the modules it can no longer vouch for, heads,
/// the admin API. Elsewhere it simply waits.
fn off_the_runtime<T>(wait: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    }
}

/// Marks a job with a deadline done when dropped (see [`Pool::run`]).
struct Finish {
    state: Arc<AtomicU8>,
    abandoned: Arc<(Mutex<usize>, Condvar)>,
}

impl Drop for Finish {
    fn drop(&mut self) {
        let (count, changed) = &*self.abandoned;
        let mut count = count.lock().unwrap_or_else(|p| p.into_inner());
        if self.state.swap(DONE, Ordering::SeqCst) == GIVEN_UP {
            *count -= 1;
            changed.notify_all();
        }
    }
}

/// How an answer that did not come in time is reported (see [`no_answer`]).
const NO_ANSWER: &str = "no answer from the database within";

/// The error of a call whose answer did not come `within`.
pub(crate) fn no_answer_within(within: Duration) -> StoreError {
    StoreError::Backend(format!("{NO_ANSWER} {} ms", within.as_millis()))
}

/// How a read given up on because its call's time ran out is reported (see
/// [`ran_out_of_time`]).
const OUT_OF_TIME: &str = "the call's time ran out during a read";

fn out_of_time() -> StoreError {
    StoreError::Backend(OUT_OF_TIME.into())
}

/// Whether `error` is a read given up on because its call's time ran out: the call's own
/// failure, not the store's.
pub(crate) fn ran_out_of_time(error: &StoreError) -> bool {
    matches!(error, StoreError::Backend(text) if text == OUT_OF_TIME)
}

/// Whether `error` says the database did not answer in time (rather than refused).
pub(crate) fn no_answer(error: &StoreError) -> bool {
    matches!(error, StoreError::Backend(text) if text.starts_with(NO_ANSWER))
}

/// PostgreSQL behind the [`Storage`] seam.
pub(crate) struct PostgresStorage {
    /// Commits, reads and the cluster's placement.
    pool: Pool,
    /// This node's heartbeat, lease renewals and releases, on a connection of their own:
    /// they must not queue behind commits, or a busy node would lose its leases; and one
    /// connection runs them in the order they were asked for, so a renewal asked for
    /// before a release never runs after it. A reader has none: it holds no lease.
    keeper: Option<Pool>,
    /// This node's name in lease rows.
    node: String,
    /// This process, among any that claim the same node name.
    instance: String,
    held: Arc<HeldLeases>,
    chains: CommitChains,
}

/// A database error as one line, without the connection string (it may hold a password).
fn backend(error: postgres::Error) -> StoreError {
    let text = match error.as_db_error() {
        Some(db) => format!("database: {}", db.message()),
        None => error.to_string(),
    };
    StoreError::Backend(text)
}

impl PostgresStorage {
    /// Connects to `url` as `node`, creating or migrating the schema.
    pub fn open(url: &str, node: &str, held: Arc<HeldLeases>) -> Result<Self, StoreError> {
        let instance = instance_id();
        let mut first = connect(url)?;
        migrate(&mut first)?;
        let mut clients = vec![first];
        for _ in 1..CONNECTIONS {
            clients.push(connect(url)?);
        }
        Ok(Self {
            pool: Pool::start(url, "", clients, "nexum-pg")?,
            keeper: Some(Pool::start(
                url,
                KEEPER_SETTINGS,
                vec![connect_with(url, KEEPER_SETTINGS)?],
                "nexum-pg-leases",
            )?),
            node: node.to_string(),
            chains: CommitChains::new(&instance),
            instance,
            held,
        })
    }

    /// Connects to `url` to read what the nodes wrote, on one connection: no migration, no
    /// lease, and a schema other than this nexum's is refused (see [`check_schema`]).
    pub fn open_reader(url: &str) -> Result<Self, StoreError> {
        let instance = instance_id();
        let mut client = connect(url)?;
        check_schema(&mut client)?;
        Ok(Self {
            pool: Pool::start(url, "", vec![client], "nexum-pg")?,
            keeper: None,
            node: "nexum-reader".to_string(),
            chains: CommitChains::new(&instance),
            instance,
            held: Arc::default(),
        })
    }

    /// Runs `work` on a pooled connection and waits for its answer, however long it takes:
    /// a commit given up on could still land, and its caller would not know what it left.
    fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Client) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.pool.run(work, None, Late::Runs)
    }

    /// Runs the read `work` on a pooled connection and waits for its answer as long as the
    /// module call it is made for allows ([`read_deadline`]), if it is made for one: a
    /// silent database must not hold a call past its deadline.
    fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Client) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let Some((wait, whole)) = read_deadline::begin() else {
            return self.pool.run(work, None, Late::Runs);
        };
        let answer = if wait.is_zero() {
            Err(no_answer_within(wait))
        } else {
            self.pool.run(work, Some(wait), Late::Dropped)
        };
        read_deadline::end();
        match answer {
            // Given up on before the store had its least wait: the call's time ran out.
            Err(error) if no_answer(&error) && !whole => Err(out_of_time()),
            answer => answer,
        }
    }

    /// Runs SQL of the cluster's own (leases, nodes) on a pooled connection.
    pub fn with_client<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.run(move |client| work(client).map_err(backend))
    }

    /// Runs the heartbeat's, the renewals' and the releases' SQL on the connection kept
    /// for them, waiting at most `within` for the answer.
    pub fn with_keeper_client<T: Send + 'static>(
        &self,
        within: Duration,
        work: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        match &self.keeper {
            Some(keeper) => keeper.run(
                move |client| work(client).map_err(backend),
                Some(within),
                Late::Runs,
            ),
            None => Err(StoreError::Backend(
                "a reader of the shared store holds no leases".into(),
            )),
        }
    }

    /// Waits up to `within` for calls on the keeper's connection that went unanswered to
    /// finish; `false` if one still has not.
    pub fn keeper_unstuck(&self, within: Duration) -> bool {
        self.keeper
            .as_ref()
            .is_none_or(|keeper| keeper.wait_unstuck(within))
    }

    /// The leases this node holds.
    pub fn held(&self) -> &Arc<HeldLeases> {
        &self.held
    }

    /// This node's name in lease rows.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// This process's id among processes claiming the same node name.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Makes sure `chain` (of `module`) knows the token its next commit under lease
    /// `epoch` follows, reading it (and beginning the chain there) once per epoch, and
    /// settles its commits in doubt first. Returns that token.
    fn ready_chain(
        &self,
        chain: &mut Chain,
        module: &str,
        epoch: i64,
    ) -> Result<Vec<u8>, StoreError> {
        if chain.follows(epoch).is_none() {
            let key = keys::last_commit(module).into_bytes();
            let first = self.chains.next_token();
            let stored = self.run(move |client| {
                let row = client
                    .query_typed_one(BEGIN_CHAIN, &[(&key, Type::BYTEA), (&first, Type::BYTEA)])
                    .map_err(backend)?;
                Ok(row.get::<_, Vec<u8>>(0))
            })?;
            chain.begin(epoch, stored);
        }
        if chain.has_doubt() {
            self.settle_doubts(chain, module, epoch)?;
        }
        chain
            .follows(epoch)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| chain_moved_on(module))
    }

    /// Settles every commit of `module` in doubt, for good: moves the token on from the
    /// last one landed ([`MOVE_ON`]), or finds the one that landed.
    fn settle_doubts(&self, chain: &mut Chain, module: &str, epoch: i64) -> Result<(), StoreError> {
        let Some(last) = chain.follows(epoch).map(<[u8]>::to_vec) else {
            return Err(chain_moved_on(module));
        };
        let fresh = chain.moving_to(|| self.chains.next_token());
        let (key, node, owned, moved_to) = (
            keys::last_commit(module).into_bytes(),
            self.node.clone(),
            module.to_string(),
            fresh.clone(),
        );
        let (leased, moved, stored) = self.run(move |client| {
            let row = client
                .query_typed_one(
                    MOVE_ON,
                    &[
                        (&owned, Type::TEXT),
                        (&node, Type::TEXT),
                        (&epoch, Type::INT8),
                        (&key, Type::BYTEA),
                        (&last, Type::BYTEA),
                        (&moved_to, Type::BYTEA),
                    ],
                )
                .map_err(backend)?;
            let (leased, moved): (bool, bool) = (row.get(0), row.get(1));
            if !leased || moved {
                return Ok((leased, moved, None));
            }
            // A new statement, to see what a commit waited for left.
            let stored = client
                .query_typed_opt(
                    "SELECT value FROM nexum_entries WHERE space = 'engine' AND key = $1",
                    &[(&key, Type::BYTEA)],
                )
                .map_err(backend)?
                .map(|row| row.get::<_, Vec<u8>>(0));
            Ok((leased, moved, stored))
        })?;
        if !leased {
            return Err(StoreError::Fenced {
                module: module.to_string(),
            });
        }
        if moved {
            chain.moved_on(fresh);
            return Ok(());
        }
        if stored.as_deref().is_some_and(|stored| chain.found(stored)) {
            return Ok(());
        }
        chain.forget_last();
        Err(chain_moved_on(module))
    }

    /// A commit for `module` refused: the module is no longer this node's to run.
    fn fenced(&self, module: String) -> StoreError {
        metrics::counter!(crate::telemetry::names::FENCED_COMMITS).increment(1);
        StoreError::Fenced { module }
    }
}

/// Locks a module's chain for a commit. Its holder may be waiting on the database: a
/// wait for it hands the runtime thread's other work to another thread, like a wait on
/// the database itself ([`off_the_runtime`]).
fn lock_chain(chain: &Mutex<Chain>) -> std::sync::MutexGuard<'_, Chain> {
    match chain.try_lock() {
        Ok(guard) => guard,
        Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => off_the_runtime(|| commit_chain::lock(chain)),
    }
}

/// The token of `module`'s chain is none this node made or saw (changed by hand, or by a
/// process claiming this node's name): it is read again before the next commit.
fn chain_moved_on(module: &str) -> StoreError {
    StoreError::Backend(format!(
        "the commit chain of module `{module}` moved on without this node; it is read again"
    ))
}

/// A random id for this process (the standard library seeds `RandomState` randomly).
fn instance_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// Creates or upgrades the schema, one node at a time.
fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client.transaction().map_err(backend)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .map_err(backend)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS nexum_schema (version integer NOT NULL)")
        .map_err(backend)?;
    let version: i32 = tx
        .query_opt("SELECT version FROM nexum_schema", &[])
        .map_err(backend)?
        .map_or(0, |row| row.get(0));
    if version > SCHEMA_VERSION {
        return Err(StoreError::Backend(format!(
            "the database holds schema version {version}, written by a newer nexum (this one knows {SCHEMA_VERSION})"
        )));
    }
    for (step, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(sql).map_err(backend)?;
        tracing::info!(version = step + 1, "database schema migrated");
    }
    if version == 0 {
        tx.execute(
            "INSERT INTO nexum_schema (version) VALUES ($1)",
            &[&SCHEMA_VERSION],
        )
        .map_err(backend)?;
    } else if version < SCHEMA_VERSION {
        tx.execute("UPDATE nexum_schema SET version = $1", &[&SCHEMA_VERSION])
            .map_err(backend)?;
    }
    tx.commit().map_err(backend)
}

/// Refuses to read a database whose schema is not the one this nexum writes: none yet (no
/// node ever started on it), or one a node of another version migrated it to.
fn check_schema(client: &mut Client) -> Result<(), StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('nexum_schema') IS NOT NULL", &[])
        .map_err(backend)?
        .get(0);
    let version: Option<i32> = if exists {
        client
            .query_opt("SELECT version FROM nexum_schema", &[])
            .map_err(backend)?
            .map(|row| row.get(0))
    } else {
        None
    };
    match version {
        Some(SCHEMA_VERSION) => Ok(()),
        None => Err(StoreError::Backend(
            "no nexum node has started on this database yet: it holds no nexum schema".into(),
        )),
        Some(newer) if newer > SCHEMA_VERSION => Err(StoreError::Backend(format!(
            "the database holds schema version {newer}, written by a newer nexum (this one knows {SCHEMA_VERSION})"
        ))),
        Some(older) => Err(StoreError::Backend(format!(
            "the database holds schema version {older}, older than this nexum's {SCHEMA_VERSION}: a node of this version migrates it when it starts; a reader does not"
        ))),
    }
}

/// The name of a space in `nexum_entries`.
fn space_name(space: &Space) -> String {
    match space {
        Space::Engine => "engine".to_string(),
        Space::Module(module) => format!("module:{module}"),
    }
}

/// The first byte string after every string starting with `prefix`, if there is one.
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut bound = prefix.to_vec();
    while let Some(last) = bound.pop() {
        if last < u8::MAX {
            bound.push(last + 1);
            return Some(bound);
        }
    }
    None
}

fn key_text(space: &str, key: Vec<u8>) -> Result<String, StoreError> {
    String::from_utf8(key).map_err(|_| StoreError::NonUtf8Key {
        space: space.to_string(),
    })
}

/// A commit is one statement, so one round trip, and atomic on its own. The writes
/// ($1..$5: keys to remove, entries to set) apply only if `allowed` has its row; the
/// statement answers whether the lease held and whether the writes applied. `allowed` is
/// computed once, before any write, and every reference reads that one result.
macro_rules! commit_sql {
    ($checks:literal, $answer:literal) => {
        concat!(
            "WITH ",
            $checks,
            ",
             removed AS (
                 DELETE FROM nexum_entries e
                 USING unnest($1::text[], $2::bytea[]) AS gone(space, key)
                 WHERE e.space = gone.space AND e.key = gone.key
                   AND EXISTS (SELECT 1 FROM allowed)
             ),
             written AS (
                 INSERT INTO nexum_entries (space, key, value)
                 SELECT space, key, value
                 FROM unnest($3::text[], $4::bytea[], $5::bytea[]) AS put(space, key, value)
                 WHERE EXISTS (SELECT 1 FROM allowed)
                 ON CONFLICT (space, key) DO UPDATE SET value = EXCLUDED.value
             )
             SELECT ",
            $answer
        )
    };
}

/// A commit with no module to fence (the engine's own records).
const COMMIT: &str = commit_sql!("allowed AS MATERIALIZED (SELECT 1)", "true, true");

/// A module's commit: only while this node ($7) holds the module's ($6) lease at the epoch
/// it was granted ($8), and only in its turn: while the module's chain token ($9) holds the
/// token this commit follows ($10; the batch sets its own). The lease row's lock (FOR
/// SHARE) holds off a takeover until the statement ends; a takeover that committed first,
/// or that this statement waited for, leaves no row, so nothing is written. The token
/// row's lock (FOR UPDATE) makes a second commit of the same turn wait for the first and
/// then find the token moved on: of the two, one lands.
const FENCED_COMMIT: &str = commit_sql!(
    "leased AS MATERIALIZED (
         SELECT 1 FROM nexum_leases WHERE module = $6 AND owner = $7 AND epoch = $8 FOR SHARE
     ),
     allowed AS MATERIALIZED (
         SELECT 1 FROM nexum_entries
         WHERE space = 'engine' AND key = $9 AND value = $10 AND EXISTS (SELECT 1 FROM leased)
         FOR UPDATE
     )",
    "EXISTS (SELECT 1 FROM leased), EXISTS (SELECT 1 FROM allowed)"
);

/// Starts a module's commit chain: stores `$2` as its token unless it has one, and
/// answers the token it has (one row either way: a conflicting row is locked and read).
const BEGIN_CHAIN: &str = "INSERT INTO nexum_entries (space, key, value) VALUES ('engine', $1, $2)
     ON CONFLICT (space, key) DO UPDATE SET value = nexum_entries.value
     RETURNING value";

/// Settles a module's commits in doubt: moves its token ($4) on from the last one this
/// node saw land ($5) to a fresh one ($6), while this node ($2) holds the module's ($1)
/// lease at its epoch ($3). A commit in doubt still in flight holds the token row's lock:
/// the update waits for it, and finds the token moved if it landed. Once moved on, no
/// commit that follows the old token can land.
const MOVE_ON: &str = "WITH leased AS MATERIALIZED (
         SELECT 1 FROM nexum_leases WHERE module = $1 AND owner = $2 AND epoch = $3 FOR SHARE
     ),
     moved AS (
         UPDATE nexum_entries SET value = $6
         WHERE space = 'engine' AND key = $4 AND value = $5 AND EXISTS (SELECT 1 FROM leased)
         RETURNING 1
     )
     SELECT EXISTS (SELECT 1 FROM leased), EXISTS (SELECT 1 FROM moved)";

/// How a commit statement answered.
#[derive(Clone, Copy)]
struct Committed {
    /// The module's lease held (always, unfenced).
    leased: bool,
    /// The writes applied.
    applied: bool,
}

/// A fenced commit's place in its module's chain: the token key, the token it follows,
/// and its own.
struct Turn {
    key: Vec<u8>,
    follows: Vec<u8>,
    token: Vec<u8>,
}

/// The writes of `writes` that count: the last one for each key, in key order. One
/// statement cannot write a row twice, and the batch's order is what decides. Key order
/// also makes two commits less likely to lock the same rows in opposite orders (the
/// server still chooses how removals and sets interleave; a deadlock it detects fails one
/// commit, and its call runs again).
fn last_write_per_key(writes: Vec<Write>) -> Vec<Write> {
    let mut last = std::collections::BTreeMap::new();
    for write in writes {
        last.insert((write.space.clone(), write.key.clone()), write);
    }
    last.into_values().collect()
}

/// The most one commit statement carries: a batch may hold up to the store quota (256 MiB
/// by default, more if raised), which sent at once would be copied whole on both sides,
/// and past 1 GB refused by the server.
const STATEMENT_BYTES: usize = 16 * 1024 * 1024;

/// One commit statement's parameters: the keys it removes and the entries it sets.
#[derive(Default)]
struct StatementPart {
    removed: (Vec<String>, Vec<Vec<u8>>),
    set: (Vec<String>, Vec<Vec<u8>>, Vec<Vec<u8>>),
    bytes: usize,
}

impl StatementPart {
    fn is_empty(&self) -> bool {
        self.removed.0.is_empty() && self.set.0.is_empty()
    }
}

/// `writes` in statements of at most [`STATEMENT_BYTES`] each (and one write, however
/// large); at least one statement, so an empty batch still checks its fence.
fn statement_parts(writes: Vec<Write>) -> Vec<StatementPart> {
    let mut parts = vec![StatementPart::default()];
    for write in writes {
        // What the write adds to the statement: its space's name, key and value, and the
        // arrays' length words for each.
        let space = space_name(&write.space);
        let size = space.len() + write.key.len() + write.value.as_ref().map_or(0, Vec::len) + 16;
        let part = match parts.last_mut() {
            Some(part) if part.is_empty() || part.bytes + size <= STATEMENT_BYTES => part,
            _ => {
                parts.push(StatementPart::default());
                parts.last_mut().expect("just pushed")
            }
        };
        part.bytes += size;
        let key = write.key.into_bytes();
        match write.value {
            Some(value) => {
                part.set.0.push(space);
                part.set.1.push(key);
                part.set.2.push(value);
            }
            None => {
                part.removed.0.push(space);
                part.removed.1.push(key);
            }
        }
    }
    parts
}

/// Runs one commit statement; with `fence` (module, node, epoch) its writes apply only
/// while the node holds the module's lease at that epoch. Returns whether they applied.
fn write_part(
    client: &mut impl postgres::GenericClient,
    part: &StatementPart,
    fence: Option<(&str, &str, i64, &Turn)>,
) -> Result<Committed, StoreError> {
    let mut params: Vec<(&(dyn postgres::types::ToSql + Sync), Type)> = vec![
        (&part.removed.0, Type::TEXT_ARRAY),
        (&part.removed.1, Type::BYTEA_ARRAY),
        (&part.set.0, Type::TEXT_ARRAY),
        (&part.set.1, Type::BYTEA_ARRAY),
        (&part.set.2, Type::BYTEA_ARRAY),
    ];
    let fenced;
    let sql = match fence {
        Some(fence) => {
            fenced = fence;
            params.extend([
                (
                    &fenced.0 as &(dyn postgres::types::ToSql + Sync),
                    Type::TEXT,
                ),
                (&fenced.1, Type::TEXT),
                (&fenced.2, Type::INT8),
                (&fenced.3.key, Type::BYTEA),
                (&fenced.3.follows, Type::BYTEA),
            ]);
            FENCED_COMMIT
        }
        None => COMMIT,
    };
    let row = client.query_typed_one(sql, &params).map_err(backend)?;
    Ok(Committed {
        leased: row.get(0),
        applied: row.get(1),
    })
}

/// Entries under `prefix` after `after`, in key order: at most `limit`, and none once those
/// before hold `max_bytes`; values only `with_values` (else empty). The byte bound is the
/// query's own, so the server sends no more than that (and one entry): large values past
/// it never cross the connection.
fn range(
    client: &mut Client,
    space: &str,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
    max_bytes: u64,
    with_values: bool,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let start = prefix.as_bytes().to_vec();
    let end = successor(prefix.as_bytes());
    let after = after.map(|a| a.as_bytes().to_vec());
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let max_bytes = i64::try_from(max_bytes).unwrap_or(i64::MAX);
    let value = if with_values { "value" } else { "''::bytea" };
    let sql = format!(
        "SELECT key, value FROM (
             SELECT key, {value} AS value, octet_length(key) + octet_length(value) AS size,
                    sum(octet_length(key) + octet_length(value)) OVER (ORDER BY key) AS through
             FROM nexum_entries
             WHERE space = $1 AND key >= $2 AND ($3::bytea IS NULL OR key < $3)
               AND ($4::bytea IS NULL OR key > $4)
             ORDER BY key LIMIT $5
         ) page
         WHERE through - size < $6
         ORDER BY key"
    );
    let rows = client
        .query_typed(
            &sql,
            &[
                (&space, Type::TEXT),
                (&start, Type::BYTEA),
                (&end, Type::BYTEA),
                (&after, Type::BYTEA),
                (&limit, Type::INT8),
                (&max_bytes, Type::INT8),
            ],
        )
        .map_err(backend)?;
    rows.into_iter()
        .map(|row| Ok((key_text(space, row.get(0))?, row.get(1))))
        .collect()
}

impl Storage for PostgresStorage {
    fn get(&self, space: &Space, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (space, key) = (space_name(space), key.as_bytes().to_vec());
        self.read(move |client| {
            Ok(client
                .query_typed_opt(
                    "SELECT value FROM nexum_entries WHERE space = $1 AND key = $2",
                    &[(&space, Type::TEXT), (&key, Type::BYTEA)],
                )
                .map_err(backend)?
                .map(|row| row.get(0)))
        })
    }

    fn value_len(&self, space: &Space, key: &str) -> Result<Option<usize>, StoreError> {
        let (space, key) = (space_name(space), key.as_bytes().to_vec());
        self.read(move |client| {
            Ok(client
                .query_typed_opt(
                    "SELECT octet_length(value) FROM nexum_entries WHERE space = $1 AND key = $2",
                    &[(&space, Type::TEXT), (&key, Type::BYTEA)],
                )
                .map_err(backend)?
                .map(|row| row.get::<_, i32>(0) as usize))
        })
    }

    fn scan(
        &self,
        space: &Space,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let (space, prefix) = (space_name(space), prefix.to_string());
        self.read(move |client| range(client, &space, &prefix, None, limit, u64::MAX, true))
    }

    fn scan_after(
        &self,
        space: &Space,
        prefix: &str,
        after: Option<&str>,
        max_entries: usize,
        max_bytes: u64,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let (space, prefix) = (space_name(space), prefix.to_string());
        let after = after.map(str::to_string);
        self.read(move |client| {
            range(
                client,
                &space,
                &prefix,
                after.as_deref(),
                max_entries,
                max_bytes,
                true,
            )
        })
    }

    fn count(&self, space: &Space, prefix: &str) -> Result<u64, StoreError> {
        let space = space_name(space);
        let (start, end) = (prefix.as_bytes().to_vec(), successor(prefix.as_bytes()));
        self.read(move |client| {
            let row = client
                .query_typed_one(
                    "SELECT count(*) FROM nexum_entries
                     WHERE space = $1 AND key >= $2 AND ($3::bytea IS NULL OR key < $3)",
                    &[
                        (&space, Type::TEXT),
                        (&start, Type::BYTEA),
                        (&end, Type::BYTEA),
                    ],
                )
                .map_err(backend)?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }

    fn keys(&self, space: &Space, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let (space, prefix) = (space_name(space), prefix.to_string());
        let entries =
            self.read(move |client| range(client, &space, &prefix, None, limit, u64::MAX, false))?;
        Ok(entries.into_iter().map(|(k, _)| k).collect())
    }

    fn commit(&self, mut batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        // A module's commits go one at a time, each after the ones in doubt are settled.
        let chain = batch.fence.as_deref().map(|module| self.chains.of(module));
        let mut chain = chain.as_deref().map(lock_chain);
        let fence = match (batch.fence.clone(), chain.as_deref_mut()) {
            (Some(module), Some(chain)) => {
                let Some(epoch) = self.held.epoch(&module) else {
                    return Err(StoreError::Fenced { module });
                };
                let follows = match self.ready_chain(chain, &module, epoch) {
                    Err(StoreError::Fenced { module }) => return Err(self.fenced(module)),
                    ready => ready?,
                };
                let key = keys::last_commit(&module);
                let turn = Turn {
                    key: key.clone().into_bytes(),
                    follows,
                    token: self.chains.next_token(),
                };
                batch.set(Space::Engine, key, turn.token.clone());
                Some((module, epoch, Arc::new(turn)))
            }
            _ => None,
        };
        let node = self.node.clone();
        let id = batch.id;
        let parts = statement_parts(last_write_per_key(batch.writes));
        let statement_fence = fence.clone();
        let answer = self.run(move |client| {
            let fence = statement_fence
                .as_ref()
                .map(|(module, epoch, turn)| (module.as_str(), node.as_str(), *epoch, &**turn));
            match parts.as_slice() {
                [whole] => write_part(client, whole, fence),
                _ => {
                    // Too large for one statement: a transaction, whose first statement
                    // takes the lease's row lock and holds a takeover off until it ends.
                    let mut tx = client.transaction().map_err(backend)?;
                    let mut committed = Committed {
                        leased: true,
                        applied: true,
                    };
                    for (i, part) in parts.iter().enumerate() {
                        committed = write_part(&mut tx, part, fence.filter(|_| i == 0))?;
                        if !committed.applied {
                            break;
                        }
                    }
                    if committed.applied {
                        tx.commit().map_err(backend)?;
                    }
                    Ok(committed)
                }
            }
        });
        let (Some((module, _, turn)), Some(chain)) = (fence, chain.as_deref_mut()) else {
            return answer.map(|_| ());
        };
        let token = turn.token.clone();
        match answer {
            Ok(Committed { applied: true, .. }) => {
                chain.landed(token);
                Ok(())
            }
            Ok(Committed { leased: false, .. }) => Err(self.fenced(module)),
            // Leased, yet not in turn, with every earlier commit settled: the token was
            // changed by someone else.
            Ok(Committed { leased: true, .. }) => {
                chain.forget_last();
                Err(chain_moved_on(&module))
            }
            Err(error) => {
                chain.lost(id, token);
                Err(error)
            }
        }
    }

    fn commit_in_doubt(&self, module: &str, id: u64) -> Result<Option<bool>, StoreError> {
        let chain = self.chains.of(module);
        let mut chain = lock_chain(&chain);
        if let Some(landed) = chain.settled(id) {
            return Ok(Some(landed));
        }
        if !chain.is_in_doubt(id) {
            return Ok(None);
        }
        let Some(epoch) = self.held.epoch(module) else {
            // No longer this node's: a commit under its old lease cannot land any more,
            // and the module stops here.
            return Err(StoreError::Fenced {
                module: module.to_string(),
            });
        };
        self.ready_chain(&mut chain, module, epoch)?;
        Ok(Some(chain.settled(id).unwrap_or(false)))
    }

    fn flush(&self) -> Result<(), StoreError> {
        // Every commit is durable when PostgreSQL acknowledges it.
        Ok(())
    }

    fn each_entry(&self, _visit: &mut EntryVisitor<'_>) -> Result<(), BackupError> {
        Err(BackupError::Shared)
    }
}

#[cfg(test)]
mod tests {
    use super::{HeldLeases, PostgresStorage, SCHEMA_VERSION, no_answer, successor};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn an_answer_given_up_on_holds_the_keeper_connection_until_it_comes() {
        let url = nexum_tests::postgres::fresh_database();
        let db = PostgresStorage::open(&url, "node", Arc::new(HeldLeases::default())).unwrap();
        let slow = db.with_keeper_client(Duration::from_millis(50), |client| {
            client.batch_execute("SELECT pg_sleep(0.5)")
        });
        assert!(no_answer(&slow.unwrap_err()));
        // Still running: the connection is busy with it.
        assert!(!db.keeper_unstuck(Duration::ZERO));
        // Done within its half second; then the connection answers again.
        assert!(db.keeper_unstuck(Duration::from_secs(10)));
        let answer = db.with_keeper_client(Duration::from_secs(10), |client| {
            client
                .query_one("SELECT 1::int4", &[])
                .map(|row| row.get::<_, i32>(0))
        });
        assert_eq!(answer.unwrap(), 1);
        assert!(db.keeper_unstuck(Duration::ZERO));
    }

    /// A read made for a call waits until the call's deadline, and its least wait at least
    /// (past the deadline if need be) but no longer than the deadline plus one least wait:
    /// given up on after its whole least wait it is the store's failure, else the call's
    /// time ran out (see `read_deadline`).
    #[test]
    fn a_read_for_a_call_waits_until_its_deadline_or_its_least_wait() {
        use std::time::Instant;
        let url = nexum_tests::postgres::fresh_database();
        // A node makes the schema; a reader has one connection.
        drop(PostgresStorage::open(&url, "node", Arc::new(HeldLeases::default())).unwrap());
        let db = PostgresStorage::open_reader(&url).unwrap();
        let slow_read = |db: &PostgresStorage| {
            db.read(|client| {
                client
                    .batch_execute("SELECT pg_sleep(0.3)")
                    .map_err(super::backend)
            })
        };
        let within =
            |deadline, least, db| super::read_deadline::within(deadline, least, || slow_read(db));
        // The call's time is spent, but the read still gets its least wait; it ended past
        // the deadline.
        let (read, past) = within(Instant::now(), Duration::from_secs(5), &db);
        assert!(read.is_ok() && past, "{read:?}");
        // The store had its least wait: its failure.
        let (read, _) = within(
            Instant::now() + Duration::from_millis(100),
            Duration::from_millis(50),
            &db,
        );
        assert!(read.as_ref().is_err_and(no_answer), "{read:?}");
        // Past the deadline, with less than its least wait left: the call's time ran out.
        let (read, _) = within(Instant::now(), Duration::from_millis(50), &db);
        assert!(read.as_ref().is_err_and(super::ran_out_of_time), "{read:?}");
        // Not for a call: as long as it takes.
        assert!(slow_read(&db).is_ok());
    }

    /// A read given up on before its turn came never runs: nobody waits for it, and it would
    /// hold up the work behind it.
    #[test]
    fn a_read_given_up_on_before_its_turn_never_runs() {
        use std::time::Instant;
        let url = nexum_tests::postgres::fresh_database();
        // A node makes the schema; a reader has one connection.
        drop(PostgresStorage::open(&url, "node", Arc::new(HeldLeases::default())).unwrap());
        let db = PostgresStorage::open_reader(&url).unwrap();
        let short = Duration::from_millis(50);
        let busy = super::read_deadline::within(Instant::now() + short, short, || {
            db.read(|client| {
                client
                    .batch_execute("SELECT pg_sleep(0.5)")
                    .map_err(super::backend)
            })
        });
        assert!(busy.0.as_ref().is_err_and(no_answer), "{busy:?}");
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let marked = ran.clone();
        let queued = super::read_deadline::within(Instant::now() + short, short, || {
            db.read(move |_| {
                marked.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            })
        });
        assert!(queued.0.as_ref().is_err_and(no_answer), "{queued:?}");
        // Behind both on the one connection: once it answers, neither is still to run.
        db.read(|_| Ok(())).unwrap();
        assert!(
            !ran.load(std::sync::atomic::Ordering::SeqCst),
            "a read given up on ran later"
        );
    }

    /// Tables of the public schema of the database at `url`.
    fn tables(url: &str) -> Vec<String> {
        nexum_tests::postgres::query_texts(
            url,
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
        )
    }

    #[test]
    fn a_reader_never_creates_or_migrates_the_schema_and_reads_only_its_own_version() {
        let url = nexum_tests::postgres::fresh_database();
        let refused = PostgresStorage::open_reader(&url).err().expect("refused");
        assert!(
            refused.to_string().contains("no nexum node has started"),
            "{refused}"
        );
        assert!(tables(&url).is_empty(), "{:?}", tables(&url));

        drop(PostgresStorage::open(&url, "node", Arc::new(HeldLeases::default())).unwrap());
        let reader = PostgresStorage::open_reader(&url).unwrap();
        let nodes = reader.with_client(|client| {
            client
                .query_one("SELECT count(*) FROM nexum_nodes", &[])
                .map(|row| row.get::<_, i64>(0))
        });
        assert_eq!(nodes.unwrap(), 0);
        let lease = reader.with_keeper_client(Duration::from_secs(1), |_| Ok(()));
        assert!(lease.unwrap_err().to_string().contains("holds no leases"));

        for (version, says) in [(SCHEMA_VERSION + 1, "newer nexum"), (0, "older than")] {
            nexum_tests::postgres::query_texts(
                &url,
                &format!("UPDATE nexum_schema SET version = {version}"),
            );
            let refused = PostgresStorage::open_reader(&url).err().expect("refused");
            assert!(refused.to_string().contains(says), "{refused}");
        }
        assert_eq!(
            nexum_tests::postgres::query_texts(&url, "SELECT version::text FROM nexum_schema"),
            ["0"],
            "a reader migrated the schema"
        );
    }

    #[test]
    fn a_bounded_scan_stops_at_the_byte_bound_in_the_query() {
        use crate::ledger::storage::{Batch, Space, Storage};
        let url = nexum_tests::postgres::fresh_database();
        let db = PostgresStorage::open(&url, "node", Arc::new(HeldLeases::default())).unwrap();
        let mut batch = Batch::default();
        for i in 0..5 {
            batch.set(Space::Engine, format!("big/{i}"), vec![7u8; 400_000]);
        }
        db.commit(batch).unwrap();
        // As the store's contract says: entries until those before hold the bound.
        let page = db
            .scan_after(&Space::Engine, "big/", None, 100, 1024 * 1024)
            .unwrap();
        let keys: Vec<&str> = page.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["big/0", "big/1", "big/2"]);
        let rest = db
            .scan_after(&Space::Engine, "big/", Some("big/2"), 1, 1024 * 1024)
            .unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].0, "big/3");
        assert_eq!(rest[0].1.len(), 400_000);
    }

    #[test]
    fn a_large_batch_is_split_into_statements_of_at_most_16_mib_each() {
        use super::{STATEMENT_BYTES, Write, statement_parts};
        let space = crate::ledger::storage::Space::Engine;
        let write = |key: &str, bytes: usize| Write {
            space: space.clone(),
            key: key.to_string(),
            value: Some(vec![0; bytes]),
        };
        let sizes = |writes: Vec<Write>| -> Vec<usize> {
            statement_parts(writes)
                .iter()
                .map(|p| p.set.0.len() + p.removed.0.len())
                .collect()
        };
        assert_eq!(
            sizes(vec![]),
            vec![0],
            "an empty batch still checks its fence"
        );
        let mib = 1024 * 1024;
        let many: Vec<Write> = (0..24).map(|i| write(&format!("k{i:02}"), mib)).collect();
        assert_eq!(sizes(many), vec![15, 9]);
        let huge = vec![
            write("a", 1),
            write("b", STATEMENT_BYTES + 1),
            write("c", 1),
        ];
        assert_eq!(sizes(huge), vec![1, 1, 1]);
        let removals = (0..1000)
            .map(|i| Write {
                space: space.clone(),
                key: format!("gone/{i}"),
                value: None,
            })
            .collect();
        assert_eq!(sizes(removals), vec![1000]);
        // Tiny writes still cost their space's name and length words: a million one-byte
        // removals (about 30 MB sent) do not go in one statement.
        let tiny: Vec<Write> = (0..1_000_000)
            .map(|i| Write {
                space: crate::ledger::storage::Space::Module(
                    nexum_core::ModuleName::new("keeper").unwrap(),
                ),
                key: format!("{}", i % 10),
                value: None,
            })
            .collect();
        assert!(sizes(tiny).len() > 1);
    }

    /// A node holding module `m`'s lease at epoch 1, and its database's address.
    fn module_on_a_node() -> (PostgresStorage, String) {
        let url = nexum_tests::postgres::fresh_database();
        let held = Arc::new(HeldLeases::default());
        let db = PostgresStorage::open(&url, "solo", held.clone()).unwrap();
        db.with_client(|c| {
            c.execute(
                "INSERT INTO nexum_leases VALUES ('m', 'solo', 1, now() + interval '1 hour')",
                &[],
            )
        })
        .unwrap();
        held.insert("m", 1);
        (db, url)
    }

    fn module_m() -> crate::ledger::storage::Space {
        crate::ledger::storage::Space::Module(nexum_core::ModuleName::new("m").unwrap())
    }

    /// Commits `value` under `m`'s `key`, as a call of `m` does.
    fn commit(
        db: &PostgresStorage,
        key: &str,
        value: &[u8],
    ) -> Result<(), crate::ledger::StoreError> {
        use crate::ledger::storage::{Batch, Storage};
        let mut batch = Batch {
            fence: Some("m".into()),
            ..Batch::default()
        };
        batch.set(module_m(), key, value.to_vec());
        db.commit(batch)
    }

    fn read(db: &PostgresStorage, key: &str) -> Option<Vec<u8>> {
        use crate::ledger::storage::Storage;
        db.get(&module_m(), key).unwrap()
    }

    /// The token `m`'s chain stores now.
    fn stored_token(url: &str) -> Vec<u8> {
        let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
        client
            .query_one(
                "SELECT value FROM nexum_entries WHERE space = 'engine' AND key = 'commit/m'::bytea",
                &[],
            )
            .unwrap()
            .get(0)
    }

    /// Stores `token` as `m`'s chain token, as a commit of `m` does.
    fn store_token(client: &mut postgres::Client, token: &[u8]) {
        client
            .execute(
                "UPDATE nexum_entries SET value = $1 WHERE space = 'engine' AND key = 'commit/m'::bytea",
                &[&token],
            )
            .unwrap();
    }

    /// A commit of `m` in doubt (id `id`) that is in flight on another connection: it holds
    /// the token row's lock until the test ends it, and lands if the test commits it.
    fn commit_in_flight(db: &PostgresStorage, url: &str, id: u64) -> postgres::Client {
        let token = db.chains.next_token();
        super::commit_chain::lock(&db.chains.of("m")).lost(id, token.clone());
        let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
        client.batch_execute("BEGIN").unwrap();
        store_token(&mut client, &token);
        client
            .execute(
                "INSERT INTO nexum_entries VALUES ('module:m', 'k'::bytea, 'in doubt'::bytea)
                 ON CONFLICT (space, key) DO UPDATE SET value = EXCLUDED.value",
                &[],
            )
            .unwrap();
        client
    }

    /// Asks whether commit `id` of `m` landed, on a thread; returns once the asking waits
    /// on a lock (the commit in flight's).
    fn ask_while_in_flight(
        db: &Arc<PostgresStorage>,
        url: &str,
        id: u64,
    ) -> std::thread::JoinHandle<Result<Option<bool>, crate::ledger::StoreError>> {
        use crate::ledger::storage::Storage;
        let asking = {
            let db = db.clone();
            std::thread::spawn(move || db.commit_in_doubt("m", id))
        };
        let mut watcher = postgres::Client::connect(url, postgres::NoTls).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let waiting: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE wait_event_type = 'Lock' AND datname = current_database()",
                    &[],
                )
                .unwrap()
                .get(0);
            if waiting > 0 {
                return asking;
            }
            assert!(
                !asking.is_finished(),
                "the question was answered without waiting"
            );
            assert!(
                std::time::Instant::now() < deadline,
                "the question never waited"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_commit_in_doubt_is_settled_for_good_waiting_for_it_if_it_is_in_flight() {
        let (db, url) = module_on_a_node();
        let db = Arc::new(db);
        commit(&db, "k", b"one").unwrap();

        // In flight, then landing: the answer waits for it and says it landed.
        let mut in_flight = commit_in_flight(&db, &url, 5);
        let asking = ask_while_in_flight(&db, &url, 5);
        in_flight.batch_execute("COMMIT").unwrap();
        assert_eq!(asking.join().unwrap().unwrap(), Some(true));
        assert_eq!(read(&db, "k"), Some(b"in doubt".to_vec()));
        // The chain goes on from it.
        commit(&db, "k", b"two").unwrap();
        assert_eq!(read(&db, "k"), Some(b"two".to_vec()));

        // In flight, then failing: it did not land, and the chain goes on.
        let mut in_flight = commit_in_flight(&db, &url, 6);
        let asking = ask_while_in_flight(&db, &url, 6);
        in_flight.batch_execute("ROLLBACK").unwrap();
        assert_eq!(asking.join().unwrap().unwrap(), Some(false));
        assert_eq!(read(&db, "k"), Some(b"two".to_vec()));
        commit(&db, "k", b"three").unwrap();
        assert_eq!(read(&db, "k"), Some(b"three".to_vec()));

        // Asked again, the answer stands; a commit never in doubt has none.
        use crate::ledger::storage::Storage;
        assert_eq!(db.commit_in_doubt("m", 5).unwrap(), Some(true));
        assert_eq!(db.commit_in_doubt("m", 6).unwrap(), Some(false));
        assert_eq!(db.commit_in_doubt("m", 99).unwrap(), None);
    }

    #[test]
    fn a_commit_in_doubt_that_arrives_after_it_was_settled_cannot_land() {
        use crate::ledger::storage::Storage;
        let (db, url) = module_on_a_node();
        commit(&db, "k", b"one").unwrap();
        // A commit made, its answer lost, the statement not yet at the database.
        let follows = stored_token(&url);
        let late = super::Turn {
            key: b"commit/m".to_vec(),
            follows,
            token: db.chains.next_token(),
        };
        super::commit_chain::lock(&db.chains.of("m")).lost(7, late.token.clone());
        assert_eq!(db.commit_in_doubt("m", 7).unwrap(), Some(false));
        // The statement arrives.
        let part = super::StatementPart {
            set: (
                vec!["module:m".into(), "engine".into()],
                vec![b"k".to_vec(), b"commit/m".to_vec()],
                vec![b"late".to_vec(), late.token.clone()],
            ),
            ..Default::default()
        };
        let answer = db
            .run(move |client| super::write_part(client, &part, Some(("m", "solo", 1, &late))))
            .unwrap();
        assert!(answer.leased && !answer.applied, "the late commit landed");
        assert_eq!(read(&db, "k"), Some(b"one".to_vec()));
        commit(&db, "k", b"two").unwrap();
    }

    /// A commit in doubt is settled by the next commit of the module, whoever makes it (the
    /// chain driver saving progress, say), and its maker is told how when it asks.
    #[test]
    fn a_commit_in_doubt_settled_by_another_commit_is_answered_to_its_maker() {
        use crate::ledger::storage::Storage;
        let (db, url) = module_on_a_node();
        commit(&db, "k", b"one").unwrap();
        commit_in_flight(&db, &url, 11)
            .batch_execute("COMMIT")
            .unwrap();
        commit(&db, "other", b"x").unwrap();
        let mut in_flight = commit_in_flight(&db, &url, 12);
        in_flight.batch_execute("ROLLBACK").unwrap();
        commit(&db, "other", b"y").unwrap();
        assert_eq!(db.commit_in_doubt("m", 11).unwrap(), Some(true));
        assert_eq!(db.commit_in_doubt("m", 12).unwrap(), Some(false));
        assert_eq!(read(&db, "k"), Some(b"in doubt".to_vec()));
    }

    /// A commit in doubt that landed before the node's lease was renewed under a new epoch
    /// is found when the chain is read again under it.
    #[test]
    fn a_commit_in_doubt_that_landed_is_found_under_a_new_epoch() {
        use crate::ledger::storage::Storage;
        let (db, url) = module_on_a_node();
        commit(&db, "k", b"one").unwrap();
        commit_in_flight(&db, &url, 21)
            .batch_execute("COMMIT")
            .unwrap();
        db.with_client(|c| c.execute("UPDATE nexum_leases SET epoch = 2 WHERE module = 'm'", &[]))
            .unwrap();
        db.held.insert("m", 2);
        assert_eq!(db.commit_in_doubt("m", 21).unwrap(), Some(true));
        commit(&db, "k", b"two").unwrap();
        assert_eq!(read(&db, "k"), Some(b"two".to_vec()));
    }

    /// Settling moves the token on; when that move lands and its answer is lost, the next
    /// try finds its own token stored and knows the doubts did not land.
    #[test]
    fn a_settling_whose_answer_was_lost_is_recognised() {
        use crate::ledger::storage::Storage;
        let (db, url) = module_on_a_node();
        commit(&db, "k", b"one").unwrap();
        let moved_to = {
            let chain = db.chains.of("m");
            let mut chain = super::commit_chain::lock(&chain);
            chain.lost(31, b"never stored".to_vec());
            chain.moving_to(|| db.chains.next_token())
        };
        // The move landed; its answer was lost.
        store_token(
            &mut postgres::Client::connect(&url, postgres::NoTls).unwrap(),
            &moved_to,
        );
        assert_eq!(db.commit_in_doubt("m", 31).unwrap(), Some(false));
        commit(&db, "k", b"two").unwrap();
        assert_eq!(read(&db, "k"), Some(b"two".to_vec()));
    }

    /// Several commits of one module at once (a call's, the chain driver's progress) all
    /// land: a node's commits for a module take their turns one at a time.
    #[test]
    fn commits_of_one_module_made_at_once_all_land() {
        let (db, _url) = module_on_a_node();
        let db = Arc::new(db);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let db = db.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        commit(&db, &format!("t{t}/{i}"), b"v").unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        for t in 0..4 {
            assert_eq!(read(&db, &format!("t{t}/24")), Some(b"v".to_vec()));
        }
    }

    #[test]
    fn a_commit_too_large_for_one_statement_takes_its_turn_in_the_chain() {
        let (db, _url) = module_on_a_node();
        let large = vec![7u8; super::STATEMENT_BYTES + 1];
        commit(&db, "k", b"small").unwrap();
        commit(&db, "k", &large).unwrap();
        assert_eq!(read(&db, "k").map(|v| v.len()), Some(large.len()));
        commit(&db, "k", b"after").unwrap();
        assert_eq!(read(&db, "k"), Some(b"after".to_vec()));
    }

    #[test]
    fn the_successor_of_a_prefix_bounds_every_key_under_it() {
        assert_eq!(successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(successor(b"\xff\xff"), None);
        assert_eq!(successor(b""), None);
    }
}
