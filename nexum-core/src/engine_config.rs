//! `engine.toml`: where state lives, which chains are reachable, engine-wide limits and
//! which modules to run.
//!
//! String values may use `${VAR}`, replaced from the environment before validation.
//! Relative paths (`state_dir`, module paths) are resolved against the file's directory.

use crate::error::ConfigError;
use crate::event::ChainId;
use crate::limits::{DeliveryPolicy, Limits, Supervision};
use crate::manifest::{ComponentDigest, ModuleManifest};
use crate::redact::{self, Secrets};
use crate::source::ModuleSource;
use crate::{env_subst, toml_file};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, for terminals.
    #[default]
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// When a committed call is safe from power loss (`[engine] durability`). Either way a
/// commit survives the engine process being killed (`kill -9`, a panic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Commits reach the operating system at once and the disk within
    /// `durability_window_ms`: a power cut loses at most that window, and the engine then
    /// resumes from an older cursor (events are delivered again, never skipped).
    #[default]
    Buffered,
    /// Every commit is on disk (fsync) before the call's outcome counts: nothing committed
    /// is lost to a power cut, at the cost of one fsync per call.
    Sync,
}

/// What turns components into machine code (`[engine] compiler`). Compiled code is cached
/// in the state dir, so only a first start, a new component or a change of compiler pays
/// for it.
///
/// The default is Winch on x86-64, where wasmtime supports it at its first tier (production
/// use, security releases), and Cranelift elsewhere. A keeper's time goes to its host calls,
/// not its own code: on the benchmark workloads the CPU with either compiler was within
/// the drift between runs, while Winch compiles several times faster and with less memory
/// (README, Benchmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compiler {
    /// Cranelift, an optimising compiler: the fastest code, for modules that compute a lot
    /// themselves; a large component (JavaScript, Python) takes several seconds to compile
    /// the first time.
    #[cfg_attr(not(target_arch = "x86_64"), default)]
    Cranelift,
    /// Winch, a baseline compiler: compiles several times faster, and its code runs slower.
    /// It does not compile WebAssembly tail calls, exceptions, GC types, function references
    /// or relaxed SIMD (nor SIMD on a CPU without AVX).
    #[cfg_attr(target_arch = "x86_64", default)]
    Winch,
}

/// The default of `[engine] durability_window_ms`.
pub const DEFAULT_DURABILITY_WINDOW_MS: u64 = 1000;

/// One `[chains.<id>]` entry. Its `Debug` shows URLs by the redaction rule: they carry keys.
#[derive(Clone, PartialEq, Eq)]
pub struct ChainConfig {
    /// `ws(s)://` (subscriptions) or `http(s)://` (polling).
    pub rpc_url: String,
    /// Overrides the CoW orderbook base URL for this chain (staging, a mock).
    pub orderbook_url: Option<String>,
    /// Deadline of one JSON-RPC request to the node.
    pub request_timeout_ms: u64,
    /// How often an `http(s)://` node is polled for new blocks.
    pub poll_interval_ms: u64,
    /// Overrides `[engine] dry_run` for this chain's orderbook.
    pub dry_run: Option<bool>,
    /// On a websocket chain, whether a `logs` subscription cross-checks each block's
    /// `eth_getLogs` read (a guard against a load-balanced provider whose backends lag).
    /// Logs are read by block hash either way; off saves the subscription's traffic, for a
    /// node that answers from one view of the chain (one you run yourself).
    pub cross_check_logs: bool,
}

impl ChainConfig {
    /// A chain reached at `rpc_url`, with default timeouts. Fails on a URL nexum cannot use.
    pub fn new(rpc_url: &str) -> Result<Self, String> {
        check_url(rpc_url, &["ws", "wss", "http", "https"])?;
        Ok(Self {
            rpc_url: rpc_url.to_string(),
            orderbook_url: None,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
            dry_run: None,
            cross_check_logs: true,
        })
    }

    /// Whether the node is reached over a websocket (live subscriptions) rather than polled.
    pub fn is_websocket(&self) -> bool {
        self.rpc_url.starts_with("ws://") || self.rpc_url.starts_with("wss://")
    }
}

