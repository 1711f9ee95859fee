//! The one error type for bad configuration: which file, which field, and why.

use std::path::{Path, PathBuf};

/// A problem in a configuration file (`module.toml` or `engine.toml`).
///
/// It always names the file, the field (a dotted path such as `subscription[1].schedule`,
/// or empty for file-level problems like a syntax error) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ConfigError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// The dotted path of the offending field; empty when the whole file is at fault.
    pub field: String,
    /// What is wrong, written for the person editing the file.
    pub reason: String,
}

impl ConfigError {
    /// A problem with one field of `file`.
    pub fn new(
        file: impl AsRef<Path>,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            file: file.as_ref().to_path_buf(),
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// `file: reason`, or `file: `field`: reason` when one field is at fault.
    fn describe(&self) -> String {
        if self.field.is_empty() {
            format!("{}: {}", self.file.display(), self.reason)
        } else {
            format!("{}: `{}`: {}", self.file.display(), self.field, self.reason)
        }
    }
}
