//! A module's stdout and stderr, split into lines and logged under its name.

use super::backend::ModuleLogger;
use nexum_core::LogLevel;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Longest partial line buffered before it is logged anyway.
const MAX_PENDING_BYTES: usize = 8 * 1024;

/// stdout (logged at info) or stderr (logged at warn) of one module.
#[derive(Clone)]
pub(crate) struct ModuleOutput {
    logger: ModuleLogger,
    level: LogLevel,
    /// Shared by every stream the guest opens, so a line split across writes stays whole.
    pending: Arc<Mutex<Vec<u8>>>,
}

impl ModuleOutput {
    pub fn stdout(logger: ModuleLogger) -> Self {
        Self::new(logger, LogLevel::Info)
    }

    pub fn stderr(logger: ModuleLogger) -> Self {
        Self::new(logger, LogLevel::Warn)
    }

    fn new(logger: ModuleLogger, level: LogLevel) -> Self {
        Self {
            logger,
            level,
            pending: Arc::default(),
        }
    }

    fn write(&self, bytes: &[u8]) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.extend_from_slice(bytes);
        while let Some(newline) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=newline).collect();
            self.emit(&line[..line.len() - 1]);
        }
        if pending.len() > MAX_PENDING_BYTES {
            let line = std::mem::take(&mut *pending);
            self.emit(&line);
        }
    }

    fn emit(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches('\r');
        self.logger.emit(self.level, line);
    }
}

impl IsTerminal for ModuleOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for ModuleOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for ModuleOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
