//! The crate's shape: its modules import each other in one direction
//! only, so any of them can be read, tested and changed from the bottom
//! up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[test]
fn modules_import_each_other_without_circles() {
    let graph = module_graph();
    // The reading itself works: known arrows are found.
    assert!(graph["policy"].contains("money"), "{graph:#?}");
    assert!(graph["protocol"].contains("outbox"), "{graph:#?}");
    assert_eq!(find_circle(&graph), None, "{graph:#?}");
}

/// Modules of this crate by path (`tui::components::queue`) with the
/// modules their code (tests left out) names through `crate::`,
/// `super::` or a child module's name.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = BTreeMap::new();
    read_sources(&root, &root, &mut sources);
    let known: BTreeSet<String> = sources.keys().cloned().collect();
    sources
        .iter()
        .map(|(module, text)| (module.clone(), imports(module, text, &known)))
        .collect()
}

fn read_sources(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            read_sources(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path
                .strip_prefix(root)
                .expect("under src")
                .with_extension("");
            let module = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("::");
            // Test-only modules and the binary (a crate of its own) are
            // not part of the library's shape.
            let test_only = ["tests", "fixtures"]
                .iter()
                .any(|t| module == *t || module.ends_with(&format!("::{t}")));
            if !test_only && module != "main" {
                let text = std::fs::read_to_string(&path).expect("read");
                out.insert(module, text);
            }
        }
    }
}

fn imports(module: &str, text: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    // Test code may reach anywhere; only what ships counts.
    let code = text.split("#[cfg(test)]\nmod tests {").next().unwrap_or("");
    let code: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let parent = module.rsplit_once("::").map(|(p, _)| p).unwrap_or("");
    let mut out = BTreeSet::new();
    let mut add = |path: String| {
        // The longest known module the path starts with; else an item
        // the crate root re-exports.
        let parts: Vec<&str> = path.split("::").collect();
        let found = (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|m| known.contains(m))
            .unwrap_or_else(|| "lib".to_string());
        if found != module {
            out.insert(found);
        }
    };
    for (prefix, base) in [
        ("crate::", String::new()),
        ("super::", parent.to_string()),
        ("self::", module.to_string()),
    ] {
        for (i, _) in code.match_indices(prefix) {
            let before = code[..i].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            for path in paths(&code[i + prefix.len()..]) {
                add(if base.is_empty() {
                    path
                } else {
                    format!("{base}::{path}")
                });
            }
        }
    }
    // `use child::Item;` in the file that declares `mod child;`.
    for line in code.lines() {
        if let Some(rest) = line.trim_start().strip_prefix("use ") {
            let first = rest.split("::").next().unwrap_or("");
            let child = if module == "lib" || module == "main" {
                first.to_string()
            } else {
                format!("{module}::{first}")
            };
            if known.contains(&child) {
                add(format!(
                    "{child}::{}",
                    rest.split_once("::").map_or("", |(_, r)| r)
                ));
            }
        }
    }
    out
}

/// The paths a use tree or an expression names: `a::b::C`, or each of
/// `a::{b, c::D}`.
fn paths(s: &str) -> Vec<String> {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(s.len());
    let head = s[..end].trim_end_matches(':').to_string();
    if s[end..].starts_with('{') && s[..end].ends_with("::") {
        let inner = &s[end + 1..];
        let mut depth = 0;
        let close = inner
            .find(|c: char| {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => return true,
                    '}' => depth -= 1,
                    _ => {}
                }
                false
            })
            .unwrap_or(inner.len());
        let mut out = Vec::new();
        let mut depth = 0;
        let mut start = 0;
        let group = &inner[..close];
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.extend(
                        paths(group[start..i].trim())
                            .into_iter()
                            .map(|p| join(&head, &p)),
                    );
                    start = i + 1;
                }
                _ => {}
            }
        }
        out.extend(
            paths(group[start..].trim())
                .into_iter()
                .map(|p| join(&head, &p)),
        );
        out
    } else {
        vec![head]
    }
}

fn join(head: &str, tail: &str) -> String {
    match (head.is_empty(), tail.is_empty() || tail == "self") {
        (_, true) => head.to_string(),
        (true, false) => tail.to_string(),
        (false, false) => format!("{head}::{tail}"),
    }
}

/// A circle of imports, if there is one: `a -> b -> a`.
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<String> {
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<String> {
        if let Some(at) = stack.iter().position(|s| s == m) {
            let mut circle = stack[at..].to_vec();
            circle.push(m.to_string());
            return Some(circle.join(" -> "));
        }
        if done.contains(m) {
            return None;
        }
        stack.push(m.to_string());
        for d in graph.get(m).into_iter().flatten() {
            if let Some(c) = visit(d, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|m| visit(m, graph, &mut Vec::new(), &mut done))
}
