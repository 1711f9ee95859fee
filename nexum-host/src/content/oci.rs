//! Components in OCI registries, through `oci-client`: an artifact whose one layer is the
//! component (media type `application/wasm`, as the Wasm OCI artifact layout has it; the
//! older `application/vnd.wasm.content.layer.v1+wasm` and Bytecode Alliance component
//! types are read too).
//!
//! Credentials come from `NEXUM_REGISTRY_USERNAME` and `NEXUM_REGISTRY_PASSWORD` (or
//! `NEXUM_REGISTRY_TOKEN`), which are sent only to the registry `NEXUM_REGISTRY_HOST`
//! names, else from the docker config (`~/.docker/config.json` and its credential helpers,
//! per registry), else none; they are never logged. Registries on loopback are spoken to
//! over plain HTTP, as docker does; every other one over HTTPS.

use super::MAX_COMPONENT_BYTES;
use nexum_core::ComponentDigest;
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The layer media type `nexum push` writes.
const WASM_LAYER: &str = "application/wasm";
/// Layer media types that hold a component.
const WASM_LAYERS: &[&str] = &[
    WASM_LAYER,
    "application/vnd.wasm.content.layer.v1+wasm",
    "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
];
/// The config media type of a Wasm OCI artifact.
const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";

/// The host of `registry` (`host`, `host:port`, `[v6]` or `[v6]:port`).
fn host_of(registry: &str) -> &str {
    match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.split(':').next().unwrap_or(registry),
    }
}

fn client(reference: &Reference) -> Client {
    let registry = reference.resolve_registry().to_string();
    let host = host_of(&registry);
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    Client::new(ClientConfig {
        protocol: if loopback {
            ClientProtocol::HttpsExcept(vec![registry])
        } else {
            ClientProtocol::Https
        },
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(30)),
        ..ClientConfig::default()
    })
}

/// The credentials for `registry`: see the module docs.
fn credentials(registry: &str) -> RegistryAuth {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    // Environment credentials are for one registry, never for whichever one is asked.
    let ours = var("NEXUM_REGISTRY_HOST").is_some_and(|host| host == registry);
    if !ours {
        return docker_credentials(registry);
    }
    if let (Some(user), Some(password)) = (
        var("NEXUM_REGISTRY_USERNAME"),
        var("NEXUM_REGISTRY_PASSWORD"),
    ) {
        return RegistryAuth::Basic(user, password);
    }
    if let Some(token) = var("NEXUM_REGISTRY_TOKEN") {
        return RegistryAuth::Bearer(token);
    }
    docker_credentials(registry)
}

/// What the docker config holds for `registry`, if anything.
fn docker_credentials(registry: &str) -> RegistryAuth {
    match docker_credential::get_credential(registry) {
        Ok(docker_credential::DockerCredential::UsernamePassword(user, password)) => {
            RegistryAuth::Basic(user, password)
        }
        Ok(docker_credential::DockerCredential::IdentityToken(token)) => {
            RegistryAuth::Bearer(token)
        }
        Err(_) => RegistryAuth::Anonymous,
    }
}

fn parse(reference: &str) -> Result<Reference, String> {
    reference
        .parse()
        .map_err(|e| format!("oci://{reference} is not a valid reference: {e}"))
}

/// The component of the artifact `reference`, which must be the blob `pin`: the registry's
/// manifest is read first, and an artifact whose layer is another blob (a moved tag, a
/// tampered push) is refused before it is downloaded.
pub(super) async fn pull(reference: &str, pin: &ComponentDigest) -> Result<Vec<u8>, String> {
    let reference = parse(reference)?;
    let client = client(&reference);
    let auth = credentials(reference.resolve_registry());
    let (manifest, _) = client
        .pull_image_manifest(&reference, &auth)
        .await
        .map_err(|e| format!("registry: {e}"))?;
    let layers: Vec<_> = manifest
        .layers
        .iter()
        .filter(|l| WASM_LAYERS.contains(&l.media_type.as_str()))
        .collect();
    let [layer] = layers.as_slice() else {
        return Err(format!(
            "the artifact has {} wasm layers (media types {:?}); nexum reads artifacts with exactly one",
            layers.len(),
            manifest
                .layers
                .iter()
                .map(|l| l.media_type.as_str())
                .collect::<Vec<_>>()
        ));
    };
    if layer.digest != pin.to_string() {
        return Err(format!(
            "the registry's artifact is {}, not the pinned {pin} (did the tag move?); refused before download",
            layer.digest
        ));
    }
    if layer.size < 0 || layer.size as u64 > MAX_COMPONENT_BYTES {
        return Err(format!(
            "the layer is {} bytes (at most {MAX_COMPONENT_BYTES})",
            layer.size
        ));
    }
    let mut out = CappedBuffer::default();
    client
        .pull_blob(&reference, *layer, &mut out)
        .await
        .map_err(|e| format!("registry: {e}"))?;
    Ok(out.bytes)
}

/// Pushes `component` to `reference` as a Wasm OCI artifact; returns its digest (the pin).
pub async fn push(component: Vec<u8>, reference: &str) -> Result<ComponentDigest, String> {
    let reference =
        parse(reference.strip_prefix("oci://").ok_or_else(|| {
            format!("expected oci://REGISTRY/REPOSITORY:TAG, found {reference:?}")
        })?)?;
    let digest = ComponentDigest::of(&component);
    let config = serde_json::json!({
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [digest.to_string()],
    });
    let client = client(&reference);
    let auth = credentials(reference.resolve_registry());
    client
        .push(
            &reference,
            &[ImageLayer::new(component, WASM_LAYER.to_string(), None)],
            Config::new(
                config.to_string().into_bytes(),
                WASM_CONFIG.to_string(),
                None,
            ),
            &auth,
            None,
        )
        .await
        .map_err(|e| format!("registry: {e}"))?;
    Ok(digest)
}

/// A buffer that refuses to grow past [`MAX_COMPONENT_BYTES`]: a registry that sends more
/// than the layer it announced cannot fill the memory.
#[derive(Default)]
struct CappedBuffer {
    bytes: Vec<u8>,
}

impl tokio::io::AsyncWrite for CappedBuffer {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if (self.bytes.len() + buf.len()) as u64 > MAX_COMPONENT_BYTES {
            return Poll::Ready(Err(std::io::Error::other(format!(
                "the layer is larger than {MAX_COMPONENT_BYTES} bytes"
            ))));
        }
        self.bytes.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn registry_hosts_are_read_with_and_without_ports() {
        assert_eq!(host_of("ghcr.io"), "ghcr.io");
        assert_eq!(host_of("127.0.0.1:5000"), "127.0.0.1");
        assert_eq!(host_of("[::1]"), "::1");
        assert_eq!(host_of("[::1]:5000"), "::1");
    }
}
