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
use oci_client::manifest::OciImageManifest;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
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

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest pause between two pieces of an answer.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The most a manifest may be. The OCI distribution spec has registries take manifests of
/// 4 MiB at least; an artifact of one layer has one of well under 1 KiB. A registry that
/// sends more cannot make nexum hold it.
const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// The manifest media types nexum reads (an artifact, not an index of platforms).
const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// The host of `registry` (`host`, `host:port`, `[v6]` or `[v6]:port`).
fn host_of(registry: &str) -> &str {
    match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.split(':').next().unwrap_or(registry),
    }
}

/// Whether `registry` is on this machine, and so spoken to over plain HTTP.
fn on_loopback(registry: &str) -> bool {
    let host = host_of(registry);
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn client(reference: &Reference) -> Client {
    let registry = reference.resolve_registry().to_string();
    Client::new(ClientConfig {
        protocol: if on_loopback(&registry) {
            ClientProtocol::HttpsExcept(vec![registry])
        } else {
            ClientProtocol::Https
        },
        connect_timeout: Some(CONNECT_TIMEOUT),
        read_timeout: Some(READ_TIMEOUT),
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
    let manifest = image_manifest(&client, &reference, &auth).await?;
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

/// The image manifest of `reference`, read at most [`MAX_MANIFEST_BYTES`] of it.
/// `oci-client` reads a manifest whole, however large, so nexum asks for it itself, with
/// the token `oci-client` negotiated (or the basic credentials the registry asked for).
async fn image_manifest(
    client: &Client,
    reference: &Reference,
    auth: &RegistryAuth,
) -> Result<OciImageManifest, String> {
    let token = client
        .auth(reference, auth, RegistryOperation::Pull)
        .await
        .map_err(|e| format!("registry: {e}"))?;
    let registry = reference.resolve_registry();
    let scheme = if on_loopback(registry) {
        "http"
    } else {
        "https"
    };
    let url = format!(
        "{scheme}://{registry}/v2/{}/manifests/{}",
        reference.repository(),
        reference
            .digest()
            .or_else(|| reference.tag())
            .unwrap_or("latest")
    );
    let http = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let mut request = http
        .get(&url)
        .header(reqwest::header::ACCEPT, MANIFEST_TYPES);
    request = match (token, auth) {
        (Some(token), _) => request.bearer_auth(token),
        (None, RegistryAuth::Basic(user, password)) => request.basic_auth(user, Some(password)),
        (None, _) => request,
    };
    let shown = "registry: the manifest";
    let response = request
        .send()
        .await
        .map_err(|e| format!("{shown}: {}", super::http::said(e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{shown}: the registry answered {status}"));
    }
    let body = super::http::read_capped(response, MAX_MANIFEST_BYTES, shown).await?;
    serde_json::from_slice(&body).map_err(|e| {
        format!("{shown} is not an image manifest nexum reads (one artifact, not an index): {e}")
    })
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
    use super::{MAX_MANIFEST_BYTES, host_of, pull};
    use nexum_core::ComponentDigest;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// What the hostile registry sends as the manifest: 64 MiB.
    const HUGE: u64 = 64 * 1024 * 1024;

    /// A fake registry's answer to one request.
    enum Answer {
        /// A whole answer: status line, extra header lines, body.
        Plain(&'static str, String, String),
        /// [`HUGE`] bytes of JSON whitespace, announced in Content-Length or not.
        Huge { announce: bool },
    }

    /// A registry on loopback that answers each request with `answer(path, authorization)`;
    /// returns its address and how many bytes of huge answers it got to send.
    fn fake_registry(
        answer: impl Fn(&str, Option<&str>) -> Answer + Send + 'static,
    ) -> (String, Arc<AtomicU64>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let sent = Arc::new(AtomicU64::new(0));
        let counted = sent.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                let _ = reader.read_line(&mut request);
                let path = request.split(' ').nth(1).unwrap_or_default().to_string();
                let mut authorization = None;
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("authorization")
                    {
                        authorization = Some(value.trim().to_string());
                    }
                    line.clear();
                }
                let (head, huge) = match answer(&path, authorization.as_deref()) {
                    Answer::Plain(status, headers, body) => (
                        format!(
                            "HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        ),
                        false,
                    ),
                    Answer::Huge { announce } => {
                        let length = if announce {
                            format!("content-length: {HUGE}\r\n")
                        } else {
                            String::new()
                        };
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/vnd.oci.image.manifest.v1+json\r\n{length}connection: close\r\n\r\n"
                        );
                        (head, true)
                    }
                };
                if stream.write_all(head.as_bytes()).is_err() || !huge {
                    continue;
                }
                let chunk = vec![b' '; 64 * 1024];
                while counted.load(Ordering::Relaxed) < HUGE && stream.write_all(&chunk).is_ok() {
                    counted.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
            }
        });
        (address, sent)
    }

    /// An anonymous registry (its `/v2/` answers 200, no challenge) that sends huge manifests.
    fn hostile_registry(announce: bool) -> (String, Arc<AtomicU64>) {
        fake_registry(move |path, _| {
            if path.contains("/manifests/") {
                Answer::Huge { announce }
            } else {
                Answer::Plain("200 OK", String::new(), "{}".into())
            }
        })
    }

    #[tokio::test]
    async fn a_manifest_over_the_cap_is_refused_without_reading_it_whole() {
        let pin = ComponentDigest::of(b"the component");
        for announce in [true, false] {
            let (registry, sent) = hostile_registry(announce);
            let refused = pull(&format!("{registry}/keepers/huge:1"), &pin)
                .await
                .expect_err("a 64 MiB manifest was accepted");
            let said = if announce { "announces" } else { "sends" };
            assert!(
                refused.contains(&format!("{said} more than {MAX_MANIFEST_BYTES} bytes")),
                "{refused}"
            );
            // What the registry got to send: what nexum read, and what the sockets' buffers
            // took before nexum hung up.
            let sent = sent.load(Ordering::Relaxed);
            assert!(sent < HUGE / 2, "nexum read {sent} bytes of the manifest");
        }
    }

    #[tokio::test]
    async fn the_manifest_is_asked_for_with_the_token_the_registry_grants() {
        let pin = ComponentDigest::of(b"the component");
        let other = ComponentDigest::of(b"another component");
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.wasm.config.v0+json",
                "digest": other.to_string(),
                "size": 2
            },
            "layers": [{
                "mediaType": "application/wasm",
                "digest": other.to_string(),
                "size": 17
            }]
        })
        .to_string();
        let address = Arc::new(std::sync::OnceLock::<String>::new());
        let realm = address.clone();
        let (registry, _) = fake_registry(move |path, authorization| {
            let challenge = format!(
                "www-authenticate: Bearer realm=\"http://{}/token\",service=\"fake\"\r\n",
                realm.get().unwrap()
            );
            match (path, authorization) {
                (p, _) if p.starts_with("/token") => {
                    Answer::Plain("200 OK", String::new(), r#"{"token":"granted"}"#.into())
                }
                (p, Some("Bearer granted")) if p.contains("/manifests/") => Answer::Plain(
                    "200 OK",
                    "content-type: application/vnd.oci.image.manifest.v1+json\r\n".into(),
                    manifest.clone(),
                ),
                _ => Answer::Plain("401 Unauthorized", challenge, String::new()),
            }
        });
        address.set(registry.clone()).unwrap();
        let refused = pull(&format!("{registry}/keepers/moved:1"), &pin)
            .await
            .expect_err("the layer is not the pinned blob");
        assert!(
            refused.contains(&format!(
                "the registry's artifact is {other}, not the pinned {pin}"
            )),
            "{refused}"
        );
    }

    #[test]
    fn registry_hosts_are_read_with_and_without_ports() {
        assert_eq!(host_of("ghcr.io"), "ghcr.io");
        assert_eq!(host_of("127.0.0.1:5000"), "127.0.0.1");
        assert_eq!(host_of("[::1]"), "::1");
        assert_eq!(host_of("[::1]:5000"), "::1");
    }
}
