//! Hostile input: files built to exhaust memory or the stack, binary and oversized files, and text
//! made to mislead a terminal. Every case must end quickly with one diagnostic that names the
//! file, the line and column when there is one, and the fix.

use meridian_pipeline::{load_files, load_str, LoadOptions, Loaded};
use std::path::PathBuf;

fn render(l: &Loaded) -> String {
    l.diagnostics
        .iter()
        .map(|d| d.render(&l.sources, false))
        .collect::<Vec<_>>()
        .join("\n")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meridian-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The process's peak resident memory, in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|n| n.parse().unwrap_or(0)))
        })
        .unwrap_or(0)
}

fn billion_laughs() -> String {
    let mut s = String::from("a: &a [x,x,x,x,x,x,x,x,x]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let refs = vec![format!("*{}", w[0]); 9].join(",");
        s.push_str(&format!("{}: &{} [{refs}]\n", w[1], w[1]));
    }
    s
}

/// (file name, contents, fragments the rendered diagnostics must hold).
fn cases() -> Vec<(&'static str, Vec<u8>, Vec<String>)> {
    let deep_flow = "[".repeat(20_000) + &"]".repeat(20_000);
    let deep_map = "{a: ".repeat(20_000) + "x" + &"}".repeat(20_000);
    let deep_json = "{\"a\": ".repeat(20_000) + "1" + &"}".repeat(20_000);
    let mut deep_block = String::new();
    for i in 0..200 {
        deep_block.push_str(&" ".repeat(i));
        deep_block.push_str("a:\n");
    }
    // 9 MiB of mappings, then a hundred quoted values each costing a second parse
    let mut reparse = String::from("Resources:\n");
    while reparse.len() < 9 * 1024 * 1024 {
        reparse.push_str(&format!("  R{}: {}\n", reparse.len(), "x".repeat(1000)));
    }
    for i in 0..100 {
        reparse.push_str(&format!("  Q{i}: '{{\n  }}'\n"));
    }
    vec![
        (
            "reparse.yaml",
            reparse.into_bytes(),
            vec![
                "invalid YAML: invalid indentation in quoted scalar".into(),
                "[reparse.yaml:".into(),
            ],
        ),
        (
            "bomb.yaml",
            billion_laughs().into_bytes(),
            vec![
                "aliases expand this YAML to more than 10000 values".into(),
                "[bomb.yaml:".into(),
                "help: aliases may add at most 10 values per byte of the file".into(),
            ],
        ),
        (
            "deep-flow.yaml",
            deep_flow.clone().into_bytes(),
            vec![
                "the YAML nests lists and mappings deeper than 128 levels".into(),
                "[deep-flow.yaml:1:".into(),
                "Meridian reads at most 128 nested levels".into(),
            ],
        ),
        (
            "deep-map.yaml",
            deep_map.into_bytes(),
            vec!["the YAML nests lists and mappings deeper than 128 levels".into()],
        ),
        (
            "deep-block.yaml",
            deep_block.into_bytes(),
            vec![
                "the YAML nests lists and mappings deeper than 128 levels".into(),
                "[deep-block.yaml:129:130]".into(),
            ],
        ),
        (
            "deep-list.json",
            deep_flow.into_bytes(),
            vec!["the JSON nests lists and mappings deeper than 128 levels".into()],
        ),
        (
            "deep-object.json",
            deep_json.into_bytes(),
            vec![
                "the JSON nests lists and mappings deeper than 128 levels".into(),
                "[deep-object.json:1:".into(),
            ],
        ),
        (
            "latin1.yaml",
            b"pipeline: x\nname: caf\xe9\n".to_vec(),
            vec![
                "`".to_string() + "latin1.yaml` is not UTF-8 text at byte offset 21 (line 2)",
                "[".to_string() + "latin1.yaml:2:10]",
                "help: definition files are UTF-8 text".into(),
            ],
        ),
        (
            "program.yaml",
            b"\x7fELF\x02\x01\x01\x00\x00\x00".to_vec(),
            vec![
                "is not UTF-8 text at byte offset 7 (line 1): it holds a NUL byte".into(),
                "\\u{7f}ELF\\u{2}\\u{1}\\u{1}\\u{0}".into(),
            ],
        ),
    ]
}

