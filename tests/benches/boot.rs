//! Boot time with 1, 10 and 50 modules, with each compiler: the first boot (every
//! component compiled) and a second boot of the same engine (compiled components read from
//! the on-disk cache).
//!
//! `cargo bench -p nexum-tests --bench boot`
//!
//! Each module gets a distinct component (the noop fixture plus a custom section naming it),
//! so nothing is shared between modules within one boot.

use nexum_core::Compiler;
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

async fn boot(builder: RuntimeBuilder) -> Duration {
    let started = Instant::now();
    let runtime = builder.start().await.unwrap();
    let elapsed = started.elapsed();
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
}
