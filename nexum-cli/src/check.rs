//! `nexum check`: everything `nexum run` would load, validated offline.

use anyhow::bail;
use nexum_host::core::EngineConfig;
use std::path::Path;

pub fn check(path: &Path) -> anyhow::Result<()> {
    let config = EngineConfig::load(path)?;
    // What `nexum run` refuses before loading anything, refused here the same way.
    crate::logging::level_filter(&config.log_level)?;
    crate::run::require_modules(&config, path)?;
    let report = nexum_host::check(&config);
    let mut failures = 0;
    for module in &report.modules {
        match &module.result {
            Ok(summary) => println!("ok     {summary}"),
            Err(problem) => {
                failures += 1;
                println!("error  {}: {problem}", module.module);
            }
        }
        for warning in &module.warnings {
            println!("warn   {}: {warning}", module.module);
        }
    }
    for problem in &report.problems {
        println!("error  {problem}");
    }
    let problems = failures + report.problems.len();
    println!(
        "{} module(s) checked, {problems} problem(s)",
        report.modules.len()
    );
    if problems > 0 {
        bail!("{}: {problems} problem(s) found", path.display());
    }
    Ok(())
}
