//! What one module instance may allocate: all its linear memories together, all its table
//! elements together, and how many core instances, memories and tables it may create.
//!
//! wasmtime's own `StoreLimits` bounds each linear memory on its own, and lets a store hold
//! 10,000 instances, memories and tables: a component made of many core instances, each
//! with its own memory, would hold `memory_bytes` times their number. This limiter charges
//! every memory and table of the store against one budget instead.

use wasmtime::ResourceLimiter;

/// Core instances one module may create. A Rust guest needs about five, a Python or
/// JavaScript guest about twenty; more is a component built to multiply its allowance.
pub(crate) const MAX_INSTANCES: usize = 100;
/// Linear memories one module may create.
pub(crate) const MAX_MEMORIES: usize = 100;
/// Tables one module may create.
pub(crate) const MAX_TABLES: usize = 100;
/// Table elements (function references) all of a module's tables may hold together.
pub(crate) const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Why a memory or table could not grow: the module's budget is spent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OverBudget {
    /// All memories together would exceed `memory_bytes`.
    #[error("memory limit of {limit} bytes exceeded")]
    Memory {
        /// The module's `memory_bytes`.
        limit: usize,
    },
    /// All tables together would exceed [`MAX_TABLE_ELEMENTS`].
    #[error("table limit of {limit} elements exceeded")]
    Table {
        /// [`MAX_TABLE_ELEMENTS`].
        limit: usize,
    },
}

/// The budget of one store (one module instance).
///
/// Nothing is ever given back: a grow that was allowed and then failed traps the module
/// (wasmtime may report a failed grow it never asked about, so a refund could be forged).
#[derive(Debug)]
pub(crate) struct ModuleLimiter {
    memory_limit: usize,
    memory_used: usize,
    table_used: usize,
}

impl ModuleLimiter {
    pub fn new(memory_limit: usize) -> Self {
        Self {
            memory_limit,
            memory_used: 0,
            table_used: 0,
        }
    }
}

impl ResourceLimiter for ModuleLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current);
        let total = self.memory_used.saturating_add(growth);
        if total > self.memory_limit {
            // A trap rather than a failed `memory.grow`: the module learns nothing useful
            // from -1, and the operator gets a reason.
            return Err(OverBudget::Memory {
                limit: self.memory_limit,
            }
            .into());
        }
        self.memory_used = total;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        Err(error.context("growing a memory failed"))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current);
        let total = self.table_used.saturating_add(growth);
        if total > MAX_TABLE_ELEMENTS {
            return Err(OverBudget::Table {
                limit: MAX_TABLE_ELEMENTS,
            }
            .into());
        }
        self.table_used = total;
        Ok(true)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        Err(error.context("growing a table failed"))
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn every_memory_draws_on_one_budget() {
        let mut limiter = ModuleLimiter::new(16 * MIB);
        // Ten memories of 1 MiB fit; the seventeenth MiB does not, whichever memory asks.
        for _ in 0..10 {
            assert!(limiter.memory_growing(0, MIB, None).unwrap());
        }
        assert!(limiter.memory_growing(MIB, 7 * MIB, None).unwrap());
        let refused = limiter.memory_growing(0, MIB, None).unwrap_err();
        assert_eq!(
            refused.downcast_ref::<OverBudget>(),
            Some(&OverBudget::Memory { limit: 16 * MIB })
        );
    }

    #[test]
    fn a_failed_grow_traps_and_gives_nothing_back() {
        let mut limiter = ModuleLimiter::new(2 * MIB);
        assert!(limiter.memory_growing(0, 2 * MIB, None).unwrap());
        assert!(
            limiter
                .memory_grow_failed(wasmtime::Error::msg("beyond the memory's maximum"))
                .is_err()
        );
        assert!(limiter.memory_growing(0, MIB, None).is_err());
        // A failure reported without a grow before it (a forged refund) changes nothing.
        assert!(limiter.table_growing(0, MAX_TABLE_ELEMENTS, None).unwrap());
        assert!(
            limiter
                .table_grow_failed(wasmtime::Error::msg("overflow"))
                .is_err()
        );
        assert!(limiter.table_growing(0, 1, None).is_err());
    }

    #[test]
    fn tables_share_one_element_budget() {
        let mut limiter = ModuleLimiter::new(MIB);
        assert!(limiter.table_growing(0, MAX_TABLE_ELEMENTS, None).unwrap());
        assert!(limiter.table_growing(0, 1, None).is_err());
    }
}