impl std::fmt::Debug for ChainConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainConfig")
            .field("rpc_url", &redact::url(&self.rpc_url))
            .field(
                "orderbook_url",
                &self.orderbook_url.as_deref().map(redact::url),
            )
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("poll_interval_ms", &self.poll_interval_ms)
            .field("dry_run", &self.dry_run)
            .field("cross_check_logs", &self.cross_check_logs)
            .finish()
    }
}

const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_POLL_INTERVAL_MS: u64 = 1_000;

/// One `[[modules]]` entry: the component, (optionally) its manifest, and (optionally) the
/// sha256 the operator pins it to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleEntry {
    /// The `.wasm` component, resolved against the config file's directory.
    pub path: PathBuf,
    /// The manifest; `None` means the `module.toml` beside the component.
    pub manifest: Option<PathBuf>,
    /// `sha256 = "sha256:…"`: the component's bytes must hash to this. It sits in the
    /// operator's own file, so a swapped artifact is refused even when its `module.toml`
    /// (which ships with it) was swapped too.
    pub sha256: Option<ComponentDigest>,
    /// `source = "oci://…"` or `"https://…"`: where the component is fetched from. `path`
    /// is then its place in the content store (see [`crate::source`]), and `sha256` and
    /// `manifest` are required.
    pub source: Option<ModuleSource>,
}

/// A validated `engine.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// The file it came from, when it came from one (for error messages).
    pub file: Option<PathBuf>,
    /// Where the store lives.
    pub state_dir: PathBuf,
    /// Default log filter (`RUST_LOG` overrides it).
    pub log_level: String,
    /// Log line format.
    pub log_format: LogFormat,
    /// When commits are safe from power loss.
    pub durability: Durability,
    /// With buffered durability, how often commits are forced to disk, in milliseconds.
    pub durability_window_ms: u64,
    /// Where to serve Prometheus metrics, if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    /// The admin API, if enabled (`[admin]`).
    pub admin: Option<AdminConfig>,
    /// A shared PostgreSQL store for several nodes (`[engine] store`); the embedded store
    /// in `state_dir` when `None`.
    pub store: Option<SharedStore>,
    /// How nodes sharing a store divide the modules (`[cluster]`).
    pub cluster: ClusterConfig,
    /// Orders are validated and logged but not sent (per chain: `[chains.<id>] dry_run`).
    pub dry_run: bool,
    /// Every `[[modules]]` entry must pin its component's sha256 (`[engine] require_pins`).
    pub require_pins: bool,
    /// What compiles components.
    pub compiler: Compiler,
    /// Reachable chains by id.
    pub chains: BTreeMap<ChainId, ChainConfig>,
    /// Engine-wide limits; modules may only lower them.
    pub limits: Limits,
    /// Retries, restarts and quarantine.
    pub supervision: Supervision,
    /// How chain events are followed and delivered.
    pub delivery: DeliveryPolicy,
    /// Modules to run.
    pub modules: Vec<ModuleEntry>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            file: None,
            state_dir: PathBuf::from("data"),
            log_level: "info".into(),
            log_format: LogFormat::Pretty,
            durability: Durability::default(),
            durability_window_ms: DEFAULT_DURABILITY_WINDOW_MS,
            metrics_addr: None,
            admin: None,
            store: None,
            cluster: ClusterConfig::default(),
            dry_run: false,
            require_pins: false,
            compiler: Compiler::default(),
            chains: BTreeMap::new(),
            limits: Limits::default(),
            supervision: Supervision::default(),
            delivery: DeliveryPolicy::default(),
            modules: Vec::new(),
        }
    }
}

