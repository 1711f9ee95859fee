//! Components in OCI registries: an artifact whose one layer is the component (media type
//! `application/wasm`, as the Wasm OCI artifact layout has it; the older
//! `application/vnd.wasm.content.layer.v1+wasm` and Bytecode Alliance component types are
//! read too).
//!
//! A pull speaks the distribution API itself (challenge, token, manifest, blob) so that
//! everything a registry sends is capped as it arrives: a token answer at 64 KiB, a
//! manifest at 4 MiB, the layer at the size its manifest declares (256 MiB at most), and no
//! error body is read. The registry may be a third-party module author's. `oci-client`
//! reads each answer whole, so it only pushes (to the operator's own registry).
//!
//! Credentials come from `NEXUM_REGISTRY_USERNAME` and `NEXUM_REGISTRY_PASSWORD` (or
//! `NEXUM_REGISTRY_TOKEN`), which are sent only to the registry `NEXUM_REGISTRY_HOST`
//! names (and, a username and password, to the HTTPS token service its challenge names, as
//! docker sends them), else from the docker config (`~/.docker/config.json` and its credential helpers,
//! per registry), else none; they are never logged. An identity token from the docker config
//! (what `az acr login` and other OAuth2 logins store) is a refresh token: a pull trades it
//! at the token service for an access token, as docker does; `nexum push` (`oci-client`)
//! still sends it as a bearer token. Registries on loopback are spoken to
//! over plain HTTP, as docker does; every other one over HTTPS.

use super::MAX_COMPONENT_BYTES;
use super::http::{CONNECT_TIMEOUT, READ_TIMEOUT};
use nexum_core::ComponentDigest;
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::OciImageManifest;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

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

/// The most a manifest may be. The OCI distribution spec has registries take manifests of
/// 4 MiB at least; an artifact of one layer has one of well under 1 KiB. A registry that
/// sends more cannot make nexum hold it.
const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// The manifest media types asked for: an artifact's, and the index types too, so that a tag
/// naming an index is refused by name rather than with a registry's 404.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

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

/// What nexum holds to authenticate to one registry.
enum Credentials {
    Anonymous,
    Basic(String, String),
    /// A bearer token, sent as it is.
    Token(String),
    /// An OAuth2 refresh token, traded at the registry's token service for each pull.
    IdentityToken(String),
}

impl Credentials {
    /// The credentials as `oci-client` (push) takes them: it knows no identity tokens.
    fn for_push(self) -> RegistryAuth {
        match self {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic(user, password) => RegistryAuth::Basic(user, password),
            Credentials::Token(token) | Credentials::IdentityToken(token) => {
                RegistryAuth::Bearer(token)
            }
        }
    }
}

/// The credentials for `registry`: see the module docs.
fn credentials(registry: &str) -> Credentials {
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
        return Credentials::Basic(user, password);
    }
    if let Some(token) = var("NEXUM_REGISTRY_TOKEN") {
        return Credentials::Token(token);
    }
    docker_credentials(registry)
}

