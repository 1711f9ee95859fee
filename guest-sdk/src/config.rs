//! Typed access to the manifest's `[config]`.

use crate::Fault;
use std::fmt::Display;
use std::str::FromStr;

/// The module's `[config]`: strings verbatim, other TOML values as their TOML text,
/// arrays and tables as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    entries: Vec<(String, String)>,
}

impl Config {
    /// Wraps the pairs the host passed to `init`.
    pub fn new(entries: Vec<(String, String)>) -> Self {
        Self { entries }
    }

    /// The raw text of `key`, if present.
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `key` parsed as `T`; missing or unparsable is an `invalid-input` fault that names
    /// the key and the problem.
    pub fn get<T>(&self, key: &str) -> Result<T, Fault>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.get_opt(key)?
            .ok_or_else(|| Fault::InvalidInput(format!("config `{key}` is missing from [config]")))
    }

    /// `key` parsed as `T`, or `None` when absent.
    pub fn get_opt<T>(&self, key: &str) -> Result<Option<T>, Fault>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.raw(key)
            .map(|text| {
                text.parse::<T>().map_err(|e| {
                    Fault::InvalidInput(format!(
                        "config `{key}` = {text:?} is not a valid {}: {e}",
                        short_type_name::<T>()
                    ))
                })
            })
            .transpose()
    }

    /// `key` (an array or table in TOML, passed as JSON) deserialised as `T`.
    pub fn get_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<T, Fault> {
        let text = self.raw(key).ok_or_else(|| {
            Fault::InvalidInput(format!("config `{key}` is missing from [config]"))
        })?;
        serde_json::from_str(text).map_err(|e| {
            Fault::InvalidInput(format!(
                "config `{key}` is not a valid {}: {e}",
                short_type_name::<T>()
            ))
        })
    }

    /// Every `(key, text)` pair.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::new(vec![
            ("count".into(), "5".into()),
            ("name".into(), "x".into()),
            ("list".into(), "[1,2]".into()),
        ])
    }

    #[test]
    fn typed_getters() {
        let c = config();
        assert_eq!(c.get::<u64>("count").unwrap(), 5);
        assert_eq!(c.get::<String>("name").unwrap(), "x");
        assert_eq!(c.get_opt::<u64>("absent").unwrap(), None);
        assert_eq!(c.get_json::<Vec<u8>>("list").unwrap(), vec![1, 2]);
    }

    #[test]
    fn errors_name_the_key() {
        let c = config();
        let Fault::InvalidInput(missing) = c.get::<u64>("absent").unwrap_err() else {
            panic!()
        };
        assert_eq!(missing, "config `absent` is missing from [config]");
        let Fault::InvalidInput(bad) = c.get::<u64>("name").unwrap_err() else {
            panic!()
        };
        assert!(
            bad.starts_with("config `name` = \"x\" is not a valid u64"),
            "{bad}"
        );
    }
}