#[test]
fn hostile_files_end_in_one_clear_diagnostic() {
    for (name, bytes, expected) in cases() {
        let path = tmp(name);
        std::fs::write(&path, &bytes).unwrap();
        let started = std::time::Instant::now();
        let loaded = load_files(std::slice::from_ref(&path), &LoadOptions::default());
        let elapsed = started.elapsed();
        assert!(elapsed.as_secs() < 10, "{name} took {elapsed:?}");
        assert!(loaded.unreadable, "{name}: {}", render(&loaded));
        assert_eq!(loaded.diagnostics.len(), 1, "{name}: {}", render(&loaded));
        // miette wraps long messages and help lines: read them unwrapped
        let text = render(&loaded)
            .replace(&format!("{}/", path.parent().unwrap().display()), "")
            .replace("\n  │ ", " ")
            .replace("\n        ", " ");
        for e in &expected {
            assert!(text.contains(e.as_str()), "{name}: expected {e:?} in\n{text}");
        }
        assert!(
            !text.contains("invalid YAML") || !name.ends_with(".json"),
            "{name}: {text}"
        );
        assert!(
            !text.contains('\u{0}') && !text.contains('\u{1b}'),
            "{name}: raw control characters"
        );
        assert!(text.len() < 4000, "{name}: the diagnostic is {} bytes", text.len());
    }
}

#[test]
fn an_alias_bomb_is_refused_before_it_takes_memory() {
    let before = peak_rss_kib();
    let started = std::time::Instant::now();
    let loaded = load_str("bomb.yaml", &billion_laughs(), &LoadOptions::default());
    assert!(started.elapsed().as_secs() < 5);
    assert_eq!(loaded.diagnostics[0].code, "alias-expansion");
    assert!(
        render(&loaded).contains("this alias passes the limit"),
        "{}",
        render(&loaded)
    );
    let grown = peak_rss_kib().saturating_sub(before);
    assert!(grown < 256 * 1024, "the parse took {grown} KiB");
}

#[test]
fn honest_aliases_still_work() {
    let text = "defaults: &d {a: 1, b: [x, y]}\none: *d\ntwo: *d\n";
    let mut diags = Vec::new();
    let file = meridian_pipeline::SourceFile::new("ok.yaml", None, text.into());
    let root = meridian_pipeline::node::parse(0, &file, &mut diags).unwrap();
    assert_eq!(
        root.get("two").unwrap().to_json(),
        serde_json::json!({"a": 1, "b": ["x", "y"]})
    );
    // 128 levels is allowed, 129 is not
    let at = |n: usize| "[".repeat(n) + &"]".repeat(n);
    let ok = meridian_pipeline::SourceFile::new("d.yaml", None, at(128));
    assert!(meridian_pipeline::node::parse(0, &ok, &mut diags).is_ok());
    let ok = meridian_pipeline::SourceFile::new("d.json", None, at(128));
    assert!(meridian_pipeline::node::parse(0, &ok, &mut diags).is_ok());
    let deep = meridian_pipeline::SourceFile::new("d.yaml", None, at(129));
    let e = meridian_pipeline::node::parse(0, &deep, &mut diags).unwrap_err();
    assert_eq!(e.code, "too-deep");
}

#[test]
fn oversized_and_endless_files_are_read_with_a_bound() {
    let big = tmp("big.yaml");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(11 * 1024 * 1024).unwrap();
    let loaded = load_files(std::slice::from_ref(&big), &LoadOptions::default());
    let d = &loaded.diagnostics[0];
    assert_eq!(
        d.message,
        format!(
            "`{}` is 11534336 bytes, over Meridian's limit of 10485760 bytes for a definition file",
            big.display()
        )
    );
    assert!(d
        .help
        .as_ref()
        .unwrap()
        .contains("CloudFormation accepts templates of at most 1 MB"));
    let started = std::time::Instant::now();
    let loaded = load_files(&[PathBuf::from("/dev/zero")], &LoadOptions::default());
    assert!(started.elapsed().as_secs() < 10);
    assert_eq!(
        loaded.diagnostics[0].message,
        "`/dev/zero` holds more than 10485760 bytes, Meridian's limit for a definition file"
    );
    assert!(loaded.unreadable);
}

#[test]
fn a_long_line_is_shown_cut_around_the_error() {
    let long = "x".repeat(2 * 1024 * 1024);
    let text = format!("{{\"pipeline\": \"{long}\", oops}}");
    let loaded = load_str("minified.json", &text, &LoadOptions::default());
    let out = render(&loaded);
    assert!(out.contains("invalid JSON: key must be a string"), "{out}");
    assert!(out.contains(&format!("[minified.json:1:{}]", long.len() + 18)), "{out}");
    assert!(out.contains("…"), "{out}");
    assert!(out.len() < 2000, "the diagnostic is {} bytes", out.len());
    let json = loaded.diagnostics[0].to_json(&loaded.sources);
    assert!(json.snippet.unwrap().chars().count() <= 201);
}

#[test]
fn control_characters_are_escaped_in_messages_and_snippets() {
    let text = "pipeline: p\nstages:\n  - name: \"Build\u{202e}dliuB\"\n    name: \"x\u{1b}[31mred\"\n";
    let loaded = load_str("rlo.yaml", text, &LoadOptions::default());
    let out = render(&loaded);
    assert!(out.contains("\\u{202e}") && out.contains("\\u{1b}"), "{out}");
    assert!(!out.contains('\u{202e}') && !out.contains('\u{1b}'), "{out}");
    for d in &loaded.diagnostics {
        let j = serde_json::to_string(&d.to_json(&loaded.sources)).unwrap();
        assert!(!j.contains('\u{202e}'), "{j}");
    }
}

