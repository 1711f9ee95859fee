//! WIT glue for `nexum:host/local-store`: argument passing and the mapping of store
//! refusals to faults, written once here.

use super::backend::{ModuleStore, StoreRefusal};
use crate::bindings::local_store::{self, Entry, EntryPage, Host, WriteOp};
use crate::bindings::types::Fault;
use crate::ledger::{ran_out_of_time, read_deadline};
use crate::state::ModuleState;
use nexum_core::host_rules::store::{self, WriteSet};
use std::time::{Duration, Instant};
use wasmtime::component::{HasData, Linker};

/// Marker tying the `local-store` bindings to [`LocalStoreCtx`].
pub(crate) struct LocalStore;

impl HasData for LocalStore {
    type Data<'a> = LocalStoreCtx<'a>;
}

/// What one call's `local-store` functions work on: the module's store, the call's writes
/// and its deadline.
pub(crate) struct LocalStoreCtx<'a> {
    pub store: &'a ModuleStore,
    pub pending: &'a mut WriteSet,
    /// No read made for the call waits for the database past it.
    pub deadline: Instant,
    /// The call's whole time, from its start to `deadline`.
    pub budget: Duration,
}

impl From<StoreRefusal> for Fault {
    fn from(refusal: StoreRefusal) -> Self {
        match refusal {
            StoreRefusal::Backend(e) => {
                tracing::error!(error = %e, "local-store backend failure");
                Fault::Internal(e.to_string())
            }
            StoreRefusal::Rule(rule) if rule.is_quota() => Fault::Denied(rule.to_string()),
            StoreRefusal::Rule(rule) => Fault::InvalidInput(rule.to_string()),
        }
    }
}

impl LocalStoreCtx<'_> {
    /// A refusal as the module sees it. A storage failure is also noted, so the call
    /// counts as the store's failure (run again), not the module's.
    fn refused(&self, refusal: StoreRefusal) -> Fault {
        if let StoreRefusal::Backend(error) = &refusal {
            self.store.note_backend_failure(error);
        }
        refusal.into()
    }

    /// Runs `op` on the store and the call's writes, its reads bounded by the call's
    /// deadline and a least wait of a second (or half the call's time, if less), so that
    /// only a failing store is blamed for a read given up on ([`read_deadline`]).
    fn with_store<T>(
        &mut self,
        op: impl FnOnce(&ModuleStore, &mut WriteSet) -> Result<T, StoreRefusal>,
    ) -> Result<T, Fault> {
        let (store, pending) = (self.store, &mut *self.pending);
        let least = (self.budget / 2).min(Duration::from_secs(1));
        let (done, past_deadline) =
            read_deadline::within(self.deadline, least, || op(store, pending));
        if past_deadline {
            self.store.note_past_deadline();
        }
        done.map_err(|refusal| match &refusal {
            // The call's own time ran out, not the store: no failure of the store's.
            StoreRefusal::Backend(error) if ran_out_of_time(error) => {
                Fault::Internal(error.to_string())
            }
            _ => self.refused(refusal),
        })
    }
}

impl Host for LocalStoreCtx<'_> {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, Fault> {
        self.with_store(|store, pending| store.get(pending, &key))
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), Fault> {
        self.with_store(|store, pending| store.set(pending, key, value))
    }

    fn delete(&mut self, key: String) -> Result<(), Fault> {
        self.with_store(|store, pending| store.delete(pending, key))
    }

    fn list_keys(&mut self, prefix: String) -> Result<Vec<String>, Fault> {
        self.with_store(|store, pending| store.list_keys(pending, &prefix))
    }

    fn list_entries(
        &mut self,
        prefix: String,
        after: Option<String>,
        limit: u32,
    ) -> Result<EntryPage, Fault> {
        let page = self.with_store(|store, pending| {
            store.list_entries(pending, &prefix, after.as_deref(), limit)
        })?;
        Ok(EntryPage {
            entries: page
                .entries
                .into_iter()
                .map(|(key, value)| Entry { key, value })
                .collect(),
            next: page.next,
        })
    }

    fn count(&mut self, prefix: String) -> Result<u64, Fault> {
        self.with_store(|store, pending| store.count(pending, &prefix))
    }

    fn contains(&mut self, key: String) -> Result<bool, Fault> {
        Ok(self
            .with_store(|store, pending| store.value_len(pending, &key))?
            .is_some())
    }

    fn value_len(&mut self, key: String) -> Result<Option<u64>, Fault> {
        self.with_store(|store, pending| store.value_len(pending, &key))
    }

    fn apply(&mut self, writes: Vec<WriteOp>) -> Result<(), Fault> {
        let ops = writes
            .into_iter()
            .map(|write| match write {
                WriteOp::Set(Entry { key, value }) => store::WriteOp::Set(key, value),
                WriteOp::Delete(key) => store::WriteOp::Delete(key),
            })
            .collect();
        self.with_store(|store, pending| store.apply(pending, ops))
    }
}

/// Adds `nexum:host/local-store` to `linker`.
pub(crate) fn link(linker: &mut Linker<ModuleState>) -> wasmtime::Result<()> {
    local_store::add_to_linker::<ModuleState, LocalStore>(linker, ModuleState::local_store)
}
