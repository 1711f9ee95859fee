//! A local Anvil chain for `nexum dev` when no `--chain` is given.

use super::child::die_with_parent;
use anyhow::{Context, bail};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long Anvil may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running Anvil; it stops when this is dropped.
pub struct LocalChain {
    _anvil: Child,
    /// Its websocket address.
    pub url: String,
}

impl LocalChain {
    /// Starts `anvil` from PATH on a free loopback port, mining a block a second so
    /// block subscribers see something without transactions.
    pub async fn start() -> anyhow::Result<Self> {
        let mut command = Command::new("anvil");
        command
            .args(["--host", "127.0.0.1", "--port", "0", "--block-time", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut anvil = die_with_parent(&mut command).spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!(
                    "no `anvil` on PATH to run a local chain: install Foundry's anvil, or give a chain with --chain ID=URL"
                )
            } else {
                anyhow::Error::new(e).context("starting anvil")
            }
        })?;
        let stdout = anvil.stdout.take().context("anvil's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let address = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(address) = line.trim().strip_prefix("Listening on ") {
                    return Ok(address.to_string());
                }
            }
            bail!("anvil exited before it listened")
        })
        .await
        .with_context(|| format!("anvil did not listen within {} s", START_TIMEOUT.as_secs()))??;
        // Anvil writes a line per block and transaction; unread, its pipe would fill and
        // stall it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            _anvil: anvil,
            url: format!("ws://{address}"),
        })
    }
}