/// What the docker config holds for `registry`, if anything.
fn docker_credentials(registry: &str) -> Credentials {
    match docker_credential::get_credential(registry) {
        Ok(docker_credential::DockerCredential::UsernamePassword(user, password)) => {
            Credentials::Basic(user, password)
        }
        Ok(docker_credential::DockerCredential::IdentityToken(token)) => {
            Credentials::IdentityToken(token)
        }
        Err(_) => Credentials::Anonymous,
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
    let registry = Registry::new(&reference)?;
    // A docker credential helper is a program that may wait (for a passphrase): on a
    // thread of its own, so the fetch's deadline still holds. Not a runtime blocking task:
    // the runtime waits for those when it shuts down, and nexum must still exit.
    let host = reference.resolve_registry().to_string();
    let (found, lookup) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("registry-credentials".into())
        .spawn(move || {
            let _ = found.send(credentials(&host));
        })
        .map_err(|e| format!("reading the registry's credentials: {e}"))?;
    let credentials = lookup
        .await
        .map_err(|_| "reading the registry's credentials: the lookup failed".to_string())?;
    let auth = registry.authorize(&credentials).await?;
    let manifest = registry.manifest(&reference, &auth).await?;
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
    let size = u64::try_from(layer.size)
        .ok()
        .filter(|size| *size <= MAX_COMPONENT_BYTES)
        .ok_or_else(|| {
            format!(
                "the layer is {} bytes (at most {MAX_COMPONENT_BYTES})",
                layer.size
            )
        })?;
    registry.blob(&layer.digest, size, &auth).await
}

/// The longest token answer read: tokens are a few KiB.
const MAX_TOKEN_BYTES: u64 = 64 * 1024;
/// How a pull authenticates.
enum Authorization {
    Anonymous,
    Basic(String, String),
    Bearer(String),
}

/// One registry, for one pull.
struct Registry {
    http: reqwest::Client,
    /// `http(s)://host[:port]`.
    base: String,
    repository: String,
    /// Whether the registry is on loopback (plain HTTP allowed, for it and its token realm).
    loopback: bool,
}

impl Registry {
    fn new(reference: &Reference) -> Result<Self, String> {
        let registry = reference.resolve_registry();
        let loopback = on_loopback(registry);
        let http = super::http::fetching_client()
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self {
            http,
            base: format!("{}://{registry}", if loopback { "http" } else { "https" }),
            repository: reference.repository().to_string(),
            loopback,
        })
    }

    /// Sends `request` with `auth`; the answer if its status is a success.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        auth: &Authorization,
        what: &str,
    ) -> Result<reqwest::Response, String> {
        let request = match auth {
            Authorization::Anonymous => request,
            Authorization::Basic(user, password) => request.basic_auth(user, Some(password)),
            Authorization::Bearer(token) => request.bearer_auth(token),
        };
        let response = request
            .send()
            .await
            .map_err(|e| format!("registry: {what}: {}", super::http::said(e)))?;
        let status = response.status();
        if !status.is_success() {
            // The body is not read: a registry's error page is no more trusted than the rest.
            return Err(format!("registry: {what}: the registry answered {status}"));
        }
        Ok(response)
    }

    /// How to authenticate the pull: a token given as such is used as it is; otherwise the
    /// registry's challenge (`GET /v2/`) says whether to fetch a bearer token from its realm
    /// (trading an identity token there, if that is what there is) or to send basic
    /// credentials; no challenge, no credentials.
    async fn authorize(&self, credentials: &Credentials) -> Result<Authorization, String> {
        if let Credentials::Token(token) = credentials {
            return Ok(Authorization::Bearer(token.clone()));
        }
        let basic = match credentials {
            Credentials::Basic(user, password) => {
                Some(Authorization::Basic(user.clone(), password.clone()))
            }
            _ => None,
        };
        let answer = self
            .http
            .get(format!("{}/v2/", self.base))
            .send()
            .await
            .map_err(|e| format!("registry: {}", super::http::said(e)))?;
        let challenge = answer
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string);
        drop(answer);
        let Some(challenge) = challenge else {
            return Ok(Authorization::Anonymous);
        };
        // A challenge that does not parse, or is not a bearer one: basic credentials if
        // there are any (as oci-client did), else none.
        let challenges = http_auth::parse_challenges(&challenge).unwrap_or_default();
        let Some(bearer) = challenges
            .iter()
            .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))
        else {
            return Ok(basic.unwrap_or(Authorization::Anonymous));
        };
        let param = |name: &str| {
            bearer
                .params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_unescaped())
        };
        let realm = param("realm")
            .ok_or_else(|| "registry: its bearer challenge names no realm".to_string())?;
        let realm = self.realm_url(&realm)?;
        let scope = format!("repository:{}:pull", self.repository);
        let mut asked = vec![("scope", scope)];
        asked.extend(param("service").map(|service| ("service", service)));
        let request = match credentials {
            // The OAuth2 refresh-token grant of the distribution token spec, as docker sends
            // it, and not along a redirect: reqwest would carry the form (the refresh token)
            // on to any host, where it drops only the Authorization header.
            Credentials::IdentityToken(refresh) => super::http::fetching_client()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| format!("HTTP client: {e}"))?
                .post(realm)
                .form(
                    &[
                        ("grant_type", "refresh_token".to_string()),
                        ("client_id", "nexum".to_string()),
                        ("refresh_token", refresh.clone()),
                    ]
                    .into_iter()
                    .chain(asked)
                    .collect::<Vec<_>>(),
                ),
            _ => self.http.get(realm).query(&asked),
        };
        self.token(request, basic.as_ref()).await
    }

    /// The token service's URL from a challenge's `realm`: HTTPS, or plain HTTP on loopback
    /// beside a registry on loopback.
    fn realm_url(&self, realm: &str) -> Result<reqwest::Url, String> {
        let url = reqwest::Url::parse(realm)
            .map_err(|e| format!("registry: its token realm is not a URL: {e}"))?;
        let realm_on_loopback = url.host_str().is_some_and(on_loopback);
        if url.scheme() != "https"
            && !(url.scheme() == "http" && self.loopback && realm_on_loopback)
        {
            return Err(format!(
                "registry: its token realm is not https ({}); refused",
                url.scheme()
            ));
        }
        Ok(url)
    }

    /// The pull token the token service answers `request` with, asked for with `basic`
    /// credentials if there are any.
    async fn token(
        &self,
        request: reqwest::RequestBuilder,
        basic: Option<&Authorization>,
    ) -> Result<Authorization, String> {
        let answer = self
            .send(
                request,
                basic.unwrap_or(&Authorization::Anonymous),
                "the token",
            )
            .await?;
        let body =
            super::http::read_capped(answer, MAX_TOKEN_BYTES, "registry: the token answer").await?;
        #[derive(serde::Deserialize)]
        struct Granted {
            token: Option<String>,
            access_token: Option<String>,
        }
        let granted: Granted = serde_json::from_slice(&body)
            .map_err(|e| format!("registry: the token answer is not JSON nexum reads: {e}"))?;
        granted
            .token
            .or(granted.access_token)
            .map(Authorization::Bearer)
            .ok_or_else(|| "registry: the token answer holds no token".to_string())
    }

    /// The image manifest of `reference`, read at most [`MAX_MANIFEST_BYTES`] of it; when
    /// `reference` names a digest, the manifest must be that digest.
    async fn manifest(
        &self,
        reference: &Reference,
        auth: &Authorization,
    ) -> Result<OciImageManifest, String> {
        let url = format!(
            "{}/v2/{}/manifests/{}",
            self.base,
            self.repository,
            reference
                .digest()
                .or_else(|| reference.tag())
                .unwrap_or("latest")
        );
        let request = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, MANIFEST_TYPES);
        let answer = self.send(request, auth, "the manifest").await?;
        let shown = "registry: the manifest";
        let body = super::http::read_capped(answer, MAX_MANIFEST_BYTES, shown).await?;
        if let Some(digest) = reference.digest() {
            let Some(hex) = digest.strip_prefix("sha256:") else {
                return Err(format!(
                    "{shown} is asked for by a digest nexum does not check ({digest}); pin it by sha256"
                ));
            };
            let got = ComponentDigest::of(&body).to_string();
            if !got.eq_ignore_ascii_case(&format!("sha256:{hex}")) {
                return Err(format!(
                    "{shown} is {got}, not the {digest} it was asked for"
                ));
            }
        }
        serde_json::from_slice(&body).map_err(|e| {
            if serde_json::from_slice::<serde_json::Value>(&body)
                .is_ok_and(|v| v.get("manifests").is_some())
            {
                format!("{shown} is an index of several artifacts; nexum reads one artifact")
            } else {
                format!("{shown} is not an image manifest nexum reads: {e}")
            }
        })
    }

    /// The blob `digest`, which its manifest says is `size` bytes: refused as soon as more
    /// is announced or sent.
    async fn blob(&self, digest: &str, size: u64, auth: &Authorization) -> Result<Vec<u8>, String> {
        let url = format!("{}/v2/{}/blobs/{digest}", self.base, self.repository);
        let answer = self.send(self.http.get(url), auth, "the layer").await?;
        super::http::read_capped(answer, size, "registry: the layer").await
    }
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
    let auth = credentials(reference.resolve_registry()).for_push();
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