#[test]
fn columns_count_characters_after_non_ascii_text() {
    // YAML: the unknown tag after Japanese text
    let text = "pipeline: p\ndescription: {説明: 日本語の説明, x: !Nope y}\n";
    let loaded = load_str("ja.yaml", text, &LoadOptions::default());
    let d = loaded.diagnostics.iter().find(|d| d.code == "unknown-tag").unwrap();
    let col = "description: {説明: 日本語の説明, x: ".chars().count() + 1;
    assert_eq!(d.location(&loaded.sources).unwrap(), format!("ja.yaml:2:{col}"));
    let out = d.render(&loaded.sources, false);
    assert!(out.contains(&format!("[ja.yaml:2:{col}]")), "{out}");
    // the marker sits under the tag
    let line = out.lines().find(|l| l.contains("│ description")).unwrap();
    let marker = out.lines().skip_while(|l| !l.contains("│ description")).nth(1).unwrap();
    let width = |s: &str| {
        s.chars()
            .map(|c| if ('\u{3000}'..='\u{9fff}').contains(&c) { 2 } else { 1 })
            .sum::<usize>()
    };
    let tag_at = width(&line[..line.find("!Nope").unwrap()]);
    let mark_at = width(&marker[..marker.find(['─', '┬', '^']).unwrap()]);
    assert_eq!(tag_at, mark_at, "{out}");
    // JSON: serde_json counts columns in bytes; it stops at the `}` after `tru`
    let text = "{\"説明\": \"日本語\", \"x\": tru}";
    let loaded = load_str("ja.json", text, &LoadOptions::default());
    let col = "{\"説明\": \"日本語\", \"x\": tru".chars().count() + 1;
    assert_eq!(
        loaded.diagnostics[0].location(&loaded.sources).unwrap(),
        format!("ja.json:1:{col}")
    );
}

#[test]
fn artifact_paths_must_stay_inside_the_artifact() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/valid");
    let base = std::fs::read_to_string(dir.join("api-orders-service.json")).unwrap();
    for (written, why) in [
        (
            "BuildOutput::../../../../tmp/x.yaml",
            "leaves the artifact through `..`",
        ),
        ("BuildOutput::/abs/path.yaml", "is absolute"),
    ] {
        let text = base.replacen("BuildOutput::packaged-us-east-1.yaml", written, 1);
        let loaded = load_str("orders.json", &text, &LoadOptions::default());
        let d = loaded
            .diagnostics
            .iter()
            .find(|d| d.code == "path-outside-artifact")
            .unwrap_or_else(|| panic!("{written}: {}", render(&loaded)));
        let path = written.split_once("::").unwrap().1;
        assert_eq!(
            d.message,
            format!("TemplatePath of action `DeployUsEast1` names `{path}`, which {why}")
        );
        assert_eq!(d.location(&loaded.sources).unwrap(), "orders.json:86:31");
        assert_eq!(
            d.help.as_deref(),
            Some("write a path inside the artifact, like `BuildOutput::template.yaml`")
        );
    }
    // the fixture itself has no such error
    let loaded = load_str("orders.json", &base, &LoadOptions::default());
    assert!(!loaded.diagnostics.iter().any(|d| d.code == "path-outside-artifact"));
}

#[test]
fn build_projects_need_a_codebuild_timeout_and_a_buildspec_inside_the_source() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/valid");
    let base = std::fs::read_to_string(dir.join("native-hello-regions.yaml")).unwrap();
    let text = base.replace(
        "  buildspec: buildspec.yml\n",
        "  buildspec: ../../etc/buildspec.yml\n  timeout: 0\n",
    );
    let loaded = load_str("meridian.yaml", &text, &LoadOptions::default());
    let t = loaded.diagnostics.iter().find(|d| d.code == "invalid-timeout").unwrap();
    assert_eq!(
        t.message,
        "build project `hello-regions-build` has a timeout of 0 minutes; CodeBuild allows 5 to 2160"
    );
    assert_eq!(t.location(&loaded.sources).unwrap(), "meridian.yaml:11:12");
    assert_eq!(
        t.help.as_deref(),
        Some("give a build timeout between 5 and 2160 minutes (36 hours)")
    );
    let b = loaded
        .diagnostics
        .iter()
        .find(|d| d.code == "path-outside-source")
        .unwrap();
    assert!(b.message.contains("leaves the directory through `..`"), "{}", b.message);
    assert_eq!(b.location(&loaded.sources).unwrap(), "meridian.yaml:10:14");
    assert!(b.help.as_deref().unwrap().contains("like `buildspec.yml`"));
}
