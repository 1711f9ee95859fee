//! WIT glue for `nexum:cow/cow-api`: argument passing and the one mapping of failures to
//! `cow-api-error`.

use super::backend::{CowAccess, CowFailure};
use crate::bindings::cow_api::{self, CowApiError, Host, HttpFailure, OrderRejection};
use crate::bindings::types::{ChainId, Fault, RateLimit};
use crate::state::ModuleState;
use wasmtime::component::{HasData, Linker};

/// Marker tying the `cow-api` bindings to [`CowAccess`].
pub(crate) struct CowApi;

impl HasData for CowApi {
    type Data<'a> = &'a CowAccess;
}

impl From<CowFailure> for CowApiError {
    fn from(failure: CowFailure) -> Self {
        match failure {
            CowFailure::Unsupported(m) => CowApiError::Fault(Fault::Unsupported(m)),
            CowFailure::Denied(m) => CowApiError::Fault(Fault::Denied(m)),
            CowFailure::InvalidInput(m) => CowApiError::Fault(Fault::InvalidInput(m)),
            CowFailure::RateLimited(after) => CowApiError::Fault(Fault::RateLimited(RateLimit {
                retry_after_ms: after.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            })),
            CowFailure::Timeout => CowApiError::Fault(Fault::Timeout),
            CowFailure::Unavailable(m) => CowApiError::Fault(Fault::Unavailable(m)),
            CowFailure::Rejected {
                status,
                error_type,
                description,
                data,
            } => CowApiError::Rejected(OrderRejection {
                status,
                error_type,
                description,
                data,
            }),
            CowFailure::Http { status, body } => CowApiError::Http(HttpFailure { status, body }),
        }
    }
}

impl Host for &CowAccess {
    async fn request(
        &mut self,
        chain_id: ChainId,
        method: String,
        path: String,
        body: Option<String>,
    ) -> Result<String, CowApiError> {
        Ok(CowAccess::request(self, chain_id, &method, &path, body).await?)
    }

    async fn submit_order(
        &mut self,
        chain_id: ChainId,
        order: Vec<u8>,
    ) -> Result<String, CowApiError> {
        Ok(CowAccess::submit_order(self, chain_id, &order).await?)
    }
}

/// Adds `nexum:cow/cow-api` to `linker`.
pub(crate) fn link(linker: &mut Linker<ModuleState>) -> wasmtime::Result<()> {
    cow_api::add_to_linker::<ModuleState, CowApi>(linker, |state| &state.cow)
}