impl EngineConfig {
    /// Reads and validates `path`, substituting `${VAR}` from the process environment.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = toml_file::read(path)?;
        Self::parse(path, &text, &|name| std::env::var(name).ok())
    }

    /// Validates engine config `text`. `file` names the source in errors and anchors relative
    /// paths; `env` looks up `${VAR}` references.
    pub fn parse(
        file: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let table = toml_file::parse_table(file, text)?;
        let mut value = toml::Value::Table(table);
        // Substituted values (API keys, passwords) never appear in an error message.
        let mut secrets = Secrets::default();
        env_subst::substitute(&mut value, "", env, &mut secrets)
            .map_err(|(field, reason)| ConfigError::new(file, field, reason))?;
        let toml::Value::Table(table) = value else {
            unreachable!("substitution keeps the root a table")
        };
        toml_file::deserialize::<RawEngineConfig>(file, table)
            .and_then(|raw| raw.validate(file))
            .map_err(|e| ConfigError {
                reason: secrets.scrub(&e.reason),
                ..e
            })
    }

    /// The limits `manifest` runs under, after checking that every chain it subscribes to
    /// is configured here and that it lowers limits rather than raising them.
    pub fn admit(&self, manifest: &ModuleManifest) -> Result<Limits, ConfigError> {
        for (i, subscription) in manifest.subscriptions.iter().enumerate() {
            if let Some(chain) = subscription.chain_id()
                && !self.chains.contains_key(&chain)
            {
                return Err(ConfigError::new(
                    &manifest.file,
                    format!("subscription[{i}].chain_id"),
                    format!(
                        "chain {chain} has no RPC configured in the engine (add [chains.{chain}] with an rpc_url to engine.toml; for one module run on its own: --chain {chain}=URL)"
                    ),
                ));
            }
        }
        if let Some(chain) = manifest
            .extra_chains
            .iter()
            .find(|c| !self.chains.contains_key(c))
        {
            return Err(ConfigError::new(
                &manifest.file,
                "capabilities.chains",
                format!(
                    "chain {chain} has no RPC configured in the engine (add [chains.{chain}] with an rpc_url to engine.toml; for one module run on its own: --chain {chain}=URL)"
                ),
            ));
        }
        self.limits.lowered_by(&manifest.limits).map_err(|raised| {
            ConfigError::new(
                &manifest.file,
                format!("limits.{}", raised.field),
                format!(
                    "asks for {} but the engine allows at most {}",
                    raised.requested, raised.allowed
                ),
            )
        })
    }

    /// Whether orders for `chain` are only validated and logged, not sent.
    pub fn is_dry_run(&self, chain: ChainId) -> bool {
        self.chains
            .get(&chain)
            .and_then(|c| c.dry_run)
            .unwrap_or(self.dry_run)
    }

    /// Where errors about this config should point.
    pub fn source_name(&self) -> PathBuf {
        self.file
            .clone()
            .unwrap_or_else(|| PathBuf::from("<engine config>"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngineConfig {
    #[serde(default)]
    engine: RawEngineSection,
    #[serde(default)]
    chains: BTreeMap<String, RawChain>,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    supervision: Supervision,
    #[serde(default)]
    delivery: DeliveryPolicy,
    #[serde(default)]
    modules: Vec<RawModuleEntry>,
    admin: Option<RawAdmin>,
    #[serde(default)]
    cluster: RawCluster,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    node: Option<String>,
    lease_ms: Option<u64>,
    renew_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    addr: String,
    token: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngineSection {
    #[serde(default = "default_state_dir")]
    state_dir: PathBuf,
    #[serde(default = "default_log_level")]
    log_level: String,
    #[serde(default)]
    log_format: LogFormat,
    #[serde(default)]
    durability: Durability,
    #[serde(default = "default_durability_window_ms")]
    durability_window_ms: u64,
    metrics_addr: Option<String>,
    #[serde(default)]
    dry_run: bool,
    store: Option<String>,
    #[serde(default)]
    require_pins: bool,
    #[serde(default)]
    compiler: Compiler,
}

fn default_durability_window_ms() -> u64 {
    DEFAULT_DURABILITY_WINDOW_MS
}

impl Default for RawEngineSection {
    fn default() -> Self {
        Self {
            state_dir: default_state_dir(),
            log_level: default_log_level(),
            log_format: LogFormat::default(),
            durability: Durability::default(),
            durability_window_ms: DEFAULT_DURABILITY_WINDOW_MS,
            metrics_addr: None,
            dry_run: false,
            store: None,
            require_pins: false,
            compiler: Compiler::default(),
        }
    }
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("data")
}

fn default_log_level() -> String {
    "info".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChain {
    rpc_url: String,
    orderbook_url: Option<String>,
    #[serde(default = "default_request_timeout_ms")]
    request_timeout_ms: u64,
    #[serde(default = "default_poll_interval_ms")]
    poll_interval_ms: u64,
    dry_run: Option<bool>,
    #[serde(default = "default_cross_check_logs")]
    cross_check_logs: bool,
}

fn default_cross_check_logs() -> bool {
    true
}

fn default_request_timeout_ms() -> u64 {
    DEFAULT_REQUEST_TIMEOUT_MS
}

fn default_poll_interval_ms() -> u64 {
    DEFAULT_POLL_INTERVAL_MS
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModuleEntry {
    path: Option<PathBuf>,
    source: Option<String>,
    manifest: Option<PathBuf>,
    sha256: Option<String>,
}

impl RawEngineConfig {
    fn validate(self, file: &Path) -> Result<EngineConfig, ConfigError> {
        let err = |field: String, reason: String| ConfigError::new(file, field, reason);
        let base = file.parent().unwrap_or(Path::new("."));
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };

        let metrics_addr = self
            .engine
            .metrics_addr
            .as_deref()
            .map(|a| {
                a.parse::<SocketAddr>().map_err(|_| {
                    err(
                        "engine.metrics_addr".into(),
                        format!("expected host:port such as \"127.0.0.1:9100\", found {a:?}"),
                    )
                })
            })
            .transpose()?;
        if self.engine.log_level.trim().is_empty() {
            return Err(err("engine.log_level".into(), "must not be empty".into()));
        }
        if self.engine.durability_window_ms == 0 {
            return Err(err(
                "engine.durability_window_ms".into(),
                "must be greater than 0 (for a commit on disk before it counts, set durability = \"sync\")".into(),
            ));
        }

        let admin = self
            .admin
            .map(|raw| AdminConfig::validate(raw.addr, raw.token))
            .transpose()
            .map_err(|(field, reason)| err(format!("admin.{field}"), reason))?;

        let store = self
            .engine
            .store
            .map(SharedStore::validate)
            .transpose()
            .map_err(|reason| err("engine.store".into(), reason))?;
        let cluster = ClusterConfig::validate(self.cluster)
            .map_err(|(field, reason)| err(format!("cluster.{field}"), reason))?;

        let mut chains = BTreeMap::new();
        let mut keys: BTreeMap<ChainId, String> = BTreeMap::new();
        for (key, chain) in self.chains {
            let id: ChainId = key.parse().ok().filter(|id| *id > 0).ok_or_else(|| {
                err(
                    format!("chains.{key}"),
                    "chain ids are positive integers, as in [chains.1]".into(),
                )
            })?;
            // `[chains.1]` and `[chains.01]` are one chain: neither may silently win.
            if let Some(first) = keys.insert(id, key.clone()) {
                return Err(err(
                    format!("chains.{key}"),
                    format!("chain {id} is already configured by [chains.{first}]"),
                ));
            }
            check_url(&chain.rpc_url, &["ws", "wss", "http", "https"])
                .map_err(|r| err(format!("chains.{key}.rpc_url"), r))?;
            if let Some(orderbook) = &chain.orderbook_url {
                check_url(orderbook, &["http", "https"])
                    .map_err(|r| err(format!("chains.{key}.orderbook_url"), r))?;
            }
            for (name, value) in [
                ("request_timeout_ms", chain.request_timeout_ms),
                ("poll_interval_ms", chain.poll_interval_ms),
            ] {
                if value == 0 {
                    return Err(err(
                        format!("chains.{key}.{name}"),
                        "must be greater than 0".into(),
                    ));
                }
            }
            chains.insert(
                id,
                ChainConfig {
                    rpc_url: chain.rpc_url,
                    orderbook_url: chain.orderbook_url,
                    request_timeout_ms: chain.request_timeout_ms,
                    poll_interval_ms: chain.poll_interval_ms,
                    dry_run: chain.dry_run,
                    cross_check_logs: chain.cross_check_logs,
                },
            );
        }

        let limits = self.limits;
        for (name, value) in limits.named() {
            if value == 0 {
                return Err(err(
                    format!("limits.{name}"),
                    "must be greater than 0".into(),
                ));
            }
        }

        let supervision = &self.supervision;
        if supervision.restart_backoff_ms == 0
            || supervision.restart_backoff_max_ms < supervision.restart_backoff_ms
        {
            return Err(err(
                "supervision.restart_backoff_max_ms".into(),
                "must be at least restart_backoff_ms, which must be greater than 0".into(),
            ));
        }
        if supervision.quarantine_after == 0 {
            return Err(err(
                "supervision.quarantine_after".into(),
                "must be greater than 0".into(),
            ));
        }
        if supervision.queue_capacity == 0 {
            return Err(err(
                "supervision.queue_capacity".into(),
                "must be greater than 0".into(),
            ));
        }

        let state_dir = resolve(&self.engine.state_dir);
        let mut modules = Vec::with_capacity(self.modules.len());
        for (i, m) in self.modules.into_iter().enumerate() {
            let sha256 = m
                .sha256
                .as_deref()
                .map(ComponentDigest::parse)
                .transpose()
                .map_err(|reason| err(format!("modules[{i}].sha256"), reason))?;
            let entry = match (m.path, m.source) {
                (Some(path), None) => {
                    if self.engine.require_pins && sha256.is_none() {
                        return Err(err(
                            format!("modules[{i}].sha256"),
                            format!(
                                "missing: engine.require_pins is on, so every module needs the sha256 of its component here (`nexum hash {}` prints it)",
                                path.display()
                            ),
                        ));
                    }
                    ModuleEntry {
                        path: resolve(&path),
                        manifest: m.manifest.as_deref().map(resolve),
                        sha256,
                        source: None,
                    }
                }
                (None, Some(source)) => {
                    let source = ModuleSource::parse(&source)
                        .map_err(|reason| err(format!("modules[{i}].source"), reason))?;
                    let Some(digest) = sha256 else {
                        return Err(err(
                            format!("modules[{i}].sha256"),
                            format!(
                                "required with `source`: a fetched component is trusted by its digest, never by its tag or URL (`nexum push` and `nexum hash` print it) [{source}]"
                            ),
                        ));
                    };
                    let Some(manifest) = m.manifest.as_deref() else {
                        return Err(err(
                            format!("modules[{i}].manifest"),
                            "required with `source`: a module's manifest stays beside engine.toml, with the capabilities it grants".into(),
                        ));
                    };
                    ModuleEntry {
                        path: crate::source::content_file(&state_dir, &digest),
                        manifest: Some(resolve(manifest)),
                        sha256,
                        source: Some(source),
                    }
                }
                (Some(_), Some(_)) => {
                    return Err(err(
                        format!("modules[{i}]"),
                        "set `path` (a component file) or `source` (an OCI reference or an HTTPS address), not both".into(),
                    ));
                }
                (None, None) => {
                    return Err(err(
                        format!("modules[{i}]"),
                        "needs `path` (a component file) or `source` (an OCI reference or an HTTPS address)".into(),
                    ));
                }
            };
            modules.push(entry);
        }

        Ok(EngineConfig {
            file: Some(file.to_path_buf()),
            state_dir,
            log_level: self.engine.log_level,
            log_format: self.engine.log_format,
            durability: self.engine.durability,
            durability_window_ms: self.engine.durability_window_ms,
            metrics_addr,
            admin,
            store,
            cluster,
            dry_run: self.engine.dry_run,
            require_pins: self.engine.require_pins,
            compiler: self.engine.compiler,
            chains,
            limits,
            supervision: self.supervision,
            delivery: self
                .delivery
                .validate()
                .map_err(|(field, reason)| err(format!("delivery.{field}"), reason))?,
            modules,
        })
    }
}

/// A PostgreSQL connection string (`postgres://user:password@host:port/database`). Its
/// `Debug` and `Display` show it by the redaction rule: it holds a password.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedStore {
    url: String,
}

impl SharedStore {
    /// A shared store at `url` (`postgres://…`), checked as `[engine] store` is.
    pub fn new(url: impl Into<String>) -> Result<Self, String> {
        Self::validate(url.into())
    }

    fn validate(url: String) -> Result<Self, String> {
        check_url(&url, &["postgres", "postgresql"])?;
        Ok(Self { url })
    }

    /// The connection string, for the database client only.
    pub fn connection_string(&self) -> &str {
        &self.url
    }
}

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedStore({})", redact::url(&self.url))
    }
}

impl std::fmt::Display for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact::url(&self.url))
    }
}

