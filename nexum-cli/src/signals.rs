//! The signals `nexum run` listens to: SIGINT and SIGTERM stop it, SIGHUP reloads it.
//!
//! They are listened for before the runtime starts, so one that arrives while modules boot
//! is not lost (nor does it kill the process half-started): it is acted on as soon as boot
//! is done.

use anyhow::Context;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// What a signal asks for.
pub enum Asked {
    /// Stop (SIGINT or SIGTERM, named).
    Stop(&'static str),
    /// Re-read the configuration (SIGHUP).
    Reload,
}

/// SIGINT, SIGTERM and SIGHUP, listened for from now on.
pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl Signals {
    pub fn install() -> anyhow::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            hangup: signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
        })
    }

    /// Waits for the next signal.
    pub async fn next(&mut self) -> Asked {
        tokio::select! {
            _ = self.interrupt.recv() => Asked::Stop("SIGINT"),
            _ = self.terminate.recv() => Asked::Stop("SIGTERM"),
            _ = self.hangup.recv() => Asked::Reload,
        }
    }

    /// Waits for the next stop signal (a SIGHUP meanwhile is ignored, with a line).
    pub async fn next_stop(&mut self) -> &'static str {
        loop {
            match self.next().await {
                Asked::Stop(name) => return name,
                Asked::Reload => tracing::warn!("SIGHUP while stopping: not reloading"),
            }
        }
    }
}
