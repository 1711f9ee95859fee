//! Log output: `RUST_LOG` if set, else the engine's `log_level`; pretty or JSON lines.

mod json_lines;

use nexum_host::core::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// The filter for the engine's `log_level`; `nexum check` refuses what this refuses.
pub fn level_filter(level: &str) -> anyhow::Result<EnvFilter> {
    // The storage engine and the websocket client are chatty at info; their news is
    // rarely the operator's (nexum logs connection changes itself).
    EnvFilter::try_new(format!(
        "{level},fjall=warn,lsm_tree=warn,alloy_pubsub=warn,tungstenite=info,tokio_tungstenite=info"
    ))
    .map_err(|e| anyhow::anyhow!("engine.log_level {level:?} is not a valid filter: {e}"))
}

/// Installs the global subscriber. Log lines go to stderr.
pub fn init(level: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(from_env) if !from_env.is_empty() => EnvFilter::try_new(&from_env)
            .map_err(|e| anyhow::anyhow!("RUST_LOG={from_env:?} is not a valid filter: {e}"))?,
        _ => level_filter(level)?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Pretty => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .fmt_fields(json_lines::JsonPairs)
            .event_format(json_lines::JsonLines)
            .try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))
}
