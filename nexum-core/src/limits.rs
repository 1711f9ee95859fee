//! Resource limits (engine-wide defaults in `engine.toml`, optionally lowered per module)
//! and the supervision policy (retries, restarts, quarantine).

use serde::{Deserialize, Serialize};

/// Declares every limit once: its doc, its `[limits]` name and its default. The macro
/// writes [`Limits`], the manifest's [`LimitOverrides`], [`Limits::named`] and
/// [`Limits::lowered_by`] from that one list, so a new limit cannot be half-added.
macro_rules! limits {
    ($( $(#[doc = $doc:literal])+ $name:ident = $default:expr; )+) => {
        /// The limits one module runs under. Every field is a ceiling.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct Limits {
            $( $(#[doc = $doc])+ pub $name: u64, )+
        }

        impl Default for Limits {
            fn default() -> Self {
                Self { $( $name: $default, )+ }
            }
        }

        /// A manifest's `[limits]`: each value, when present, must not exceed the engine's.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct LimitOverrides {
            $(
                #[doc = concat!("See [`Limits::", stringify!($name), "`].")]
                pub $name: Option<u64>,
            )+
        }

        impl LimitOverrides {
            /// Every limit the manifest sets, with its `[limits]` name.
            pub fn named(&self) -> Vec<(&'static str, u64)> {
                let mut named = Vec::new();
                $( if let Some(value) = self.$name { named.push((stringify!($name), value)); } )+
                named
            }
        }

        impl Limits {
            /// Every limit with its `[limits]` name, for validation and display.
            pub fn named(&self) -> Vec<(&'static str, u64)> {
                vec![ $( (stringify!($name), self.$name), )+ ]
            }

            /// These limits with every value `overrides` names in its place, as asked (the
            /// SDK's test host runs a module under its manifest's own limits).
            pub fn overridden_by(&self, overrides: &LimitOverrides) -> Limits {
                Limits {
                    $( $name: overrides.$name.unwrap_or(self.$name), )+
                }
            }

            /// The limits for a module that asks for `overrides`: each present value
            /// replaces the engine's if it is lower or equal; a higher one is refused.
            pub fn lowered_by(&self, overrides: &LimitOverrides) -> Result<Limits, LimitRaised> {
                Ok(Limits {
                    $( $name: lower(stringify!($name), self.$name, overrides.$name)?, )+
                })
            }
        }
    };
}

limits! {
    /// Wasm fuel (roughly, instructions) one `init`/`on-event` call may burn.
    fuel_per_event = 1_000_000_000;
    /// Linear memory a module instance may hold, in bytes: all its memories together.
    memory_bytes = 64 * 1024 * 1024;
    /// Wall-clock deadline for one call, host calls included, in milliseconds.
    event_timeout_ms = 30_000;
    /// Largest `local-store` key, in bytes.
    store_key_bytes = 1024;
    /// Largest `local-store` value, in bytes.
    store_value_bytes = 1024 * 1024;
    /// All of a module's keys and values together, in bytes. The writes and deletes a call
    /// holds before it commits count too.
    store_total_bytes = 256 * 1024 * 1024;
    /// Most keys one `list-keys` call may return (a bigger match is refused, not truncated).
    list_keys_max = 10_000;
    /// Longest log line kept; longer ones are cut. A module's error text is cut the same.
    log_line_bytes = 8 * 1024;
    /// Log lines per second a module may write (bursts up to one second's worth); the
    /// excess is dropped and counted.
    log_lines_per_second = 200;
    /// Log bytes per second a module may write (bursts up to one second's worth); the
    /// excess is dropped and counted.
    log_bytes_per_second = 32 * 1024;
    /// Largest request a module hands `chain` or `cow-api` (params, path, body, order),
    /// in bytes.
    request_bytes = 1024 * 1024;
    /// Largest answer `chain` or `cow-api` hands back to a module, in bytes; a bigger one
    /// is refused as `unavailable` rather than copied into the module.
    answer_bytes = 8 * 1024 * 1024;
    /// Most entries in one `chain.request-batch`.
    rpc_batch_max = 100;
}

fn lower(field: &'static str, allowed: u64, requested: Option<u64>) -> Result<u64, LimitRaised> {
    match requested {
        None => Ok(allowed),
        Some(requested) if requested <= allowed => Ok(requested),
        Some(requested) => Err(LimitRaised {
            field,
            requested,
            allowed,
        }),
    }
}

/// A module asked for more than the engine allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitRaised {
    /// The limit's name, as written in `[limits]`.
    pub field: &'static str,
    /// What the module asked for.
    pub requested: u64,
    /// The engine's ceiling.
    pub allowed: u64,
}

/// How the engine treats failing modules (`[supervision]` in `engine.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Supervision {
    /// Times an event is retried after the module returns `err`, before it is skipped.
    pub retry_attempts: u32,
    /// Wait before the first retry of an `err`; doubles on each further retry.
    pub retry_backoff_ms: u64,
    /// Wait before the first restart after a trap; doubles (with jitter) up to the maximum.
    pub restart_backoff_ms: u64,
    /// Longest wait between restarts.
    pub restart_backoff_max_ms: u64,
    /// Consecutive traps (or failed restarts) after which a module is quarantined.
    pub quarantine_after: u32,
    /// Events waiting per module before sources must hold back.
    pub queue_capacity: usize,
}

impl Default for Supervision {
    fn default() -> Self {
        Self {
            retry_attempts: 3,
            retry_backoff_ms: 500,
            restart_backoff_ms: 1_000,
            restart_backoff_max_ms: 300_000,
            quarantine_after: 5,
            queue_capacity: 256,
        }
    }
}

/// How chains are followed and their events delivered (`[delivery]` in `engine.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryPolicy {
    /// Recent canonical blocks remembered per chain, to notice and undo reorgs.
    pub reorg_depth: u64,
    /// Largest block range of one `eth_getLogs` when catching up (halved when the node
    /// refuses a range as too large).
    pub get_logs_max_blocks: u64,
    /// Most missed blocks replayed to a `block` subscription on resume; older ones are skipped.
    pub max_block_catchup: u64,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            reorg_depth: 64,
            get_logs_max_blocks: 2_000,
            max_block_catchup: 128,
        }
    }
}

impl DeliveryPolicy {
    /// Checks the values make sense; on error returns the field and the reason.
    pub fn validate(self) -> Result<Self, (String, String)> {
        for (name, value) in [
            ("reorg_depth", self.reorg_depth),
            ("get_logs_max_blocks", self.get_logs_max_blocks),
        ] {
            if value == 0 {
                return Err((name.to_string(), "must be greater than 0".to_string()));
            }
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_values_apply_and_higher_ones_are_refused() {
        let engine = Limits::default();
        let lowered = engine
            .lowered_by(&LimitOverrides {
                fuel_per_event: Some(10),
                ..LimitOverrides::default()
            })
            .unwrap();
        assert_eq!(lowered.fuel_per_event, 10);
        assert_eq!(lowered.memory_bytes, engine.memory_bytes);

        let raised = engine
            .lowered_by(&LimitOverrides {
                memory_bytes: Some(engine.memory_bytes + 1),
                ..LimitOverrides::default()
            })
            .unwrap_err();
        assert_eq!(raised.field, "memory_bytes");
        assert_eq!(raised.allowed, engine.memory_bytes);
    }
}
