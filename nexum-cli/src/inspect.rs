//! `nexum inspect` and `nexum hash`.

use anyhow::Context;
use std::path::Path;

pub fn inspect(path: &Path) -> anyhow::Result<()> {
    let bytes = read(path)?;
    let report = nexum_host::inspect(&bytes).with_context(|| path.display().to_string())?;
    println!("component  {}", path.display());
    println!("world      {}", report.world);
    println!("size       {} bytes", report.size);
    println!("sha256     {}", report.digest);
    println!("imports");
    for import in &report.imports {
        match import.capability {
            Some(capability) => println!("  {}  (capability `{capability}`)", import.name),
            None => println!("  {}", import.name),
        }
    }
    println!("exports");
    for export in &report.exports {
        println!("  {export}");
    }
    Ok(())
}

pub fn hash(path: &Path) -> anyhow::Result<()> {
    println!("{}", nexum_core::ComponentDigest::of(&read(path)?));
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))
}
