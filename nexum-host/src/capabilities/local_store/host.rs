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

impl Host for LocalStoreCtx<'_> {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, Fault> {
        Ok(self.store.get(self.pending, &key)?)
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), Fault> {
        Ok(self.store.set(self.pending, key, value)?)
    }

    fn delete(&mut self, key: String) -> Result<(), Fault> {
        Ok(self.store.delete(self.pending, key)?)
    }

    fn list_keys(&mut self, prefix: String) -> Result<Vec<String>, Fault> {
        Ok(self.store.list_keys(self.pending, &prefix)?)
    }

    fn list_entries(
        &mut self,
        prefix: String,
        after: Option<String>,
        limit: u32,
    ) -> Result<EntryPage, Fault> {
        let page = self
            .store
            .list_entries(self.pending, &prefix, after.as_deref(), limit)?;
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
        Ok(self.store.count(self.pending, &prefix)?)
    }

    fn contains(&mut self, key: String) -> Result<bool, Fault> {
        Ok(self.store.value_len(self.pending, &key)?.is_some())
    }

    fn value_len(&mut self, key: String) -> Result<Option<u64>, Fault> {
        Ok(self.store.value_len(self.pending, &key)?)
    }

    fn apply(&mut self, writes: Vec<WriteOp>) -> Result<(), Fault> {
        let ops = writes
            .into_iter()
            .map(|write| match write {
                WriteOp::Set(Entry { key, value }) => store::WriteOp::Set(key, value),
                WriteOp::Delete(key) => store::WriteOp::Delete(key),
            })
            .collect();
        Ok(self.store.apply(self.pending, ops)?)
    }
}

/// Adds `nexum:host/local-store` to `linker`.
pub(crate) fn link(linker: &mut Linker<ModuleState>) -> wasmtime::Result<()> {
    local_store::add_to_linker::<ModuleState, LocalStore>(linker, ModuleState::local_store)
}
