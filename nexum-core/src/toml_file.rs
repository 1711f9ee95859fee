//! Reading a TOML configuration file into typed raw structs, with errors that name the field.

use crate::error::ConfigError;
use serde::de::DeserializeOwned;
use std::path::Path;

/// Reads `path` as UTF-8 text.
pub(crate) fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, "", format!("cannot read file: {e}")))
}

/// Parses TOML text into a table; a syntax error names the line and column.
pub(crate) fn parse_table(file: &Path, text: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>().map_err(|e| {
        let at = e
            .span()
            .map(|span| {
                let (line, column) = line_and_column(text, span.start);
                format!(" at line {line}, column {column}")
            })
            .unwrap_or_default();
        ConfigError::new(file, "", format!("invalid TOML{at}: {}", e.message()))
    })
}

/// Deserialises a table into `T`, reporting the dotted path of the field at fault.
pub(crate) fn deserialize<T: DeserializeOwned>(
    file: &Path,
    table: toml::Table,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let field = match e.path().to_string() {
            dot if dot == "." => String::new(),
            path => path,
        };
        let reason = e.inner().message().to_string();
        ConfigError::new(file, field, reason)
    })
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
