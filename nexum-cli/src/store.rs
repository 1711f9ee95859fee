//! `nexum store` and `nexum dead-letters`: read-only views of an engine's state — through
//! the admin API while the engine runs, from the state files when it is stopped.

use crate::admin_client::{AdminClient, Reach};
use crate::cli::StoreAction;
use anyhow::bail;
use nexum_host::core::{EngineConfig, Event, ModuleName};
use nexum_host::{DeadLetter, DeadLetterPage, Ledger, StoreError};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Opens the state of a stopped engine: its files, or the shared store of a cluster.
pub async fn open(engine: &Path, config: &EngineConfig) -> anyhow::Result<Ledger> {
    if let Some(store) = config.store.clone() {
        let shown = store.to_string();
        return tokio::task::spawn_blocking(move || Ledger::open_shared(&store))
            .await?
            .map_err(|e| anyhow::anyhow!("shared store {shown}: {e}"));
    }
    if !config.state_dir.is_dir() {
        bail!(
            "{}: no state yet (engine.state_dir is {})",
            engine.display(),
            config.state_dir.display()
        );
    }
    let dir = config.state_dir.display();
    Ledger::open(&config.state_dir).map_err(|e| match e {
        StoreError::Locked => anyhow::anyhow!(
            "the state in {dir} is in use: is this engine running? stop it, or set [admin] in {} to read it while it runs",
            engine.display()
        ),
        other => anyhow::anyhow!("cannot open the state in {dir}: {other}"),
    })
}

/// Whose state to read: an engine.toml's, or the files of a single module's run.
pub enum StoreTarget {
    Engine(PathBuf),
    StateDir(PathBuf),
}

impl StoreTarget {
    /// From `nexum store`'s arguments: `ENGINE MODULE`, or `--state-dir DIR MODULE`.
    pub fn from_args(
        engine: Option<PathBuf>,
        module: Option<String>,
        state_dir: Option<PathBuf>,
    ) -> anyhow::Result<(Self, String)> {
        match (engine, module, state_dir) {
            (Some(engine), Some(module), None) => Ok((Self::Engine(engine), module)),
            // The one word after `--state-dir DIR` is the module.
            (Some(module), None, Some(dir)) => {
                Ok((Self::StateDir(dir), module.to_string_lossy().into_owned()))
            }
            (Some(_), Some(_), Some(_)) => {
                bail!("give an engine.toml or --state-dir, not both")
            }
            _ => bail!(
                "name the module: `nexum store ENGINE MODULE` or `nexum store --state-dir DIR MODULE`"
            ),
        }
    }

    /// From `nexum dead-letters`' arguments: an engine.toml or `--state-dir DIR`.
    pub fn either(engine: Option<PathBuf>, state_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        match (engine, state_dir) {
            (None, Some(dir)) => Ok(Self::StateDir(dir)),
            (Some(engine), None) => Ok(Self::Engine(engine)),
            _ => bail!("give an engine.toml or --state-dir DIR (one of them)"),
        }
    }
}

/// The state files of a stopped single-module run. A folder without them is refused
/// before opening: opening would create a new, empty store in it.
fn open_dir(dir: &Path) -> anyhow::Result<Ledger> {
    // The store's format marker, written when it is created.
    if !dir.join("version").is_file() {
        bail!("{}: no nexum state there", dir.display());
    }
    Ledger::open(dir).map_err(|e| match e {
        StoreError::Locked => anyhow::anyhow!(
            "the state in {} is in use: stop the nexum run or nexum dev that holds it, then read it",
            dir.display()
        ),
        other => anyhow::anyhow!("cannot open the state in {}: {other}", dir.display()),
    })
}

pub async fn store(
    target: &StoreTarget,
    module: &str,
    action: Option<StoreAction>,
) -> anyhow::Result<()> {
    let name = ModuleName::new(module).map_err(anyhow::Error::msg)?;
    let action = action.unwrap_or(StoreAction::List { prefix: None });
    let state = match target {
        StoreTarget::StateDir(dir) => open_dir(dir)?,
        StoreTarget::Engine(engine) => {
            let config = EngineConfig::load(engine)?;
            if let Reach::Running(admin) = Reach::of(&config).await? {
                return store_live(&admin, module, action).await;
            }
            open(engine, &config).await?
        }
    };
    match action {
        StoreAction::List { prefix } => {
            let entries = state.list(&name, prefix.as_deref().unwrap_or(""))?;
            for (key, value) in &entries {
                println!("{key}  ({} bytes)", value.len());
            }
            println!("{} key(s)", entries.len());
        }
        StoreAction::Get { key } => match state.read(&name, &key)? {
            Some(value) => match String::from_utf8(value) {
                Ok(text) => println!("{text}"),
                Err(e) => println!("0x{}", hex::encode(e.as_bytes())),
            },
            None => bail!("module `{module}` has no key {key:?}"),
        },
    }
    Ok(())
}

