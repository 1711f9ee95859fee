//! The module-writing guides (`docs/guides/*.md`) quote the templates' code instead of
//! restating it: every code block in a programming language or TOML is preceded by
//! `<!-- from: PATH -->` and appears, line for line, in that file. A template changed
//! without its guide fails here.

use nexum_tests::guests::workspace_root;
use std::path::Path;

/// Languages whose blocks must be quotes; shell commands and the like may stand alone.
const QUOTED: &[&str] = &[
    "rust",
    "rs",
    "js",
    "javascript",
    "mjs",
    "ts",
    "typescript",
    "python",
    "py",
    "toml",
    "json",
];
const MARKER: &str = "<!-- from: ";

/// One fenced code block: its language, its text, and the file it says it quotes.
struct Block {
    line: usize,
    language: String,
    text: String,
    from: Option<String>,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines().enumerate().peekable();
    let mut previous = "";
    while let Some((number, line)) = lines.next() {
        // Fences may be indented (inside a list item); so is their text, by as much.
        if let Some(language) = line.trim_start().strip_prefix("```") {
            let indent = line.len() - line.trim_start().len();
            let mut text = String::new();
            for (_, inner) in lines.by_ref() {
                if inner.trim_start().starts_with("```") {
                    break;
                }
                let cut = inner.len() - inner.trim_start().len();
                text.push_str(&inner[cut.min(indent)..]);
                text.push('\n');
            }
            // `rust,ignore`, `js title=x`: the language is the first word.
            let language = language.split([',', ' ']).next().unwrap_or_default().trim();
            let from = previous
                .trim()
                .strip_prefix(MARKER)
                .and_then(|rest| rest.strip_suffix(" -->"))
                .map(str::to_string);
            blocks.push(Block {
                line: number + 1,
                language: language.to_string(),
                text,
                from,
            });
        }
        previous = line;
    }
    blocks
}

fn check_guide(guide: &Path) -> Vec<String> {
    let markdown = std::fs::read_to_string(guide).unwrap();
    let name = guide.file_name().unwrap().to_string_lossy().into_owned();
    let mut problems = Vec::new();
    for block in blocks(&markdown) {
        let at = format!("{name}:{}", block.line);
        match &block.from {
            None if QUOTED.contains(&block.language.as_str()) => problems.push(format!(
                "{at}: a {} block without `{MARKER}PATH -->`",
                block.language
            )),
            None => {}
            Some(_) if block.text.trim().is_empty() => {
                problems.push(format!("{at}: an empty quote"))
            }
            Some(path) => match std::fs::read_to_string(workspace_root().join(path)) {
                Err(e) => problems.push(format!("{at}: cannot read {path}: {e}")),
                // Whole lines: the quote starts where a line of the file starts (and the
                // file's last line may lack its newline).
                Ok(source) if !format!("\n{source}\n").contains(&format!("\n{}", block.text)) => {
                    problems.push(format!(
                        "{at}: this block is no longer in {path}:\n{}",
                        block.text
                    ))
                }
                Ok(_) => {}
            },
        }
    }
    problems
}

#[test]
fn every_quote_in_the_guides_is_in_the_file_it_names() {
    let dir = workspace_root().join("docs/guides");
    let mut problems = Vec::new();
    for guide in ["rust.md", "javascript.md", "python.md"] {
        let path = dir.join(guide);
        let quotes = blocks(&std::fs::read_to_string(&path).unwrap())
            .iter()
            .filter(|b| b.from.is_some())
            .count();
        assert!(
            quotes >= 5,
            "{guide} quotes only {quotes} blocks of its template"
        );
        problems.extend(check_guide(&path));
    }
    problems.extend(check_guide(&dir.join("README.md")));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_quote_that_drifted_from_its_file_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let guide = dir.path().join("guide.md");
    std::fs::write(
        &guide,
        "<!-- from: examples/event-counter/module.toml -->\n```toml\nrequired = [\"nothing\"]\n```\n\n\
         ```python\nprint()\n```\n\n\
         <!-- from: examples/event-counter/module.toml -->\n```toml\nsion = \"0.1.0\"\n```\n\n\
         - a list item:\n  ```js\n  let x = 1;\n  ```\n\n\
         - another:\n  <!-- from: examples/event-counter/module.toml -->\n  ```toml\n  [module]\n  name = \"event-counter\"\n  ```\n\n\
         ```rust,ignore\nfn f() {}\n```\n",
    )
    .unwrap();
    let problems = check_guide(&guide);
    // The indented quote of the list item matches its file once unindented.
    assert_eq!(problems.len(), 5, "{problems:?}");
    assert!(problems[0].contains("no longer in examples/event-counter/module.toml"));
    assert!(problems[1].contains("a python block without"));
    // `version = "0.1.0"` is in the file, but a quote starts where a line does.
    assert!(problems[2].contains("no longer in examples/event-counter/module.toml"));
    assert!(problems[3].contains("a js block without"));
    assert!(problems[4].contains("a rust block without"));
}
