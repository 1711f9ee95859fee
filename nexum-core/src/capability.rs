//! The host capabilities a module can declare, and the WIT interfaces behind them.

use std::fmt;
use std::str::FromStr;

/// A host capability. A module may only import the interfaces of the capabilities it
/// declared in `[capabilities] required`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// Read-only JSON-RPC against declared chains (`nexum:host/chain`).
    Chain,
    /// The CoW Protocol orderbook (`nexum:cow/cow-api`).
    CowApi,
    /// The module's private key-value store (`nexum:host/local-store`).
    LocalStore,
    /// Structured log lines (`nexum:host/logging`).
    Logging,
}

impl Capability {
    /// Every capability, in declaration order.
    pub const ALL: [Capability; 4] = [
        Capability::Chain,
        Capability::CowApi,
        Capability::LocalStore,
        Capability::Logging,
    ];

    /// The name used in `module.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Chain => "chain",
            Capability::CowApi => "cow-api",
            Capability::LocalStore => "local-store",
            Capability::Logging => "logging",
        }
    }

    /// The WIT interface (without version) a component imports to use this capability.
    pub fn interface(self) -> &'static str {
        match self {
            Capability::Chain => "nexum:host/chain",
            Capability::CowApi => "nexum:cow/cow-api",
            Capability::LocalStore => "nexum:host/local-store",
            Capability::Logging => "nexum:host/logging",
        }
    }

    /// The capability behind a component import name such as `nexum:host/chain@0.2.1`.
    /// `None` for imports that are not capabilities (WASI, `nexum:host/types`, unknown).
    pub fn from_import(import: &str) -> Option<Capability> {
        let unversioned = import.split('@').next().unwrap_or(import);
        Capability::ALL
            .into_iter()
            .find(|c| c.interface() == unversioned)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Capability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Capability::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let known: Vec<_> = Capability::ALL.iter().map(|c| c.name()).collect();
                format!("unknown capability `{s}` (known: {})", known.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_versioned_imports_to_capabilities() {
        assert_eq!(
            Capability::from_import("nexum:host/chain@0.2.1"),
            Some(Capability::Chain)
        );
        assert_eq!(
            Capability::from_import("nexum:cow/cow-api@0.2.1"),
            Some(Capability::CowApi)
        );
        assert_eq!(Capability::from_import("nexum:host/types@0.2.1"), None);
        assert_eq!(Capability::from_import("wasi:cli/stdout@0.2.6"), None);
    }

    #[test]
    fn parses_names_and_rejects_unknown() {
        assert_eq!("local-store".parse(), Ok(Capability::LocalStore));
        let err = "filesystem".parse::<Capability>().unwrap_err();
        assert!(err.contains("unknown capability `filesystem`"), "{err}");
    }
}