#[derive(Deserialize)]
struct KeysPage {
    keys: Vec<KeySize>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct KeySize {
    key: String,
    bytes: usize,
}

#[derive(Deserialize)]
struct Value {
    text: Option<String>,
    hex: Option<String>,
}

async fn store_live(admin: &AdminClient, module: &str, action: StoreAction) -> anyhow::Result<()> {
    let base = format!("/v1/modules/{module}");
    match action {
        StoreAction::List { prefix } => {
            let prefix = prefix.unwrap_or_default();
            let mut after: Option<String> = None;
            let mut count = 0usize;
            loop {
                let mut query = vec![("prefix", prefix.as_str())];
                if let Some(after) = &after {
                    query.push(("after", after.as_str()));
                }
                let page: KeysPage = admin.get(&format!("{base}/keys"), &query).await?;
                for entry in &page.keys {
                    println!("{}  ({} bytes)", entry.key, entry.bytes);
                }
                count += page.keys.len();
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            println!("{count} key(s)");
        }
        StoreAction::Get { key } => {
            let value: Value = admin
                .get(&format!("{base}/value"), &[("key", &key)])
                .await?;
            match (value.text, value.hex) {
                (Some(text), _) => println!("{text}"),
                (None, Some(hex)) => println!("0x{hex}"),
                (None, None) => bail!("the engine answered without a value"),
            }
        }
    }
    Ok(())
}

pub async fn dead_letters(target: &StoreTarget, module: Option<&str>) -> anyhow::Result<()> {
    let count = match target {
        StoreTarget::StateDir(dir) => dead_letters_stored(&open_dir(dir)?, module)?,
        StoreTarget::Engine(engine) => {
            let config = EngineConfig::load(engine)?;
            match Reach::of(&config).await? {
                Reach::Running(admin) => dead_letters_live(&admin, module).await?,
                _ => dead_letters_stored(&open(engine, &config).await?, module)?,
            }
        }
    };
    println!("{count} dead letter(s)");
    Ok(())
}

/// The letters of an answer of `GET /v1/dead-letters`, and the cursor of the next page: a
/// page, or (from an engine older than this `nexum`, still running after an upgrade) every
/// letter at once.
fn dead_letters_answer(
    answer: serde_json::Value,
) -> serde_json::Result<(Vec<DeadLetter>, Option<String>)> {
    if answer.is_array() {
        return Ok((serde_json::from_value(answer)?, None));
    }
    let page: DeadLetterPage = serde_json::from_value(answer)?;
    Ok((page.letters, page.next))
}

/// Prints a running engine's dead letters page by page; how many there were.
async fn dead_letters_live(admin: &AdminClient, module: Option<&str>) -> anyhow::Result<usize> {
    let mut after: Option<String> = None;
    let mut count = 0;
    loop {
        let mut query: Vec<(&str, &str)> = module.map(|m| ("module", m)).into_iter().collect();
        if let Some(after) = &after {
            query.push(("after", after.as_str()));
        }
        let answer: serde_json::Value = admin.get("/v1/dead-letters", &query).await?;
        let (letters, next) = dead_letters_answer(answer)
            .map_err(|e| anyhow::anyhow!("the engine's dead letters do not read: {e}"))?;
        count += print_letters(&letters);
        match next {
            Some(next) => after = Some(next),
            None => return Ok(count),
        }
    }
}

/// Prints a stopped engine's dead letters a page at a time (a module may keep a thousand,
/// each with its whole event); how many there were.
fn dead_letters_stored(ledger: &Ledger, module: Option<&str>) -> anyhow::Result<usize> {
    let mut after: Option<String> = None;
    let mut count = 0;
    loop {
        let page = ledger.dead_letter_page(module, after.as_deref())?;
        count += print_letters(&page.letters);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(count),
        }
    }
}

/// Prints `letters`, one line each; how many.
fn print_letters<'a>(letters: impl IntoIterator<Item = &'a DeadLetter>) -> usize {
    let mut count = 0;
    for letter in letters {
        count += 1;
        let at = chrono::DateTime::from_timestamp_millis(letter.at_ms as i64)
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| letter.at_ms.to_string());
        println!(
            "{at}  {}  subscription {}  {}  after {} attempt(s): {}",
            letter.module,
            letter
                .subscription
                .map_or("-".to_string(), |s| s.to_string()),
            describe(&letter.event),
            letter.attempts,
            letter.reason
        );
    }
    count
}

fn describe(event: &Event) -> String {
    match event {
        Event::Block(b) => format!("block {} on chain {}", b.number, b.chain_id),
        Event::ChainLogs(l) => {
            let block = l
                .logs
                .first()
                .and_then(|log| log.block_number)
                .unwrap_or_default();
            format!(
                "{} log(s) of block {block} on chain {}",
                l.logs.len(),
                l.chain_id
            )
        }
        Event::Tick(t) => format!("tick {:?} at {}", t.schedule, t.fired_at),
    }
}

#[cfg(test)]
mod tests {
    use super::dead_letters_answer;
    use serde_json::json;

    #[test]
    fn a_page_and_an_older_engines_array_both_read() {
        let (letters, next) =
            dead_letters_answer(json!({"letters": [], "next": "deadletter/m/1"})).unwrap();
        assert!(letters.is_empty());
        assert_eq!(next.as_deref(), Some("deadletter/m/1"));
        let (letters, next) = dead_letters_answer(json!([])).unwrap();
        assert!(letters.is_empty() && next.is_none());
        // What does not read says why.
        let bad = dead_letters_answer(json!([{"module": "m"}])).unwrap_err();
        assert!(bad.to_string().contains("missing field"), "{bad}");
    }
}
