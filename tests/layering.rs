//! The shape of the crates, checked from their sources: modules import
//! each other in one direction only, and the arrows ARCHITECTURE.md
//! forbids are not there. Run with `cargo test -p touchpoint-tests --test
//! layering`. The reading is textual (`crate::`, `super::`, `self::` and
//! child-module paths outside `#[cfg(test)] mod tests`), so a path built by
//! a macro would slip past it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Whether module `m` is `of` or inside it.
fn within(m: &str, of: &str) -> bool {
    m == of || m.starts_with(&format!("{of}::"))
}

#[test]
fn common_modules_import_each_other_without_circles() {
    let graph = module_graph("common");
    // The reading itself works: known arrows are found.
    assert!(graph["policy"].contains("money"), "{graph:#?}");
    assert!(graph["protocol"].contains("outbox"), "{graph:#?}");
    assert_eq!(find_circle(&graph), None, "{graph:#?}");
}

#[test]
fn console_modules_import_each_other_without_circles() {
    let graph = module_graph("console");
    assert!(graph["cli"].contains("output"), "{graph:#?}");
    assert!(
        graph["tui::app"].contains("tui::components::queue"),
        "{graph:#?}"
    );
    assert_eq!(find_circle(&graph), None, "{graph:#?}");
}

#[test]
fn console_components_see_neither_the_app_nor_each_other_and_state_not_drawing() {
    let graph = module_graph("console");
    let component = |m: &str| {
        m.strip_prefix("tui::components::")
            .map(|rest| rest.split("::").next().unwrap_or(rest).to_string())
    };
    let mut seen = 0;
    for (m, deps) in &graph {
        let Some(own) = component(m) else { continue };
        seen += 1;
        for d in deps {
            let other = component(d).is_some_and(|c| c != own);
            let outside = ["tui::app", "tui::ui", "tui::net", "tui::harness"].contains(&d.as_str());
            assert!(!other && !outside, "{m} imports {d}");
        }
    }
    assert!(seen >= 5, "every view is a component: {graph:#?}");
    for d in &graph["tui::app"] {
        assert!(
            !["tui::ui", "tui::widgets", "tui::net", "tui::harness"].contains(&d.as_str()),
            "tui::app imports {d}"
        );
    }
    for m in ["tui::action", "tui::msg", "output"] {
        assert_eq!(
            graph[m],
            BTreeSet::new(),
            "{m} imports nothing of the crate"
        );
    }
    assert!(
        graph["tui::widgets"].iter().all(|d| !d.starts_with("tui")),
        "tui::widgets imports {:?}",
        graph["tui::widgets"]
    );
}

#[test]
fn the_store_has_no_circles_and_imports_no_capability() {
    let graph = module_graph("daemon");
    assert!(graph["store"].contains("store::tenant"), "{graph:#?}");
    let store: BTreeMap<String, BTreeSet<String>> = graph
        .iter()
        .filter(|(m, _)| within(m, "store"))
        .map(|(m, deps)| {
            let inner = deps
                .iter()
                .filter(|d| within(d, "store"))
                .cloned()
                .collect();
            (m.clone(), inner)
        })
        .collect();
    assert_eq!(find_circle(&store), None, "{store:#?}");
    // The store is the bottom: it publishes on the change bus and knows
    // nothing of what uses it.
    for (m, deps) in graph.iter().filter(|(m, _)| within(m, "store")) {
        for d in deps {
            assert!(
                within(d, "store") || d == "events" || d == "lib",
                "{m} imports {d}"
            );
        }
    }
}

