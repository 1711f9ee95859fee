//! Boot time with 1, 10 and 50 modules, with each compiler: the first boot (every
//! component compiled) and a second boot of the same engine (compiled components read from
//! the on-disk cache). Then ten modules whose code differs (ten of the examples and test
//! fixtures), and one large module: the JavaScript and Python templates (`templates/js`,
//! `templates/py`), built here with their own build scripts (which install the pinned
//! componentize-js and componentize-py on first use). Every boot must leave each module
//! running (its `init` returned `ok`).
//!
//! `cargo bench -p nexum-tests --bench boot`
//!
//! In the 1/10/50 rows each module gets a distinct component (the noop fixture plus a custom
//! section naming it), so nothing is shared between modules within one boot.

use nexum_core::{Compiler, ModuleStatus};
use nexum_host::RuntimeBuilder;
use nexum_tests::engine::test_config;
use nexum_tests::guests;
use std::path::Path;
use std::time::{Duration, Instant};

/// `wasm` with a custom section `nexum-bench` holding `tag`: a distinct, valid component.
fn distinct(wasm: &[u8], tag: usize) -> Vec<u8> {
    let name = b"nexum-bench";
    let payload = tag.to_le_bytes();
    let mut section = Vec::new();
    leb128(&mut section, name.len() as u64);
    section.extend_from_slice(name);
    section.extend_from_slice(&payload);
    let mut out = wasm.to_vec();
    out.push(0); // custom section id
    leb128(&mut out, section.len() as u64);
    out.extend_from_slice(&section);
    out
}

fn leb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A runtime of `modules` distinct components, built as an embedder builds one.
fn builder(dir: &Path, modules: usize, wasm: &[u8], compiler: Compiler) -> RuntimeBuilder {
    let mut config = test_config();
    config.state_dir = dir.join("state");
    config.compiler = compiler;
    let mut builder = RuntimeBuilder::new(config);
    for i in 0..modules {
        let manifest = format!(
            "[module]\nname = \"m{i}\"\nversion = \"1\"\n[capabilities]\nrequired = [\"local-store\", \"logging\"]\n"
        );
        builder = builder
            .module_bytes(distinct(wasm, i), &manifest, &format!("m{i}.toml"))
            .unwrap();
    }
    builder
}

/// Ten modules with code of their own, of the examples and test fixtures.
const DIFFERENT: [&str; 10] = [
    "heartbeat",
    "block-logger",
    "event-counter",
    "twap-keeper",
    "noop",
    "recorder",
    "probe",
    "chain-caller",
    "cow-probe",
    "latency-probe",
];

/// A runtime of the [`DIFFERENT`] modules, each with every capability it may import and
/// the config its `init` needs (no subscriptions: boot compiles and instantiates them and
/// runs their `init`).
fn different_builder(dir: &Path, compiler: Compiler) -> RuntimeBuilder {
    let mut config = test_config();
    config.state_dir = dir.join("state");
    config.compiler = compiler;
    let mut builder = RuntimeBuilder::new(config);
    for name in DIFFERENT {
        let config = match name {
            "twap-keeper" => {
                "[config]\ncomposable_cow = \"0xfdaFc9d1902f4e0b84f65F49f244b32b31013b74\"\n"
            }
            _ => "",
        };
        let manifest = format!(
            "[module]\nname = \"{name}\"\nversion = \"1\"\n[capabilities]\nrequired = [\"chain\", \"cow-api\", \"local-store\", \"logging\"]\n{config}"
        );
        builder = builder
            .module_bytes(guests::wasm_bytes(name), &manifest, &format!("{name}.toml"))
            .unwrap();
    }
    builder
}

/// The component of the JavaScript or Python template, built in `dir` as `nexum new` and
/// `nexum dev` would: the template's files, the host's WIT in `wit/`, its build script.
fn template_component(dir: &Path, template: &str) -> Vec<u8> {
    let root = guests::workspace_root();
    let module = dir.join(template);
    copy_tree(&root.join("templates").join(template), &module);
    std::fs::create_dir_all(module.join("wit")).unwrap();
    for entry in std::fs::read_dir(root.join("wit/host")).unwrap().flatten() {
        std::fs::copy(entry.path(), module.join("wit").join(entry.file_name())).unwrap();
    }
    let (program, args): (&str, &[&str]) = match template {
        "js" => ("npm", &["run", "--silent", "build"]),
        _ => ("python3", &["build.py"]),
    };
    let built = std::process::Command::new(program)
        .args(args)
        .current_dir(&module)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (the {template} template needs it)"));
    assert!(
        built.status.success(),
        "building the {template} template:\n{}{}",
        String::from_utf8_lossy(&built.stdout),
        String::from_utf8_lossy(&built.stderr)
    );
    std::fs::read(module.join("dist/module.wasm")).unwrap()
}

