//! Where a module's component comes from when it is not a file on the engine's disk: an OCI
//! registry or an HTTP(S) URL, named in `[[modules]] source`. The transport is not trusted:
//! a remote component is always pinned by its sha256, fetched into a content store under
//! the state directory, and checked against the pin before it is stored and again before
//! it is loaded.

use crate::manifest::ComponentDigest;
use crate::redact;
use std::fmt;
use std::path::{Path, PathBuf};

/// The content store's folder under the state directory.
pub const CONTENT_DIR: &str = "content";

/// Where the content store keeps the component with `digest`.
pub fn content_file(state_dir: &Path, digest: &ComponentDigest) -> PathBuf {
    let hex = digest.to_string();
    let hex = hex.strip_prefix("sha256:").unwrap_or(&hex);
    state_dir
        .join(CONTENT_DIR)
        .join("sha256")
        .join(format!("{hex}.wasm"))
}

/// A remote component.
#[derive(Clone, PartialEq, Eq)]
pub enum ModuleSource {
    /// `oci://REGISTRY/REPOSITORY:TAG` (or `@sha256:…`): an OCI artifact whose one layer is
    /// the component.
    Oci(String),
    /// `https://…` or `http://…`: the component's bytes.
    Http(String),
}

impl ModuleSource {
    /// Parses a `source` value.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(reference) = text.strip_prefix("oci://") {
            let plausible = !reference.is_empty()
                && reference.contains('/')
                && !reference.starts_with('/')
                && reference
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/:._-@[]".contains(c));
            if !plausible {
                return Err(format!(
                    "expected an OCI reference, REGISTRY/REPOSITORY:TAG after the oci scheme, found {:?}",
                    redact::url(text)
                ));
            }
            return Ok(ModuleSource::Oci(reference.to_string()));
        }
        let url = url::Url::parse(text).map_err(|e| format!("invalid URL ({e})"))?;
        match url.scheme() {
            "http" | "https" if url.host_str().is_some_and(|h| !h.is_empty()) => {
                Ok(ModuleSource::Http(text.to_string()))
            }
            "http" | "https" => Err(format!("invalid URL {}: no host", redact::url(text))),
            other => Err(format!(
                "unsupported scheme `{other}`: expected oci, https or http"
            )),
        }
    }
}

/// Shown without credentials or query strings (see [`redact::url`]).
impl fmt::Display for ModuleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModuleSource::Oci(reference) => write!(f, "oci://{reference}"),
            ModuleSource::Http(url) => f.write_str(&redact::url(url)),
        }
    }
}

impl fmt::Debug for ModuleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_and_show_without_secrets() {
        assert_eq!(
            ModuleSource::parse("oci://ghcr.io/acme/twap:1.4.0").unwrap(),
            ModuleSource::Oci("ghcr.io/acme/twap:1.4.0".into())
        );
        let http = ModuleSource::parse("https://cdn.example/twap.wasm?token=s3cret").unwrap();
        assert!(!http.to_string().contains("s3cret"), "{http}");
        for bad in [
            "oci://",
            "oci://justaname",
            "oci://a/b c",
            "ftp://x/y.wasm",
            "https://",
            "twap.wasm",
        ] {
            assert!(ModuleSource::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn content_files_are_named_by_digest_under_the_state_dir() {
        let digest = ComponentDigest::of(b"component");
        let file = content_file(Path::new("/var/lib/nexum"), &digest);
        assert!(file.starts_with("/var/lib/nexum/content/sha256/"));
        assert!(file.to_string_lossy().ends_with(".wasm"));
        assert!(!file.to_string_lossy().contains("sha256:"));
    }
}