/// Default lease: how long a silent node keeps its modules before another takes them.
pub const DEFAULT_LEASE_MS: u64 = 10_000;

/// `[cluster]`: how nodes sharing a store divide the modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// This node's name (default: host name and process id); unique per running node.
    pub node: Option<String>,
    /// How long a lease lasts without renewal: the failover time after a node dies.
    pub lease_ms: u64,
    /// How often leases are renewed and placement revisited (at most a third of the lease).
    pub renew_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            node: None,
            lease_ms: DEFAULT_LEASE_MS,
            renew_ms: DEFAULT_LEASE_MS / 4,
        }
    }
}

impl ClusterConfig {
    fn validate(raw: RawCluster) -> Result<Self, (&'static str, String)> {
        let lease_ms = raw.lease_ms.unwrap_or(DEFAULT_LEASE_MS);
        if lease_ms < 300 {
            return Err(("lease_ms", "must be at least 300".into()));
        }
        let renew_ms = raw.renew_ms.unwrap_or(lease_ms / 4);
        if renew_ms == 0 || renew_ms > lease_ms / 3 {
            return Err((
                "renew_ms",
                format!("must be greater than 0 and at most a third of lease_ms ({lease_ms})"),
            ));
        }
        if let Some(node) = &raw.node
            && (node.is_empty()
                || node.len() > 128
                || !node
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
        {
            return Err((
                "node",
                "use 1-128 characters of letters, digits, `-`, `_` and `.`".into(),
            ));
        }
        Ok(Self {
            node: raw.node,
            lease_ms,
            renew_ms,
        })
    }
}

/// Shortest admin token accepted: a guessable token is no protection.
const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// `[admin]`: where the admin API listens, and the bearer token it asks for. Its `Debug`
/// never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// The address to listen on (port 0 picks a free one).
    pub addr: SocketAddr,
    /// Required in an `Authorization: Bearer` header when set; always set when `addr` is
    /// not a loopback address.
    pub token: Option<String>,
}

