//! The layout rules of docs/design.md, enforced: each library is named only
//! by its edge, imports run one way between the layers, no command imports
//! another, the module graph has no circle, and no function is longer than
//! 150 lines. Pure text analysis of `src/` (comments and string literals
//! are blanked first), so it needs no build and runs in milliseconds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
const MAX_FN_LINES: usize = 150;

/// Which folder may name which library (a path prefix of `src/`).
const EDGE_LIBRARIES: &[(&str, &str)] = &[
    ("tss_esapi", "tpm/"),
    ("libcryptsetup_rs", "disk/"),
    ("libc::", "sys/"),
];

/// One source file: its module path (`["cmd", "steps", "unlock"]`) and
/// its text with comments and literals blanked.
struct File {
    rel: String,
    module: Vec<String>,
    code: String,
}

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

/// Replace comments, string and char literals with spaces (newlines kept),
/// so that braces and paths inside them count for nothing.
fn blank(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let keep = |c: u8| if c == b'\n' { b'\n' } else { b' ' };
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if rest.starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(keep(b[i]));
                    i += 1;
                }
            }
        } else if rest.starts_with(b"r\"") || rest.starts_with(b"r#") || rest.starts_with(b"br\"") {
            // Raw string: r"…", r#"…"#, br"…".
            let start = i;
            i += if b[i] == b'b' { 2 } else { 1 };
            let mut hashes = 0;
            while i < b.len() && b[i] == b'#' {
                hashes += 1;
                i += 1;
            }
            if i >= b.len() || b[i] != b'"' {
                // `r#ident` (a raw identifier), not a string.
                out.extend_from_slice(&b[start..i]);
                continue;
            }
            i += 1;
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            out.extend(b[start..i].iter().map(|_| b' '));
            while i < b.len() && !b[i..].starts_with(&close) {
                out.push(keep(b[i]));
                i += 1;
            }
            out.extend(close.iter().map(|_| b' '));
            i += close.len();
        } else if b[i] == b'"' {
            out.push(b' ');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    out.push(b' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(keep(b[i]));
                    i += 1;
                }
            }
            out.push(b' ');
            i += 1;
        } else if b[i] == b'\'' {
            // A char literal ('x', '\n', '\u{1b}'), or a lifetime ('a).
            let lit = if rest.get(1) == Some(&b'\\') {
                rest.iter().skip(2).position(|&c| c == b'\'').map(|p| p + 3)
            } else if rest.get(2) == Some(&b'\'') {
                Some(3)
            } else {
                None
            };
            match lit {
                Some(n) => {
                    out.extend(std::iter::repeat_n(b' ', n));
                    i += n;
                }
                None => {
                    out.push(b'\'');
                    i += 1;
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn load() -> Vec<File> {
    let mut paths = Vec::new();
    rust_files(Path::new(SRC), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(SRC)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let mut module: Vec<String> = rel
                .trim_end_matches(".rs")
                .split('/')
                .map(String::from)
                .collect();
            if module.last().is_some_and(|m| m == "mod" || m == "lib") {
                module.pop();
            }
            File {
                code: blank(&std::fs::read_to_string(&p).unwrap()),
                rel,
                module,
            }
        })
        .collect()
}

/// Expand a `use` tree (`crate::a::{self, b::C, d::{E, F}}`) into paths.
fn expand(tree: &str) -> Vec<String> {
    // One space between words ("F as G"), none around punctuation.
    let words: Vec<&str> = tree.split_whitespace().collect();
    let mut tree = String::new();
    for w in words {
        let glue = tree.ends_with(|c: char| "{},:".contains(c))
            || w.starts_with(|c: char| "{},:".contains(c))
            || tree.is_empty();
        if !glue {
            tree.push(' ');
        }
        tree.push_str(w);
    }
    fn go(prefix: &str, t: &str, out: &mut Vec<String>) {
        let t = t.trim_matches(',');
        if t.is_empty() {
            return;
        }
        if let Some(open) = t.find('{') {
            let head = t[..open].trim_end_matches("::");
            let inner = &t[open + 1..t.rfind('}').unwrap()];
            let base = join(prefix, head);
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        go(&base, &inner[start..i], out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            go(&base, &inner[start..], out);
        } else {
            let t = t.split(" as ").next().unwrap();
            let t = t.trim_end_matches("::*");
            out.push(if t == "self" {
                prefix.to_string()
            } else {
                join(prefix, t)
            });
        }
    }
    fn join(a: &str, b: &str) -> String {
        match (a.is_empty(), b.is_empty()) {
            (true, _) => b.to_string(),
            (_, true) => a.to_string(),
            _ => format!("{a}::{b}"),
        }
    }
    let mut out = Vec::new();
    go("", &tree, &mut out);
    out
}

/// Every `crate::`/`super::`/`self::` path the code mentions, as segments
/// relative to the crate root, with the module each occurrence is in.
fn references(f: &File) -> Vec<Vec<String>> {
    // An inline `mod tests { … }` is one module deeper than its file.
    let (main, tests) = match f.code.find("mod tests {") {
        Some(i) => (&f.code[..i], &f.code[i..]),
        None => (&f.code[..], ""),
    };
    let mut test_module = f.module.clone();
    test_module.push("tests".into());
    let mut out = Vec::new();
    for (code, module) in [(main, &f.module), (tests, &test_module)] {
        let mut paths = Vec::new();
        let mut rest = code;
        // `use` trees (braces expanded) …
        while let Some(i) = find_word(rest, "use") {
            let after = &rest[i + 3..];
            let end = after.find(';').unwrap_or(after.len());
            paths.extend(expand(&after[..end]));
            rest = &after[end..];
        }
        // … and paths written inline.
        let mut code_wo_use = String::new();
        let mut rest = code;
        while let Some(i) = find_word(rest, "use") {
            code_wo_use.push_str(&rest[..i]);
            let after = &rest[i..];
            let end = after.find(';').unwrap_or(after.len());
            rest = &after[end..];
        }
        code_wo_use.push_str(rest);
        for start in ["crate::", "super::", "self::"] {
            let mut s = code_wo_use.as_str();
            while let Some(i) = s.find(start) {
                let ok_before = i == 0
                    || !s[..i]
                        .chars()
                        .next_back()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
                let tail = &s[i..];
                let len = tail
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(tail.len());
                if ok_before {
                    paths.push(tail[..len].trim_end_matches(':').to_string());
                }
                s = &s[i + len.max(1)..];
            }
        }
        for p in paths {
            let segs: Vec<&str> = p.split("::").collect();
            let mut abs: Vec<String> = match segs[0] {
                "crate" => vec![],
                "super" | "self" => module.clone(),
                _ => continue, // another crate, or a name in scope
            };
            let mut k = 0;
            while k < segs.len() && (segs[k] == "super" || segs[k] == "self" || segs[k] == "crate")
            {
                if segs[k] == "super" {
                    abs.pop();
                }
                k += 1;
            }
            abs.extend(segs[k..].iter().map(|s| s.to_string()));
            out.push(abs);
        }
    }
    out
}

fn find_word(s: &str, w: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find(w) {
        let i = from + i;
        let before = s[..i].chars().next_back();
        let after = s[i + w.len()..].chars().next();
        if !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && after.is_some_and(char::is_whitespace)
        {
            return Some(i);
        }
        from = i + w.len();
    }
    None
}

/// The file a module path names: the longest prefix that is a module.
fn resolve(
    path: &[String],
    modules: &BTreeMap<Vec<String>, String>,
    root_reexports: &BTreeMap<&str, &str>,
) -> Option<String> {
    for n in (1..=path.len()).rev() {
        if let Some(f) = modules.get(&path[..n]) {
            return Some(f.clone());
        }
    }
    // An item of the crate root: lib.rs re-exports it.
    path.first()
        .and_then(|first| root_reexports.get(first.as_str()))
        .map(|f| f.to_string())
}

/// The layer a file belongs to: its rank, and its group (files of one
/// group may import each other; different groups of one rank may not).
fn layer(rel: &str) -> (u8, &'static str) {
    let top = rel.split('/').next().unwrap().trim_end_matches(".rs");
    match top {
        "error" | "secret" | "testhooks" => (0, "base"),
        "pcr" => (1, "pcr"),
        "attest" => (1, "attest"),
        "formats" => (2, "formats"),
        "sys" => (3, "sys"),
        "tpm" => (4, "tpm"),
        "disk" => (4, "disk"),
        "cmd" if rel.starts_with("cmd/steps/") => (5, "steps"),
        "cmd" => (6, "cmd"),
        "cli" => (7, "cli"),
        "lib" => (8, "lib"),
        "main" => (9, "main"),
        other => panic!("{rel}: folder {other:?} has no layer; add it to docs/design.md and here"),
    }
}

struct Graph {
    files: Vec<File>,
    edges: BTreeMap<String, BTreeSet<String>>,
}

fn graph() -> Graph {
    let files = load();
    let modules: BTreeMap<Vec<String>, String> = files
        .iter()
        .filter(|f| f.rel != "main.rs")
        .map(|f| (f.module.clone(), f.rel.clone()))
        .collect();
    let root_reexports: BTreeMap<&str, &str> = [
        ("Error", "error.rs"),
        ("Exit", "error.rs"),
        ("Result", "error.rs"),
    ]
    .into();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let set = edges.entry(f.rel.clone()).or_default();
        for r in references(f) {
            if let Some(to) = resolve(&r, &modules, &root_reexports) {
                if to != f.rel && to != "lib.rs" {
                    set.insert(to);
                }
            }
        }
    }
    Graph { files, edges }
}

#[test]
fn each_library_is_named_only_by_its_edge() {
    let mut bad = Vec::new();
    for f in load() {
        for (lib, folder) in EDGE_LIBRARIES {
            if f.code.contains(lib) && !f.rel.starts_with(folder) {
                bad.push(format!("{} names {lib} (only src/{folder} may)", f.rel));
            }
        }
    }
    assert!(bad.is_empty(), "\n{}", bad.join("\n"));
}

#[test]
fn imports_run_one_way() {
    let g = graph();
    let mut bad = Vec::new();
    for (from, tos) in &g.edges {
        let (rank, group) = layer(from);
        for to in tos {
            let (to_rank, to_group) = layer(to);
            let ok = if group == to_group {
                // Within a group any file may use another (the cycle test
                // keeps that one-way) -- but commands never use each other.
                !(group == "cmd" && from != "cmd/mod.rs" && to != "cmd/mod.rs")
            } else {
                to_rank < rank
            };
            if !ok {
                bad.push(format!("{from} ({group}) imports {to} ({to_group})"));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "imports against the layers:\n{}",
        bad.join("\n")
    );
    // The checks see the imports they should.
    assert!(g.edges["cmd/steps/unlock.rs"].contains("tpm/mod.rs"));
    assert!(g.edges["formats/blob.rs"].contains("pcr/selfpcr.rs"));
    assert!(g.edges["cli/unlock.rs"].contains("cmd/unlock.rs"));
}

#[test]
fn the_module_graph_has_no_circle() {
    let g = graph();
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(1) => {
                let at = stack.iter().position(|s| s == n).unwrap();
                let mut c = stack[at..].to_vec();
                c.push(n.to_string());
                return Some(c);
            }
            Some(_) => return None,
            None => {}
        }
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, g, state, stack) {
                return Some(c);
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.edges.keys() {
        if let Some(c) = visit(n, &g.edges, &mut state, &mut Vec::new()) {
            panic!("import circle: {}", c.join(" -> "));
        }
    }
}

#[test]
fn no_function_is_longer_than_150_lines() {
    let mut bad = Vec::new();
    for f in graph().files {
        let lines: Vec<&str> = f.code.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            let is_fn = t.starts_with("fn ")
                || (t.starts_with("pub") && t.contains(" fn "))
                || t.starts_with("unsafe fn ")
                || t.starts_with("const fn ");
            if !is_fn || t.ends_with(';') {
                continue;
            }
            // From the signature to the brace that closes the body.
            let mut depth = 0i32;
            let mut opened = false;
            let mut end = i;
            'scan: for (j, l) in lines.iter().enumerate().skip(i) {
                for c in l.chars() {
                    match c {
                        '{' => {
                            depth += 1;
                            opened = true;
                        }
                        '}' => depth -= 1,
                        ';' if !opened && depth == 0 => break 'scan,
                        _ => {}
                    }
                    if opened && depth == 0 {
                        end = j;
                        break 'scan;
                    }
                }
            }
            let n = end + 1 - i;
            if n > MAX_FN_LINES {
                bad.push(format!("{}:{}: {n} lines: {}", f.rel, i + 1, t));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "functions over {MAX_FN_LINES} lines:\n{}",
        bad.join("\n")
    );
}

#[test]
fn main_stays_thin() {
    let main = std::fs::read_to_string(format!("{SRC}/main.rs")).unwrap();
    let n = main.lines().count();
    assert!(
        n <= 120,
        "src/main.rs has {n} lines; parsing and output belong in cli/"
    );
}

#[test]
fn the_analysis_sees_through_literals_and_use_trees() {
    assert_eq!(
        expand("crate::a::{self, b::C, d::{E, F as G}}"),
        [
            "crate::a",
            "crate::a::b::C",
            "crate::a::d::E",
            "crate::a::d::F"
        ]
    );
    let code = blank("let s = \"crate::x {\"; // crate::y }\nlet c = '{'; r#\"}\"#;");
    assert!(!code.contains("crate::") && !code.contains('{') && !code.contains('}'));
    assert_eq!(code.lines().count(), 2);
}
