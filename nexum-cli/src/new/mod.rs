//! `nexum new`: a module from a template, ready to build and run.
//!
//! The Rust templates are the examples in this repository and the JavaScript and Python ones
//! are `templates/` (their sources are compiled into the binary), so every template is a
//! module the test suite builds and runs.

mod scripted;

use crate::cli::{NewArgs, Template};
use anyhow::{Context, bail};
use nexum_host::core::ModuleName;
use std::path::{Path, PathBuf};

/// The SDK this nexum was built with.
const SDK_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk");

/// One file of a template: its path in the new crate and its text.
type File = (&'static str, &'static str);

struct TemplateFiles {
    /// The example's module name, replaced by the new one in `module.toml`.
    example_name: &'static str,
    sources: &'static [File],
    manifest: &'static str,
    /// Dependencies beyond `nexum-guest`, as `Cargo.toml` lines.
    dependencies: &'static str,
    /// The SDK's features it needs (`cow` for the orderbook).
    sdk_features: &'static [&'static str],
    /// What to tell the user about running it.
    run_hint: &'static str,
}

fn files(template: Template) -> TemplateFiles {
    match template {
        Template::Cron => TemplateFiles {
            example_name: "heartbeat",
            sources: &[(
                "src/lib.rs",
                include_str!("../../../examples/heartbeat/src/lib.rs"),
            )],
            manifest: include_str!("../../../examples/heartbeat/module.toml"),
            dependencies: "",
            sdk_features: &[],
            run_hint: "nexum run {wasm} module.toml",
        },
        Template::Block => TemplateFiles {
            example_name: "block-logger",
            sources: &[(
                "src/lib.rs",
                include_str!("../../../examples/block-logger/src/lib.rs"),
            )],
            manifest: include_str!("../../../examples/block-logger/module.toml"),
            dependencies: "serde = { version = \"1.0\", features = [\"derive\"] }\n",
            sdk_features: &[],
            run_hint: "nexum run {wasm} module.toml --chain 31337=ws://127.0.0.1:8545",
        },
        Template::Logs => TemplateFiles {
            example_name: "event-counter",
            sources: &[(
                "src/lib.rs",
                include_str!("../../../examples/event-counter/src/lib.rs"),
            )],
            manifest: include_str!("../../../examples/event-counter/module.toml"),
            dependencies: "",
            sdk_features: &[],
            run_hint: "nexum run {wasm} module.toml --chain 31337=ws://127.0.0.1:8545",
        },
        Template::Js | Template::Py => unreachable!("scripted templates are made by `scripted`"),
        Template::Twap => TemplateFiles {
            example_name: "twap-keeper",
            sources: &[
                (
                    "src/lib.rs",
                    include_str!("../../../examples/twap-keeper/src/lib.rs"),
                ),
                (
                    "src/contract.rs",
                    include_str!("../../../examples/twap-keeper/src/contract.rs"),
                ),
                (
                    "src/keeper.rs",
                    include_str!("../../../examples/twap-keeper/src/keeper.rs"),
                ),
                (
                    "src/keeper/tests.rs",
                    include_str!("../../../examples/twap-keeper/src/keeper/tests.rs"),
                ),
                (
                    "src/state.rs",
                    include_str!("../../../examples/twap-keeper/src/state.rs"),
                ),
            ],
            manifest: include_str!("../../../examples/twap-keeper/module.toml"),
            dependencies: "serde = { version = \"1.0\", features = [\"derive\"] }\nserde_json = \"1.0\"\n",
            sdk_features: &["cow"],
            run_hint: "nexum run {wasm} module.toml --chain 1=wss://your-mainnet-node",
        },
    }
}

pub fn new(args: NewArgs) -> anyhow::Result<()> {
    ModuleName::new(&args.name).map_err(anyhow::Error::msg)?;
    // Shown as the author would type it: `cd NAME` when made here.
    let root = match &args.dir {
        Some(base) => base.join(&args.name),
        None => PathBuf::from(&args.name),
    };
    if root.exists() {
        bail!("{} already exists", root.display());
    }
    if let Some(template) = scripted::template(args.template) {
        return scripted::create(template, &args.name, &root);
    }
    let sdk = sdk_path(args.sdk.as_deref())?;
    let template = files(args.template);

    for (path, text) in template.sources {
        write(&root.join(path), text)?;
    }
    let manifest = template.manifest.replace(
        &format!("name = \"{}\"", template.example_name),
        &format!("name = \"{}\"", args.name),
    );
    write(&root.join("module.toml"), &manifest)?;
    write(
        &root.join("Cargo.toml"),
        &cargo_toml(
            &args.name,
            &sdk,
            template.sdk_features,
            template.dependencies,
        ),
    )?;
    write(&root.join(".gitignore"), "/target\n/data\n")?;
    let wasm = format!(
        "target/wasm32-wasip2/release/{}.wasm",
        args.name.replace('-', "_")
    );
    let run = template.run_hint.replace("{wasm}", &wasm);
    write(&root.join("README.md"), &readme(&args.name, &wasm, &run))?;

    println!(
        "created {} from the {:?} template",
        root.display(),
        args.template
    );
    println!("  cd {}", root.display());
    println!("  cargo test                                     # native unit tests");
    println!("  cargo build --target wasm32-wasip2 --release   # the component");
    println!("  {run}");
    println!("or, to build, run against a local chain and rebuild on every change:");
    println!("  cd {} && nexum dev", root.display());
    Ok(())
}

fn sdk_path(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = explicit
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(SDK_PATH));
    path.join("Cargo.toml")
        .is_file()
        .then(|| path.canonicalize())
        .transpose()?
        .with_context(|| {
            format!(
                "no nexum-guest SDK at {}; pass --sdk <path to guest-sdk>",
                path.display()
            )
        })
}

fn cargo_toml(name: &str, sdk: &Path, features: &[&str], dependencies: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
nexum-guest = {{ path = {sdk:?}, features = {features:?} }}
{dependencies}
# Small, fast-loading components.
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = true

# A crate of its own, even when created inside another workspace.
[workspace]
"#,
        sdk = sdk.display().to_string()
    )
}

fn readme(name: &str, wasm: &str, run: &str) -> String {
    format!(
        "# {name}\n\nA nexum module.\n\n```sh\ncargo test                                     # native unit tests (no wasm)\n\
         cargo build --target wasm32-wasip2 --release   # builds {wasm}\n{run}\n```\n\n\
         `module.toml` declares its capabilities and subscriptions; `nexum hash {wasm}` prints the\n\
         sha256 to pin it with.\n"
    )
}

pub(crate) fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