#[cfg(test)]
mod tests {
    use super::{Credentials, MAX_MANIFEST_BYTES, Registry, host_of, parse, pull};
    use nexum_core::ComponentDigest;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// What a hostile registry sends: 256 MiB (socket buffers hold a few MiB at most).
    const HUGE: u64 = 256 * 1024 * 1024;

    /// A fake registry's answer to one request.
    enum Answer {
        /// A whole answer: status line, extra header lines, body.
        Plain(&'static str, String, String),
        /// [`HUGE`] bytes of JSON whitespace with `status`, announced in Content-Length or not.
        Huge {
            status: &'static str,
            announce: bool,
        },
    }

    /// One request to a fake registry.
    struct Asked {
        method: String,
        path: String,
        authorization: Option<String>,
        body: String,
    }

    /// A registry on loopback that answers each request with `answer(request)`; returns its
    /// address and how many bytes of huge answers it got to send.
    fn fake_registry(
        answer: impl Fn(&Asked) -> Answer + Send + 'static,
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
                let mut words = request.split(' ');
                let method = words.next().unwrap_or_default().to_string();
                let path = words.next().unwrap_or_default().to_string();
                let (mut authorization, mut length) = (None, 0);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    if let Some((name, value)) = line.split_once(':') {
                        if name.eq_ignore_ascii_case("authorization") {
                            authorization = Some(value.trim().to_string());
                        } else if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                    line.clear();
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let asked = Asked {
                    method,
                    path,
                    authorization,
                    body: String::from_utf8_lossy(&body).into_owned(),
                };
                let (head, huge) = match answer(&asked) {
                    Answer::Plain(status, headers, body) => (
                        format!(
                            "HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        ),
                        false,
                    ),
                    Answer::Huge { status, announce } => {
                        let length = if announce {
                            format!("content-length: {HUGE}\r\n")
                        } else {
                            String::new()
                        };
                        let head = format!(
                            "HTTP/1.1 {status}\r\ncontent-type: application/vnd.oci.image.manifest.v1+json\r\n{length}connection: close\r\n\r\n"
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
        fake_registry(move |asked| {
            if asked.path.contains("/manifests/") {
                Answer::Huge {
                    status: "200 OK",
                    announce,
                }
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
                .expect_err("a 256 MiB manifest was accepted");
            let said = if announce { "announces" } else { "sends" };
            assert!(
                refused.contains(&format!("{said} more than {MAX_MANIFEST_BYTES} bytes")),
                "{refused}"
            );
            // What the registry got to send: what nexum read, and what the sockets' buffers
            // took before nexum hung up.
            let sent = sent.load(Ordering::Relaxed);
            assert!(sent < HUGE / 4, "nexum read {sent} bytes of the manifest");
        }
    }

    /// A manifest of one wasm layer, `layer`, of `size` bytes.
    /// A fake registry that serves the manifest of "the component" to `user:pass` only and
    /// answers anything else 401 with `challenge`; its address, and the component's digest.
    fn basic_only_registry(challenge: &'static str) -> (String, ComponentDigest) {
        let pin = ComponentDigest::of(b"the component");
        let manifest = manifest_of(&pin, 13);
        let (address, _) = fake_registry(move |asked| match asked.authorization.as_deref() {
            // "user:pass"
            Some("Basic dXNlcjpwYXNz") if asked.path.contains("/manifests/") => {
                Answer::Plain("200 OK", String::new(), manifest.clone())
            }
            _ => Answer::Plain(
                "401 Unauthorized",
                format!("www-authenticate: {challenge}\r\n"),
                String::new(),
            ),
        });
        (address, pin)
    }

    fn manifest_of(layer: &ComponentDigest, size: usize) -> String {
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.wasm.config.v0+json",
                "digest": layer.to_string(),
                "size": 2
            },
            "layers": [{ "mediaType": "application/wasm", "digest": layer.to_string(), "size": size }]
        })
        .to_string()
    }

    /// A registry that challenges for a bearer token from its own `/token` realm and
    /// serves `manifest` and blobs only to a request carrying that token. `token` and
    /// `blob` answer the token and blob requests.
    fn token_registry(
        manifest: String,
        token: impl Fn() -> Answer + Send + 'static,
        blob: impl Fn() -> Answer + Send + 'static,
    ) -> (String, Arc<AtomicU64>) {
        let address = Arc::new(std::sync::OnceLock::<String>::new());
        let realm = address.clone();
        let (registry, sent) = fake_registry(move |asked| {
            let challenge = format!(
                "www-authenticate: Bearer realm=\"http://{}/token\",service=\"fake\"\r\n",
                realm.get().unwrap()
            );
            match (asked.path.as_str(), asked.authorization.as_deref()) {
                (p, _) if p.starts_with("/token") => token(),
                (p, Some("Bearer granted")) if p.contains("/manifests/") => Answer::Plain(
                    "200 OK",
                    "content-type: application/vnd.oci.image.manifest.v1+json\r\n".into(),
                    manifest.clone(),
                ),
                (p, Some("Bearer granted")) if p.contains("/blobs/") => blob(),
                _ => Answer::Plain("401 Unauthorized", challenge, String::new()),
            }
        });
        address.set(registry.clone()).unwrap();
        (registry, sent)
    }

    fn granted() -> Answer {
        Answer::Plain("200 OK", String::new(), r#"{"token":"granted"}"#.into())
    }

    #[tokio::test]
    async fn a_pull_asks_with_the_token_the_registry_grants_and_gets_the_pinned_layer() {
        let component = "the component";
        let pin = ComponentDigest::of(component.as_bytes());
        let (registry, _) = token_registry(manifest_of(&pin, component.len()), granted, || {
            Answer::Plain("200 OK", String::new(), component.into())
        });
        let pulled = pull(&format!("{registry}/keepers/ok:1"), &pin).await;
        assert_eq!(pulled.as_deref(), Ok(component.as_bytes()));

        let moved = ComponentDigest::of(b"another component");
        let (registry, _) = token_registry(manifest_of(&moved, 17), granted, || {
            Answer::Plain("500 Internal Server Error", String::new(), String::new())
        });
        let refused = pull(&format!("{registry}/keepers/moved:1"), &pin)
            .await
            .expect_err("the layer is not the pinned blob");
        assert!(
            refused.contains(&format!(
                "the registry's artifact is {moved}, not the pinned {pin}"
            )),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn a_token_answer_a_layer_or_an_error_page_over_its_bound_is_refused_early() {
        let pin = ComponentDigest::of(b"the component");
        let manifest = manifest_of(&pin, 13);
        fn huge() -> Answer {
            Answer::Huge {
                status: "200 OK",
                announce: false,
            }
        }
        fn huge_error() -> Answer {
            Answer::Huge {
                status: "500 Internal Server Error",
                announce: false,
            }
        }
        for (token, blob, said) in [
            (
                huge as fn() -> Answer,
                granted as fn() -> Answer,
                "registry: the token answer sends more than 65536 bytes".to_string(),
            ),
            (
                granted,
                huge,
                "registry: the layer sends more than 13 bytes".to_string(),
            ),
            (
                granted,
                huge_error,
                "registry: the layer: the registry answered 500 Internal Server Error".to_string(),
            ),
        ] {
            let (registry, sent) = token_registry(manifest.clone(), token, blob);
            let refused = pull(&format!("{registry}/keepers/huge:1"), &pin)
                .await
                .expect_err("a huge answer was accepted");
            assert!(refused.contains(&said), "{refused}");
            let sent = sent.load(Ordering::Relaxed);
            assert!(sent < HUGE / 4, "nexum read {sent} bytes: {said}");
        }
    }

    #[tokio::test]
    async fn a_token_in_access_token_and_a_layer_redirected_elsewhere_without_credentials() {
        let component = "the component";
        let pin = ComponentDigest::of(component.as_bytes());
        // Storage on another port: what authorization reached it.
        let reached = Arc::new(std::sync::Mutex::new(Vec::<Option<String>>::new()));
        let seen = reached.clone();
        let (storage, _) = fake_registry(move |asked| {
            seen.lock().unwrap().push(asked.authorization.clone());
            Answer::Plain("200 OK", String::new(), component.into())
        });
        let (registry, _) = token_registry(
            manifest_of(&pin, component.len()),
            || {
                Answer::Plain(
                    "200 OK",
                    String::new(),
                    r#"{"access_token":"granted"}"#.into(),
                )
            },
            move || {
                Answer::Plain(
                    "307 Temporary Redirect",
                    format!("location: http://{storage}/blob\r\n"),
                    String::new(),
                )
            },
        );
        let pulled = pull(&format!("{registry}/keepers/ok:1"), &pin).await;
        assert_eq!(pulled.as_deref(), Ok(component.as_bytes()));
        assert_eq!(
            *reached.lock().unwrap(),
            vec![None],
            "the registry's token went along to the storage it redirected to"
        );
    }

    #[tokio::test]
    async fn a_token_realm_over_plain_http_elsewhere_is_refused() {
        let pin = ComponentDigest::of(b"the component");
        let (registry, _) = fake_registry(|_| {
            Answer::Plain(
                "401 Unauthorized",
                "www-authenticate: Bearer realm=\"http://tokens.example/token\"\r\n".into(),
                String::new(),
            )
        });
        let refused = pull(&format!("{registry}/keepers/x:1"), &pin)
            .await
            .expect_err("a plain-HTTP realm on another host was used");
        assert!(
            refused.contains("its token realm is not https (http); refused"),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn basic_credentials_go_where_the_registry_asks_for_them() {
        let (address, pin) = basic_only_registry("Basic realm=\"fake\"");
        let reference = parse(&format!("{address}/keepers/basic:1")).unwrap();
        let registry = Registry::new(&reference).unwrap();
        let basic = Credentials::Basic("user".into(), "pass".into());
        let auth = registry.authorize(&basic).await.unwrap();
        let manifest = registry.manifest(&reference, &auth).await.unwrap();
        assert_eq!(manifest.layers[0].digest, pin.to_string());
        let anonymous = registry.authorize(&Credentials::Anonymous).await.unwrap();
        let refused = registry
            .manifest(&reference, &anonymous)
            .await
            .expect_err("the registry asked for credentials");
        assert!(refused.contains("401"), "{refused}");
    }

    /// An identity token (an OAuth2 refresh token from a docker login) is traded at the
    /// token service, in a POST as the distribution token spec has it, never sent to the
    /// registry itself.
    #[tokio::test]
    async fn an_identity_token_is_traded_at_the_token_service_for_an_access_token() {
        let component = "the component";
        let pin = ComponentDigest::of(component.as_bytes());
        let manifest = manifest_of(&pin, component.len());
        let address = Arc::new(std::sync::OnceLock::<String>::new());
        let realm = address.clone();
        // Every request, as method, path, authorization and body.
        let requests = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let seen = requests.clone();
        let (registry, _) = fake_registry(move |asked| {
            seen.lock().unwrap().push(format!(
                "{} {} {:?} {}",
                asked.method, asked.path, asked.authorization, asked.body
            ));
            let mut form: Vec<(String, String)> =
                url::form_urlencoded::parse(asked.body.as_bytes())
                    .into_owned()
                    .collect();
            form.sort();
            let traded = asked.method == "POST"
                && asked.path == "/token"
                && form
                    == [
                        ("client_id", "nexum"),
                        ("grant_type", "refresh_token"),
                        ("refresh_token", "the-refresh-token"),
                        ("scope", "repository:keepers/ok:pull"),
                        ("service", "fake"),
                    ]
                    .map(|(k, v)| (k.to_string(), v.to_string()));
            match (asked.path.as_str(), asked.authorization.as_deref()) {
                ("/token", None) if traded => Answer::Plain(
                    "200 OK",
                    String::new(),
                    r#"{"access_token":"granted","refresh_token":"the-refresh-token"}"#.into(),
                ),
                (p, Some("Bearer granted")) if p.contains("/manifests/") => {
                    Answer::Plain("200 OK", String::new(), manifest.clone())
                }
                (p, Some("Bearer granted")) if p.contains("/blobs/") => {
                    Answer::Plain("200 OK", String::new(), component.into())
                }
                _ => Answer::Plain(
                    "401 Unauthorized",
                    format!(
                        "www-authenticate: Bearer realm=\"http://{}/token\",service=\"fake\"\r\n",
                        realm.get().unwrap()
                    ),
                    String::new(),
                ),
            }
        });
        address.set(registry.clone()).unwrap();
        let reference = parse(&format!("{registry}/keepers/ok:1")).unwrap();
        let client = Registry::new(&reference).unwrap();
        let identity = Credentials::IdentityToken("the-refresh-token".into());
        let auth = client
            .authorize(&identity)
            .await
            .expect("the identity token was not traded");
        let manifest = client.manifest(&reference, &auth).await.unwrap();
        let layer = &manifest.layers[0];
        let blob = client.blob(&layer.digest, 13, &auth).await.unwrap();
        assert_eq!(blob, component.as_bytes());
        let requests = requests.lock().unwrap();
        let carrying: Vec<_> = requests
            .iter()
            .filter(|r| r.contains("the-refresh-token"))
            .collect();
        assert!(
            carrying.len() == 1 && carrying[0].starts_with("POST /token None "),
            "the refresh token went elsewhere than the token service's form: {requests:#?}"
        );
    }

    /// The refresh token is in the grant's body, which reqwest would carry along a redirect
    /// to any host: a token service that redirects is refused.
    #[tokio::test]
    async fn an_identity_token_is_not_sent_along_a_redirect() {
        let reached = Arc::new(AtomicU64::new(0));
        let counted = reached.clone();
        let (elsewhere, _) = fake_registry(move |_| {
            counted.fetch_add(1, Ordering::Relaxed);
            granted()
        });
        let address = Arc::new(std::sync::OnceLock::<String>::new());
        let realm = address.clone();
        let (registry, _) = fake_registry(move |asked| match asked.path.as_str() {
            "/token" => Answer::Plain(
                "307 Temporary Redirect",
                format!("location: http://{elsewhere}/token\r\n"),
                String::new(),
            ),
            _ => Answer::Plain(
                "401 Unauthorized",
                format!(
                    "www-authenticate: Bearer realm=\"http://{}/token\"\r\n",
                    realm.get().unwrap()
                ),
                String::new(),
            ),
        });
        address.set(registry.clone()).unwrap();
        let reference = parse(&format!("{registry}/keepers/ok:1")).unwrap();
        let client = Registry::new(&reference).unwrap();
        let refused = client
            .authorize(&Credentials::IdentityToken("the-refresh-token".into()))
            .await
            .err()
            .expect("a redirected grant was followed");
        assert!(refused.contains("307"), "{refused}");
        assert_eq!(
            reached.load(Ordering::Relaxed),
            0,
            "the grant was redirected"
        );
    }

    /// A challenge that does not parse is read as no bearer challenge: basic credentials if
    /// there are any, else none (as `oci-client` did), rather than a failed pull.
    #[tokio::test]
    async fn a_challenge_that_does_not_parse_falls_back_to_basic_credentials_or_none() {
        let (address, pin) = basic_only_registry("Bearer realm=\"http://unterminated");
        assert!(
            http_auth::parse_challenges("Bearer realm=\"http://unterminated").is_err(),
            "the challenge was meant not to parse"
        );
        let reference = parse(&format!("{address}/keepers/basic:1")).unwrap();
        let registry = Registry::new(&reference).unwrap();
        let basic = Credentials::Basic("user".into(), "pass".into());
        let auth = registry.authorize(&basic).await.unwrap();
        let manifest = registry.manifest(&reference, &auth).await.unwrap();
        assert_eq!(manifest.layers[0].digest, pin.to_string());
        let anonymous = registry.authorize(&Credentials::Anonymous).await.unwrap();
        assert!(matches!(anonymous, super::Authorization::Anonymous));
    }

    #[tokio::test]
    async fn a_manifest_must_be_the_digest_asked_for_and_an_index_is_refused_by_name() {
        let pin = ComponentDigest::of(b"the component");
        let other = ComponentDigest::of(b"another manifest");
        let (registry, _) = token_registry(manifest_of(&pin, 13), granted, granted);
        let refused = pull(&format!("{registry}/keepers/x@{other}"), &pin)
            .await
            .expect_err("a manifest that is not the digest asked for was read");
        assert!(
            refused.contains(&format!("not the {other} it was asked for")),
            "{refused}"
        );

        let index = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        let (registry, _) = token_registry(index.into(), granted, granted);
        let refused = pull(&format!("{registry}/keepers/x:1"), &pin)
            .await
            .expect_err("an index was read as an artifact");
        assert!(
            refused.contains("is an index of several artifacts"),
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