impl AdminConfig {
    /// An admin endpoint on `addr`; a token is required unless `addr` is loopback.
    fn validate(addr: String, token: Option<String>) -> Result<Self, (&'static str, String)> {
        let parsed: SocketAddr = addr.parse().map_err(|_| {
            (
                "addr",
                format!("expected host:port such as \"127.0.0.1:9101\", found {addr:?}"),
            )
        })?;
        match &token {
            None if !parsed.ip().is_loopback() => {
                return Err((
                    "token",
                    format!(
                        "required when the admin API listens on {parsed}, which is not a loopback address (set token = \"${{NEXUM_ADMIN_TOKEN}}\")"
                    ),
                ));
            }
            Some(token) if token.chars().count() < MIN_ADMIN_TOKEN_LEN => {
                return Err((
                    "token",
                    format!("must be at least {MIN_ADMIN_TOKEN_LEN} characters long"),
                ));
            }
            _ => {}
        }
        Ok(Self {
            addr: parsed,
            token,
        })
    }
}

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("addr", &self.addr)
            .field("token", &self.token.as_ref().map(|_| redact::HIDDEN))
            .finish()
    }
}

/// Checks a URL from the config; errors show it by the redaction rule (it may hold a key).
fn check_url(text: &str, schemes: &[&str]) -> Result<(), String> {
    let shown = redact::url(text);
    let url = url::Url::parse(text).map_err(|e| format!("invalid URL ({e})"))?;
    if !schemes.contains(&url.scheme()) {
        return Err(format!(
            "unsupported scheme `{}` in {shown}: expected one of {}",
            url.scheme(),
            schemes.join(", ")
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("invalid URL {shown}: no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