/// Copies a template's sources (not what its builds left: installed tools, output).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let name = entry.file_name();
        if ["node_modules", "dist", ".venv", "__pycache__", "data"]
            .iter()
            .any(|skip| name == *skip)
        {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// One engine of the template's component (it imports all three interfaces).
fn template_builder(dir: &Path, wasm: &[u8], compiler: Compiler) -> RuntimeBuilder {
    let mut config = test_config();
    config.state_dir = dir.join("state");
    config.compiler = compiler;
    let manifest = "[module]\nname = \"large\"\nversion = \"1\"\n[capabilities]\nrequired = [\"chain\", \"local-store\", \"logging\"]\n";
    RuntimeBuilder::new(config)
        .module_bytes(wasm.to_vec(), manifest, "large.toml")
        .unwrap()
}

async fn boot(builder: RuntimeBuilder) -> Duration {
    let started = Instant::now();
    let runtime = builder.start().await.unwrap();
    let elapsed = started.elapsed();
    let not_running: Vec<_> = runtime
        .modules()
        .into_iter()
        .filter(|module| module.status != ModuleStatus::Running)
        .map(|module| format!("{} ({:?})", module.name, module.status))
        .collect();
    assert!(
        not_running.is_empty(),
        "not running after boot: {not_running:?}"
    );
    runtime.shutdown().await;
    elapsed
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let wasm = guests::wasm_bytes("noop");
    println!("compiler   modules  first boot   cached boot   ratio");
    for compiler in [Compiler::Cranelift, Compiler::Winch] {
        for modules in [1, 10, 50] {
            let dir = tempfile::tempdir().unwrap();
            let first = runtime.block_on(boot(builder(dir.path(), modules, &wasm, compiler)));
            let cached = runtime.block_on(boot(builder(dir.path(), modules, &wasm, compiler)));
            println!(
                "{:<9}  {modules:>7}  {:>10.1?}  {:>12.1?}  {:>5.1}x",
                format!("{compiler:?}").to_lowercase(),
                first,
                cached,
                first.as_secs_f64() / cached.as_secs_f64()
            );
        }
    }

    let different_bytes: usize = DIFFERENT
        .iter()
        .map(|name| guests::wasm_bytes(name).len())
        .sum();
    println!();
    println!(
        "10 different modules (of the examples and test fixtures, {} KB in all)",
        different_bytes / 1000
    );
    println!("compiler   first boot   cached boot");
    for compiler in [Compiler::Cranelift, Compiler::Winch] {
        let dir = tempfile::tempdir().unwrap();
        let first = runtime.block_on(boot(different_builder(dir.path(), compiler)));
        let cached = runtime.block_on(boot(different_builder(dir.path(), compiler)));
        println!(
            "{:<9}  {:>10.1?}  {:>12.1?}",
            format!("{compiler:?}").to_lowercase(),
            first,
            cached
        );
    }

    println!();
    println!("template    size      compiler   first boot   cached boot");
    let build_dir = tempfile::tempdir().unwrap();
    for (template, language) in [("js", "javascript"), ("py", "python")] {
        let wasm = template_component(build_dir.path(), template);
        for compiler in [Compiler::Cranelift, Compiler::Winch] {
            let dir = tempfile::tempdir().unwrap();
            let first = runtime.block_on(boot(template_builder(dir.path(), &wasm, compiler)));
            let cached = runtime.block_on(boot(template_builder(dir.path(), &wasm, compiler)));
            println!(
                "{language:<10}  {:>5.1} MB  {:<9}  {:>10.1?}  {:>12.1?}",
                wasm.len() as f64 / 1e6,
                format!("{compiler:?}").to_lowercase(),
                first,
                cached
            );
        }
    }
}
