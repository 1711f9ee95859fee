//! WIT glue for `nexum:host/local-store`: argument passing and the mapping of store
//! refusals to faults, written once here.

use super::backend::{ModuleStore, StoreRefusal};
use crate::bindings::local_store::{self, Entry, EntryPage, Host, WriteOp};
use crate::bindings::types::Fault;
use crate::state::ModuleState;
use nexum_core::host_rules::store::{self, WriteSet};
use wasmtime::component::{HasData, Linker};

/// Marker tying the `local-store` bindings to [`LocalStoreCtx`].
pub(crate) struct LocalStore;

impl HasData for LocalStore {
    type Data<'a> = LocalStoreCtx<'a>;
}

/// What one call's `local-store` functions work on: the module's store and the call's writes.
pub(crate) struct LocalStoreCtx<'a> {
    pub store: &'a ModuleStore,
    pub pending: &'a mut WriteSet,
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
}

impl Host for LocalStoreCtx<'_> {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, Fault> {
        self.store
            .get(self.pending, &key)
            .map_err(|r| self.refused(r))
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), Fault> {
        self.store
            .set(self.pending, key, value)
            .map_err(|r| self.refused(r))
    }

    fn delete(&mut self, key: String) -> Result<(), Fault> {
        self.store
            .delete(self.pending, key)
            .map_err(|r| self.refused(r))
    }

    fn list_keys(&mut self, prefix: String) -> Result<Vec<String>, Fault> {
        self.store
            .list_keys(self.pending, &prefix)
            .map_err(|r| self.refused(r))
    }

    fn list_entries(
        &mut self,
        prefix: String,
        after: Option<String>,
        limit: u32,
    ) -> Result<EntryPage, Fault> {
        let page = self
            .store
            .list_entries(self.pending, &prefix, after.as_deref(), limit)
            .map_err(|r| self.refused(r))?;
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
        self.store
            .count(self.pending, &prefix)
            .map_err(|r| self.refused(r))
    }

    fn contains(&mut self, key: String) -> Result<bool, Fault> {
        Ok(self
            .store
            .value_len(self.pending, &key)
            .map_err(|r| self.refused(r))?
            .is_some())
    }

    fn value_len(&mut self, key: String) -> Result<Option<u64>, Fault> {
        self.store
            .value_len(self.pending, &key)
            .map_err(|r| self.refused(r))
    }

    fn apply(&mut self, writes: Vec<WriteOp>) -> Result<(), Fault> {
        let ops = writes
            .into_iter()
            .map(|write| match write {
                WriteOp::Set(Entry { key, value }) => store::WriteOp::Set(key, value),
                WriteOp::Delete(key) => store::WriteOp::Delete(key),
            })
            .collect();
        self.store
            .apply(self.pending, ops)
            .map_err(|r| self.refused(r))
    }
}

/// Adds `nexum:host/local-store` to `linker`.
pub(crate) fn link(linker: &mut Linker<ModuleState>) -> wasmtime::Result<()> {
    local_store::add_to_linker::<ModuleState, LocalStore>(linker, ModuleState::local_store)
}
