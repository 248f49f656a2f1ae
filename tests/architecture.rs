//! One direction of dependency: the imports between top-level modules of
//! `src/` form no cycle, and ARCHITECTURE.md lists exactly the imports the
//! code has. A module is a top-level file or folder of `src/` (`main.rs`,
//! `lib.rs` and `bin/` are the binaries' glue, not modules); an import of
//! B by A is any `crate::B` path in a file of A (comments aside), as
//! `../shared/tools/modcycles.py` counts them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text of a file without its `//` comments.
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every identifier following `crate::`, and those in `use crate::{...}`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find(';').unwrap_or(group.len());
            for item in group[..end].split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if !item.is_empty() {
                    out.insert(item.to_string());
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out
}

fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let module = |p: &Path| -> Option<String> {
        let top = p.strip_prefix(&src).unwrap().components().next()?;
        let name = top
            .as_os_str()
            .to_str()?
            .trim_end_matches(".rs")
            .to_string();
        (!["main", "lib", "bin"].contains(&name.as_str())).then_some(name)
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        if let Some(m) = module(f) {
            edges.entry(m).or_default();
        }
    }
    let names: BTreeSet<String> = edges.keys().cloned().collect();
    for f in &files {
        let Some(m) = module(f) else { continue };
        let text = code(&std::fs::read_to_string(f).unwrap());
        for used in crate_paths(&text) {
            if names.contains(&used) && used != m {
                edges.get_mut(&m).unwrap().insert(used);
            }
        }
    }
    edges
}

/// A cycle through `from`, if any (depth-first).
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut c = path[i..].to_vec();
            c.push(m.to_string());
            return Some(c);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for next in &edges[m] {
            if let Some(c) = visit(next, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for m in edges.keys() {
        if let Some(c) = visit(m, edges, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let edges = imports();
    assert!(edges.contains_key("engine") && edges.contains_key("pipeline"));
    if let Some(c) = cycle(&edges) {
        panic!("import cycle: {}", c.join(" -> "));
    }
}

#[test]
fn architecture_md_lists_the_imports_the_code_has() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md"))
            .unwrap();
    let marker = "<!-- dependencies:";
    let block = doc
        .split_once(marker)
        .and_then(|(_, rest)| rest.split_once("```\n"))
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(b, _)| b)
        .expect("ARCHITECTURE.md has a dependencies block");
    let written: Vec<String> = block.lines().map(|l| l.trim_end().to_string()).collect();
    let actual: Vec<String> = imports()
        .iter()
        .map(|(m, deps)| {
            let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
            format!("{m} -> {}", deps.join(" ")).trim_end().to_string()
        })
        .collect();
    assert_eq!(
        written,
        actual,
        "ARCHITECTURE.md's dependencies differ from the code's; write:\n{}",
        actual.join("\n")
    );
}
