//! The start-up summary: each module, its subscriptions and limits.

use nexum_host::core::ModuleInfo;

/// Logs one block per module.
pub fn print(modules: &[ModuleInfo]) {
    for m in modules {
        let capabilities: Vec<&str> = m.capabilities.iter().map(|c| c.name()).collect();
        tracing::info!(
            module = m.name,
            version = m.version,
            status = %m.status,
            component = %m.component,
            capabilities = capabilities.join(","),
            fuel_per_event = m.limits.fuel_per_event,
            memory_bytes = m.limits.memory_bytes,
            event_timeout_ms = m.limits.event_timeout_ms,
            "module loaded"
        );
        if m.subscriptions.is_empty() {
            tracing::warn!(
                module = m.name,
                "module has no subscriptions and will receive no events"
            );
        }
        for (i, subscription) in m.subscriptions.iter().enumerate() {
            tracing::info!(
                module = m.name,
                subscription = i,
                "subscribed to {subscription}"
            );
        }
    }
}