#[test]
fn daemon_capabilities_keep_their_arrows() {
    let graph = module_graph("daemon");
    assert!(
        graph["dispatch::engine"]
            .iter()
            .any(|d| within(d, "render")),
        "{graph:#?}"
    );
    // (importer, what it must never import)
    let forbidden = [
        (
            "dispatch",
            &["approvals", "control", "overview", "content", "http"][..],
        ),
        // The HTTP endpoint faces the internet: dispatch's one-click API
        // and the audit log, nothing of the socket's.
        (
            "http",
            &["control", "access", "approvals", "planner", "import"][..],
        ),
        ("approvals", &["dispatch", "control"][..]),
        // Import asks erasure whether a row is of an erased person.
        (
            "erasure",
            &["planner", "control", "import", "dispatch::engine"][..],
        ),
        (
            "render",
            &["dispatch", "approvals", "control", "planner"][..],
        ),
        ("content", &["dispatch", "approvals", "control"][..]),
        ("planner", &["dispatch", "approvals", "control"][..]),
        ("import", &["dispatch", "planner", "control"][..]),
        ("identity", &["dispatch", "planner", "control"][..]),
        ("policy", &["store", "dispatch", "control"][..]),
        ("access", &["store", "dispatch", "control"][..]),
        ("ledger", &["dispatch", "control"][..]),
        ("attribution", &["dispatch", "planner", "control"][..]),
        ("queue", &["control"][..]),
        (
            "customer",
            &["dispatch", "approvals", "control", "planner"][..],
        ),
        // The overview reads a dispatch `Snapshot`, never the engine.
        ("overview", &["dispatch::engine"][..]),
        (
            "events",
            &[
                "store",
                "import",
                "identity",
                "policy",
                "planner",
                "render",
                "approvals",
                "dispatch",
                "ledger",
                "attribution",
                "access",
                "queue",
                "overview",
                "content",
                "customer",
                "control",
            ][..],
        ),
        (
            "files",
            &[
                "store",
                "import",
                "identity",
                "policy",
                "planner",
                "render",
                "approvals",
                "dispatch",
                "ledger",
                "attribution",
                "access",
                "queue",
                "overview",
                "content",
                "customer",
                "control",
            ][..],
        ),
    ];
    for (m, deps) in &graph {
        for (importer, never) in &forbidden {
            if !within(m, importer) {
                continue;
            }
            for d in deps {
                assert!(
                    !never.iter().any(|n| within(d, n)),
                    "{m} imports {d}, which {importer} must never import"
                );
            }
        }
    }
    // The socket is a router over the capabilities: none of them calls it.
    for (m, deps) in &graph {
        if within(m, "control") || m == "daemon" || m == "lib" {
            continue;
        }
        assert!(
            !deps.iter().any(|d| within(d, "control")),
            "{m} imports the control socket"
        );
    }
}

/// Time comes from `common::clock`: no shipped code of the daemon or of
/// `common` reads the system clock itself (a rehearsal's `--clock-start`
/// would not reach it), except the clock's own file. `Instant` (durations,
/// timeouts) is fine; `cron`'s `upcoming` reads `Local::now` inside.
#[test]
fn time_comes_from_the_one_clock() {
    let reads = [
        "Local::now",
        "Utc::now",
        "SystemTime::now",
        ".upcoming(",
        "OffsetDateTime::now",
    ];
    let mut checked = 0;
    for krate in ["daemon", "common"] {
        let root = touchpoint_tests::repo_root().join(krate).join("src");
        let mut sources = BTreeMap::new();
        read_sources(&root, &root, &mut sources);
        for (module, text) in &sources {
            if krate == "common" && module == "clock" {
                continue;
            }
            checked += 1;
            for line in shipped_lines(text) {
                for r in reads {
                    assert!(
                        !line.contains(r),
                        "{krate}::{module} reads the clock itself ({r}), not through common::clock: {line}"
                    );
                }
            }
        }
    }
    assert!(checked > 50, "the sources were read");
}

/// Modules of the crate in `<repo>/<krate>/src` by path
/// (`tui::components::queue`) with the modules their code (tests left out)
/// names through `crate::`, `super::` or a child module's name.
fn module_graph(krate: &str) -> BTreeMap<String, BTreeSet<String>> {
    let root = touchpoint_tests::repo_root().join(krate).join("src");
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
    let code: String = shipped_lines(text).join("\n");
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
            // `pub(in crate::store)` says who may see, not what is used.
            let visibility = code[..i].ends_with("(in ");
            if visibility || before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
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
    // `child::Item` (in a `use`, `pub use` or an expression) in the file
    // that declares `mod child;`.
    let prefix = if module == "lib" || module == "main" {
        String::new()
    } else {
        format!("{module}::")
    };
    for child in known.iter().filter_map(|k| k.strip_prefix(prefix.as_str())) {
        if child.contains("::") {
            continue;
        }
        for (i, _) in code.match_indices(&format!("{child}::")) {
            let before = code[..i].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            for path in paths(&code[i..]) {
                add(format!("{prefix}{path}"));
            }
        }
    }
    out
}

/// The lines of a file that ship: comments and the inline test module
/// (`#[cfg(test)]`, other attributes, then `mod tests {` to the file's end
/// by the style ARCHITECTURE.md sets) left out.
fn shipped_lines(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    let mut end = lines.len();
    for (i, l) in lines.iter().enumerate() {
        if l.trim() != "#[cfg(test)]" {
            continue;
        }
        let next = lines[i + 1..]
            .iter()
            .find(|n| !n.trim_start().starts_with("#["));
        if next.is_some_and(|n| n.trim() == "mod tests {") {
            end = i;
            break;
        }
    }
    lines[..end]
        .iter()
        .copied()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect()
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
