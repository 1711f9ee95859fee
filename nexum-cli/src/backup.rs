//! `nexum backup` and `nexum restore`: the whole state as one checked file, taken while the
//! engine runs (through its admin API) or from the state files when it is stopped, and put
//! back only into an empty state directory.

use crate::admin_client::Reach;
use anyhow::{Context, bail};
use nexum_host::core::EngineConfig;
use nexum_host::{BackupError, Ledger};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub async fn backup(engine: &Path, dest: &Path) -> anyhow::Result<()> {
    let config = EngineConfig::load(engine)?;
    if config.store.is_some() {
        bail!("{}: {}", engine.display(), BackupError::Shared);
    }
    // Written beside the destination first; only a checked backup takes its name.
    let mut partial = dest.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    if dest.exists() {
        bail!("{} exists; a backup never replaces a file", dest.display());
    }
    // Only the owner may read it: it holds every module's state.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let taken = take(engine, &config, file).await;
    let checked = taken.and_then(|()| {
        let file = std::fs::File::open(&partial)?;
        Ledger::verify_backup(file).with_context(|| {
            format!(
                "the backup arrived incomplete or damaged ({})",
                partial.display()
            )
        })
    });
    let summary = match checked {
        Ok(summary) => summary,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    // A link, not a rename: it fails rather than replace a file that appeared meanwhile.
    let named = std::fs::hard_link(&partial, dest)
        .with_context(|| format!("cannot name the backup {}", dest.display()));
    let _ = std::fs::remove_file(&partial);
    named?;
    let dir = dest
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)?.sync_all()?;
    println!("backup written to {}: {summary}", dest.display());
    Ok(())
}

/// Writes the backup into `file` and makes it durable.
async fn take(engine: &Path, config: &EngineConfig, file: std::fs::File) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(file);
    match Reach::of(config).await? {
        Reach::Running(admin) => {
            admin.download("/v1/backup", &mut out).await?;
        }
        _ => {
            let state = crate::store::open(engine, config).await?;
            out = tokio::task::spawn_blocking(move || {
                state.backup(&mut out)?;
                Ok::<_, BackupError>(out)
            })
            .await??;
        }
    }
    out.flush()?;
    out.get_ref().sync_all()?;
    Ok(())
}

pub async fn restore(engine: &Path, backup: &Path) -> anyhow::Result<()> {
    let config = EngineConfig::load(engine)?;
    if config.store.is_some() {
        bail!("{}: {}", engine.display(), BackupError::Shared);
    }
    let (dir, file) = (config.state_dir.clone(), backup.to_path_buf());
    let summary = tokio::task::spawn_blocking(move || Ledger::restore(&dir, &file))
        .await?
        .map_err(|e| match e {
            BackupError::Invalid(_) | BackupError::Io(_) => {
                anyhow::anyhow!("{}: {e}", backup.display())
            }
            other => anyhow::anyhow!("{other}"),
        })?;
    println!(
        "restored into {}: {summary}; `nexum run {}` resumes every module from the backup's cursors",
        config.state_dir.display(),
        engine.display()
    );
    Ok(())
}
