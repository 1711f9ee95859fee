//! `module.toml`: a module's name, capabilities, subscriptions, limits and config.
//!
//! Parsing is strict: an unknown key or kind, a malformed address, topic, event signature
//! or schedule is a [`ConfigError`] naming the file, the field and the reason.

use crate::capability::Capability;
use crate::config_value::flatten_config;
use crate::cron::CronSchedule;
use crate::error::ConfigError;
use crate::event::ChainId;
use crate::limits::LimitOverrides;
use crate::subscription::{LogFilter, LogSubscription, MAX_TOPIC_POSITIONS, Subscription};
use crate::toml_file;
use alloy_primitives::{Address, B256};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// The manifest's file name.
pub const MANIFEST_FILE: &str = "module.toml";
/// The name older modules used; still accepted, with a warning.
pub const LEGACY_MANIFEST_FILE: &str = "nexum.toml";

/// A module's name: its store namespace, unique in an engine. 1–64 of `[a-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModuleName(String);

impl ModuleName {
    /// Validates `name`.
    pub fn new(name: &str) -> Result<Self, String> {
        let valid_chars = name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if name.is_empty() || name.len() > 64 || !valid_chars {
            return Err(format!(
                "invalid module name {name:?}: use 1-64 characters of a-z, 0-9, `_` and `-`"
            ));
        }
        Ok(Self(name.to_string()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The sha256 a manifest pins its component to (`component = "sha256:…"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentDigest(pub [u8; 32]);

impl ComponentDigest {
    /// The sha256 of a component's bytes.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::{Digest, Sha256};
        Self(Sha256::digest(bytes).into())
    }

    /// Parses `sha256:<64 hex digits>`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let hex = text
            .strip_prefix("sha256:")
            .ok_or_else(|| format!("expected \"sha256:<64 hex digits>\", found {text:?}"))?;
        let bytes: B256 = hex
            .parse()
            .ok()
            .filter(|_| hex.len() == 64)
            .ok_or_else(|| format!("expected 64 hex digits after \"sha256:\", found {hex:?}"))?;
        Ok(Self(bytes.0))
    }
}

impl fmt::Display for ComponentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:")?;
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// A validated `module.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleManifest {
    /// The file it was read from (for error messages).
    pub file: PathBuf,
    /// The module's name and store namespace.
    pub name: ModuleName,
    /// The module's version, as written.
    pub version: String,
    /// When set, the component's sha256 must match.
    pub component: Option<ComponentDigest>,
    /// The capabilities the module may import.
    pub capabilities: BTreeSet<Capability>,
    /// Chains the module reads through `chain` without subscribing to them
    /// (`[capabilities] chains`).
    pub extra_chains: BTreeSet<ChainId>,
    /// What the module wants to receive, in manifest order.
    pub subscriptions: Vec<Subscription>,
    /// Limits the module asks to have lowered.
    pub limits: LimitOverrides,
    /// `[config]`, flattened for `init`.
    pub config: Vec<(String, String)>,
}

/// Where a module's manifest was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestLocation {
    /// The manifest file.
    pub path: PathBuf,
    /// True when only the legacy `nexum.toml` name was found (callers should warn).
    pub legacy: bool,
}

impl ManifestLocation {
    /// Finds the manifest beside `wasm`: `module.toml`, else the legacy `nexum.toml`.
    pub fn beside(wasm: &Path) -> Result<Self, ConfigError> {
        let dir = wasm.parent().unwrap_or(Path::new("."));
        let current = dir.join(MANIFEST_FILE);
        if current.is_file() {
            return Ok(Self {
                path: current,
                legacy: false,
            });
        }
        let legacy = dir.join(LEGACY_MANIFEST_FILE);
        if legacy.is_file() {
            return Ok(Self {
                path: legacy,
                legacy: true,
            });
        }
        Err(ConfigError::new(
            &current,
            "",
            format!(
                "no manifest for {}: expected {MANIFEST_FILE} beside it",
                wasm.display()
            ),
        ))
    }
}

impl ModuleManifest {
    /// Whether the TOML file at `path` is a module's manifest (it has a `[module]` table)
    /// rather than an engine config; `false` when it cannot be read or parsed.
    pub fn is_manifest_file(path: &Path) -> bool {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|text| text.parse::<toml::Table>().ok())
            .is_some_and(|table| table.contains_key("module"))
    }

    /// Reads and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = toml_file::read(path)?;
        Self::parse(path, &text)
    }

    /// Validates manifest `text`; `file` is used in error messages.
    pub fn parse(file: &Path, text: &str) -> Result<Self, ConfigError> {
        let table = toml_file::parse_table(file, text)?;
        let raw: RawManifest = toml_file::deserialize(file, table)?;
        raw.validate(file)
    }

    /// Every chain the module declared: those its subscriptions read plus
    /// `[capabilities] chains`. The `chain` capability serves only these.
    pub fn chains(&self) -> BTreeSet<ChainId> {
        self.subscriptions
            .iter()
            .filter_map(Subscription::chain_id)
            .chain(self.extra_chains.iter().copied())
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    module: RawModule,
    #[serde(default)]
    capabilities: RawCapabilities,
    #[serde(default, rename = "subscription")]
    subscriptions: Vec<RawSubscription>,
    #[serde(default)]
    limits: LimitOverrides,
    #[serde(default)]
    config: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModule {
    name: String,
    version: String,
    component: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCapabilities {
    #[serde(default)]
    required: Vec<String>,
    #[serde(default)]
    chains: Vec<ChainId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubscription {
    kind: String,
    chain_id: Option<ChainId>,
    address: Option<String>,
    addresses: Option<Vec<String>>,
    event: Option<String>,
    /// Topic 0 as a hash, as the seed system's manifests write it (`event` takes the
    /// signature text instead).
    event_signature: Option<String>,
    topics: Option<Vec<Vec<String>>>,
    start_block: Option<StartBlock>,
    schedule: Option<String>,
}

/// `start_block`: a block number, or `"latest"` (the head when the subscription is first
/// seen, which is also what leaving it out means).
#[derive(Deserialize)]
#[serde(untagged)]
enum StartBlock {
    Number(u64),
    Word(String),
}

impl RawManifest {
    fn validate(self, file: &Path) -> Result<ModuleManifest, ConfigError> {
        let err = |field: String, reason: String| ConfigError::new(file, field, reason);

        let name = ModuleName::new(&self.module.name).map_err(|r| err("module.name".into(), r))?;
        if self.module.version.trim().is_empty() {
            return Err(err("module.version".into(), "must not be empty".into()));
        }
        let component = self
            .module
            .component
            .as_deref()
            .map(ComponentDigest::parse)
            .transpose()
            .map_err(|r| err("module.component".into(), r))?;

        let mut capabilities = BTreeSet::new();
        for (i, cap) in self.capabilities.required.iter().enumerate() {
            let cap = cap
                .parse::<Capability>()
                .map_err(|r| err(format!("capabilities.required[{i}]"), r))?;
            capabilities.insert(cap);
        }

        let subscriptions = self
            .subscriptions
            .into_iter()
            .enumerate()
            .map(|(i, raw)| {
                raw.validate()
                    .map_err(|(field, reason)| err(format!("subscription[{i}].{field}"), reason))
            })
            .collect::<Result<Vec<Subscription>, _>>()?;
        // Two subscriptions reading the same thing would share one delivery position.
        for (i, subscription) in subscriptions.iter().enumerate() {
            let Some(key) = subscription.position_key() else {
                continue;
            };
            if let Some(first) = subscriptions[..i]
                .iter()
                .position(|earlier| earlier.position_key().as_deref() == Some(key.as_str()))
            {
                return Err(err(
                    format!("subscription[{i}]"),
                    format!(
                        "reads the same {} as subscription[{first}]; merge them",
                        subscription.kind()
                    ),
                ));
            }
        }

        // A limit of 0 would make every call fail (no fuel, no memory, no time): refused
        // here, where both `nexum check` and `nexum run` read the manifest.
        if let Some((name, _)) = self.limits.named().into_iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::new(
                file,
                format!("limits.{name}"),
                "must be greater than 0",
            ));
        }

        Ok(ModuleManifest {
            file: file.to_path_buf(),
            name,
            version: self.module.version,
            component,
            capabilities,
            extra_chains: self.capabilities.chains.iter().copied().collect(),
            subscriptions,
            limits: self.limits,
            config: flatten_config(&self.config),
        })
    }
}

type FieldError = (String, String);

impl RawSubscription {
    fn validate(self) -> Result<Subscription, FieldError> {
        match self.kind.as_str() {
            "block" => {
                self.only_allow(&["chain_id"])?;
                Ok(Subscription::Block {
                    chain_id: self.required_chain()?,
                })
            }
            "log" => {
                self.only_allow(&[
                    "chain_id",
                    "address",
                    "addresses",
                    "event",
                    "event_signature",
                    "topics",
                    "start_block",
                ])?;
                let chain_id = self.required_chain()?;
                let filter = self.log_filter()?;
                let start_block = match &self.start_block {
                    None => None,
                    Some(StartBlock::Number(number)) => Some(*number),
                    Some(StartBlock::Word(word)) if word == "latest" => None,
                    Some(StartBlock::Word(word)) => {
                        return Err(field(
                            "start_block",
                            &format!("{word:?} is not a block: use a block number or \"latest\""),
                        ));
                    }
                };
                Ok(Subscription::Log(LogSubscription {
                    chain_id,
                    filter,
                    start_block,
                }))
            }
            "cron" => {
                self.only_allow(&["schedule"])?;
                let text = self.schedule.as_deref().ok_or_else(|| {
                    field("schedule", "missing: a cron subscription needs `schedule`")
                })?;
                CronSchedule::parse(text)
                    .map(Subscription::Cron)
                    .map_err(|r| ("schedule".to_string(), r))
            }
            other => Err(field(
                "kind",
                &format!("unknown kind `{other}`: expected `block`, `log` or `cron`"),
            )),
        }
    }

    fn present_fields(&self) -> Vec<&'static str> {
        let mut present = Vec::new();
        let mut note = |name, is_set: bool| {
            if is_set {
                present.push(name)
            }
        };
        note("chain_id", self.chain_id.is_some());
        note("address", self.address.is_some());
        note("addresses", self.addresses.is_some());
        note("event", self.event.is_some());
        note("event_signature", self.event_signature.is_some());
        note("topics", self.topics.is_some());
        note("start_block", self.start_block.is_some());
        note("schedule", self.schedule.is_some());
        present
    }

    fn only_allow(&self, allowed: &[&str]) -> Result<(), FieldError> {
        match self
            .present_fields()
            .into_iter()
            .find(|f| !allowed.contains(f))
        {
            Some(extra) => Err(field(
                extra,
                &format!("not allowed in a `{}` subscription", self.kind),
            )),
            None => Ok(()),
        }
    }

    fn required_chain(&self) -> Result<ChainId, FieldError> {
        self.chain_id.ok_or_else(|| {
            field(
                "chain_id",
                &format!("missing: a `{}` subscription needs `chain_id`", self.kind),
            )
        })
    }

    fn log_filter(&self) -> Result<LogFilter, FieldError> {
        let addresses = match (&self.address, &self.addresses) {
            (Some(_), Some(_)) => {
                return Err(field(
                    "address",
                    "use either `address` or `addresses`, not both",
                ));
            }
            (Some(one), None) => vec![parse_address(one).map_err(|r| ("address".to_string(), r))?],
            (None, Some(many)) => many
                .iter()
                .enumerate()
                .map(|(i, a)| parse_address(a).map_err(|r| (format!("addresses[{i}]"), r)))
                .collect::<Result<_, _>>()?,
            (None, None) => Vec::new(),
        };

        let mut topics: Vec<Vec<B256>> = Vec::new();
        if let Some(raw) = &self.topics {
            if raw.len() > MAX_TOPIC_POSITIONS {
                return Err(field(
                    "topics",
                    &format!(
                        "at most {MAX_TOPIC_POSITIONS} topic positions, found {}",
                        raw.len()
                    ),
                ));
            }
            for (position, alternatives) in raw.iter().enumerate() {
                let parsed = alternatives
                    .iter()
                    .enumerate()
                    .map(|(j, t)| {
                        parse_topic(t).map_err(|r| (format!("topics[{position}][{j}]"), r))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                topics.push(parsed);
            }
        }

        let topic0 = match (&self.event, &self.event_signature) {
            (Some(_), Some(_)) => {
                return Err(field(
                    "event_signature",
                    "`event` and `event_signature` both set topic 0: keep one",
                ));
            }
            (Some(signature), None) => Some((
                "event",
                event_topic(signature).map_err(|r| ("event".to_string(), r))?,
            )),
            (None, Some(hash)) => Some((
                "event_signature",
                parse_topic(hash).map_err(|r| ("event_signature".to_string(), r))?,
            )),
            (None, None) => None,
        };
        if let Some((name, topic0)) = topic0 {
            match topics.first_mut() {
                Some(first) if !first.is_empty() => {
                    return Err(field(
                        name,
                        &format!(
                            "`{name}` sets topic 0, but `topics[0]` is set too: leave `topics[0]` empty"
                        ),
                    ));
                }
                Some(first) => first.push(topic0),
                None => topics.push(vec![topic0]),
            }
        }
        // Trailing wildcards add nothing; order and repeats within a list mean nothing.
        // Normalising lets modules with the same filter share one node subscription.
        while topics.last().is_some_and(Vec::is_empty) {
            topics.pop();
        }
        let mut addresses = addresses;
        addresses.sort_unstable();
        addresses.dedup();
        for alternatives in &mut topics {
            alternatives.sort_unstable();
            alternatives.dedup();
        }

        if addresses.is_empty() && topics.is_empty() {
            return Err(field(
                "addresses",
                "a log subscription needs `addresses`, `event` or `topics`; \
                 following every log of a chain is not supported",
            ));
        }
        Ok(LogFilter { addresses, topics })
    }
}

fn field(name: &str, reason: &str) -> FieldError {
    (name.to_string(), reason.to_string())
}

/// Parses a `0x`-prefixed address. Mixed case must be a valid EIP-55 checksum.
pub fn parse_address(text: &str) -> Result<Address, String> {
    let hex = text.strip_prefix("0x").ok_or_else(|| {
        format!("invalid address {text:?}: expected 0x followed by 40 hex digits")
    })?;
    if hex.len() != 40 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "invalid address {text:?}: expected 0x followed by 40 hex digits"
        ));
    }
    let mixed_case =
        hex.chars().any(|c| c.is_ascii_lowercase()) && hex.chars().any(|c| c.is_ascii_uppercase());
    if mixed_case {
        Address::parse_checksummed(text, None).map_err(|_| {
            format!("invalid address {text:?}: mixed case but not a valid EIP-55 checksum")
        })
    } else {
        text.parse()
            .map_err(|e| format!("invalid address {text:?}: {e}"))
    }
}

fn parse_topic(text: &str) -> Result<B256, String> {
    let valid = text
        .strip_prefix("0x")
        .is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()));
    if !valid {
        return Err(format!(
            "invalid topic {text:?}: expected 0x followed by 64 hex digits"
        ));
    }
    text.parse()
        .map_err(|e| format!("invalid topic {text:?}: {e}"))
}

/// The topic-0 hash of an event signature such as `Transfer(address,address,uint256)`.
pub fn event_topic(signature: &str) -> Result<B256, String> {
    let event = alloy_json_abi::Event::parse(signature)
        .map_err(|e| format!("invalid event signature {signature:?}: {e}"))?;
    if event.anonymous {
        return Err(format!(
            "event {signature:?} is anonymous and has no signature topic: use `topics`"
        ));
    }
    Ok(event.selector())
}

#[cfg(test)]
mod tests;
