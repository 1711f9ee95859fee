//! The JavaScript and Python templates (`templates/js`, `templates/py`): a module, a small
//! helper library of ours, tests against a fake host, and a build script that installs its
//! pinned toolchain (componentize-js, componentize-py) on first use.

use super::write;
use crate::cli::Template;
use std::path::Path;

/// One file: its path in the new module and its text.
type File = (&'static str, &'static str);

/// A scripted template.
pub struct ScriptTemplate {
    /// The template's module name, replaced by the new one wherever it is written.
    example_name: &'static str,
    files: &'static [File],
    /// The files that carry the module's name.
    named_in: &'static [&'static str],
    /// How to run the module's own tests.
    test_command: &'static str,
}

/// The WIT the component is built against, as the host serves it.
const WIT: &[File] = &[
    ("wit/world.wit", include_str!("../../../wit/host/world.wit")),
    ("wit/types.wit", include_str!("../../../wit/host/types.wit")),
    ("wit/chain.wit", include_str!("../../../wit/host/chain.wit")),
    (
        "wit/local-store.wit",
        include_str!("../../../wit/host/local-store.wit"),
    ),
    (
        "wit/logging.wit",
        include_str!("../../../wit/host/logging.wit"),
    ),
];

macro_rules! files {
    ($dir:literal: $($path:literal),+ $(,)?) => {
        &[$(($path, include_str!(concat!("../../../templates/", $dir, "/", $path)))),+]
    };
}

const JS: ScriptTemplate = ScriptTemplate {
    example_name: "js-counter",
    files: files!("js":
        ".gitignore", ".npmrc", "README.md", "build.mjs", "module.toml", "package.json",
        "src/main.js", "src/module.js", "src/nexum/abi.js", "src/nexum/convert.js",
        "src/nexum/entry.js", "src/nexum/errors.js", "src/nexum/hex.js", "src/nexum/host.js",
        "src/nexum/index.js", "src/nexum/keccak.js", "src/nexum/testing.js",
        "src/nexum/toml.js", "test/abi.test.js", "test/module.test.js",
    ),
    named_in: &["module.toml", "package.json", "README.md"],
    test_command: "npm test",
};

const PY: ScriptTemplate = ScriptTemplate {
    example_name: "py-counter",
    files: files!("py":
        ".gitignore", "README.md", "app.py", "build.py", "module.py", "module.toml",
        "nexum/__init__.py", "nexum/abi.py", "nexum/convert.py", "nexum/entry.py",
        "nexum/errors.py", "nexum/fake_wit.py", "nexum/hexstr.py", "nexum/host.py",
        "nexum/host_rules.py", "nexum/keccak.py", "nexum/manifest.py", "nexum/testing.py",
        "nexum/values.py", "tests/test_abi.py", "tests/test_module.py",
    ),
    named_in: &["module.toml", "README.md"],
    test_command: "python3 -m unittest discover -s tests",
};

/// The scripted template `template` names, if it is one.
pub fn template(template: Template) -> Option<&'static ScriptTemplate> {
    match template {
        Template::Js => Some(&JS),
        Template::Py => Some(&PY),
        Template::Cron | Template::Block | Template::Logs | Template::Twap => None,
    }
}

/// Writes the module `name` at `root` (which does not exist yet) and says what to do next.
pub fn create(template: &ScriptTemplate, name: &str, root: &Path) -> anyhow::Result<()> {
    for (path, text) in template.files.iter().chain(WIT) {
        let text = if template.named_in.contains(path) {
            text.replace(template.example_name, name)
        } else {
            text.to_string()
        };
        write(&root.join(path), &text)?;
    }
    println!(
        "created {} from the {} template",
        root.display(),
        template.example_name
    );
    println!("  cd {}", root.display());
    println!(
        "  nexum dev      # builds it, starts a local chain, runs it, rebuilds on every change"
    );
    println!("and its tests, with a fake host (no wasm, no chain):");
    println!("  {}", template.test_command);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every file of `templates/<dir>` (what a checkout holds, less what builds and runs
    /// write) is one the scaffold writes, so a file added there is not silently left out.
    fn all_files_are_embedded(dir: &str, template: &ScriptTemplate) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../templates")
            .join(dir);
        let ignored = ["node_modules", "dist", "data", ".venv", "__pycache__"];
        let mut on_disk = BTreeSet::new();
        let mut folders = vec![root.clone()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if entry.file_type().unwrap().is_dir() {
                    if !ignored.contains(&name.as_str()) {
                        folders.push(entry.path());
                    }
                } else {
                    let path = entry.path();
                    let relative = path.strip_prefix(&root).unwrap();
                    on_disk.insert(relative.to_string_lossy().into_owned());
                }
            }
        }
        let embedded: BTreeSet<String> = template
            .files
            .iter()
            .map(|(path, _)| path.to_string())
            .collect();
        assert_eq!(
            on_disk, embedded,
            "templates/{dir} and the embedded list differ"
        );
    }

    #[test]
    fn the_javascript_template_is_embedded_whole() {
        all_files_are_embedded("js", &JS);
    }

    #[test]
    fn the_python_template_is_embedded_whole() {
        all_files_are_embedded("py", &PY);
    }
}
